"""The shipped digits data: shapes, dtypes, and a fixed stratified split."""
import numpy as np

from dropout_engine.datasets import load_digits


def test_digits_shapes_dtypes_and_ranges():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1442, 64) and x_test.shape == (355, 64)
    assert y_train.shape == (1442,) and y_test.shape == (355,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert x_train.max() == 16 and y_train.max() == 9


def test_digits_split_is_fixed_stratified_and_disjoint():
    (x_train, y_train), (x_test, y_test) = load_digits()
    again = load_digits()
    np.testing.assert_array_equal(again[1][0], x_test)
    counts = np.bincount(y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 36
    train_rows = {r.tobytes() + bytes([y]) for r, y in zip(x_train, y_train)}
    overlap = sum(r.tobytes() + bytes([y]) in train_rows
                  for r, y in zip(x_test, y_test))
    assert overlap == 0
