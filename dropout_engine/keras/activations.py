"""keras.activations: the activation functions, get, serialize, deserialize."""
from ..activations import (deserialize, elu, gelu, get, hard_sigmoid, leaky_relu,
                           linear, relu, relu6, selu, serialize, sigmoid, silu,
                           softmax, softplus, swish, tanh)
from ._reexport import unsupported

__all__ = ["deserialize", "elu", "gelu", "get", "hard_sigmoid", "leaky_relu",
           "linear", "relu", "relu6", "selu", "serialize", "sigmoid", "silu",
           "softmax", "softplus", "swish", "tanh"]


def __getattr__(name):
    raise unsupported(__name__, name)
