"""How a functional model's DAG of layers fuses into the C engine's layers
(``_plan`` plans chains; a functional model whose layers form a chain uses
it, so it runs exactly the C net of the same Sequential, with all of its
layers).

Each C layer (a ``_plan._Stage``) is opened by a Dense, an Embedding or a
merge layer (Concatenate, Add, ...; an identity stage whose input is the
merge) and reads the stages its inputs come from (``sources``; -1 is the
model's input), merged in C (graph.c).  What follows fuses into the stage
by the chain's rules (activations, dropout and noise sites, a
BatchNormalization or LayerNormalization right after a Dense), as long as
the tensor it reads has no other reader (a tensor read by two layers must
be kept as it is); otherwise an activation, dropout or noise layer opens an
identity stage of its own.  A merge read only by a Dense, with nothing
between them, is not a stage of its own: the Dense reads the merge
directly (one copy into its input, then its GEMM).  Dropouts on the
model's input, read by nothing else, are the input dropout, as in a
Sequential.  Flatten and Reshape change no values: they are no stage.

Every stage of a DAG holds one vector per sample.  Refused, with a message
naming the layer and why: a Dense, PReLU or Softmax on steps ([batch,
steps, features]: per-step stages run in chains only), a broadcast dropout
mask (noise_shape with 1s, SpatialDropout1D), an Embedding not reading the
model's input or not followed directly by a GlobalAveragePooling1D (its
fused mean), a GlobalAveragePooling1D elsewhere, a normalization not right
after a Dense whose output nothing else reads, and layers the engine does
not run.
"""
import math

from ._plan import (LINEAR, OP_DENSE, OP_EMBED, OP_IDENTITY, PRELU, SOFTMAX, Plan,
                    _Drop, _Stage)
from .layers import (Dense, Dropout, Embedding, GaussianNoise, GlobalAveragePooling1D,
                     _Normalization)
from .layers.base import _show
from .layers.merging import _Merge
from .layers.reshaping import _Reshaping

_DAG = "in a functional model with merged or shared branches"


class GraphPlan(Plan):
    """The stages of a DAG.

    Args:
        ops: ``(layer, input tensors)`` in Keras's layer order (a
            topological order), the InputLayer left out.
        x, y: the model's input and output KerasTensors.
        layers: the model's layers in Keras's order (the weights' order).
    """
    dag = True

    def __init__(self, ops, x, y, layers):
        self.input_shape = tuple(x.shape[1:])
        self.input_drop = _Drop()
        self.stages = []
        self._layers = list(layers)
        self.ids = None
        self._x = x
        self._readers = {}
        for _, inputs in ops:
            for t in inputs:
                self._readers[id(t)] = self._readers.get(id(t), 0) + 1
        self._producer = {id(x): -1}    # tensor -> the stage holding it (-1: input)
        self._tail = {-1: id(x)}        # stage -> its output tensor so far
        for layer, inputs in ops:
            out = layer._inbound_nodes[0].outputs[0]
            s = self._layer(layer, inputs, out)
            if s is self._ALIAS:
                self._producer[id(out)] = self._producer[id(inputs[0])]
            else:
                self._producer[id(out)] = s
                self._tail[s] = id(out)
        if not any(s.op in (OP_DENSE, OP_EMBED) for s in self.stages):
            raise ValueError("The model needs at least one Dense layer")
        for stage in self.stages:
            if stage.op == OP_EMBED and not stage.pool:
                raise NotImplementedError(
                    f"Layer '{stage[0].name}': an Embedding {_DAG} must be followed "
                    "directly by a GlobalAveragePooling1D (its fused mean; steps run "
                    "in chains only), and nothing else may read its output")
        if len(y.shape) != 2:
            raise ValueError(f"The model's output has shape {_show(y.shape[1:])}: "
                             "dropout_engine's models output one vector per sample")
        last = self._producer[id(y)]
        if last != len(self.stages) - 1 or self._tail[last] != id(y):
            # the output is a tensor others read too: a copy of it
            self._open(_Stage(y._keras_history.operation, OP_IDENTITY, (y.shape[-1],),
                              y.shape[-1], sources=[last]))
        assert all(-1 <= s < i for i, st in enumerate(self.stages) for s in st.sources)

    # A handler's answer for a layer that changes nothing (a linear
    # activation read by others, a reshape): its output is its input's
    # stage as is.
    _ALIAS = object()

    def _layer(self, layer, inputs, out):
        if isinstance(layer, _Merge):
            return self._open(_Stage(layer, OP_IDENTITY, (out.shape[-1],), out.shape[-1],
                                     sources=[self._producer[id(t)] for t in inputs],
                                     combine=layer.combine))
        t = inputs[0]
        if isinstance(layer, Embedding):
            return self._embedding(layer, t)
        if isinstance(layer, GlobalAveragePooling1D):
            return self._pool(layer, t)
        if isinstance(layer, _Reshaping):
            s = self._extends(t)
            return self._ALIAS if s is None else s
        if isinstance(layer, Dense):
            return self._dense(layer, t)
        if isinstance(layer, (Dropout, GaussianNoise)):
            return self._noise(layer, t)
        if isinstance(layer, _Normalization):
            return self._normalization(layer, t)
        if hasattr(layer, "_act"):
            return self._activation_layer(layer, t)
        raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is not "
                        "supported in a functional model")

    def _open(self, stage):
        self.stages.append(stage)
        return len(self.stages) - 1

    def _extends(self, t):
        """The stage (-1: the input) whose output so far ``t`` is, when the
        layer reading ``t`` may extend it (nothing else reads ``t``); else
        None."""
        s = self._producer[id(t)]
        return s if self._tail[s] == id(t) and self._readers[id(t)] == 1 else None

    @staticmethod
    def _steps(layer, t, what):
        if len(t.shape) != 2:
            raise NotImplementedError(
                f"Layer '{layer.name}': {what} on an input of shape {t.shape} {_DAG} "
                "is not supported (every tensor of a DAG is one vector per sample; "
                "per-step layers run in chains: Flatten or pool the steps first)")

    def _lone(self, layer, t):
        """An identity stage for ``layer`` reading ``t`` alone (its values
        flat: element-wise noise and activations do not mind the shape)."""
        n = math.prod(t.shape[1:])
        return self._open(_Stage(layer, OP_IDENTITY, (n,), n,
                                 sources=[self._producer[id(t)]]))

    def _embedding(self, layer, t):
        if t is not self._x:
            raise NotImplementedError(
                f"Layer '{layer.name}': an Embedding {_DAG} must read the model's "
                "input (the token ids) itself")
        self.ids = layer.input_dim if self.ids is None else min(self.ids, layer.input_dim)
        n_in = math.prod(self.input_shape)
        stage = _Stage(layer, OP_EMBED, layer._output_shape(self.input_shape), n_in,
                       sources=[-1])
        stage.mask_zero = bool(layer.mask_zero)
        return self._open(stage)

    def _pool(self, layer, t):
        s = self._extends(t)
        stage = self.stages[s] if s is not None and s >= 0 else None
        if stage is None or stage.op != OP_EMBED or stage.pool \
                or stage[1].kind != LINEAR or stage[2].owner is not None:
            raise NotImplementedError(
                f"Layer '{layer.name}': GlobalAveragePooling1D {_DAG} is supported "
                "only right after an Embedding that reads the model's input and "
                "that nothing else reads (the embedding's fused mean); per-step "
                "stages run in chains only")
        stage.pool, stage.shape = True, layer._output_shape(stage.shape)
        return s

    def _dense(self, layer, t):
        self._steps(layer, t, "a Dense")
        s = self._extends(t)
        if s is not None and s >= 0:
            st = self.stages[s]
            if st.op == OP_IDENTITY and st.combine and st[1].kind == LINEAR \
                    and st[2].owner is None:
                # A bare merge read only by this Dense: the Dense reads it.
                self.stages[s] = self._dense_stage(layer, st.sources, st.combine)
                return s
        return self._open(self._dense_stage(layer, [self._producer[id(t)]], 0))

    @staticmethod
    def _dense_stage(layer, sources, combine):
        from . import activations
        return _Stage(layer, OP_DENSE, (layer.units,), layer.input_dim,
                      activations.named(layer.activation), sources=sources,
                      combine=combine)

    def _noise(self, layer, t):
        site = layer._site(tuple(t.shape[1:]))
        kind, _, _, axes = site
        if axes:
            raise NotImplementedError(
                f"Layer '{layer.name}': a broadcast dropout mask (noise_shape with "
                f"1s, SpatialDropout1D) {_DAG} is not supported (masks shared along "
                "axes need the steps, which run in chains only); use an "
                "element-wise Dropout here")
        s = self._extends(t)
        if s == -1 and not kind and _stacks(self.input_drop, site):
            self.input_drop.add(layer, site)       # element-wise, on the raw input
            return -1
        # What cannot stack (noise on noise, another scaling) gets a site
        # of its own.
        if s is None or s == -1 or not _stacks(self.stages[s][2], site):
            s = self._lone(layer, t)
        self.stages[s][2].add(layer, site)
        return s

    def _normalization(self, layer, t):
        s = self._extends(t)
        stage = self.stages[s] if s is not None and s >= 0 else None
        if stage is None or stage.op != OP_DENSE:
            raise NotImplementedError(
                f"Layer '{layer.name}': {type(layer).__name__} {_DAG} must come "
                "right after a Dense layer whose output nothing else reads (it runs "
                "inside that Dense layer's step)")
        self._normalize(layer, stage)
        return s

    def _activation_layer(self, layer, t):
        act = layer._act()
        s = self._extends(t)
        if act.kind == LINEAR:       # the identity: the same values
            return self._ALIAS if s is None else s
        if act.kind in (SOFTMAX, PRELU):
            self._steps(layer, t, type(layer).__name__)
        if s is not None and s >= 0:
            try:
                self._fuse(layer, act, self.stages[s])
                return s
            except ValueError:
                pass         # not after that dropout: a stage of its own
        s = self._lone(layer, t)
        self._fuse(layer, act, self.stages[s])
        return s


def _stacks(drop, site):
    """Whether a layer's site joins the dropout site ``drop`` (as the
    chain's rules stack them) with the same scaling rule."""
    return drop.takes(site) and (drop.owner is None or drop.inverted == site[2])
