"""pandas DataFrame / Series and pyarrow Table / RecordBatch as row sources
(``memmap_adapter.RowsAdapter`` reads them a chunk at a time).

Neither library is imported here: a table is recognised by its type's
module, so numpy stays the only dependency.  The columns are kept in the
frame's order and converted per chunk (a DataFrame's rows become float32
[rows, columns], a Series its values).  Numeric and bool columns are read
in place (numpy views); nullable columns (pandas ``Int64``/``Float64``/
``boolean``, arrow columns with nulls or in several chunks) are converted
once, column by column, with NA as NaN (which fit then refuses, naming
the row).  Categorical, string, object and date columns are refused with
the column's name: encode them first.
"""
import numpy as np


def table_kind(x):
    """"pandas", "arrow" or None for x (no import of either library)."""
    mod = type(x).__module__.split(".")[0]
    name = type(x).__name__
    if mod == "pandas" and name in ("DataFrame", "Series"):
        return "pandas"
    if mod == "pyarrow" and name in ("Table", "RecordBatch", "ChunkedArray", "Array"):
        return "arrow"
    return None


def _refuse(what, col, dtype):
    hint = ("class labels must be integer indices here (the scikit-learn "
            "wrappers encode string labels)" if what.startswith("y") else
            "encode it as numbers first (e.g. .cat.codes or pandas.get_dummies)")
    raise TypeError(f"{what} column {col!r} has dtype {dtype}: only numbers and "
                    f"bools are read; {hint}")


def _pandas_column(s, what):
    """A pandas Series' values as a 1-D numpy array of numbers."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind not in "biuf":
            _refuse(what, s.name, dtype)
        return s.to_numpy()
    kind = getattr(dtype, "kind", "O")   # extension dtypes: Int64, Float64, boolean, ...[pyarrow]
    if kind not in "biuf" or type(dtype).__name__ == "CategoricalDtype":
        _refuse(what, s.name, dtype)
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _arrow_column(col, name, what):
    import pyarrow as pa     # only reached with a pyarrow object in hand
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        _refuse(what, name, t)
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
        col = col.chunk(0)
    if isinstance(col, pa.Array) and col.null_count == 0 and not pa.types.is_boolean(t):
        return col.to_numpy(zero_copy_only=True)
    a = col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else col.to_numpy()
    return a.astype(np.float64) if a.dtype == object else a


class FrameRows:
    """Columns read per chunk.  ``one_d``: a Series / arrow array (values
    [rows]); else a table (float32 [rows, columns])."""

    def __init__(self, columns, names, one_d):
        self.columns, self.names, self.one_d = columns, names, one_d
        self.n = columns[0].shape[0] if columns else 0
        self.row_bytes = sum(c.itemsize for c in columns)

    @classmethod
    def of(cls, x, what):
        width = (x.shape[1] if type(x).__name__ == "DataFrame"
                 else getattr(x, "num_columns", 1))
        if width == 0:
            raise ValueError(f"{what} has no columns")
        if table_kind(x) == "pandas":
            if type(x).__name__ == "Series":
                return cls([_pandas_column(x, what)], [x.name], True)
            return cls([_pandas_column(x.iloc[:, j], what) for j in range(x.shape[1])],
                       list(x.columns), False)
        if type(x).__name__ in ("ChunkedArray", "Array"):
            return cls([_arrow_column(x, None, what)], [None], True)
        return cls([_arrow_column(x.column(j), x.column_names[j], what)
                    for j in range(x.num_columns)], list(x.column_names), False)

    def _gather(self, pick):
        if self.one_d:
            return pick(self.columns[0])
        # Column by column into [columns, rows] (each write contiguous),
        # then one transposing copy: twice as fast as writing the columns
        # of a row-major array.
        first = pick(self.columns[0])
        cols = np.empty((len(self.columns), first.shape[0]), np.float32)
        cols[0] = first
        for j, c in enumerate(self.columns[1:], 1):
            cols[j] = pick(c)
        out = np.empty(cols.shape[::-1], np.float32)
        out[:] = cols.T
        return out

    def take(self, rows, out=None):
        return self._gather(lambda c: c[rows])

    def slice(self, lo, hi, out=None):
        return self._gather(lambda c: c[lo:hi])

    def sub(self, lo, hi):
        return FrameRows([c[lo:hi] for c in self.columns], self.names, self.one_d)
