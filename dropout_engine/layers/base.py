"""The Layer base class and the helpers every layer module shares: unique
default names, input-shape parsing.

Shapes are per sample, as Keras's ``Input(shape)``: (features,), (steps,
features), (28, 28), ...; a layer maps its input's to its output's with
``_output_shape`` and is built for it with ``_build_for``.  The default is
a layer acting on the last axis (Dense, the activations, the dropout
family), as Keras's Dense acts on the last axis of [batch, steps,
features].
"""
import math
import weakref

import numpy as np

from .. import _net, _validation

_counters = {}


def _unique_name(base):
    n = _counters.get(base, 0)
    _counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


MAX_INPUT = 1 << 31     # floats per sample a model may take


def _shape(shape, where):
    """A per-sample shape (Keras's ``Input(shape)``): a tuple of positive
    ints, e.g. (784,), (28, 28), (steps, features); an int n is (n,)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{where}: expected a shape tuple such as (784,) or "
                        f"(28, 28), got {shape!r}") from None
    if not shape:
        raise ValueError(f"{where}: expected a shape with at least one axis, got ()")
    if None in shape:
        raise ValueError(f"{where}: variable-length axes (None) are not supported; "
                         f"give every axis its length, got {shape}")
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0
           for d in shape):
        raise ValueError(f"{where}: expected a shape of positive ints, got {shape}")
    shape = tuple(int(d) for d in shape)
    if math.prod(shape) > MAX_INPUT:
        raise ValueError(f"{where}: a sample of shape {shape} has more than "
                         f"{MAX_INPUT} values")
    return shape


def _show(shape):
    """(None, *shape) as Keras prints a batch shape."""
    return "(None, " + ", ".join(str(d) for d in shape) + ")"


def _channels_last(data_format, where, why):
    """Keras's data_format argument: None or "channels_last" (what we run);
    "channels_first" is refused saying ``why``."""
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"{where}: data_format must be 'channels_last' or "
                         f"'channels_first', got {data_format!r}")
    if data_format == "channels_first":
        raise NotImplementedError(f"{where}: data_format='channels_first' is not "
                                  f"supported ({why})")
    return "channels_last"


def _shape_dim(shape, where):
    """The feature count of an input shape like (5,) or (None, 5)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if len(shape) == 2 and shape[0] is None:
        shape = shape[1:]
    if len(shape) != 1 or not isinstance(shape[0], (int, np.integer)) or shape[0] <= 0:
        raise ValueError(f"{where}: expected an input shape (features,) with "
                         f"features > 0, got {shape}")
    return int(shape[0])


class Layer:
    """Base class.  ``name`` defaults to the snake-case class name made
    unique ('dense', 'dense_1', ...).

    Calling a layer on an array, ``Dense(4)(x)`` or ``Dropout(0.5)(x,
    training=True)``, computes it there and then with the engine's C
    kernels (``ops``, ``activations``) and returns a float32 numpy array,
    as Keras's eager call does: a layer with weights is built from x's
    last axis on its first call (and then expects that width); a Dropout
    draws fresh masks at each training call.  ``training`` None or False
    is inference."""
    _base = "layer"
    # How a call reads its inputs: at least _min_ndim axes (exactly _ndim
    # when set), the last one the features; _has_weights: the call builds
    # the layer and pins its input width.
    _min_ndim, _ndim, _has_weights = 0, None, False

    def __init__(self, name=None, input_shape=None, input_dim=None, dtype=None,
                 trainable=True):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or _unique_name(self._base)
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"Layer '{self.name}': only float32 is supported, got dtype={dtype!r}")
        if not trainable:
            raise NotImplementedError(f"Layer '{self.name}': trainable=False is not supported")
        if input_dim is not None:
            input_shape = (input_dim,)
        self._input_shape = (None if input_shape is None
                             else _shape(input_shape, f"Layer '{self.name}'"))
        self.input_dim = None   # set by build
        self._owners = weakref.WeakSet()   # the models holding this layer

    @property
    def _input_dim(self):
        """The model input width (values per sample) an ``input_shape=``
        argument gave, or None."""
        return None if self._input_shape is None else math.prod(self._input_shape)

    def build(self, input_dim):
        self.input_dim = input_dim

    @property
    def built(self):
        return self.input_dim is not None

    def output_dim(self, input_dim):
        return input_dim

    def __call__(self, inputs, training=None, mask=None):
        where = f"Layer '{self.name}'"
        if mask is not None:
            raise NotImplementedError(f"{where}: masks are not supported (mask=None)")
        training = False if training is None else _validation.flag("training", training)
        n_in = (self.input_dim if self.built else self._input_dim) \
            if self._has_weights else None
        x = _validation.layer_inputs(inputs, where, n_in=n_in, ndim=self._ndim,
                                     min_ndim=self._min_ndim)
        if self._has_weights and not self.built:
            self.build(x.shape[-1])
        return self._call(x, training)

    def _call(self, x, training):
        """The layer on validated float32 ``x`` (a new array)."""
        raise NotImplementedError(f"Layer '{self.name}': a {type(self).__name__} "
                                  "cannot be called on an array")
    def _output_shape(self, shape):
        """The per-sample output shape for input ``shape`` (this default:
        the last axis maps through ``output_dim``); ValueError when the
        layer cannot take it."""
        return shape[:-1] + (self.output_dim(shape[-1]),)

    def _build_for(self, shape):
        """Build for per-sample input ``shape``, or check that a built layer
        takes it."""
        if not self.built:
            self.build(shape[-1])
        elif self.input_dim != shape[-1]:
            want = shape[:-1] + (self.input_dim,)
            raise ValueError(f"Layer '{self.name}' expected input shape "
                             f"{_show(want)}, got {_show(shape)}")

    @property
    def weights(self):
        return []

    @property
    def non_trainable_weights(self):
        """The weights the optimizer never updates (BN's moving statistics,
        an int8 kernel and its scale)."""
        return []

    @property
    def trainable_weights(self):
        fixed = {id(w) for w in self.non_trainable_weights}
        return [w for w in self.weights if id(w) not in fixed]

    def count_params(self):
        return sum(w.size for w in self.weights)

    def get_weights(self):
        """Copies of ``weights`` (Keras's)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Copy ``weights`` (the order of ``weights``) in, shapes checked
        first (Keras's); the way to change a layer's read-only arrays."""
        own = self.weights
        _net.write_weights(own, _validation.weight_values(
            own, weights, f"Layer '{self.name}'"))
        q = getattr(self, "_quantized_kernel", None)
        if q is not None:      # its packed copy (int8) or bf16 rounding
            q.repack()

    def get_config(self):
        c = {"name": self.name}
        if self._input_shape is not None:
            c["input_shape"] = list(self._input_shape)
        return c

    @classmethod
    def from_config(cls, config):
        return cls(**config)
