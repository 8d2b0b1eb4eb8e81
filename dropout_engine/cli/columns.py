"""Table columns to the model's arrays: numbers, class labels, the task rule.

Cells (text from CSV, or Parquet's typed values) are read the same way
whichever parser produced them:

  - a number is what Python's ``float()`` reads ("1.5", " 2 ", "1e-3");
  - a missing cell is an empty one, or (any case, spaces stripped) one of
    NA, N/A, NaN, -NaN, null, None, <NA>, #N/A, or a Parquet null / NaN;
  - anything else is text; "inf" is a number, but not a finite one.

Features must be finite numbers: the first non-numeric or infinite cell is
an error naming its column and row, and missing cells are an error saying
how many there are and where (the command line does not impute).

``--task auto`` (``detect_task``), in the spirit of scikit-learn's
``type_of_target``: the target is a classification target when any of its
cells is not a number, or when all of them are integers with at most
``MAX_AUTO_CLASSES`` (20) distinct values; otherwise a regression target.
"""
import numpy as np

from .errors import CLIError

MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "<na>", "#n/a"})
MAX_AUTO_CLASSES = 20
_SHOWN = 5     # rows named in a message about missing cells


def _is_missing(cell):
    if cell is None:
        return True
    if isinstance(cell, float):
        return cell != cell
    return isinstance(cell, str) and cell.strip().lower() in MISSING


def _cells(col):
    """An object array of the column's cells (typed Parquet columns as is)."""
    return col if col.dtype == object else col.astype(object)


def parse_numbers(col):
    """(float64 values with NaN where a cell is missing, None) or, when a
    cell is not a number, (None, (row index, cell))."""
    if col.dtype.kind in "biuf":
        return col.astype(np.float64), None
    cells = _cells(col)
    try:
        # numpy calls float() on each cell, in C; the loop below only runs
        # when a cell is missing or bad, to say which.
        values = cells.astype(np.float64)
    except (TypeError, ValueError):
        values = np.empty(len(cells), np.float64)
        for i, cell in enumerate(cells):
            if _is_missing(cell):
                values[i] = np.nan
                continue
            try:
                values[i] = float(cell)
            except (TypeError, ValueError):
                return None, (i, cell)
    return values, None


def _rows(index):
    shown = ", ".join(str(i + 1) for i in index[:_SHOWN])
    more = f" and {len(index) - _SHOWN} more" if len(index) > _SHOWN else ""
    return f"row{'s' if len(index) > 1 else ''} {shown}{more}"


def _missing_error(path, what, missing_by_column):
    total = sum(len(ix) for ix in missing_by_column.values())
    where = "; ".join(f"column {name!r}: {len(ix)} ({_rows(ix)})"
                      for name, ix in missing_by_column.items())
    return CLIError(f"{path}: {total} empty or NaN {what} cell{'s' if total > 1 else ''} "
                    f"({where}); fill them or drop those rows")


def _not_a_number(path, name, bad, role):
    i, cell = bad
    return CLIError(f"{path}: column {name!r}, row {i + 1}: {str(cell)!r} is not a number "
                    f"({role})")


def feature_matrix(table, names):
    """[rows, len(names)] float64 of the named columns, all finite."""
    x = np.empty((table.rows, len(names)), np.float64)
    missing = {}
    for j, name in enumerate(names):
        values, bad = parse_numbers(table.column(name))
        if bad is not None:
            raise _not_a_number(table.path, name, bad, "features must be numeric")
        infinite = np.flatnonzero(np.isinf(values))
        if infinite.size:
            raise CLIError(f"{table.path}: column {name!r}, row {infinite[0] + 1}: "
                           f"{values[infinite[0]]} is not a finite number")
        nan = np.flatnonzero(np.isnan(values))
        if nan.size:
            missing[name] = nan
        x[:, j] = values
    if missing:
        raise _missing_error(table.path, "feature", missing)
    return x


def _check_target_present(table, name, values=None):
    cells = table.column(name)
    miss = (np.flatnonzero(np.isnan(values)) if values is not None else
            np.flatnonzero([_is_missing(c) for c in _cells(cells)]))
    if miss.size:
        raise _missing_error(table.path, "target", {name: miss})


def detect_task(table, name):
    """("classification" | "regression", why) by the rule in the docstring."""
    values, bad = parse_numbers(table.column(name))
    if bad is not None:
        return "classification", f"row {bad[0] + 1} holds {str(bad[1])!r}, not a number"
    finite = values[np.isfinite(values)]
    if not np.array_equal(finite, np.round(finite)):
        return "regression", "numeric, not all integers"
    k = len(np.unique(finite))
    if k > MAX_AUTO_CLASSES:
        return "regression", f"{k} distinct integers, more than {MAX_AUTO_CLASSES}"
    return "classification", f"{k} distinct integers, at most {MAX_AUTO_CLASSES}"


def _label_text(cell):
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, (float, np.floating)) and float(cell).is_integer():
        return str(int(cell))
    return str(cell)


def encode_labels(table, name):
    """(class labels as text, sorted; [rows] int64 class indices).

    Numeric targets are classes by value ("1" and "1.0" are one class,
    written as its first spelling in the file) and sort as numbers; other
    targets are classes by their text, spaces stripped, sorted as text.
    """
    cells = _cells(table.column(name))
    values, bad = parse_numbers(table.column(name))
    if bad is None:
        _check_target_present(table, name, values)
        classes, first, y = np.unique(values, return_index=True, return_inverse=True)
        labels = [_label_text(cells[i]) for i in first]
    else:
        _check_target_present(table, name)
        text = np.array([_label_text(c) for c in cells], dtype=object)
        labels, y = np.unique(text, return_inverse=True)
        labels = list(labels)
    if len(labels) < 2:
        raise CLIError(f"{table.path}: the target {name!r} has one class only "
                       f"({labels[0]!r}); classification needs at least two")
    return labels, y.reshape(-1).astype(np.int64)


def numeric_target(table, name):
    """[rows] float64 regression targets, all finite."""
    values, bad = parse_numbers(table.column(name))
    if bad is not None:
        raise _not_a_number(table.path, name, bad,
                            "a regression target must be numeric; --task classification?")
    _check_target_present(table, name, values)
    if not np.all(np.isfinite(values)):
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise CLIError(f"{table.path}: column {name!r}, row {row + 1}: "
                       f"{values[row]} is not a finite number")
    return values
