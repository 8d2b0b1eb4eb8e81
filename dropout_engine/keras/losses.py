"""keras.losses: loss classes and their function forms."""
from ..losses import (BinaryCrossentropy, CategoricalCrossentropy, Loss,
                      MeanAbsoluteError, MeanSquaredError,
                      SparseCategoricalCrossentropy, binary_crossentropy,
                      categorical_crossentropy, get, mae, mean_absolute_error,
                      mean_squared_error, mse, serialize,
                      sparse_categorical_crossentropy)
from ._reexport import unsupported

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "Loss",
           "MeanAbsoluteError", "MeanSquaredError",
           "SparseCategoricalCrossentropy", "binary_crossentropy",
           "categorical_crossentropy", "get", "mae", "mean_absolute_error",
           "mean_squared_error", "mse", "serialize",
           "sparse_categorical_crossentropy"]


def __getattr__(name):
    raise unsupported(__name__, name)
