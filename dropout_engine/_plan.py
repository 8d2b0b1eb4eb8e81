"""How a Sequential's layers fuse into the C engine's layers.

The engine runs ``[input dropout] (Dense act [dropout])*``.  Rules:
  - Dropouts before the first Dense become the input dropout;
  - an activation layer (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax)
    after a linear Dense becomes that Dense's activation (a 'linear'
    Activation is a no-op anywhere);
  - an activation layer after a Dropout is folded into the Dense before it
    when it commutes with dropout (f(s*m*x) = s*m*f(x): relu, leaky_relu,
    PReLU, ReLU without max_value and threshold) and the Dense is linear,
    or when it is one of those but PReLU and the Dense is relu (then
    f(relu(x)) = relu(x));
  - stacked Dropouts combine into one with keep probability the product
    (the same distribution of masks), when their scaling rules agree;
  - a GaussianDropout or AlphaDropout (``noise`` != 0) is a dropout site of
    its own kind: after a Dense, alone, with no Activation after it;
  - a BatchNormalization or LayerNormalization joins the Dense before it,
    one per Dense and before its Dropout: between the bias and the
    activation while the Dense is still linear (``Dense(64) -> BN ->
    Activation("relu")``), after the activation once it has one
    (``Dense(64, activation="relu") -> BN``: "post"; no activation layer may
    follow it then).
Anything else (two non-linear activations in a row, an activation on the
raw input, ...) is refused with a message naming the layer.
"""
from . import activations
from ._net import Net
from .activations import LINEAR, PRELU, RELU, SIGMOID, SOFTMAX  # noqa: F401
from .layers import Dense, Dropout, _Normalization


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
    """input_drop: _Drop; stages: list of (Dense, activations.Act, _Drop);
    norms: per stage None or (normalization layer, post)."""

    def __init__(self, layers):
        self.input_drop = _Drop()
        self.stages, self.norms = [], []
        self._layers = list(layers)
        for layer in layers:
            if isinstance(layer, Dense):
                self.stages.append([layer, activations.named(layer.activation),
                                    _Drop()])
                self.norms.append(None)
            elif isinstance(layer, _Normalization):
                self._normalization(layer)
            elif isinstance(layer, Dropout):
                (self.stages[-1][2] if self.stages else self.input_drop).add(
                    layer, not self.stages)
            elif hasattr(layer, "_act"):      # the activation layers
                self._activation(layer)
            else:
                raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is "
                                "not supported in a Sequential model")
        if not self.stages:
            raise ValueError("The model needs at least one Dense layer")

    def _normalization(self, layer):
        kind = type(layer).__name__
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': {kind} before the first Dense "
                             "layer is not supported (it runs inside a Dense layer's "
                             "step); put it after a Dense layer")
        dense, act, drop = self.stages[-1]
        if drop.rate > 0.0 or drop.owner is not None:
            raise ValueError(f"Layer '{layer.name}': {kind} after "
                             f"'{drop.owner.name}' is not supported; put it before "
                             f"the {type(drop.owner).__name__} (Dense -> {kind} -> "
                             "Activation -> Dropout)")
        if self.norms[-1] is not None:
            raise ValueError(f"Layer '{layer.name}': layer '{dense.name}' is already "
                             f"normalized by '{self.norms[-1][0].name}'; one "
                             "normalization layer per Dense layer")
        self.norms[-1] = (layer, act.kind != LINEAR)

    def _activation(self, layer):
        act = layer._act()
        if act.kind == LINEAR:
            return
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': an activation before the first "
                             "Dense layer is not supported")
        stage = self.stages[-1]
        norm = self.norms[-1]
        if norm is not None and norm[1]:
            raise ValueError(
                f"Layer '{layer.name}': an activation after '{norm[0].name}', which "
                f"normalizes the output of layer '{stage[0].name}' (activation "
                f"{stage[0].activation!r}), cannot be fused; make the Dense linear "
                f"(Dense -> {type(norm[0]).__name__} -> Activation)")
        dropped = stage[2].rate > 0.0 and not stage[2].noise
        if stage[2].rate == 0.0 and stage[1].kind == LINEAR:
            stage[1] = act
        elif dropped and act.commutes_with_dropout and stage[1].kind == LINEAR:
            stage[1] = act
        elif dropped and act.commutes_with_dropout and act.kind != PRELU \
                and stage[1].kind == RELU:
            pass                                 # f(relu(x)) = relu(x)
        elif dropped and act.kind == PRELU and stage[1].kind == RELU:
            raise ValueError(
                f"Layer '{layer.name}': PReLU after layer '{stage[0].name}' (activation "
                "'relu', then Dropout) would be the identity and its alpha never "
                "trained; make the Dense linear or remove the PReLU")
        else:
            what = (f"Activation('{layer.activation}')" if hasattr(layer, "activation")
                    else type(layer).__name__)
            raise ValueError(
                f"Layer '{layer.name}': {what} cannot be fused after layer "
                f"'{stage[0].name}' (activation {stage[0].activation!r}"
                f"{', then Dropout' if stage[2].rate else ''}); give the Dense "
                "layer the activation instead, or put the activation before the "
                "Dropout (after a Dropout only relu, leaky_relu, PReLU and ReLU "
                "without max_value/threshold fuse)")

    @property
    def out_act(self):
        """The C kind of the model's output activation (linear when a
        normalization comes after the last Dense's activation)."""
        norm = self.norms[-1]
        return LINEAR if norm is not None and norm[1] else self.stages[-1][1].kind

    @property
    def out_dropout(self):
        return self.stages[-1][2].rate > 0.0

    def net(self, n_in):
        """The C network (a ``_net.Net``) over the layers' (built) weights."""
        d = self.input_drop
        return Net(n_in, d.rate, d.inverted, d.seed, [
            {"w": None if dense._int8 else dense.kernel, "int8": dense._int8,
             "n_in": dense.input_dim, "n_out": dense.units,
             "b": dense.bias, "act": act.c,
             "slopes": act.prelu.alpha if act.kind == PRELU else None,
             "rate": drop.rate,
             "inverted": drop.inverted, "seed": drop.seed, "noise": drop.noise,
             "norm": None if norm is None else norm[0]._c_norm(norm[1])}
            for (dense, act, drop), norm in zip(self.stages, self.norms)])

    @property
    def quantized(self):
        return any(dense._int8 is not None for dense, _, _ in self.stages)

    def params(self, slots):
        """The C param descriptions, per stage in the C layer's order (kernel,
        bias, the normalization's gamma and beta, PReLU's alpha), with the
        optimizer's state arrays ``slots`` (one list per weight of the
        model, in ``model.weights`` order; only consulted for training,
        which a quantized model refuses)."""
        index = {id(w): i for i, w in enumerate(
            w for layer in self._layers for w in layer.weights)}
        if self.quantized:   # the slots are the float model's: never read
            slots = None
        out = []
        for (dense, act, _), norm in zip(self.stages, self.norms):
            # A quantized kernel is not a float param (Keras's int8 kernel
            # has no regularizer either); such a net is never trained.
            pairs = [] if dense._int8 else [
                (dense.kernel, dense.kernel_regularizer, dense.kernel_constraint)]
            if dense.use_bias:
                pairs.append((dense.bias, dense.bias_regularizer, dense.bias_constraint))
            if norm is not None:     # the moving statistics are no params
                pairs += norm[0]._params()
            if act.kind == PRELU:
                p = act.prelu
                pairs.append((p.alpha, p.alpha_regularizer, p.alpha_constraint))
            for w, reg, con in pairs:
                kind, max_value, axis = con._c if con is not None else (0, 0.0, 0)
                out.append({"w": w, "slots": slots[index[id(w)]] if slots else [],
                            "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0,
                            "constraint": kind, "max_value": max_value, "axis": axis})
        return out
