"""Input validation shared by the public entries (ops, layers, model).

Every public function checks its arguments here, before any C runs, and
raises TypeError (wrong kind of thing) or ValueError (right kind, wrong
value) saying what was expected and what came.  Numeric inputs of other
dtypes are converted to float32 once, here, never per batch inside C.
"""
import math
import numbers
import operator

import numpy as np


def describe(x):
    """Short description of what came, for error messages."""
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def float32_array(name, x, *, ndim=None, contiguous=True):
    """`x` as a float32 ndarray (converted once from any real dtype).

    contiguous=True returns a C-contiguous array; False keeps a row-strided
    view when its last axis has unit stride (the GEMM reads it as is)."""
    if x is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    arr = x if isinstance(x, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like: say what came
            raise TypeError(f"{name} must be an array of numbers, got "
                            f"{describe(x)} ({exc})") from None
    kind = arr.dtype.kind
    if kind not in "iuf":
        what = {"b": "bool", "c": "complex", "O": "object", "U": "str",
                "S": "bytes"}.get(kind, str(arr.dtype))
        raise TypeError(f"{name} must hold real numbers (converted to float32), "
                        f"got dtype {arr.dtype} ({what})")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    if contiguous:
        arr = np.ascontiguousarray(arr)
    elif arr.ndim == 2 and (arr.strides[1] != 4 or arr.strides[0] < 0
                            or arr.strides[0] % 4):
        arr = np.ascontiguousarray(arr)
    return arr


def out_array(name, out, shape):
    """Check a caller-provided output array: float32, C-contiguous, shape."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy float32 array, got {describe(out)}")
    if out.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out


def rate(name, r):
    """A dropout rate: a real number in [0, 1)."""
    if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1), got {describe(r)}")
    r = float(r)
    if not (0.0 <= r < 1.0):  # also catches NaN
        raise ValueError(f"{name} must be in [0, 1), got {r!r}")
    return r


def is_int(v):
    """A Python or numpy integer; bool is not (True is no count or seed)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def integer(name, v, what):
    """`v` as a Python int via __index__ (floats are refused, never
    truncated; bool is refused); TypeError says `name` must be `what`."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be {what}, got {describe(v)}") from None


def uint64(name, v):
    """A seed or step: an int in [0, 2**64)."""
    v = integer(name, v, "an int in [0, 2**64)")
    if not 0 <= v < 2 ** 64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def flag(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(v)}")
    return bool(v)


def finite(name, arr):
    """Refuse NaN/Inf where they would poison training."""
    if arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or Inf (first at index "
                         f"{tuple(int(i) for i in bad)})")
    return arr


def positive_int(name, v):
    v = integer(name, v, "a positive int")
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return v


def mask_words(n_bits):
    """Zeroed uint64 storage for a bit mask of n_bits (the C layout)."""
    return np.zeros(max(1, math.ceil(n_bits / 64)), dtype=np.uint64)
