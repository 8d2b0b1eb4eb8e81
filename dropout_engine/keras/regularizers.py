"""keras.regularizers: L1, L2, L1L2 and their lower-case aliases."""
from ..regularizers import (L1, L1L2, L2, Regularizer, get, l1, l1_l2, l2,
                            serialize)
from ._reexport import unsupported

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2",
           "serialize"]


def __getattr__(name):
    raise unsupported(__name__, name)
