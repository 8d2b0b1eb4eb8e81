"""keras.optimizers.schedules: learning-rate schedules."""
from ...optimizers import ExponentialDecay, LearningRateSchedule

__all__ = ["ExponentialDecay", "LearningRateSchedule"]
