"""keras.metrics: the metrics the C training loop computes."""
from ..metrics import (BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError,
                       MeanSquaredError, Metric, SparseCategoricalAccuracy, get)

__all__ = ["BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError",
           "MeanSquaredError", "Metric", "SparseCategoricalAccuracy", "get"]
