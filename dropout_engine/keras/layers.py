"""keras.layers: the layers dropout_engine offers."""
from ..layers import Activation, Dense, Dropout, Input, InputLayer, Layer
from ._reexport import optional, unsupported

_extra = optional("dropout_engine.layers", "GaussianDropout", "AlphaDropout",
                  "GaussianNoise", "SpatialDropout1D", "ReLU", "LeakyReLU", "PReLU",
                  "ELU", "Softmax", "BatchNormalization", "LayerNormalization",
                  "Flatten", "Reshape", "Embedding",
                  "GlobalAveragePooling1D", "GlobalAvgPool1D",
                  "Concatenate", "Add", "Subtract", "Average", "Multiply",
                  "Maximum", "Minimum", "concatenate", "add", "subtract",
                  "average", "multiply", "maximum", "minimum",
                  "serialize", "deserialize")
globals().update(_extra)
__all__ = ["Activation", "Dense", "Dropout", "Input", "InputLayer", "Layer",
           *_extra]


def __getattr__(name):
    raise unsupported(__name__, name)
