"""keras.optimizers: SGD, Adam, AdamW, RMSprop, and the schedules module."""
from ...optimizers import SGD, Adam, AdamW, Optimizer, RMSprop, get, serialize
from . import schedules
from .._reexport import unsupported

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "get", "schedules",
           "serialize"]


def __getattr__(name):
    raise unsupported(__name__, name)
