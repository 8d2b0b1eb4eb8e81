"""keras.optimizers.schedules: learning-rate schedules."""
from ...schedules import (CosineDecay, CosineDecayRestarts, ExponentialDecay,
                          InverseTimeDecay, LearningRateSchedule,
                          PiecewiseConstantDecay, PolynomialDecay, deserialize,
                          serialize)

__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay",
           "InverseTimeDecay", "LearningRateSchedule", "PiecewiseConstantDecay",
           "PolynomialDecay", "deserialize", "serialize"]
