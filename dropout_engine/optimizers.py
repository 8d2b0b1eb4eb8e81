"""Optimizers with Keras 3's update rules and defaults, run by the C loop.

SGD, Adam, AdamW and RMSprop; the formulas are in ``_csrc/nn/optim.c``.  With
a constant learning rate, SGD (with or without momentum/Nesterov) and Adam
give PyTorch's updates to float rounding (Adam with Keras's epsilon
placement, eps added to sqrt(v) after bias correction of the step size).
``weight_decay`` is Keras's decoupled rule ``w -= lr * weight_decay * w``
before each update (AdamW's default 0.004).

Learning-rate schedules (``optimizers.schedules``, Keras 3's) run inside
the C loop; a ``LearningRateSchedule`` of your own is evaluated in Python,
which makes fit run one batch per C call.

The optimizer owns its state arrays (float32, one list per model weight, in
the model's weight order) and its iteration count, which also keys the
dropout masks.
"""
import numpy as np

from . import _validation, _registry, schedules
from .schedules import LearningRateSchedule
from .schedules import ExponentialDecay  # noqa: F401 (this module's name before schedules.py)

SGD_KIND, ADAM_KIND, RMSPROP_KIND = range(3)


def _positive(name, v):
    return _validation.real(name, v, strict=True)


def _unit(name, v, closed=True):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    v = float(v)
    if not (0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1{']' if closed else ')'}, got {v}")
    return v


class Optimizer:
    """Base class.  Subclasses set ``_kind``, ``_n_slots`` and ``_hyper``."""
    _kind = None
    _n_slots = 0
    # True: the C loop updates Dense kernels in a pass after the backward,
    # not in their weight-gradient GEMMs: the same bits (tests compare them).
    _unfused_update = False

    def __init__(self, learning_rate, weight_decay=None, name=None, **kwargs):
        unsupported = {k: v for k, v in kwargs.items() if v is not None
                       and not (k in ("use_ema", "loss_scale_factor") and not v)}
        if unsupported:
            raise NotImplementedError(f"{type(self).__name__}: argument(s) "
                                      f"{sorted(unsupported)} are not supported")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = (None if weight_decay is None
                             else _unit("weight_decay", weight_decay))
        self._iterations = np.zeros(1, np.int64)
        self._slots = None
        self._set_lr(learning_rate)

    def _set_lr(self, value):
        if isinstance(value, LearningRateSchedule):
            self._schedule, self._lr = value, None
        else:
            self._schedule, self._lr = None, _positive("learning_rate", value)

    @property
    def learning_rate(self):
        """The current learning rate (a float; the schedule's value at the
        current iteration when there is one).  Settable to a float."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        if self._schedule is not None and not isinstance(value, LearningRateSchedule):
            raise TypeError("This optimizer was created with a learning rate "
                            "schedule; its learning rate cannot be set to a float")
        self._set_lr(float(value) if isinstance(value, np.generic) else value)

    @property
    def iterations(self):
        return int(self._iterations[0])

    @iterations.setter
    def iterations(self, value):
        self._iterations[0] = int(value)

    def build(self, weights):
        """Zeroed state for the given weight arrays (called by the model)."""
        self._slots = [[np.zeros_like(w) for _ in range(self._n_slots)]
                       for w in weights]

    def _per_batch_lr(self):
        """True when the schedule runs in Python (one batch per C call)."""
        return self._schedule is not None and self._schedule._c_config() is None

    def _c_config(self):
        """The de_optim_t fields for the next C call: the schedule's
        parameters (C evaluates it per batch), or the rate of this batch."""
        c = dict(self._hyper(), kind=self._kind,
                 weight_decay=self.weight_decay or 0.0,
                 unfused=self._unfused_update)
        s = None if self._schedule is None else self._schedule._c_config()
        if s is not None:
            c["schedule"] = s
        else:
            c["lr"] = self.learning_rate
        return c

    def get_config(self):
        lr = self._lr if self._schedule is None else schedules.serialize(self._schedule)
        return dict(self._hyper(), name=self.name, learning_rate=lr,
                    weight_decay=self.weight_decay)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr)
        return cls(**config)

    def variables(self):
        """The state arrays, flattened in weight order (not copies)."""
        return [s for slots in (self._slots or []) for s in slots]


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras's form:
    ``m = momentum * m - lr * g; w += m``."""
    _kind = SGD_KIND

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False,
                 weight_decay=None, name="SGD", **kwargs):
        self.momentum = _unit("momentum", momentum)
        self.nesterov = bool(nesterov)
        self._n_slots = 1 if self.momentum else 0
        super().__init__(learning_rate, weight_decay, name, **kwargs)

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    _kind = ADAM_KIND
    _n_slots = 2

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, weight_decay=None, name="adam",
                 **kwargs):
        if amsgrad:
            raise NotImplementedError("Adam(amsgrad=True) is not supported")
        self.beta_1 = _unit("beta_1", beta_1, closed=False)
        self.beta_2 = _unit("beta_2", beta_2, closed=False)
        self.epsilon = float(epsilon)
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        super().__init__(learning_rate, weight_decay, name, **kwargs)

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default 0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adamw",
                 **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay, name, **kwargs)


class RMSprop(Optimizer):
    _kind = RMSPROP_KIND
    _n_slots = 3

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0,
                 epsilon=1e-7, centered=False, weight_decay=None,
                 name="rmsprop", **kwargs):
        self.rho = _unit("rho", rho)
        self.momentum = _unit("momentum", momentum)
        self.epsilon = float(epsilon)
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.centered = bool(centered)
        super().__init__(learning_rate, weight_decay, name, **kwargs)

    def _hyper(self):
        return {"rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


serialize = _registry.serialize


def get(identifier):
    """An Optimizer from a name ('adam'), a config dict or an instance."""
    return _registry.resolve(identifier, "optimizer", Optimizer, _NAMES,
                             fold_case=True)
