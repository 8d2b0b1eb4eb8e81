"""The tables the command line reads (CSV, Parquet) and the CSV it writes.

``read_table(path)`` gives a ``Table``: the column names from the header
row and one 1-D array per column, either numbers or the cells' text (an
object array of str); turning text into numbers or class labels happens
once, downstream (``columns.py``), whichever parser read it.

CSV, as read here:
  - UTF-8 (a leading byte-order mark is skipped), comma-separated, quoting as
    RFC 4180 / the csv module's default dialect ("a, b" quoted, "" for a
    quote inside quotes), any line ending;
  - the first non-blank row is the header; names are stripped of spaces and
    must be non-empty and unique;
  - blank lines are skipped; a row with fewer fields than the header gets
    empty cells for the rest (as pandas does), one with more is an error;
  - rows are numbered from 1, the first row after the header (blank lines
    not counted): "row 3" in a message is the third data row.

Two parsers give the same table: pandas' C parser when pandas is
importable (fast: it parses number columns itself), else the csv module,
streaming the rows in chunks (every column as text).  pandas keeps a column
as numbers only when every cell is a plain number it parses exactly as
Python's float() does (checked in the tests); any other column (a label, an
empty cell, "NA", " 5 ", "True") is read again as text, and the columns
named in ``text=`` (the target, whose spelling is its class label) are
text from the start.  The environment variable ``DROPOUT_ENGINE_CSV``
chooses: ``builtin`` forces the csv module, ``pandas`` requires pandas,
``auto`` (or unset) prefers pandas.

Parquet (``.parquet``, ``.pq``) is read with pyarrow, the ``parquet`` extra
(``pip install "dropout_engine[parquet]"``); its columns keep their types.

``write_csv`` writes the predictions, atomically when it writes a file.
"""
import csv
import os
import re
import sys

import numpy as np

from ..safetensors import write_atomically
from .errors import CLIError

PARQUET_SUFFIXES = (".parquet", ".pq")
ENGINE_VARIABLE = "DROPOUT_ENGINE_CSV"
_CHUNK_ROWS = 8192


class Table:
    """Column names and, per name, a 1-D array of cells (``rows`` long)."""

    def __init__(self, path, names, columns):
        self.path, self.names, self._columns = path, names, dict(zip(names, columns))
        self.rows = len(columns[0]) if columns else 0

    def column(self, name):
        return self._columns[name]


def read_table(path, *, text=()):
    """The table in `path`: Parquet by its suffix, otherwise CSV, whose
    columns named in `text` are kept as text whichever parser reads them."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a data file")
    if path.lower().endswith(PARQUET_SUFFIXES):
        names, columns = _read_parquet(path)
    else:
        names, columns = _CSV_READERS[csv_engine()](path, text)
    names = _check_names(path, names)
    if not columns or len(columns[0]) == 0:
        raise CLIError(f"{path}: has a header but no data rows")
    return Table(path, names, columns)


def csv_engine():
    """"pandas" or "builtin", as DROPOUT_ENGINE_CSV and the installed packages say."""
    want = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if want not in ("auto", "pandas", "builtin"):
        raise CLIError(f"{ENGINE_VARIABLE} must be auto, pandas or builtin, got {want!r}")
    if want == "builtin":
        return want
    try:
        import pandas  # noqa: F401
    except ImportError:
        if want == "pandas":
            raise CLIError(f"{ENGINE_VARIABLE}=pandas but pandas is not installed "
                           "(pip install pandas)") from None
        return "builtin"
    return "pandas"


def _check_names(path, header):
    names = [str(h).strip() for h in header]
    for i, name in enumerate(names):
        if not name:
            raise CLIError(f"{path}: header column {i + 1} has no name (a saved "
                           "index? drop it or name it)")
    seen = set()
    for name in names:
        if name in seen:
            raise CLIError(f"{path}: the header names column {name!r} twice")
        seen.add(name)
    return names


def _too_many(path, line, got, want):
    return CLIError(f"{path}: line {line} has {got} fields, the header has {want}")


def _header(path, reader):
    """The first non-blank row of `reader`, or an error for an empty file."""
    header = next((row for row in reader if row), None)
    if header is None:
        raise CLIError(f"{path}: is empty (no header row)")
    return header


def _not_utf8(path, e):
    return CLIError(f"{path}: is not UTF-8 text ({e.reason} at byte {e.start})")


def _read_builtin(path, text=()):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = _header(path, reader)
            k = len(header)
            columns, chunk = [[] for _ in header], []

            def flush():
                # Transposing a chunk at a time keeps the per-cell work in C.
                for col, cells in zip(columns, zip(*chunk)):
                    col.extend(cells)
                chunk.clear()
            for row in reader:
                if not row:
                    continue
                if len(row) != k:
                    if len(row) > k:
                        raise _too_many(path, reader.line_num, len(row), k)
                    row += [""] * (k - len(row))
                chunk.append(row)
                if len(chunk) == _CHUNK_ROWS:
                    flush()
            flush()
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    except csv.Error as e:
        raise CLIError(f"{path}: line {reader.line_num}: {e}") from None
    return header, [np.array(col, dtype=object) for col in columns]


def _read_pandas(path, text=()):
    import pandas as pd
    # The header by the csv module: pandas would rename duplicate names.
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = _header(path, reader)
            skip = reader.line_num
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    k = len(header)
    as_text = {j for j, h in enumerate(header) if h.strip() in text}
    options = dict(header=None, skiprows=skip, names=list(range(k)), na_filter=False,
                   keep_default_na=False, skip_blank_lines=True, encoding="utf-8-sig",
                   engine="c", low_memory=False)
    if int(pd.__version__.split(".")[0]) < 3:
        # pandas 1-2's default float parser may miss the nearest double in
        # the last bit; "round_trip" is Python's (pandas 3's default is exact).
        options["float_precision"] = "round_trip"

    def read(**kw):
        try:
            return pd.read_csv(path, **options, **kw)
        except pd.errors.EmptyDataError:    # nothing after the header
            return pd.DataFrame({j: np.array([], object) for j in kw.get("usecols", range(k))})
        except UnicodeDecodeError as e:
            raise _not_utf8(path, e) from None
        except pd.errors.ParserError as e:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
            if m:
                raise _too_many(path, m.group(2), m.group(3), m.group(1)) from None
            raise CLIError(f"{path}: {str(e).strip().splitlines()[-1]}") from None
    frame = read(dtype={j: str for j in as_text})
    columns = {j: frame[j].to_numpy() for j in range(k)
               if j not in as_text and frame[j].dtype.kind in "iuf"}
    rest = [j for j in range(k) if j not in columns]
    if rest:
        cells = read(usecols=rest, dtype=str)
        columns.update({j: cells[j].to_numpy(dtype=object) for j in rest})
    return header, [columns[j] for j in range(k)]


_CSV_READERS = {"builtin": _read_builtin, "pandas": _read_pandas}


def _read_parquet(path):
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(f"{path}: reading Parquet needs pyarrow, the 'parquet' extra: "
                       "pip install \"dropout_engine[parquet]\"") from None
    try:
        table = pq.read_table(path)
    except pyarrow.ArrowException as e:
        raise CLIError(f"{path}: is not a readable Parquet file ({e})") from None
    if table.num_columns == 0:
        raise CLIError(f"{path}: is empty (no columns)")
    return table.column_names, [table.column(i).to_numpy(zero_copy_only=False)
                                for i in range(table.num_columns)]


def check_out_dir(path):
    """`path`, as str, once its directory is known to exist."""
    path = os.fspath(path)
    d = os.path.dirname(path)
    if d and not os.path.isdir(d):
        raise CLIError(f"{path}: the directory {d!r} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; give a file name")
    return path


def write_csv(path, header, columns):
    """Write `columns` (sequences of str, one per header name) as CSV to
    `path`, or to stdout when `path` is None.  A file is written to a
    temporary name next to it and renamed over it, so it is either the old
    file or the whole new one."""
    if path is None:
        _write_rows(sys.stdout, header, columns)
        sys.stdout.flush()
        return
    write_atomically(check_out_dir(path), lambda f: _write_rows(f, header, columns),
                     mode="w", newline="", encoding="utf-8")


def _write_rows(f, header, columns):
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns))
