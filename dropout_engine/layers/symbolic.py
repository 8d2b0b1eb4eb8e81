"""Symbolic tensors for the functional API (Keras 3's KerasTensor and Node).

``Input(shape)`` returns a ``KerasTensor``; calling a layer on one (or on a
list of them, for a merge layer) builds the layer for that shape and
returns the ``KerasTensor`` of its output, recording the call as a
``Node`` in ``layer._inbound_nodes``.  ``Model(inputs, outputs)`` walks the
nodes back from the outputs (``models/functional.py``).  No arrays flow:
the C engine runs the graph once the model plans it.
"""
import collections
import itertools

_names = itertools.count()

# (layer, node index, tensor index), as Keras's ``tensor._keras_history``.
KerasHistory = collections.namedtuple("KerasHistory",
                                      ["operation", "node_index", "tensor_index"])


class KerasTensor:
    """The shape of a layer's output, ``(None, *per-sample shape)``, its
    dtype (float32, or an Input's integer type for token ids) and where it
    comes from (``_keras_history``)."""

    def __init__(self, shape, history, name=None, dtype="float32"):
        self.shape = tuple(shape)
        self.dtype = dtype
        self._keras_history = history
        if name is None:
            n = next(_names)
            name = "keras_tensor" if n == 0 else f"keras_tensor_{n}"
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, "
                f"name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError("A KerasTensor is symbolic: it has no values.  Build a "
                        "model with Model(inputs, outputs) and call predict")

    def __bool__(self):
        raise TypeError("A KerasTensor is symbolic: it has no truth value")


class Node:
    """One call of ``layer`` on ``input_tensors`` (empty for an Input)."""

    def __init__(self, layer, input_tensors, output_tensor, *, merge):
        self.operation = layer
        self.input_tensors = list(input_tensors)
        self.outputs = [output_tensor]
        self.is_input = not input_tensors
        self.merge = merge          # called on a list (the call's structure)

    @property
    def output_tensors(self):
        return self.outputs

    @property
    def parent_nodes(self):
        """The nodes that produced this node's inputs."""
        out = []
        for t in self.input_tensors:
            layer, index, _ = t._keras_history
            out.append(layer._inbound_nodes[index])
        return out


def is_symbolic(x):
    """A KerasTensor, or a non-empty list/tuple of them."""
    if isinstance(x, KerasTensor):
        return True
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(t, KerasTensor) for t in x))


def record(layer, inputs, shape, *, merge, dtype="float32"):
    """Add the node of ``layer`` called on ``inputs`` (tensors) and return
    its output tensor, of per-sample ``shape``."""
    out = KerasTensor((None, *shape), KerasHistory(layer, len(layer._inbound_nodes), 0),
                      dtype=dtype)
    layer._inbound_nodes.append(Node(layer, inputs, out, merge=merge))
    return out
