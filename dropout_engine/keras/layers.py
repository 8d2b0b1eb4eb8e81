"""keras.layers: the layers dropout_engine offers."""
from ..layers import Activation, Dense, Dropout, Input, InputLayer, Layer
from ._reexport import optional

_extra = optional("dropout_engine.layers", "GaussianDropout", "AlphaDropout",
                  "GaussianNoise", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
                  "Concatenate", "Add", "Subtract", "Average", "Multiply",
                  "Maximum", "Minimum", "concatenate", "add", "subtract",
                  "average", "multiply", "maximum", "minimum", "serialize",
                  "deserialize")
globals().update(_extra)
__all__ = ["Activation", "Dense", "Dropout", "Input", "InputLayer", "Layer",
           *_extra]
