"""keras.constraints: MaxNorm, NonNeg and their lower-case aliases."""
from ..constraints import (Constraint, MaxNorm, NonNeg, get, max_norm, non_neg,
                           serialize)

__all__ = ["Constraint", "MaxNorm", "NonNeg", "get", "max_norm", "non_neg",
           "serialize"]
