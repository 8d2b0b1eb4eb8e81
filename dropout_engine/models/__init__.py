"""Models, as Keras 3's ``keras.models``: ``Model`` (base.py: compile, fit,
evaluate, predict, save, weights, summary) and ``Sequential`` (a linear
stack of layers)."""
from .base import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
