"""The model classes' first home, kept importable: ``Sequential`` and
``Model`` live in the ``models`` package now (as Keras 3's)."""
from .models import Model, Sequential

__all__ = ["Model", "Sequential"]
