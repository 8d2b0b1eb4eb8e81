"""Every check and conversion at the API edge, in one place (as
scikit-learn's utils/validation.py).

Every public function checks its arguments here, before any C runs, and
raises TypeError (wrong kind of thing) or ValueError (right kind, wrong
value) saying what was expected and what came.  Numeric inputs of other
dtypes are converted to float32 once, here, never per batch inside C.

Two families:
  - the kernels' arguments (``ops``): ``float32_array``, ``out_array``,
    ``rate``, ``uint64``, ``activation`` ...; bool arrays are refused;
  - the model's data (``features``, ``targets``, ``sample_weights``,
    ``pred_true``, ``batch_size``): x is a 2-D array-like of numbers (bool,
    int, float of any width), converted once to C-contiguous float32 (a
    float32 C-contiguous array is used as is, never copied).  Targets are
    converted to float32 [n, k], or [n, 1] class indices for
    sparse_categorical_crossentropy (exact up to 2**24 classes).
"""
import math
import numbers
import operator

import numpy as np

from ._loss_kinds import BCE, CCE, SCCE



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


def real(name, v, *, low=0.0, strict=False):
    """A finite real number >= low (> low when strict), as a float."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {describe(v)}")
    v = float(v)
    if not math.isfinite(v) or not (v > low if strict else v >= low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} "
                         f"{low:g}, got {v}")
    return v


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


# ------------------------------------------------------------ model data
def numeric(a, what):
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number)
                                 or a.dtype == np.bool_):
        raise TypeError(f"{what} must hold numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError(f"{what} must be real, got dtype {a.dtype}")
    return a


def weight_values(own, weights, where):
    """``weights`` (one array-like per array of ``own``, same length)
    checked against ``own``'s shapes (and int8 ranges): the arrays to copy
    in, so that nothing is written unless everything fits."""
    new = []
    for i, (w, v) in enumerate(zip(own, weights)):
        v = numeric(v, f"weights[{i}]")
        if v.shape != w.shape:
            raise ValueError(f"{where}: weights[{i}] must have shape {w.shape}, "
                             f"got {v.shape}")
        if w.dtype == np.int8 and not (
                np.array_equal(v, np.round(v)) and v.min(initial=0) >= -128
                and v.max(initial=0) <= 127):
            raise ValueError(f"{where}: weights[{i}] is an int8 kernel: its values "
                             "must be integers in [-128, 127]")
        new.append(v)
    return new


def features(x, n_in, layer_name, *, check_finite=True, what="x"):
    """x as C-contiguous float32 [n, n_in], validated.  (predict first asks
    its C net whether it reads x as is, ``Net.reads``: that layout test in
    Python would cost a fifth of a batch-1 predict.)"""
    if x is None:
        raise ValueError(f"{what} is required, got None")
    x = numeric(x, what)
    if x.ndim != 2 or (n_in is not None and x.shape[1] != n_in):
        want = f"(None, {n_in})" if n_in is not None else "(None, features)"
        raise ValueError(f"Layer '{layer_name}' expected input shape {want}, "
                         f"got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {x.shape}); need at least one "
                         "sample and one feature")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if check_finite and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{what} holds NaN or Inf (first at row {bad[0]}, column "
                         f"{bad[1]}); clean the data before training")
    return x


def targets(y, n, kind, n_out, *, what="y"):
    """y as float32 [n, k] (or [n, 1] labels for the sparse loss)."""
    if y is None:
        raise ValueError(f"{what} is required to train or evaluate, got None")
    y = numeric(y, what)
    if y.shape[:1] != (n,):
        raise ValueError(f"{what} has {y.shape[0] if y.ndim else 0} samples, x "
                         f"has {n}")
    if kind == SCCE:
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise ValueError(f"sparse_categorical_crossentropy expects {what} of "
                             f"class indices, shape ({n},), got {y.shape} (for "
                             "one-hot targets use categorical_crossentropy)")
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ValueError(f"sparse_categorical_crossentropy expects integer "
                             f"class indices in {what}")
        lo, hi = y.min(), y.max()
        if lo < 0 or hi >= n_out:
            raise ValueError(f"{what} holds class {int(lo if lo < 0 else hi)}; the "
                             f"output layer has {n_out} units, so labels must be "
                             f"in [0, {n_out - 1}]")
        return np.ascontiguousarray(y.reshape(n, 1), np.float32)
    if y.ndim == 1 and n_out == 1:
        y = y.reshape(n, 1)
    if y.ndim != 2 or y.shape[1] != n_out:
        hint = (" (integer labels: use sparse_categorical_crossentropy or "
                "to_categorical)" if kind == CCE and y.ndim == 1 else "")
        raise ValueError(f"{what} has shape {y.shape}; the model outputs "
                         f"(None, {n_out}){hint}")
    y = np.ascontiguousarray(y, np.float32)
    if not np.isfinite(y).all():
        raise ValueError(f"{what} holds NaN or Inf")
    if kind in (BCE, CCE, SCCE) and (
            (y < 0).any() or (y > 1).any()):
        raise ValueError(f"{'binary' if kind == BCE else 'categorical'}"
                         f"_crossentropy expects {what} in [0, 1], got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


def sample_weights(sample_weight, class_weight, t, what="sample_weight"):
    """Row weights float32 [n] from Keras's ``sample_weight`` or
    ``class_weight`` (None when neither is given).  ``t`` is the converted
    target array: the class of a row is its label, the argmax of a one-hot
    row, or the rounded value of a single column (Keras's rule); classes
    missing from ``class_weight`` weigh 1."""
    n = t.shape[0]
    if sample_weight is not None and class_weight is not None:
        raise ValueError("You cannot use class_weight and sample_weight at the "
                         "same time")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError("class_weight must be a dict {class index: weight}, "
                            f"got {type(class_weight).__name__}")
        cls = np.argmax(t, axis=1) if t.shape[1] > 1 else np.round(t[:, 0])
        w = np.ones(n, np.float32)
        for c, v in class_weight.items():
            if not is_int(c):
                raise TypeError(f"class_weight keys must be class indices (int), "
                                f"got {c!r}")
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) \
                    or not np.isfinite(v) or v < 0:
                raise ValueError(f"class_weight[{c}] must be a finite number >= 0, "
                                 f"got {v!r}")
            w[cls == c] = v
        return w
    if sample_weight is None:
        return None
    sw = numeric(sample_weight, what)
    if sw.ndim == 2 and sw.shape[1:] == (1,):
        sw = sw[:, 0]
    if sw.shape != (n,):
        raise ValueError(f"{what} must have one weight per sample, shape ({n},), "
                         f"got {sw.shape}")
    sw = np.ascontiguousarray(sw, np.float32)
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise ValueError(f"{what} must hold finite weights >= 0")
    return sw


def batch_size(value, what="batch_size", default=32):
    if value is None:
        return default
    if not is_int(value):
        raise TypeError(f"{what} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value}")
    # Larger than any array is one batch; the clamp keeps it a C size_t.
    return min(int(value), 2 ** 62)


def pred_true(y_true, y_pred, sparse):
    """(p, t) as float32 [n, k] and [n, k] (or [n, 1] class indices when
    ``sparse``) for the standalone loss and metric objects, validated so the
    C code never reads past either array."""
    p = np.ascontiguousarray(numeric(y_pred, "y_pred"), np.float32)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ValueError(f"y_pred must be 1-D or 2-D, got shape {p.shape}")
    if sparse:
        t = targets(y_true, p.shape[0], SCCE, p.shape[1], what="y_true")
    else:
        t = np.ascontiguousarray(numeric(y_true, "y_true"), np.float32)
        t = t.reshape(p.shape) if t.size == p.size else t
        if t.shape != p.shape:
            raise ValueError(f"y_true has shape {t.shape}, y_pred {p.shape}")
    return p, t
