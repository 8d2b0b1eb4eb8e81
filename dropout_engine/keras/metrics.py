"""keras.metrics: the metrics the C training loop computes."""
from ..metrics import (BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError,
                       MeanSquaredError, Metric, SparseCategoricalAccuracy, get)
from ._reexport import unsupported

__all__ = ["BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError",
           "MeanSquaredError", "Metric", "SparseCategoricalAccuracy", "get"]


def __getattr__(name):
    raise unsupported(__name__, name)
