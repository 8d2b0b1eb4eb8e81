"""keras.optimizers.schedules: learning-rate schedules."""
from ...schedules import (CosineDecay, CosineDecayRestarts, ExponentialDecay,
                          InverseTimeDecay, LearningRateSchedule,
                          PiecewiseConstantDecay, PolynomialDecay, deserialize,
                          serialize)
from .._reexport import unsupported

__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay",
           "InverseTimeDecay", "LearningRateSchedule", "PiecewiseConstantDecay",
           "PolynomialDecay", "deserialize", "serialize"]


def __getattr__(name):
    raise unsupported(__name__, name)
