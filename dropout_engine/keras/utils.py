"""keras.utils: to_categorical, set_random_seed, Progbar, PyDataset (Sequence)."""
from ..callbacks.progbar import Progbar
from ..utils import to_categorical
from ._reexport import unsupported

__all__ = ["Progbar", "PyDataset", "Sequence", "set_random_seed", "to_categorical"]


def __getattr__(name):
    # seeding.py belongs to the model code; loaded on first use.
    if name == "set_random_seed":
        from ..seeding import set_random_seed
        return set_random_seed
    if name in ("PyDataset", "Sequence"):
        from ..training import py_dataset
        return getattr(py_dataset, name)
    raise unsupported(__name__, name)
