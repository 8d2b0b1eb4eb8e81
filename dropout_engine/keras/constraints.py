"""keras.constraints: MaxNorm, NonNeg and their lower-case aliases."""
from ..constraints import (Constraint, MaxNorm, NonNeg, get, max_norm, non_neg,
                           serialize)
from ._reexport import unsupported

__all__ = ["Constraint", "MaxNorm", "NonNeg", "get", "max_norm", "non_neg",
           "serialize"]


def __getattr__(name):
    raise unsupported(__name__, name)
