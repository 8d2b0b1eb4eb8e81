"""Models, as Keras 3's ``keras.models``: ``Model`` (base.py: compile, fit,
evaluate, predict, save, weights, summary), ``Sequential`` (a linear stack
of layers) and ``Functional`` (``Model(inputs, outputs)``, the functional
API)."""
from .base import Model
from .functional import Functional
from .sequential import Sequential

__all__ = ["Model", "Sequential", "Functional"]
