"""How a Sequential's layers fuse into the C engine's layers.

The engine runs ``[input dropout] (op act [site])*``, where op is a Dense
(x @ w + b on the last axis: on [batch, steps, features] it runs batch *
steps rows), an Embedding gather, a mean over steps or the identity, and
the site is the dropout or noise on its output.  Shapes are per sample;
every stage's output is its samples' values in row-major order, so a
Flatten or Reshape costs nothing.  Rules:
  - Dropouts before the first stage become the input dropout;
  - an activation layer (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax)
    after a linear stage becomes that stage's activation (a 'linear'
    Activation is a no-op anywhere);
  - an activation layer after a Dropout is folded into the stage before it
    when it commutes with dropout (f(s*m*x) = s*m*f(x): relu, leaky_relu,
    PReLU, ReLU without max_value and threshold) and the stage is linear,
    or when it is one of those but PReLU and the stage is relu (then
    f(relu(x)) = relu(x));
  - stacked Dropouts combine into one with keep probability the product
    (the same distribution of masks), when their scaling rules agree;
  - a noise layer (GaussianDropout, AlphaDropout, GaussianNoise, a Dropout
    with a broadcast noise_shape, SpatialDropout1D: ``_site`` says which)
    takes the site of the stage before it when that is free, and otherwise
    (on the input, stacked on another one) an identity stage of its own;
  - a BatchNormalization or LayerNormalization joins the Dense before it,
    one per Dense and before its Dropout: between the bias and the
    activation while the Dense is still linear (``Dense(64) -> BN ->
    Activation("relu")``), after the activation once it has one
    (``Dense(64, activation="relu") -> BN``: "post"; no activation layer may
    follow it then); only a Dense on [batch, features] (one row per sample)
    takes one;
  - an Embedding comes first; a GlobalAveragePooling1D right after it
    (nothing between) fuses into the gather, elsewhere it is a mean stage;
    an Embedding's mask_zero reaches the GlobalAveragePooling1D through
    per-step Dense layers, activations and noise layers, and is refused
    where it would be dropped;
  - what depends on the shape of the values (a broadcast mask, softmax,
    PReLU, the model's output) after a Flatten or Reshape that changed the
    rows of the stage before gets an identity stage of the new shape;
  - the model's output is one row per sample ((None, units)).
Anything else (two non-linear activations in a row, an activation on the
raw input, ...) is refused with a message naming the layer.  A functional
model whose layers form a chain is planned here too (it runs the C net of
the same Sequential); ``_plan_graph`` plans the DAGs.
"""
import math

import numpy as np

from . import activations
from ._net import Net
from .activations import LINEAR, PRELU, RELU, SIGMOID, SOFTMAX  # noqa: F401
from .layers import (Dense, Dropout, Embedding, GaussianNoise, GlobalAveragePooling1D,
                     Layer, _Normalization)
from .layers.base import _show
from .layers.reshaping import _Reshaping

# engine.h's DE_OP_*
OP_DENSE, OP_EMBED, OP_POOL, OP_IDENTITY = range(4)


class _Drop:
    """A dropout site: combined rate, scaling rule, seed, noise kind and the
    axes of a broadcast mask (0: per element)."""

    def __init__(self):
        self.rate, self.inverted, self.seed, self.owner = 0.0, True, 0, None
        self.noise = self.axes = 0

    def takes(self, site):
        """Whether a layer's site (kind, rate, inverted, axes) joins this one:
        a free site takes anything; element-wise 0/1 masks combine."""
        kind, _, _, axes = site
        return self.owner is None or (not (self.noise or self.axes or kind or axes))

    def add(self, layer, site):
        kind, rate, inverted, axes = site
        if self.owner is not None and self.inverted != inverted:
            raise ValueError(f"Layer '{layer.name}': stacked Dropout layers must use "
                             f"the same scaling as '{self.owner.name}'")
        if self.owner is None:
            self.seed, self.owner = layer._seed, layer
        self.noise, self.axes, self.inverted = kind, axes, inverted
        self.rate = 1.0 - (1.0 - self.rate) * (1.0 - rate) if not kind else rate


class _Stage(list):
    """[layer, act, drop] (the layer the stage runs or was made for, its
    activations.Act, its _Drop) plus the C op and the geometry: ``shape``
    the output's per-sample shape, ``n_in`` the op's input width (the ids
    per sample for an Embedding), ``pool`` (an Embedding's fused mean),
    ``pool_steps`` (a mean's input steps), ``mask_zero``.  In a DAG
    (``_plan_graph``), ``sources`` are the stages it reads (-1: the net's
    input) and ``combine`` their merge (``layers.merging``'s DE_COMBINE_*
    kinds); in a chain ``sources`` is None (the previous stage)."""

    def __init__(self, layer, op, shape, n_in, act=None, sources=None, combine=0):
        super().__init__([layer, act or activations.named("linear"), _Drop()])
        self.op, self.shape, self.n_in = op, shape, n_in
        self.pool, self.pool_steps, self.mask_zero = False, 0, False
        self.norm = None          # (normalization layer, post) or None
        self.sources, self.combine = sources, combine

    @property
    def rows(self):
        """Output rows per sample."""
        return 1 if self.op == OP_POOL or self.pool else math.prod(self.shape[:-1])


class Plan:
    """input_drop: _Drop; stages: list of _Stage ([layer, act, drop]);
    norms: per stage None or (normalization layer, post).

    Args:
        layers: the Sequential's layers (or a functional chain's).
        input_shape: the per-sample input shape.
    """
    dag = False

    def __init__(self, layers, input_shape):
        self.input_shape = tuple(input_shape)
        self.input_drop = _Drop()
        self.stages = []
        self._layers = list(layers)
        self.ids = None           # the vocabulary size when the input is token ids
        self._shape = self.input_shape   # the values' per-sample shape here
        self._mask = None         # the Embedding whose mask_zero is in flight
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"{layer!r} is not a layer")
            if isinstance(layer, Embedding):
                self._embedding(layer, i)
            elif isinstance(layer, Dense):
                self._dense(layer)
            elif isinstance(layer, _Normalization):
                self._normalization(layer)
            elif isinstance(layer, (Dropout, GaussianNoise)):
                self._noise(layer)
            elif isinstance(layer, GlobalAveragePooling1D):
                self._pool(layer)
            elif isinstance(layer, _Reshaping):
                if self._mask is not None:
                    raise ValueError(self._mask_lost(layer))
                self._shape = layer._output_shape(self._shape)
            elif hasattr(layer, "_act"):      # the activation layers
                self._activation(layer)
            else:
                raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is "
                                "not supported in a Sequential model")
        if not any(s.op in (OP_DENSE, OP_EMBED) for s in self.stages):
            raise ValueError("The model needs at least one Dense layer")
        if self._mask is not None:
            raise ValueError(f"Layer '{self._mask.name}': mask_zero=True needs a "
                             "GlobalAveragePooling1D after the Embedding (the only "
                             "layer here that applies the mask)")
        if len(self._shape) != 1:
            raise ValueError(f"The model's output has shape {_show(self._shape)}: "
                             "dropout_engine's models output one vector per sample; "
                             "end the steps with GlobalAveragePooling1D or Flatten")
        self._at_shape(layers[-1])       # the output: one row per sample

    # ------------------------------------------------------------ stages
    def _at_shape(self, layer):
        """The last stage, when its output has the current shape; else a new
        identity stage of that shape (after a Flatten or Reshape that moved
        the rows), made for ``layer``."""
        if self.stages and self.stages[-1].shape == self._shape:
            return self.stages[-1]
        return self._identity(layer)

    def _identity(self, layer):
        stage = _Stage(layer, OP_IDENTITY, self._shape, self._shape[-1])
        self.stages.append(stage)
        return stage

    def _embedding(self, layer, index):
        if index or self.input_drop.owner is not None:
            raise ValueError(f"Layer '{layer.name}': Embedding must be the model's "
                             "first layer (its input is the token ids)")
        self.ids = layer.input_dim
        self._shape = layer._output_shape(self._shape)
        self.stages.append(_Stage(layer, OP_EMBED, self._shape,
                                  math.prod(self.input_shape)))
        if layer.mask_zero:
            self._mask = layer

    def _dense(self, layer):
        shape = layer._output_shape(self._shape)
        self.stages.append(_Stage(layer, OP_DENSE, shape, self._shape[-1],
                                  activations.named(layer.activation)))
        self._shape = shape

    def _pool(self, layer):
        shape = layer._output_shape(self._shape)
        last = self.stages[-1] if self.stages else None
        if (last is not None and last.op == OP_EMBED and not last.pool
                and last.shape == self._shape and last[1].kind == LINEAR
                and last[2].owner is None):
            last.pool, last.shape = True, shape      # the gather's own mean
        else:
            stage = _Stage(layer, OP_POOL, shape, self._shape[-1])
            stage.pool_steps = self._shape[0]
            self.stages.append(stage)
            last = stage
        last.mask_zero = self._mask is not None
        self._mask = None
        self._shape = shape

    def _noise(self, layer):
        site = layer._site(self._shape)
        if not self.stages and not site[0] and not site[3]:
            self.input_drop.add(layer, site)       # element-wise, on the input
            return
        stage = self.stages[-1] if self.stages else None
        if site[3] and stage is not None and stage.shape != self._shape:
            stage = None                             # a mask needs its shape
        if stage is None or not stage[2].takes(site):
            stage = self._identity(layer)
        stage[2].add(layer, site)

    def _normalization(self, layer):
        kind = type(layer).__name__
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': {kind} before the first Dense "
                             "layer is not supported (it runs inside a Dense layer's "
                             "step); put it after a Dense layer")
        stage = self.stages[-1]
        dense, act, drop = stage
        if stage.op != OP_DENSE or stage.rows != 1 or stage.shape != self._shape:
            raise ValueError(f"Layer '{layer.name}': {kind} after layer '{dense.name}' "
                             f"({type(dense).__name__}, output {_show(self._shape)}) "
                             "is not supported; a normalization runs inside the step "
                             "of a Dense on [batch, features] and must follow it "
                             "directly")
        self._normalize(layer, stage)

    @staticmethod
    def _normalize(layer, stage):
        """Join normalization ``layer`` to ``stage``, a Dense's of one row
        per sample (the rules above)."""
        kind = type(layer).__name__
        dense, act, drop = stage
        if drop.rate > 0.0 or drop.owner is not None:
            raise ValueError(f"Layer '{layer.name}': {kind} after "
                             f"'{drop.owner.name}' is not supported; put it before "
                             f"the {type(drop.owner).__name__} (Dense -> {kind} -> "
                             "Activation -> Dropout)")
        if stage.norm is not None:
            raise ValueError(f"Layer '{layer.name}': layer '{dense.name}' is already "
                             f"normalized by '{stage.norm[0].name}'; one "
                             "normalization layer per Dense layer")
        stage.norm = (layer, act.kind != LINEAR)

    def _activation(self, layer):
        act = layer._act()
        if act.kind == LINEAR:
            return
        if not self.stages:
            raise ValueError(f"Layer '{layer.name}': an activation before the first "
                             "Dense layer is not supported")
        if act.kind == PRELU and len(self._shape) > 1:
            raise NotImplementedError(
                f"Layer '{layer.name}': PReLU on an input of shape "
                f"{_show(self._shape)} is not supported (one alpha per feature "
                "of [batch, features] inputs only)")
        element_wise = act.kind not in (SOFTMAX, PRELU)
        stage = (self.stages[-1] if element_wise and self.stages
                 else self._at_shape(layer))
        self._fuse(layer, act, stage)

    @staticmethod
    def _fuse(layer, act, stage):
        """Fuse activation ``act`` of ``layer`` into ``stage`` (the rules
        above), or raise ValueError saying why it cannot."""
        norm = stage.norm
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
            before = getattr(stage[0], "activation", "linear")
            drop = stage[2].owner
            then = f", then {type(drop).__name__}" if stage[2].rate else ""
            if stage[2].rate and stage[2].noise:
                rule = (f"no activation fuses after {type(drop).__name__}, whose "
                        "noise does not commute with it")
            else:
                rule = ("after a Dropout only relu, leaky_relu, PReLU and ReLU "
                        "without max_value/threshold fuse")
            raise ValueError(
                f"Layer '{layer.name}': {what} cannot be fused after layer "
                f"'{stage[0].name}' (activation {before!r}{then}); give the Dense "
                f"layer the activation instead, or put the activation before the "
                f"{type(drop).__name__ if then else 'Dropout'} ({rule})")

    def _mask_lost(self, layer):
        return (f"Layer '{layer.name}': {type(layer).__name__} would drop the mask of "
                f"Embedding '{self._mask.name}' (mask_zero=True); only a "
                "GlobalAveragePooling1D can come between it and the mask's end")

    # ------------------------------------------------------------ results
    def check_distributed(self):
        """Refuse what a data-parallel fit cannot draw as one process does:
        a broadcast mask shares draws across rows that other processes
        hold."""
        if self.dag:
            raise NotImplementedError(
                "A functional model with merged branches is not supported in a "
                "distributed fit (DataParallel); fit it on one process, or use a "
                "Sequential or a functional chain")
        for stage in self.stages:
            drop = stage[2]
            if drop.axes:
                raise NotImplementedError(
                    f"Layer '{drop.owner.name}': a broadcast dropout mask "
                    "(noise_shape with 1s, SpatialDropout1D) is not supported in a "
                    "distributed fit; use an element-wise Dropout or fit on one "
                    "process")

    @property
    def norms(self):
        """Per stage None or (normalization layer, post)."""
        return [s.norm for s in self.stages]

    @property
    def out_act(self):
        """The C kind of the model's output activation (linear when a
        normalization comes after the last Dense's activation)."""
        norm = self.stages[-1].norm
        return LINEAR if norm is not None and norm[1] else self.stages[-1][1].kind

    @property
    def out_dropout(self):
        return self.stages[-1][2].rate > 0.0

    @property
    def n_in(self):
        """Values per sample of the input (the C net's row width)."""
        return math.prod(self.input_shape)

    @property
    def n_out(self):
        return self.stages[-1].shape[-1]

    def net(self):
        """The C network (a ``_net.Net``) over the layers' (built) weights."""
        d = self.input_drop
        return Net(self.n_in, d.rate, d.inverted, d.seed,
                   [self._c_layer(s) for s in self.stages])

    def _c_layer(self, stage):
        layer, act, drop = stage
        c = {"w": None, "int8": None, "b": None, "n_in": stage.n_in,
             "n_out": stage.shape[-1], "act": act.c,
             "slopes": act.prelu.alpha if act.kind == PRELU else None,
             "rate": drop.rate, "inverted": drop.inverted, "seed": drop.seed,
             "noise": drop.noise, "noise_axes": drop.axes, "op": stage.op,
             "steps": stage.rows, "pool_steps": stage.pool_steps,
             "pool": int(stage.pool), "mask_zero": int(stage.mask_zero),
             "norm": None if stage.norm is None else stage.norm[0]._c_norm(stage.norm[1])}
        if stage.op == OP_DENSE:
            # mixed_bfloat16 (bf16) rounds both GEMM inputs; a kernel quantized
            # to bfloat16 (wbf16) is read as its 16 bits by float32 GEMMs.
            c.update(w=None if layer._quantized_kernel else layer.kernel,
                     int8=layer._int8, wbf16=layer._bf16, b=layer.bias,
                     bf16=int(layer.compute_dtype == "bfloat16"
                              and layer._quantized_kernel is None))
        elif stage.op == OP_EMBED:
            c.update(w=layer.embeddings, vocab=layer.input_dim)
        if self.dag:
            c.update(src=np.array(stage.sources, np.int64), combine=stage.combine)
        return c

    @property
    def quantized(self):
        """None, or the quantization mode of the Dense kernels ("int8" or
        "bfloat16"; model.quantize gives all of them one)."""
        modes = {s[0].quantization_mode for s in self.stages if s.op == OP_DENSE}
        return next((m for m in ("int8", "bfloat16") if m in modes), None)

    def params(self, slots):
        """The C param descriptions, per stage in the C layer's order (kernel
        and bias of a Dense or an Embedding's table, the normalization's
        gamma and beta, PReLU's alpha), with the optimizer's state arrays
        ``slots`` (one list per weight of the model, in ``model.weights``
        order; only consulted for training, which a quantized model
        refuses)."""
        index = {id(w): i for i, w in enumerate(
            w for layer in self._layers for w in layer.weights)}
        if self.quantized is not None:   # the slots are the float model's: never read
            slots = None
        out = []
        for stage in self.stages:
            layer, act, _ = stage
            pairs = []
            if stage.op == OP_DENSE:
                # A quantized kernel is not a float param (Keras's int8 kernel
                # has no regularizer either); such a net is never trained.
                if layer._quantized_kernel is None:
                    pairs.append((layer.kernel, layer.kernel_regularizer,
                                  layer.kernel_constraint))
                if layer.use_bias:
                    pairs.append((layer.bias, layer.bias_regularizer,
                                  layer.bias_constraint))
            elif stage.op == OP_EMBED:
                pairs.append((layer.embeddings, layer.embeddings_regularizer,
                              layer.embeddings_constraint))
            if stage.norm is not None:     # the moving statistics are no params
                pairs += stage.norm[0]._params()
            if act.kind == PRELU:    # after the stage's own: model.weights order
                p = act.prelu
                pairs.append((p.alpha, p.alpha_regularizer, p.alpha_constraint))
            for w, reg, con in pairs:
                kind, max_value, axis = con._c if con is not None else (0, 0.0, 0)
                out.append({"w": w, "slots": slots[index[id(w)]] if slots else [],
                            "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0,
                            "constraint": kind, "max_value": max_value, "axis": axis})
        return out
