"""keras.activations: the activation functions on numpy arrays, computed by
the engine's C element-wise kernels, and the activations Dense fuses.

    >>> import numpy as np
    >>> from dropout_engine import activations
    >>> activations.relu(np.array([-1.0, 2.0]))
    array([0., 2.], dtype=float32)
    >>> Dense(8, activation=activations.relu)   # fuses as activation="relu"

Each function takes an array-like of real numbers of any shape (converted
to float32 once) and returns a new float32 array of that shape.  Keras 3's
definitions and defaults: ``relu(x, negative_slope=0.0, max_value=None,
threshold=0.0)``, ``leaky_relu(x, negative_slope=0.2)``, ``relu6``,
``elu(x, alpha=1.0)``, ``selu``, ``gelu(x, approximate=False)`` (the erf
form; ``approximate=True``, the tanh form, runs in numpy), ``sigmoid``,
``hard_sigmoid`` = relu6(x + 3) / 6, ``silu`` (alias ``swish``) = x *
sigmoid(x), ``softplus`` = log(1 + e^x), ``tanh``, ``softmax(x, axis=-1)``,
``linear``.  The transcendental ones are evaluated in double and rounded
once (within about half an ulp of the exact value).

NaN in gives NaN out, for every function and every layer that uses it
(Keras's behaviour; the C kernels are written so that no comparison drops
a NaN).  +-Inf give the IEEE value of the formula: relu(-inf) = 0,
sigmoid(+-inf) = 1 / 0, but gelu(-inf) and silu(-inf) are NaN (-inf * 0),
as in Keras.

``get``/``serialize``/``deserialize`` are Keras's: an identifier is a name
('relu', 'swish'), None (linear), one of these functions, or
``{"class_name": "function", "config": name}``.  Parameterised forms
(``relu(x, negative_slope=0.1)``) are the layers ``ReLU``, ``LeakyReLU``,
``ELU`` inside a model: a Dense takes a name or a function at its defaults.
"""
import math
from typing import NamedTuple

import numpy as np

from . import _validation as chk
from . import _engine

# The C kinds (engine.h): NAMES[k] is kind k.
NAMES = ("linear", "relu", "tanh", "sigmoid", "elu", "selu", "gelu", "softmax",
         "leaky_relu", "relu6", "silu", "softplus", "hard_sigmoid")
(LINEAR, RELU, TANH, SIGMOID, ELU, SELU, GELU, SOFTMAX, LEAKY_RELU, RELU6,
 SILU, SOFTPLUS, HARD_SIGMOID) = range(len(NAMES))
RELU_X, PRELU = len(NAMES), len(NAMES) + 1   # reached only through layers
ALIASES = {"swish": "silu"}


class Act(NamedTuple):
    """An activation as the C engine runs it (de_act_t): kind and
    parameters, plus the PReLU layer whose ``alpha`` are the slopes."""
    kind: int
    alpha: float = 0.0
    max_value: float = math.inf
    threshold: float = 0.0
    prelu: object = None

    @property
    def c(self):
        """The binding's (kind, alpha, max_value, threshold)."""
        return (self.kind, self.alpha, self.max_value, self.threshold)

    @property
    def commutes_with_dropout(self):
        """f(s * m * x) = s * m * f(x) for s > 0, m in {0, 1}: an
        activation that may come after a Dropout and still fuse."""
        return self.kind in (RELU, LEAKY_RELU, PRELU) or (
            self.kind == RELU_X and self.threshold == 0.0
            and self.max_value == math.inf)


def named(name):
    """The Act of a canonical name, with Keras's defaults (the C ones)."""
    return Act(*_engine.act_defaults(NAMES.index(name)))


def _choices():
    return sorted(NAMES + tuple(ALIASES))


def resolve(identifier, where):
    """The canonical name Dense/Activation store for ``activation=``: a
    name, an alias, one of this module's functions, or None (linear)."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = ALIASES.get(identifier, identifier)
        if name in NAMES:
            return name
        raise ValueError(f"{where}: unknown activation {identifier!r}; expected "
                         f"one of {_choices()}")
    name = _name_of(identifier)
    if name is not None:
        return name
    raise TypeError(f"{where}: activation must be a name (one of {_choices()}), "
                    "a dropout_engine.activations function or None, got "
                    f"{chk.describe(identifier)} (an arbitrary callable cannot run "
                    "inside the C layer)")


def kind(name, a):
    """ops' activation argument (any case, None = linear) -> its C kind."""
    if a is None:
        return LINEAR
    if not isinstance(a, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(NAMES)}; "
                        f"got {chk.describe(a)}")
    key = ALIASES.get(a.lower(), a.lower())
    if key not in NAMES:
        raise ValueError(f"unknown {name} {a!r}; expected one of {', '.join(NAMES)}")
    return NAMES.index(key)


def _number(where, what, v, lo=None):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) \
            or not math.isfinite(float(v)):
        raise TypeError(f"{where}: {what} must be a finite number, got "
                        f"{chk.describe(v)}")
    if lo is not None and float(v) < lo:
        raise ValueError(f"{where}: {what} must be >= {lo}, got {v!r}")
    return float(v)


def relu_act(negative_slope, max_value, threshold, where):
    """Keras's ReLU(max_value, negative_slope, threshold) as an Act (plain
    relu at the defaults); every argument a number >= 0 (max_value or
    None)."""
    slope = _number(where, "negative_slope", negative_slope, 0.0)
    thr = _number(where, "threshold", threshold, 0.0)
    mx = math.inf if max_value is None else _number(where, "max_value", max_value, 0.0)
    if slope == 0.0 and thr == 0.0 and mx == math.inf:
        return named("relu")
    return Act(RELU_X, slope, mx, thr)


def leaky_act(negative_slope, where):
    return Act(LEAKY_RELU, _number(where, "negative_slope", negative_slope, 0.0))


def elu_act(alpha, where):
    return Act(ELU, _number(where, "alpha", alpha))


# ------------------------------------------------------------- functions
def _array(x, where):
    """A new float32 C-contiguous copy of x (never x itself: the kernels
    work in place)."""
    x = chk.float32_array(f"{where}: x", x, contiguous=False)   # keeps 0-d
    return np.array(x, dtype=np.float32, order="C", copy=True)


def _apply(x, act, where):
    y = _array(x, where)
    if y.size:
        cols = y.shape[-1] if y.ndim else 1
        _engine.bias_act(y.reshape(y.size // cols, cols), None, act.c)
    return y


def linear(x):
    """x itself, as float32."""
    return _array(x, "linear")


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """max(x, 0); with arguments Keras's general form: x <= threshold gives
    negative_slope * (x - threshold), above it min(x, max_value)."""
    return _apply(x, relu_act(negative_slope, max_value, threshold, "relu"), "relu")


def leaky_relu(x, negative_slope=0.2):
    """x for x > 0, negative_slope * x otherwise."""
    return _apply(x, leaky_act(negative_slope, "leaky_relu"), "leaky_relu")


def relu6(x):
    """min(max(x, 0), 6)."""
    return _apply(x, named("relu6"), "relu6")


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (e^x - 1) otherwise."""
    return _apply(x, elu_act(alpha, "elu"), "elu")


def selu(x):
    """scale * elu(x, alpha) with Keras's constants."""
    return _apply(x, named("selu"), "selu")


def gelu(x, approximate=False):
    """x * Phi(x) (the erf form, in C); approximate=True: Keras's tanh
    form, computed in numpy (float64, rounded to float32)."""
    approximate = chk.flag("approximate", approximate)
    if not approximate:
        return _apply(x, named("gelu"), "gelu")
    z = _array(x, "gelu").astype(np.float64)
    c = math.sqrt(2.0 / math.pi)
    return (0.5 * z * (1.0 + np.tanh(c * (z + 0.044715 * z ** 3)))).astype(np.float32)


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return _apply(x, named("sigmoid"), "sigmoid")


def hard_sigmoid(x):
    """relu6(x + 3) / 6 (Keras 3's definition)."""
    return _apply(x, named("hard_sigmoid"), "hard_sigmoid")


def silu(x):
    """x * sigmoid(x) (also called swish)."""
    return _apply(x, named("silu"), "silu")


swish = silu


def softplus(x):
    """log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|)."""
    return _apply(x, named("softplus"), "softplus")


def tanh(x):
    """The hyperbolic tangent."""
    return _apply(x, named("tanh"), "tanh")


def softmax(x, axis=-1):
    """e^x / sum(e^x) along ``axis`` (max-subtracted); a NaN or +inf in a
    slice makes that slice NaN, as in Keras."""
    y = _array(x, "softmax")
    if y.ndim == 0:
        raise ValueError("softmax: x must have at least one axis, got a scalar")
    ax = chk.integer("softmax: axis", axis, "an int")
    if not -y.ndim <= ax < y.ndim:
        raise ValueError(f"softmax: axis {ax} is out of range for {y.ndim}-D x")
    if y.size == 0:
        return y
    last = np.ascontiguousarray(np.moveaxis(y, ax, -1))
    _engine.bias_act(last.reshape(-1, last.shape[-1]), None, SOFTMAX)
    return np.ascontiguousarray(np.moveaxis(last, -1, ax))


_FUNCTIONS = {"linear": linear, "relu": relu, "tanh": tanh, "sigmoid": sigmoid,
              "elu": elu, "selu": selu, "gelu": gelu, "softmax": softmax,
              "leaky_relu": leaky_relu, "relu6": relu6, "silu": silu,
              "softplus": softplus, "hard_sigmoid": hard_sigmoid}


def _name_of(fn):
    """The name of one of our functions, by identity (None otherwise; any
    object may come, hashable or not)."""
    return next((n for n, f in _FUNCTIONS.items() if f is fn), None)


# ------------------------------------------------- get / (de)serialize
def serialize(activation):
    """The name of one of this module's functions ('silu' for swish)."""
    name = _name_of(activation)
    if name is not None:
        return name
    raise ValueError(f"Unknown activation function {activation!r:.100} cannot be "
                     f"serialized; expected one of this module's functions "
                     f"({_choices()})")


def deserialize(config, custom_objects=None):
    """The function a name or {"class_name": "function", "config": name}
    stands for (custom_objects: name -> callable, looked up first)."""
    name = config
    if isinstance(config, dict) and config.get("class_name") == "function":
        name = config.get("config")
    if not isinstance(name, str):
        raise ValueError(f"Could not interpret activation function config {config!r:.100}; "
                         "expected a name or {'class_name': 'function', 'config': name}")
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    fn = _FUNCTIONS.get(ALIASES.get(name, name))
    if fn is None:
        raise ValueError(f"Unknown activation {name!r}; expected one of {_choices()}")
    return fn


def get(identifier):
    """A function from a name, a config dict, a callable (returned as is)
    or None (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: "
                     f"{identifier!r:.100}; expected a name (one of {_choices()}), "
                     "a config dict, a callable or None")


__all__ = sorted(_FUNCTIONS) + ["swish", "get", "serialize", "deserialize"]
