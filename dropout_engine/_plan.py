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
import numpy as np

from . import activations
from ._net import Net
from .activations import LINEAR, PRELU, RELU, SIGMOID, SOFTMAX  # noqa: F401
from .layers import Dense, Dropout, _Normalization


class _Drop:
    """A dropout site: combined rate, scaling rule and seed."""

    def __init__(self):
        self.rate, self.inverted, self.seed, self.owner = 0.0, True, 0, None
        self.noise = 0

    def accepts(self, layer):
        """Whether ``layer`` stacks onto this site (add would not refuse it,
        but for ``first``): no noise layer involved, the same scaling."""
        if self.owner is None:
            return True
        return not (getattr(layer, "noise", 0) or self.noise) \
            and self.inverted == (layer.scaling == "inverted")

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


class Stage:
    """One C layer: a Dense (``dense``; None for a GEMM-less layer: a merge,
    or an activation or dropout of a functional model with no Dense to fuse
    into) with its activation and the dropout after it.  ``head`` is the
    layer that opened the stage (the one errors name).  In a DAG,
    ``sources`` are the stages it reads (-1: the net's input) and
    ``combine`` their merge (``layers.merging``'s DE_COMBINE_* kinds); in a
    chain ``sources`` is None (the previous stage).  Unpacks as
    ``dense, act, drop``."""

    def __init__(self, dense=None, *, head=None, width=None, sources=None,
                 combine=0):
        self.dense, self.head = dense, dense if dense is not None else head
        self.act = activations.named(dense.activation if dense is not None
                                     else "linear")
        self.drop = _Drop()
        self.width, self.sources, self.combine = width, sources, combine
        self.norm = None     # or (normalization layer, post): in the Dense's step

    def __iter__(self):
        return iter((self.dense, self.act, self.drop))

    @property
    def n_out(self):
        return self.dense.units if self.dense is not None else self.width

    @property
    def n_in(self):
        return self.dense.input_dim if self.dense is not None else self.width


class Plan:
    """input_drop: _Drop; stages: list of ``Stage`` (a chain of Dense
    layers: a Sequential's layers, or a functional model's when they form a
    chain; ``_graph.GraphPlan`` plans the DAGs); norms: per stage None or
    (normalization layer, post)."""
    dag = False

    def __init__(self, layers):
        self.input_drop = _Drop()
        self.stages = []
        for layer in layers:
            if isinstance(layer, Dense):
                self.stages.append(Stage(layer))
            elif isinstance(layer, _Normalization):
                self._normalization(layer)
            elif isinstance(layer, Dropout):
                (self.stages[-1].drop if self.stages else self.input_drop).add(
                    layer, not self.stages)
            elif hasattr(layer, "_act"):      # the activation layers
                if not self.stages and layer._act().kind != LINEAR:
                    raise ValueError(f"Layer '{layer.name}': an activation before "
                                     "the first Dense layer is not supported")
                if self.stages:
                    self._activation(layer, self.stages[-1])
            else:
                raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is "
                                "not supported in a Sequential model")
        self._check_dense()

    def _check_dense(self):
        if not any(stage.dense is not None for stage in self.stages):
            raise ValueError("The model needs at least one Dense layer")

    def _normalization(self, layer):
        kind = type(layer).__name__
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': {kind} before the first Dense "
                             "layer is not supported (it runs inside a Dense layer's "
                             "step); put it after a Dense layer")
        stage = self.stages[-1]
        drop = stage.drop
        if drop.rate > 0.0 or drop.owner is not None:
            raise ValueError(f"Layer '{layer.name}': {kind} after "
                             f"'{drop.owner.name}' is not supported; put it before "
                             f"the {type(drop.owner).__name__} (Dense -> {kind} -> "
                             "Activation -> Dropout)")
        if stage.norm is not None:
            raise ValueError(f"Layer '{layer.name}': layer '{stage.head.name}' is "
                             f"already normalized by '{stage.norm[0].name}'; one "
                             "normalization layer per Dense layer")
        stage.norm = (layer, stage.act.kind != LINEAR)

    @property
    def norms(self):
        return [stage.norm for stage in self.stages]

    @staticmethod
    def _activation(layer, stage):
        """Fuse activation layer ``layer`` into ``stage`` (the rules above)."""
        act = layer._act()
        if act.kind == LINEAR:
            return
        norm = stage.norm
        if norm is not None and norm[1]:
            raise ValueError(
                f"Layer '{layer.name}': an activation after '{norm[0].name}', which "
                f"normalizes the output of layer '{stage.head.name}' (activation "
                f"{stage.dense.activation!r}), cannot be fused; make the Dense linear "
                f"(Dense -> {type(norm[0]).__name__} -> Activation)")
        dropped = stage.drop.rate > 0.0 and not stage.drop.noise
        if stage.drop.rate == 0.0 and stage.act.kind == LINEAR:
            stage.act = act
        elif dropped and act.commutes_with_dropout and stage.act.kind == LINEAR:
            stage.act = act
        elif dropped and act.commutes_with_dropout and act.kind != PRELU \
                and stage.act.kind == RELU:
            pass                                 # f(relu(x)) = relu(x)
        elif dropped and act.kind == PRELU and stage.act.kind == RELU:
            raise ValueError(
                f"Layer '{layer.name}': PReLU after layer '{stage.head.name}' "
                "(activation 'relu', then Dropout) would be the identity and its "
                "alpha never trained; make the Dense linear or remove the PReLU")
        else:
            what = (f"Activation('{layer.activation}')" if hasattr(layer, "activation")
                    else type(layer).__name__)
            head_act = getattr(stage.head, "activation", "linear")
            raise ValueError(
                f"Layer '{layer.name}': {what} cannot be fused after layer "
                f"'{stage.head.name}' (activation {head_act!r}"
                f"{', then Dropout' if stage.drop.rate else ''}); give the Dense "
                "layer the activation instead, or put the activation before the "
                "Dropout (after a Dropout only relu, leaky_relu, PReLU and ReLU "
                "without max_value/threshold fuse)")

    @property
    def out_act(self):
        """The C kind of the model's output activation (linear when a
        normalization comes after the last Dense's activation)."""
        norm = self.stages[-1].norm
        return LINEAR if norm is not None and norm[1] else self.stages[-1].act.kind

    @property
    def out_dropout(self):
        return self.stages[-1].drop.rate > 0.0

    @property
    def n_out(self):
        return self.stages[-1].n_out

    def net(self, n_in):
        """The C network (a ``_net.Net``) over the layers' (built) weights."""
        d = self.input_drop
        return Net(n_in, d.rate, d.inverted, d.seed,
                   [self._c_layer(s) for s in self.stages])

    def _c_layer(self, stage):
        dense, act, drop = stage
        c = {"w": None, "int8": None, "b": None, "n_in": stage.n_in,
             "n_out": stage.n_out, "act": act.c,
             "slopes": act.prelu.alpha if act.kind == PRELU else None,
             "rate": drop.rate, "inverted": drop.inverted, "seed": drop.seed,
             "noise": drop.noise,
             "norm": None if stage.norm is None else stage.norm[0]._c_norm(stage.norm[1])}
        if dense is not None:
            c.update(w=None if dense._int8 else dense.kernel, int8=dense._int8,
                     b=dense.bias)
        if self.dag:
            c.update(src=np.array(stage.sources, np.int64), combine=stage.combine)
        return c

    @property
    def quantized(self):
        return any(s.dense is not None and s.dense._int8 is not None
                   for s in self.stages)

    def params(self, slots, weights):
        """The C param descriptions, per stage in the C layer's order (kernel,
        bias, the normalization's gamma and beta, PReLU's alpha), with the
        optimizer's state arrays (``slots``: one list per array of
        ``weights``, the model's weights in Keras order, matched by array
        identity; only consulted for training, which a quantized model
        refuses)."""
        out = []
        index = {id(w): i for i, w in enumerate(weights)}
        if self.quantized:   # the slots are the float model's: never read
            slots = None
        for stage in self.stages:
            dense, act, _ = stage
            # A quantized kernel is not a float param (Keras's int8 kernel
            # has no regularizer either); such a net is never trained.
            pairs = []
            if dense is not None:
                if not dense._int8:
                    pairs.append((dense.kernel, dense.kernel_regularizer,
                                  dense.kernel_constraint))
                if dense.use_bias:
                    pairs.append((dense.bias, dense.bias_regularizer,
                                  dense.bias_constraint))
            if stage.norm is not None:     # the moving statistics are no params
                pairs += stage.norm[0]._params()
            if act.kind == PRELU:    # after the Dense's own: model.weights order
                p = act.prelu
                pairs.append((p.alpha, p.alpha_regularizer, p.alpha_constraint))
            for w, reg, con in pairs:
                kind, max_value, axis = con._c if con is not None else (0, 0.0, 0)
                out.append({"w": w, "slots": slots[index[id(w)]] if slots else [],
                            "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0,
                            "constraint": kind, "max_value": max_value, "axis": axis})
        return out
