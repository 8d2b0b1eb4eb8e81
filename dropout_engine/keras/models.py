"""keras.models: Sequential (Model is the same class) and saving."""
from ..models import Model, Sequential
from ._reexport import unsupported

__all__ = ["Model", "Sequential", "load_model", "save_model"]


def __getattr__(name):
    # saving.py imports the model code; loaded on first use.
    if name in ("load_model", "save_model"):
        from .. import saving
        return getattr(saving, name)
    raise unsupported(__name__, name)
