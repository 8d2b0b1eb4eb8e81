"""keras.initializers: weight initialisers (see dropout_engine.initializers)."""
from ..initializers import (Constant, GlorotNormal, GlorotUniform, HeNormal,
                            HeUniform, Identity, Initializer, LecunNormal,
                            LecunUniform, Ones, Orthogonal, RandomNormal,
                            RandomUniform, TruncatedNormal, VarianceScaling, Zeros,
                            constant, deserialize, get, glorot_normal,
                            glorot_uniform, he_normal, he_uniform, identity,
                            lecun_normal, lecun_uniform, ones, orthogonal,
                            random_normal, random_uniform, serialize,
                            truncated_normal, variance_scaling, zeros)
from ._reexport import unsupported

IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal   # Keras's aliases

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
           "Identity", "IdentityInitializer", "Initializer", "LecunNormal",
           "LecunUniform", "Ones", "Orthogonal", "OrthogonalInitializer",
           "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling",
           "Zeros", "constant", "deserialize", "get", "glorot_normal",
           "glorot_uniform", "he_normal", "he_uniform", "identity", "lecun_normal",
           "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
           "serialize", "truncated_normal", "variance_scaling", "zeros"]


def __getattr__(name):
    raise unsupported(__name__, name)
