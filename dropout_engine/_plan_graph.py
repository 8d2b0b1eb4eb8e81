"""How a functional model's DAG of layers fuses into the C engine's layers
(``_plan`` plans chains; a functional model whose layers form a chain uses
it, so it runs exactly the C net of the same Sequential).

Each C layer (a ``_plan.Stage``) is opened by a Dense or a merge layer
(Concatenate, Add, ...) and reads the stages its inputs come from
(``sources``; -1 is the model's input), merged in C (graph.c).  The
Dropouts and activation layers that follow fuse into the stage by the
chain's rules, as long as the tensor they read has no other reader (a
tensor read by two layers must be kept as it is); otherwise they open a
GEMM-less stage of their own.  A merge read only by a Dense, with no
activation or dropout between them, is not a stage of its own: the Dense
reads the merge directly (one copy into its input, then its GEMM).
Dropouts on the model's input, read by nothing else, are the input
dropout, as in a Sequential.  An activation that cannot fuse where it
stands (after a dropout it does not commute with) is a stage of its own.

A dropout that cannot stack onto the stage it follows (a GaussianDropout
or AlphaDropout after another dropout, another scaling rule) opens a stage
of its own, as does one on the raw input that others read too.  Refused
with a message naming the layer: layers the engine cannot run (anything
but Dense, the dropout family, the activation layers and the merges), and
BatchNormalization / LayerNormalization (which run inside a Dense's step,
planned for chains only).  (A functional model that is a chain is planned
as a Sequential, with its rules and refusals, normalizations included.)
"""
from ._plan import LINEAR, Plan, Stage, _Drop
from .layers import Dense, Dropout, _Normalization
from .layers.merging import _Merge


class GraphPlan(Plan):
    """The stages of a DAG.

    Args:
        ops: ``(layer, input tensors)`` in Keras's layer order (a
            topological order), the InputLayer left out.
        x, y: the model's input and output KerasTensors.
    """
    dag = True

    def __init__(self, ops, x, y):
        self.input_drop = _Drop()
        self.stages = []
        self._readers = {}
        for _, inputs in ops:
            for t in inputs:
                self._readers[id(t)] = self._readers.get(id(t), 0) + 1
        self._producer = {id(x): -1}    # tensor -> the stage holding it (-1: input)
        self._tail = {-1: id(x)}        # stage -> its output tensor so far
        for layer, inputs in ops:
            out = layer._inbound_nodes[0].outputs[0]
            if isinstance(layer, Dense):
                s = self._dense(layer, inputs[0])
            elif isinstance(layer, _Merge):
                s = self._open(Stage(head=layer, width=out.shape[-1],
                                     sources=[self._producer[id(t)] for t in inputs],
                                     combine=layer.combine))
            elif isinstance(layer, Dropout):
                s = self._dropout(layer, inputs[0])
            elif hasattr(layer, "_act"):
                s = self._activation_layer(layer, inputs[0])
            elif isinstance(layer, _Normalization):
                raise NotImplementedError(
                    f"Layer '{layer.name}': {type(layer).__name__} in a functional "
                    "model with merged or shared branches is not supported (it "
                    "runs inside a Dense layer's step, which is planned for chains "
                    "of layers: a Sequential or a functional chain)")
            else:
                raise TypeError(f"Layer '{layer.name}': {type(layer).__name__} is "
                                "not supported in a functional model")
            if s is self._ALIAS:
                self._producer[id(out)] = self._producer[id(inputs[0])]
            else:
                self._producer[id(out)] = s
                self._tail[s] = id(out)
        self._check_dense()
        last = self._producer[id(y)]
        # The output's stage is the last one (everything else leads to it).
        assert last == len(self.stages) - 1 and self._tail[last] == id(y)
        assert all(-1 <= s < i for i, st in enumerate(self.stages) for s in st.sources)

    # A handler's answer for a layer that changes nothing (a linear
    # activation read by others): its output is its input's stage as is.
    _ALIAS = object()

    def _open(self, stage):
        self.stages.append(stage)
        return len(self.stages) - 1

    def _extends(self, t):
        """The stage (-1: the input) whose output so far ``t`` is, when the
        layer reading ``t`` may extend it (nothing else reads ``t``); else
        None."""
        s = self._producer[id(t)]
        return s if self._tail[s] == id(t) and self._readers[id(t)] == 1 else None

    def _dense(self, layer, t):
        s = self._extends(t)
        if s is not None and s >= 0:
            st = self.stages[s]
            if st.dense is None and st.combine and st.act.kind == LINEAR \
                    and st.drop.rate == 0.0:
                # A bare merge read only by this Dense: the Dense reads it.
                self.stages[s] = Stage(layer, sources=st.sources, combine=st.combine)
                return s
        return self._open(Stage(layer, sources=[self._producer[id(t)]]))

    def _lone(self, layer, t):
        """A GEMM-less stage for ``layer`` reading ``t`` alone."""
        return self._open(Stage(head=layer, width=t.shape[-1],
                                sources=[self._producer[id(t)]]))

    def _dropout(self, layer, t):
        s = self._extends(t)
        if s == -1 and not getattr(layer, "noise", 0) and self.input_drop.accepts(layer):
            self.input_drop.add(layer, True)       # dropout on the raw input
            return -1
        # What cannot stack (noise layers, another scaling) gets a site of
        # its own.
        if s is None or s == -1 or not self.stages[s].drop.accepts(layer):
            s = self._lone(layer, t)
        self.stages[s].drop.add(layer, False)
        return s

    def _activation_layer(self, layer, t):
        s = self._extends(t)
        if layer._act().kind == LINEAR:       # the identity: the same values
            return self._ALIAS if s is None else s
        if s is not None and s >= 0:
            try:
                self._activation(layer, self.stages[s])
                return s
            except ValueError:
                pass         # not after that dropout: a stage of its own
        s = self._lone(layer, t)
        self._activation(layer, self.stages[s])
        return s
