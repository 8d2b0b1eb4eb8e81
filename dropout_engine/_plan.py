"""How a Sequential's layers fuse into the C engine's layers.

The engine runs ``[input dropout] (Dense act [dropout])*``.  Rules:
  - Dropouts before the first Dense become the input dropout;
  - an Activation after a linear Dense becomes that Dense's activation
    (a 'linear' Activation is a no-op anywhere);
  - an Activation after a Dropout is folded into the Dense before it when
    it commutes with dropout: 'relu' (relu(s*m*x) = s*m*relu(x)) on a
    linear or relu Dense;
  - stacked Dropouts combine into one with keep probability the product
    (the same distribution of masks), when their scaling rules agree;
  - a GaussianDropout or AlphaDropout (``noise`` != 0) is a dropout site of
    its own kind: after a Dense, alone, with no Activation after it.
Anything else (two non-linear activations in a row, an activation on the
raw input, ...) is refused with a message naming the layer.
"""
from ._net import Net
from .layers import ACTIVATIONS, Activation, Dense, Dropout

RELU, SIGMOID, SOFTMAX = ACTIVATIONS["relu"], ACTIVATIONS["sigmoid"], ACTIVATIONS["softmax"]


class _Drop:
    """A dropout site: combined rate, scaling rule and seed."""

    def __init__(self):
        self.rate, self.inverted, self.seed, self.owner = 0.0, True, 0, None
        self.noise = 0

    def add(self, layer, first):
        noise = getattr(layer, "noise", 0)
        if noise and first:
            raise ValueError(f"Layer '{layer.name}': {type(layer).__name__} before "
                             "the first Dense layer is not supported")
        if (noise or self.noise) and self.owner is not None:
            raise ValueError(f"Layer '{layer.name}': {type(layer).__name__} cannot "
                             f"be stacked with '{self.owner.name}' after the same "
                             "Dense layer")
        self.noise = noise
        if self.owner is not None and self.inverted != (layer.scaling == "inverted"):
            raise ValueError(f"Layer '{layer.name}': stacked Dropout layers must use "
                             f"the same scaling as '{self.owner.name}'")
        if self.owner is None:
            self.seed, self.owner = layer._seed, layer
        self.inverted = layer.scaling == "inverted"
        self.rate = 1.0 - (1.0 - self.rate) * (1.0 - layer.rate)


class Plan:
    """input_drop: _Drop; stages: list of (Dense, act code, _Drop)."""

    def __init__(self, layers):
        self.input_drop = _Drop()
        self.stages = []
        for layer in layers:
            if isinstance(layer, Dense):
                self.stages.append([layer, ACTIVATIONS[layer.activation], _Drop()])
            elif isinstance(layer, Dropout):
                (self.stages[-1][2] if self.stages else self.input_drop).add(
                    layer, not self.stages)
            elif isinstance(layer, Activation):
                self._activation(layer)
            else:
                raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is "
                                "not supported in a Sequential model")
        if not self.stages:
            raise ValueError("The model needs at least one Dense layer")

    def _activation(self, layer):
        act = ACTIVATIONS[layer.activation]
        if act == 0:
            return
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': an Activation before the first "
                             "Dense layer is not supported")
        stage = self.stages[-1]
        if stage[2].rate == 0.0 and stage[1] == 0:
            stage[1] = act
        elif stage[2].rate > 0.0 and not stage[2].noise and act == RELU \
                and stage[1] in (0, RELU):
            stage[1] = RELU
        else:
            raise ValueError(
                f"Layer '{layer.name}': Activation('{layer.activation}') cannot be "
                f"fused after layer '{stage[0].name}' "
                f"(activation {stage[0].activation!r}"
                f"{', then Dropout' if stage[2].rate else ''}); give the Dense "
                "layer the activation instead")

    @property
    def out_act(self):
        return self.stages[-1][1]

    @property
    def out_dropout(self):
        return self.stages[-1][2].rate > 0.0

    def net(self, n_in):
        """The C network (a ``_net.Net``) over the layers' (built) weights."""
        d = self.input_drop
        return Net(n_in, d.rate, d.inverted, d.seed, [
            {"w": None if dense._int8 else dense.kernel, "int8": dense._int8,
             "n_in": dense.input_dim, "n_out": dense.units,
             "b": dense.bias, "act": act, "rate": drop.rate,
             "inverted": drop.inverted, "seed": drop.seed, "noise": drop.noise}
            for dense, act, drop in self.stages])

    @property
    def quantized(self):
        return any(dense._int8 is not None for dense, _, _ in self.stages)

    def params(self, slots):
        """The C param descriptions: kernel then bias of each Dense, with the
        optimizer's state arrays ``slots`` (one list per weight; only
        consulted for training, which a quantized model refuses)."""
        out = []
        for dense, _, _ in self.stages:
            # A quantized kernel is not a float param (Keras's int8 kernel
            # has no regularizer either); such a net is never trained.
            pairs = [] if dense._int8 else [
                (dense.kernel, dense.kernel_regularizer, dense.kernel_constraint)]
            if dense.use_bias:
                pairs.append((dense.bias, dense.bias_regularizer, dense.bias_constraint))
            for w, reg, con in pairs:
                kind, max_value, axis = con._c if con is not None else (0, 0.0, 0)
                out.append({"w": w, "slots": slots[len(out)] if slots else [],
                            "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0,
                            "constraint": kind, "max_value": max_value, "axis": axis})
        return out
