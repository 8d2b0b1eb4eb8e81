"""keras.optimizers: SGD, Adam, AdamW, RMSprop, and the schedules module."""
from ...optimizers import SGD, Adam, AdamW, Optimizer, RMSprop, get, serialize
from . import schedules

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "get", "schedules",
           "serialize"]
