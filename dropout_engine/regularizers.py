"""Weight regularizers (Keras 3): the penalty ``l1 * sum|w| + l2 * sum w**2``
is added to the loss, its gradient to the weights' gradient inside the C
training loop."""
import numpy as np

from . import _registry


class Regularizer:
    """Base class.  Subclasses set ``l1`` and ``l2`` (the C loop applies
    exactly this form)."""
    l1 = 0.0
    l2 = 0.0

    def __call__(self, x):
        x = np.asarray(x, np.float64)
        return float(self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum())

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _factor(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor("l1", l1), _factor("l2", l2)


class L1(Regularizer):
    def __init__(self, l1=0.01):
        self.l1 = _factor("l1", l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        self.l2 = _factor("l2", l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2}


serialize = _registry.serialize


def get(identifier):
    """A Regularizer from None, a name ('l2'), a config dict or an instance."""
    return _registry.resolve(identifier, "regularizer", Regularizer, _NAMES,
                             optional=True)
