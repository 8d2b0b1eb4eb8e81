"""keras.utils: to_categorical, set_random_seed, Progbar."""
from ..callbacks.progbar import Progbar
from ..utils import to_categorical
from ._reexport import unsupported

__all__ = ["Progbar", "set_random_seed", "to_categorical"]


def __getattr__(name):
    # seeding.py belongs to the model code; loaded on first use.
    if name == "set_random_seed":
        from ..seeding import set_random_seed
        return set_random_seed
    raise unsupported(__name__, name)
