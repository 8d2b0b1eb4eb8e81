"""keras.initializers: weight initialisers."""
from ..initializers import (Constant, GlorotNormal, GlorotUniform, HeNormal,
                            HeUniform, Initializer, LecunNormal, LecunUniform,
                            Ones, RandomNormal, RandomUniform, VarianceScaling,
                            Zeros, get, serialize)

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
           "Initializer", "LecunNormal", "LecunUniform", "Ones", "RandomNormal",
           "RandomUniform", "VarianceScaling", "Zeros", "get", "serialize"]
