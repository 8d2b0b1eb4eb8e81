"""Sequential: a linear stack of layers (Keras 3's ``keras.Sequential``),
a ``Model`` whose layers fuse into the C engine's chain of layers (see
``_plan``)."""
from .. import layers as layers_mod
from .._plan import Plan
from ..layers.base import _shape, _show
from .base import Model


class Sequential(Model):
    """A linear stack of layers (Keras 3's Sequential).

    Args:
        layers: optional list of layers; ``Input(shape)`` first, or
            ``input_shape=`` on the first layer, fixes the shape of a
            sample, (features,), (28, 28), (steps,) token ids, ...
            (otherwise the first fit/predict does).
        name: optional model name.
    """
    _kind = _default_name = "sequential"

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._layers = []
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------ structure
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (an ``Input`` only as the first)."""
        if isinstance(layer, layers_mod.KerasTensor):      # what Input() returns
            origin = layer._keras_history.operation
            if not isinstance(origin, layers_mod.InputLayer):
                raise TypeError("Sequential.add expects a layer or keras.Input(...), "
                                f"got the output of layer '{origin.name}'")
            layer = origin
        if isinstance(layer, layers_mod.InputLayer):
            if self._layers:
                raise ValueError(f"Input '{layer.name}' can only come first")
            self._input_shape = layer._input_shape
            self._input_dtype = None if layer.dtype == "float32" else layer.dtype
            self._input_layer = layer
            return
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        if any(l is layer for l in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in the model")
        if not self._layers and layer._input_shape is not None \
                and self._input_shape is None:
            self._input_shape = layer._input_shape
        self._layers.append(layer)
        layer._owners.add(self)
        # Build now, as Keras does once the input shape is known (and the
        # stack so far ends in one vector per sample); a layer that cannot
        # be built or fused leaves the model as it was.
        old = self._plan, self._net
        try:
            if self._input_shape is None or not any(
                    isinstance(l, layers_mod.Dense) for l in self._layers) \
                    or len(self._shapes()[-1]) != 1:
                return
            self._net = None
            self.build()
        except BaseException:
            self._layers.pop()
            layer._owners.discard(self)
            self._plan, self._net = old
            raise

    @property
    def inputs(self):
        """[the input KerasTensor], once the input shape is known (Keras's
        AttributeError before)."""
        return [self._ends()[0]]

    @property
    def outputs(self):
        return [self._ends()[1]]

    @property
    def input(self):
        return self._ends()[0]

    @property
    def output(self):
        return self._ends()[1]

    def _ends(self):
        if not self.built:
            raise AttributeError(f"Sequential model '{self.name}' has no defined "
                                 "inputs yet.")
        key = (self._input_shape, self._n_out)
        if getattr(self, "_end_tensors", (None,))[0] != key:
            given = getattr(self, "_input_layer", None)
            x = given.output if given is not None \
                and given._input_shape == self._input_shape \
                else layers_mod.Input(self._input_shape,
                                      dtype=self._input_dtype or "float32")
            self._end_tensors = (key, x,
                                 layers_mod.KerasTensor((None, self._n_out), None))
        return self._end_tensors[1:]

    def _shape_texts(self):
        try:
            shapes = self._shapes() if self._input_shape is not None else None
        except ValueError:
            shapes = None
        return {id(layer): _show(shapes[i]) if shapes else "?"
                for i, layer in enumerate(self._layers)}

    def build(self, input_shape=None):
        """Create the weights for ``input_shape``, Keras's: the batch axis
        first ((None, 784), (None, 28, 28)); (features,) also means one
        sample's."""
        if self._net is not None:
            return
        if input_shape is not None:
            t = tuple(input_shape) if not isinstance(input_shape, int) else (input_shape,)
            shape = _shape(t if len(t) == 1 else t[1:], f"Model '{self.name}'")
            if self._input_shape is not None and shape != self._input_shape:
                raise ValueError(f"Model '{self.name}' expects input shape "
                                 f"{_show(self._input_shape)}, build() "
                                 f"got {_show(shape)}")
            self._input_shape = shape
        if self._input_shape is None:
            raise ValueError(f"Model '{self.name}' has no input shape yet: add "
                             "Input(shape) or call fit/predict first")
        plan = Plan(self._layers, self._input_shape)
        shape = self._input_shape
        for layer in self._layers:
            layer._build_for(shape)
            shape = layer._output_shape(shape)
        self._plan = plan
        self._make_net()
        if self.optimizer is not None:
            self.optimizer.build(self.weights)

    def _shapes(self):
        """Each layer's per-sample output shape (raises for a layer that
        cannot take its input's)."""
        out, shape = [], self._input_shape
        for layer in self._layers:
            shape = layer._output_shape(shape)
            out.append(shape)
        return out

    def _replan(self):
        self._net = None
        self.build()

    # -------------------------------------------------------------- config
    def get_config(self):
        layers = [layers_mod.serialize(l) for l in self._layers]
        if self._input_shape is not None:
            c = {"name": "input_layer", "shape": list(self._input_shape)}
            if self._input_dtype:
                c["dtype"] = self._input_dtype
            layers.insert(0, {"class_name": "InputLayer", "config": c})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("Sequential config must be a dict with a 'layers' list")
        return cls([layers_mod.deserialize(c, f"layers[{i}]")
                    for i, c in enumerate(config["layers"])], name=config.get("name"))
