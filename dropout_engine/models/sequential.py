"""Sequential: a linear stack of layers (Keras 3's ``keras.Sequential``),
a ``Model`` whose layers fuse into the C engine's chain of layers (see
``_plan``)."""
from .. import layers as layers_mod
from .._plan import Plan
from .base import Model


class Sequential(Model):
    """A linear stack of layers (Keras 3's Sequential).

    Args:
        layers: optional list of layers; ``Input(shape)`` first, or
            ``input_shape=`` on the first layer, fixes the input width
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
            self._n_in = layer._input_dim
            self._input_layer = layer
            return
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        if any(l is layer for l in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in the model")
        if not self._layers and layer._input_dim is not None and self._n_in is None:
            self._n_in = layer._input_dim
        self._layers.append(layer)
        layer._owners.add(self)
        if self._n_in is None or not any(isinstance(l, layers_mod.Dense)
                                         for l in self._layers):
            return
        # Build now, as Keras does once the input shape is known; a layer
        # that cannot be built or fused leaves the model as it was.
        old = self._plan, self._net
        try:
            self._net = None
            self.build()
        except BaseException:
            self._layers.pop()
            layer._owners.discard(self)
            self._plan, self._net = old
            raise

    @property
    def inputs(self):
        """[the input KerasTensor], once the input width is known (Keras's
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
        key = (self._n_in, self._n_out)
        if getattr(self, "_end_tensors", (None,))[0] != key:
            given = getattr(self, "_input_layer", None)
            x = given.output if given is not None and given._input_dim == self._n_in \
                else layers_mod.Input((self._n_in,))
            self._end_tensors = (key, x,
                                 layers_mod.KerasTensor((None, self._n_out), None))
        return self._end_tensors[1:]

    def _shape_texts(self):
        out, dim = {}, self._n_in
        for layer in self._layers:
            dim = None if dim is None else layer.output_dim(dim)
            out[id(layer)] = "?" if dim is None else f"(None, {dim})"
        return out

    def build(self, input_shape=None):
        """Create the weights for ``input_shape`` ((features,) or (None, features))."""
        if self._net is not None:
            return
        if input_shape is not None:
            n_in = layers_mod._shape_dim(input_shape, f"Model '{self.name}'")
            if self._n_in is not None and n_in != self._n_in:
                raise ValueError(f"Model '{self.name}' expects {self._n_in} input "
                                 f"features, build() got {n_in}")
            self._n_in = n_in
        if self._n_in is None:
            raise ValueError(f"Model '{self.name}' has no input shape yet: add "
                             "Input(shape) or call fit/predict first")
        plan = Plan(self._layers)
        dim = self._n_in
        for layer in self._layers:
            if not layer.built:
                layer.build(dim)
            elif layer.input_dim != dim:
                raise ValueError(f"Layer '{layer.name}' expected input shape "
                                 f"(None, {layer.input_dim}), got (None, {dim})")
            dim = layer.output_dim(dim)
        self._plan = plan
        self._make_net()
        if self.optimizer is not None:
            self.optimizer.build(self.weights)

    def _replan(self):
        self._net = None
        self.build()

    # -------------------------------------------------------------- config
    def get_config(self):
        layers = [layers_mod.serialize(l) for l in self._layers]
        if self._n_in is not None:
            layers.insert(0, {"class_name": "InputLayer",
                              "config": {"name": "input_layer", "shape": [self._n_in]}})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("Sequential config must be a dict with a 'layers' list")
        return cls([layers_mod.deserialize(c, f"layers[{i}]")
                    for i, c in enumerate(config["layers"])], name=config.get("name"))
