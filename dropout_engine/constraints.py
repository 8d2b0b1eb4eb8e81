"""Weight constraints (Keras 3), applied by the C loop after each update."""
import numpy as np

from . import _net, _registry


class Constraint:
    """Base class.  ``_c`` is the (kind, max_value, axis) the C loop applies."""
    _c = (0, 0.0, 0)

    def __call__(self, w):
        """The constrained copy of ``w`` (the same C code as training)."""
        w = np.array(w, np.float32, order="C")
        _net.constrain(w, *self._c)
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MaxNorm(Constraint):
    """Scale each column (axis=0, a Dense unit's incoming weights) or row
    (axis=1) to norm <= max_value: ``w * clip(n, 0, m) / (1e-7 + n)``."""

    def __init__(self, max_value=2, axis=0):
        max_value = float(max_value)
        if not np.isfinite(max_value) or max_value <= 0:
            raise ValueError(f"MaxNorm max_value must be > 0, got {max_value}")
        if axis not in (0, 1, -1, -2):
            raise ValueError(f"MaxNorm axis must be 0 or 1 for a Dense kernel, got {axis!r}")
        self.max_value, self.axis = max_value, axis
        self._c = (1, max_value, axis % 2)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Zero the negative weights."""
    _c = (2, 0.0, 0)


max_norm, non_neg = MaxNorm, NonNeg
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg}


serialize = _registry.serialize


def get(identifier):
    """A Constraint from None, a name ('max_norm'), a config dict or an instance."""
    return _registry.resolve(identifier, "constraint", Constraint, _NAMES,
                             optional=True)
