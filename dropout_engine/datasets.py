"""Small data sets shipped inside the package, loaded like keras.datasets.

Only the 8x8 handwritten digits (data/digits.npz; source and licence in
data/README.md): small enough to ship, hard enough that dropout matters.
"""
import os

import numpy as np

__all__ = ["load_digits"]

_DIGITS = os.path.join(os.path.dirname(__file__), "data", "digits.npz")


def load_digits():
    """Loads the 8x8 digits data set (1797 images of the digits 0-9).

    Each image is 64 uint8 pixels in 0..16 (row-major 8x8); labels are uint8
    in 0..9.  The split is fixed and stratified: of the images of each digit,
    in the original UCI/scikit-learn order, every fifth (the 5th, 10th, ...)
    is a test image, giving 1442 training and 355 test images in that
    order.  No shuffling, no scaling: divide by 16 to get [0, 1].

    Returns:
        ((x_train, y_train), (x_test, y_test)), like keras.datasets.mnist:
        x arrays of shape (n, 64) and y arrays of shape (n,), both uint8.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_digits()
        >>> x_train.shape, x_test.shape
        ((1442, 64), (355, 64))
    """
    with np.load(_DIGITS, allow_pickle=False) as d:
        x, y = d["X"], d["y"]
    # The file is ordered roughly 0,1,...,9,0,1,...; taking every fifth row
    # would take mostly 4s and 9s, so count occurrences within each class.
    occurrence = np.empty(len(y), dtype=np.intp)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        occurrence[rows] = np.arange(len(rows))
    test = occurrence % 5 == 4
    return (x[~test], y[~test]), (x[test], y[test])
