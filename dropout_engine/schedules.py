"""Keras 3's learning-rate schedules (``keras.optimizers.schedules``), run
inside the C training loop.

A schedule maps the step (the optimizer's iteration count before the
update) to a learning rate.  The built-in ones hand their parameters to C
with each chunk of batches (``_c_config``, ``de_schedule_t`` in
``_csrc/nn/schedule.c``), which evaluates them per batch: a schedule costs fit
no Python per batch.  ``__call__`` below is the same arithmetic, operation
for operation, on Python floats with the math module (which call the same
libm as the C side), so ``schedule(step)`` and ``optimizer.learning_rate``
are bit for bit the rate the C loop applies.  It is float64; Keras
computes in float32, and the two agree to float32 rounding.

Ours, not Keras's: arguments are validated up front (finite rates and
factors >= 0, steps > 0, ``PiecewiseConstantDecay``'s boundaries
ascending, ``t_mul >= 1``), and ``__call__`` takes a number, not a tensor.

A ``LearningRateSchedule`` of your own (or a subclass with its own
``__call__``) works too; it is evaluated in Python, so fit then runs one
batch per C call.

Example:
    >>> lr = CosineDecay(0.0, decay_steps=1000, warmup_target=0.1,
    ...                  warmup_steps=100)
    >>> opt = dropout_engine.optimizers.SGD(lr)
"""
import bisect
import math

import numpy as np

from . import _validation, _registry

# The DE_LR_* kinds of engine.h.
(_CONSTANT, _EXPONENTIAL, _INVERSE_TIME, _POLYNOMIAL, _PIECEWISE, _COSINE,
 _COSINE_RESTARTS) = range(7)


def _steps(name, v):
    return _validation.real(name, v, strict=True)


def _pow(x, y):
    """x ** y as C's pow: inf where Python's would raise OverflowError."""
    try:
        return x ** y
    except OverflowError:
        return math.inf


def _kept(name, v):
    """A number >= 0, kept an int when it is one (for get_config)."""
    f = _validation.real(name, v)
    return int(v) if _validation.is_int(v) else f


def _step(step):
    """The step as a float (an int step converts exactly below 2**53, as
    the C loop's does)."""
    if isinstance(step, np.ndarray) and step.ndim == 0:
        step = step[()]
    return _validation.real("step", step)


class LearningRateSchedule:
    """Base class: ``schedule(step)`` returns the learning rate at ``step``.

    Subclass it with ``__call__(self, step)`` and ``get_config(self)`` for a
    schedule of your own (evaluated in Python, one batch per C call)."""
    _kind = None        # the C kind, on the built-in schedules

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' "
                                  "must override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' "
                                  "must override `get_config()` in order to be "
                                  "serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _c_config(self):
        """The de_schedule_t fields when C evaluates this schedule exactly as
        ``__call__`` does, else None (Python evaluates it per batch)."""
        owner = next(c for c in type(self).__mro__ if "__call__" in vars(c))
        if vars(owner).get("_kind") is None:
            return None
        return dict(self._fields(), kind=owner._kind)


class _StepDecay(LearningRateSchedule):
    """ExponentialDecay's and InverseTimeDecay's arguments and exponent."""
    _rate_positive = False

    def __init__(self, initial_learning_rate, decay_steps, decay_rate,
                 staircase, name):
        self.initial_learning_rate = _validation.real(
            "initial_learning_rate", initial_learning_rate, strict=True)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = _validation.real("decay_rate", decay_rate,
                                       strict=self._rate_positive)
        self.staircase = bool(staircase)
        self.name = name

    def _p(self, step):
        p = _step(step) / self.decay_steps
        return float(math.floor(p)) if self.staircase else p

    def _fields(self):
        return {"lr": self.initial_learning_rate, "steps": self.decay_steps,
                "rate": self.decay_rate, "staircase": self.staircase}

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, the
    exponent floored when ``staircase``.

    Args:
        initial_learning_rate: the rate at step 0 (> 0).
        decay_steps: steps per factor of ``decay_rate`` (> 0).
        decay_rate: the factor (> 0).
        staircase: decay in whole steps of ``decay_steps``.
    """
    _kind = _EXPONENTIAL
    _rate_positive = True

    def __init__(self, initial_learning_rate, decay_steps, decay_rate,
                 staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate,
                         staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate * _pow(self.decay_rate, self._p(step))


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``,
    ``step / decay_steps`` floored when ``staircase``; arguments as
    ExponentialDecay's (``decay_rate`` >= 0 here)."""
    _kind = _INVERSE_TIME

    def __init__(self, initial_learning_rate, decay_steps, decay_rate,
                 staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate,
                         staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._p(step))


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over
    ``decay_steps``: ``(initial - end) * (1 - s / decay_steps) ** power +
    end`` with ``s = min(step, decay_steps)``; with ``cycle`` the decay
    restarts, each time over the next multiple of ``decay_steps``."""
    _kind = _POLYNOMIAL

    def __init__(self, initial_learning_rate, decay_steps,
                 end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        self.initial_learning_rate = _validation.real("initial_learning_rate",
                                                  initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.end_learning_rate = _validation.real("end_learning_rate", end_learning_rate)
        self.power = _validation.real("power", power)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step):
        s, d = _step(step), self.decay_steps
        if self.cycle:
            d = d * (1.0 if s == 0.0 else float(math.ceil(s / self.decay_steps)))
        else:
            s = min(s, d)
        p = s / d
        return ((self.initial_learning_rate - self.end_learning_rate)
                * _pow(1.0 - p, self.power) + self.end_learning_rate)

    def _fields(self):
        return {"lr": self.initial_learning_rate, "steps": self.decay_steps,
                "end": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle}

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` up to and including step ``boundaries[0]``,
    ``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]``, and
    ``values[-1]`` after the last boundary.

    Args:
        boundaries: ascending steps (numbers >= 0).
        values: the rates (>= 0), one more than ``boundaries``.
    """
    _kind = _PIECEWISE

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        for what, v in (("boundaries", boundaries), ("values", values)):
            if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
                raise TypeError(f"{what} must be a list of numbers, got "
                                f"{_validation.describe(v)}")
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the "
                             f"length of values. Received: boundaries={boundaries!r} "
                             f"of length {len(boundaries)}, and values={values!r} "
                             f"of length {len(values)}.")
        self.boundaries = [_kept(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        if any(b < a for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries must be ascending, got {self.boundaries}")
        self.values = [_validation.real(f"values[{i}]", v) for i, v in enumerate(values)]
        self.name = name
        self._floats = [float(b) for b in self.boundaries]
        self._bounds = np.array(self._floats, np.float64)
        self._values = np.array(self.values, np.float64)

    def __call__(self, step):
        # bisect_left: the number of boundaries below step, as C counts.
        return self.values[bisect.bisect_left(self._floats, _step(step))]

    def _fields(self):
        return {"lr": self.values[0], "bounds": self._bounds, "values": self._values}

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


def _cosine(s, d, from_lr, alpha):
    """from_lr * ((1 - alpha) * c + alpha), c = (1 + cos(pi s / d)) / 2."""
    c = 0.5 * (1.0 + math.cos(math.pi * (s / d)))
    return from_lr * ((1.0 - alpha) * c + alpha)


class CosineDecay(LearningRateSchedule):
    """Cosine decay (SGDR without restarts) with an optional linear warmup.

    Without ``warmup_target``: ``initial_learning_rate * ((1 - alpha) * c +
    alpha)``, ``c = (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2``.
    With it: the rate goes linearly from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps``, then decays as above from
    ``warmup_target`` over ``decay_steps``.

    Args:
        initial_learning_rate: the rate at step 0 (>= 0).
        decay_steps: steps of the decay (> 0).
        alpha: the final rate, a fraction of the peak (>= 0).
        warmup_target: the peak after the warmup (None: no warmup).
        warmup_steps: steps of the warmup (>= 0).
    """
    _kind = _COSINE

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0,
                 name="CosineDecay", warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _validation.real("initial_learning_rate",
                                                  initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.alpha = _validation.real("alpha", alpha)
        self.name = name
        self.warmup_target = (None if warmup_target is None
                              else _validation.real("warmup_target", warmup_target))
        self.warmup_steps = _validation.real("warmup_steps", warmup_steps)

    def __call__(self, step):
        s, d = _step(step), self.decay_steps
        if self.warmup_target is None:
            return _cosine(min(s, d), d, self.initial_learning_rate, self.alpha)
        s = min(s, d + self.warmup_steps)
        if s < self.warmup_steps:
            return ((self.warmup_target - self.initial_learning_rate)
                    * (s / self.warmup_steps) + self.initial_learning_rate)
        return _cosine(s - self.warmup_steps, d, self.warmup_target, self.alpha)

    def _fields(self):
        return {"lr": self.initial_learning_rate, "steps": self.decay_steps,
                "alpha": self.alpha, "warmup": self.warmup_target is not None,
                "target": self.warmup_target or 0.0,
                "warmup_steps": self.warmup_steps}

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter): the
    i-th period lasts ``first_decay_steps * t_mul ** i`` steps and starts
    from ``initial_learning_rate * m_mul ** i``; ``alpha`` as CosineDecay's.
    ``t_mul`` must be >= 1 (ours: a shrinking period would end the schedule
    after finitely many steps)."""
    _kind = _COSINE_RESTARTS

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0,
                 m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        self.initial_learning_rate = _validation.real("initial_learning_rate",
                                                  initial_learning_rate)
        self.first_decay_steps = _steps("first_decay_steps", first_decay_steps)
        self.t_mul = _validation.real("t_mul", t_mul, low=1.0)
        self.m_mul = _validation.real("m_mul", m_mul)
        self.alpha = _validation.real("alpha", alpha)
        self.name = name

    def __call__(self, step):
        f, t = _step(step) / self.first_decay_steps, self.t_mul
        if t == 1.0:
            i = float(math.floor(f))
            f = f - i
        else:
            i = float(math.floor(math.log(1.0 - f * (1.0 - t)) / math.log(t)))
            sum_r = (1.0 - _pow(t, i)) / (1.0 - t)
            f = (f - sum_r) / _pow(t, i)
        c = 0.5 * _pow(self.m_mul, i) * (1.0 + math.cos(math.pi * f))
        return self.initial_learning_rate * ((1.0 - self.alpha) * c + self.alpha)

    def _fields(self):
        return {"lr": self.initial_learning_rate, "steps": self.first_decay_steps,
                "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha}

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


_NAMES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PolynomialDecay,
                                  PiecewiseConstantDecay, CosineDecay,
                                  CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """``{"class_name": ..., "config": ...}`` of a schedule."""
    return _registry.serialize(learning_rate_schedule)


def _no_name(cls, name):
    raise ValueError(f"A learning rate schedule needs its arguments: pass a "
                     f"{name} instance or a config dict, not the name {name!r}")


def deserialize(config):
    """The schedule of a ``serialize`` dict (or Keras's, which adds module
    and registered_name); an instance passes through."""
    return _registry.resolve(config, "learning rate schedule", LearningRateSchedule,
                             _NAMES, make=_no_name)
