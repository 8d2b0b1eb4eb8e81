"""model.save / load_model: the public entries (Keras 3's saving API).

The model <-> file mapping is ``_model_file`` (ours, the safetensors
layout; the suffix rule and the dispatch by content) and ``_keras_file``
(Keras 3's .keras / .weights.h5, with h5py); this module
adds the one thing it must not know, the class a file's config builds
(``Model``, whose ``from_config`` builds a Sequential or a functional model
as the config says).  The model saves through ``_model_file`` directly, so the
model code and the file code never import each other.
"""
from . import _model_file
from ._model_file import (FORMAT, RESERVED_METADATA, VERSION,  # noqa: F401
                          WEIGHTS_FORMAT, load_metadata, load_weights,
                          model_to_bytes)
from .models import Model
from .safetensors import ModelFileError  # noqa: F401

__all__ = ["load_model", "save_model", "load_weights", "save_weights", "load_metadata",
           "model_to_bytes", "model_from_bytes", "ModelFileError"]


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model saved by ``model.save``: same weights, same predictions, and
    (when compiled) the optimizer state to go on training.  A ``.keras``
    file Keras 3 wrote loads too (found by its content, whatever its name),
    with its compile config and optimizer state when ``compile``.

    Raises:
        ModelFileError (a ValueError): the file is not a model file, is
            truncated or tampered with, its parts do not match, or it holds
            a layer or model class we do not run (named in the message).
        ImportError: a Keras file without h5py installed.
    """
    if custom_objects:
        raise NotImplementedError("custom_objects are not supported")
    return _model_file.load_model(filepath, Model, compile=compile)


def save_model(model, filepath, overwrite=True, *, metadata=None):
    """``model.save(filepath, ...)`` (Keras's ``saving.save_model``); under
    data parallelism rank 0 alone writes."""
    model.save(filepath, overwrite=overwrite, metadata=metadata)


def save_weights(model, filepath, overwrite=True):
    """``model.save_weights(filepath, ...)``; rank 0 alone under data
    parallelism."""
    model.save_weights(filepath, overwrite=overwrite)


def model_from_bytes(data):
    """load_model on the bytes ``model_to_bytes`` gave (what pickles made
    before models unpickled through ``Model._from_bytes`` call)."""
    return _model_file.model_from_bytes(data, Model)
