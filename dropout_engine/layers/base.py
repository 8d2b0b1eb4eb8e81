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
from . import symbolic

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
    is inference.  Called on a KerasTensor (``Input`` or another layer's
    output) it records the call for the functional API instead."""
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
        from .. import mixed_precision
        try:   # Keras's: the global policy when None, taken now
            self._dtype_policy = mixed_precision.policy_of(dtype)
        except (TypeError, ValueError) as e:
            raise type(e)(f"Layer '{self.name}': {e}") from None
        if not trainable:
            raise NotImplementedError(f"Layer '{self.name}': trainable=False is not supported")
        if input_dim is not None:
            input_shape = (input_dim,)
        self._input_shape = (None if input_shape is None
                             else _shape(input_shape, f"Layer '{self.name}'"))
        self.input_dim = None   # set by build
        self._owners = weakref.WeakSet()   # the models holding this layer
        self._inbound_nodes = []           # its calls on KerasTensors

    @property
    def _input_dim(self):
        """The model input width (values per sample) an ``input_shape=``
        argument gave, or None."""
        return None if self._input_shape is None else math.prod(self._input_shape)

    def build(self, input_dim):
        self.input_dim = input_dim

    @property
    def dtype_policy(self):
        """The layer's DTypePolicy (mixed_precision): float32, or
        mixed_bfloat16 (a Dense's GEMMs in bfloat16)."""
        return self._dtype_policy

    @property
    def compute_dtype(self):
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self):
        return self._dtype_policy.variable_dtype

    @property
    def built(self):
        return self.input_dim is not None

    def output_dim(self, input_dim):
        return input_dim

    def __call__(self, inputs, training=None, mask=None):
        where = f"Layer '{self.name}'"
        if mask is not None:
            raise NotImplementedError(f"{where}: masks are not supported (mask=None)")
        if symbolic.is_symbolic(inputs):
            return self._symbolic_call(inputs, training)
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
        """The number of weight values (Keras's: a ValueError before build)."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', "
                             "but the layer isn't built. You can build it manually "
                             "via: `layer.build(input_shape)`.")
        return sum(w.size for w in self.weights)

    def get_weights(self):
        """Copies of the layer's weights (Keras order; [] before build)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Copy ``weights`` (a list of arrays, Keras order) into the layer's,
        in place, so every model holding the layer predicts with them; all
        shapes and values are checked first (Keras's errors)."""
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(f"You called `set_weights(weights)` on layer '{self.name}' "
                             f"with a weight list of length {len(weights)}, but the "
                             f"layer was expecting {len(own)} weights.")
        values = _validation.weight_values(own, weights, f"Layer '{self.name}'")
        assign_weights([self], own, values)

    # ------------------------------------------------- the functional API
    def _symbolic_call(self, inputs, training):
        """Call the layer on a KerasTensor (``keras.Input`` or another
        layer's output; a merge layer on a list of them): builds it for the
        input's width and returns the KerasTensor of its output."""
        if training:
            raise NotImplementedError(
                f"Layer '{self.name}': training=True in a model graph is not "
                "supported (dropout is active in fit; predict(mc_samples=...) "
                "keeps it active at inference)")
        if self._inbound_nodes:
            raise NotImplementedError(
                f"Layer '{self.name}' is already called on a tensor: shared layers "
                "(one layer called twice, its weights used in two places) are not "
                "supported; create another layer")
        merge = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if merge else [inputs]
        shape = self._call_shape([tuple(t.shape[1:]) for t in tensors], merge)
        return symbolic.record(self, tensors, shape, merge=merge)

    def _call_shape(self, shapes, merge):
        """Build for the inputs' per-sample ``shapes``; the output's."""
        if merge:
            raise TypeError(f"Layer '{self.name}' takes one tensor, got a list of "
                            f"{len(shapes)}")
        shape = shapes[0]
        if self._input_shape is not None and not self.built \
                and self._input_shape != shape:
            raise ValueError(f"Layer '{self.name}' expected input shape "
                             f"{_show(self._input_shape)}, got {_show(shape)}")
        self._build_for(shape)
        return self._output_shape(shape)

    @property
    def output(self):
        """The KerasTensor the layer's call returned (Keras's)."""
        return self._node("output").outputs[0]

    @property
    def input(self):
        """The KerasTensor(s) the layer was called on (Keras's)."""
        node = self._node("input")
        return list(node.input_tensors) if node.merge else node.input_tensors[0]

    def _node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"The layer {self.name} has never been called and "
                                 f"thus has no defined {what}.")
        return self._inbound_nodes[0]

    def get_config(self):
        c = {"name": self.name}
        if self._dtype_policy.name != "float32":
            c["dtype"] = self._dtype_policy.name
        if self._input_shape is not None:
            c["input_shape"] = list(self._input_shape)
        return c

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def assign_weights(layers, own, values):
    """Copy checked ``values`` into the arrays ``own`` (the weights of
    ``layers``) in place, then refresh their quantized kernels (the
    engine's packed int8 copy, the bf16 rounding)."""
    _net.write_weights(own, values)
    for layer in layers:
        q = getattr(layer, "_quantized_kernel", None)
        if q is not None:
            q.repack()
