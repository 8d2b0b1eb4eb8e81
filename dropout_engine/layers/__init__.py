"""Layers, a module per family as Keras 3's: core (Input, Dense), dropout
(Dropout, GaussianDropout, AlphaDropout), noise (GaussianNoise,
SpatialDropout1D), activation (Activation, ReLU, LeakyReLU, PReLU, ELU,
Softmax), normalization (BatchNormalization, LayerNormalization),
reshaping (Flatten, Reshape), embedding (Embedding), pooling
(GlobalAveragePooling1D), merging (Concatenate, Add, Subtract, Average,
Multiply, Maximum, Minimum); base holds Layer, symbolic the KerasTensor
that layers are called on in the functional API.  Keras 3 names and
defaults.

Layers hold configuration and, once built, their weights as float32 numpy
arrays that the C engine reads and updates in place (so ``get_weights`` /
``set_weights`` are copies, and the arrays are never rebound).  The model
fuses them into C layers ``dropout(act(x @ w + b))``; see
``Sequential``'s docstring for the sequences that fuse.

Our addition: ``Dropout(rate, *, scaling="inverted"|"weight")``.
"inverted" (Keras's and PyTorch's rule) scales kept units by 1/(1-rate) in
training and is the identity at inference; "weight" (the original paper's)
leaves training unscaled and multiplies activations by (1 - rate) at
inference, so the expected value matches.
"""
from .activation import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from .base import Layer, _shape_dim, _unique_name, assign_weights  # noqa: F401
from .core import BF16_POLICY, INT8_POLICY, Dense, Input, InputLayer  # noqa: F401
from .dropout import AlphaDropout, Dropout, GaussianDropout, _NoiseDropout  # noqa: F401
from .merging import (MERGES, Add, Average, Concatenate, Maximum,  # noqa: F401
                      Minimum, Multiply, Subtract, add, average, concatenate,
                      maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization, _Normalization  # noqa: F401
from .embedding import Embedding
from .noise import GaussianNoise, SpatialDropout1D
from .pooling import GlobalAveragePooling1D, GlobalAvgPool1D  # noqa: F401
from .reshaping import Flatten, Reshape
from .symbolic import KerasTensor  # noqa: F401

# What deserialize builds.  A new layer module adds its classes here (one
# line in this file), so a model file or a Keras config can name them.
_CLASSES = {c.__name__: c for c in (InputLayer, Dense, Dropout, GaussianDropout,
                                     AlphaDropout, Activation, ReLU, LeakyReLU,
                                     PReLU, ELU, Softmax, BatchNormalization,
                                     LayerNormalization, *MERGES)}
_CLASSES.update({c.__name__: c for c in (GaussianNoise, SpatialDropout1D, Flatten,
                                         Reshape, Embedding, GlobalAveragePooling1D)})


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, where="layer"):
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES \
            or not isinstance(config.get("config"), dict):
        raise ValueError(f"{where}: expected {{'class_name': one of "
                         f"{sorted(_CLASSES)}, 'config': {{...}}}}, got {config!r:.200}")
    return _CLASSES[config["class_name"]].from_config(config["config"])
