"""What `keras.utils` offers that a dropout MLP needs: one-hot labels, seeding,
PyDataset (and its alias Sequence).

`set_random_seed` lives in `seeding.py`; it is imported here on first use so
that importing this module stays cheap and does not pull the model code in.
"""
import numpy as np

from ._validation import is_int

__all__ = ["to_categorical", "set_random_seed", "PyDataset", "Sequence"]


def to_categorical(x, num_classes=None, *, dtype="float32"):
    """Converts a class vector (integers) to a one-hot matrix.

    Keras semantics: the class axis is placed last, and a trailing axis of
    length 1 is dropped first, so labels of shape (n,) or (n, 1) both give
    (n, num_classes).  Unlike Keras, which casts silently, labels that are
    negative, not whole numbers, NaN, or >= num_classes raise ValueError.

    Args:
        x: array-like of class indices in [0, num_classes).  Floats are
            accepted when they hold whole numbers (labels read from CSV).
        num_classes: total number of classes; None infers `max(x) + 1`.
        dtype: keyword-only, ours: the output dtype.  float32 (the engine's
            dtype) by default; Keras 3 returns float64 for numpy input.

    Returns:
        A numpy array of shape `x.shape + (num_classes,)` of 0s and 1s.

    Example:
        >>> to_categorical([0, 2, 1], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.],
               [0., 1., 0.]], dtype=float32)
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"to_categorical expects integer class indices, "
                         f"got an array of dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError("to_categorical expects integer class indices, "
                             "got NaN or infinity")
        if (a != np.round(a)).any():
            bad = a[a != np.round(a)].flat[0]
            raise ValueError(f"to_categorical expects integer class indices, "
                             f"got the non-integer value {bad}")
    shape = a.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = a.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(f"class indices must be >= 0, got {flat.min()}")
    if num_classes is None:
        if not flat.size:
            raise ValueError("cannot infer num_classes from an empty label "
                             "array; pass num_classes")
        num_classes = int(flat.max()) + 1
    elif not is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer or None, "
                         f"got {num_classes!r}")
    elif flat.size and flat.max() >= num_classes:
        raise ValueError(f"class index {flat.max()} is out of range for "
                         f"num_classes={num_classes} (indices are 0.."
                         f"{num_classes - 1})")
    out = np.zeros((flat.size, int(num_classes)), dtype=dtype)
    out[np.arange(flat.size), flat.astype(np.intp)] = 1
    return out.reshape(shape + (int(num_classes),))


def __getattr__(name):
    # Lazy: seeding.py belongs to the model code and is imported on first use.
    if name == "set_random_seed":
        from .seeding import set_random_seed
        return set_random_seed
    if name in ("PyDataset", "Sequence"):
        from .training import py_dataset
        return getattr(py_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
