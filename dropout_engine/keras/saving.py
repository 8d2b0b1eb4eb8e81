"""keras.saving: one model file (safetensors layout), no pickle."""
from ..saving import load_model, save_model
from ._reexport import optional, unsupported

_extra = optional("dropout_engine.saving", "load_weights", "save_weights")
globals().update(_extra)
__all__ = ["load_model", "save_model", *_extra]


def __getattr__(name):
    raise unsupported(__name__, name)
