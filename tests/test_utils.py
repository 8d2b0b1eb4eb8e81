"""to_categorical against numpy eye-indexing, and its refusals."""
import numpy as np
import pytest

from dropout_engine.utils import to_categorical


@pytest.mark.parametrize("labels, num_classes", [
    ([0, 1, 2, 3], None),
    ([3, 0, 3, 1], 5),
    (np.array([[1], [0], [2]]), None),      # (n, 1) -> (n, C), as Keras
    (np.arange(12).reshape(3, 4) % 4, 4),   # (a, b) -> (a, b, C)
    (np.array(2), 3),                       # scalar -> (C,)
    (np.array([1.0, 0.0, 2.0]), None),      # whole-number floats
    (np.array([True, False]), None),
    (np.array([7], np.uint8), 8),
])
def test_matches_numpy_eye_indexing(labels, num_classes):
    a = np.asarray(labels)
    n = num_classes or int(a.max()) + 1
    squeezed = a[..., 0] if a.ndim > 1 and a.shape[-1] == 1 else a
    expected = np.eye(n)[squeezed.astype(int)]
    got = to_categorical(labels, num_classes)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_dtype_keyword():
    assert to_categorical([1, 0], 2, dtype="float64").dtype == np.float64


def test_empty_labels_with_num_classes():
    assert to_categorical(np.zeros(0, int), 3).shape == (0, 3)


@pytest.mark.parametrize("labels, num_classes, match", [
    ([0, -1], None, ">= 0"),
    ([0, 3], 3, "out of range"),
    ([0.5, 1.0], None, "non-integer value 0.5"),
    ([np.nan, 1.0], None, "NaN"),
    ([np.inf], None, "NaN or infinity"),
    (["a", "b"], None, "dtype"),
    ([0, 1], 0, "positive integer"),
    ([0, 1], 2.0, "positive integer"),
    ([0, 1], True, "positive integer"),
    (np.zeros(0, int), None, "empty"),
])
def test_bad_inputs_raise_value_error(labels, num_classes, match):
    with pytest.raises(ValueError, match=match):
        to_categorical(labels, num_classes)
