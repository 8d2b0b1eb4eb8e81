"""The Layer base class and the helpers every layer module shares: unique
default names, input-shape parsing."""
import weakref

import numpy as np

from .. import _validation
from . import symbolic

_counters = {}


def _unique_name(base):
    n = _counters.get(base, 0)
    _counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


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
    unique ('dense', 'dense_1', ...)."""
    _base = "layer"

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
        self._input_dim = (None if input_shape is None
                           else _shape_dim(input_shape, f"Layer '{self.name}'"))
        self.input_dim = None   # set by build
        self._owners = weakref.WeakSet()   # the models holding this layer
        self._inbound_nodes = []           # its calls on KerasTensors

    def build(self, input_dim):
        self.input_dim = input_dim

    @property
    def built(self):
        return self.input_dim is not None

    def output_dim(self, input_dim):
        return input_dim

    @property
    def weights(self):
        return []

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
    def __call__(self, inputs, *args, **kwargs):
        """Call the layer on a KerasTensor (``keras.Input`` or another
        layer's output; a merge layer on a list of them): builds it for the
        input's width and returns the KerasTensor of its output.  Layers
        compute inside models only, so arrays are refused."""
        training = kwargs.pop("training", None)
        if args or kwargs:
            raise TypeError(f"Layer '{self.name}' got unexpected arguments: "
                            f"{list(args) + sorted(kwargs)}")
        if training:
            raise NotImplementedError(
                f"Layer '{self.name}': training=True in a model graph is not "
                "supported (dropout is active in fit; predict(mc_samples=...) "
                "keeps it active at inference)")
        if not symbolic.is_symbolic(inputs):
            raise TypeError(
                f"Layer '{self.name}' can only be called on a KerasTensor here "
                f"(keras.Input(shape) or another layer's output), got "
                f"{type(inputs).__name__}: dropout_engine computes inside models; "
                "build one (Model(inputs, outputs) or Sequential) and call predict")
        if self._inbound_nodes:
            raise NotImplementedError(
                f"Layer '{self.name}' is already called on a tensor: shared layers "
                "(one layer called twice, its weights used in two places) are not "
                "supported; create another layer")
        merge = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if merge else [inputs]
        width = self._call_width([t.shape[-1] for t in tensors], merge)
        return symbolic.record(self, tensors, width, merge=merge)

    def _call_width(self, dims, merge):
        """Build for the inputs' widths ``dims``; the output's width."""
        if merge:
            raise TypeError(f"Layer '{self.name}' takes one tensor, got a list of "
                            f"{len(dims)}")
        dim = dims[0]
        expected = self.input_dim if self.built else self._input_dim
        if expected is not None and dim != expected:
            raise ValueError(f"Layer '{self.name}' expected input shape (None, "
                             f"{expected}), got (None, {dim})")
        if not self.built:
            self.build(dim)
        return self.output_dim(dim)

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
        if self._input_dim is not None:
            c["input_shape"] = [self._input_dim]
        return c

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def assign_weights(layers, own, values):
    """Copy checked ``values`` into the arrays ``own`` (the weights of
    ``layers``) in place, then repack the engine's copy of int8 kernels."""
    for w, v in zip(own, values):
        np.copyto(w, v, casting="unsafe")
    for layer in layers:
        if getattr(layer, "_int8", None) is not None:
            layer._int8.repack()
