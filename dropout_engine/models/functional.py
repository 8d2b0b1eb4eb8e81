"""The functional model, ``Model(inputs, outputs)`` (Keras 3's Functional).

    inputs = Input((32,))
    a = Dense(64, activation="relu")(inputs)
    b = Dense(64, activation="tanh")(inputs)
    x = Concatenate()([a, b])
    x = Dropout(0.5)(x)
    model = Model(inputs, Dense(10, activation="softmax")(x))

The graph is walked back from the output as Keras walks it (``_map_graph``
is keras.src.ops.function.map_graph's ordering), so ``model.layers`` and
the weights come in Keras's order (``get_weights``/``set_weights`` trade
weights with a Keras model of the same graph).  Layers whose calls form a
chain plan into the C net a Sequential of the same layers runs
(``_plan.Plan``); other DAGs into C layers that read earlier layers'
outputs, merged (``_plan_graph``).  One input, one output; every layer
called once.
"""
from .. import layers as layers_mod
from .._plan import Plan
from ..layers.base import _shape, _show
from .._plan_graph import GraphPlan
from ..layers.symbolic import KerasTensor
from .base import Model


def _single(value, what):
    """The one KerasTensor of ``inputs``/``outputs`` (a tensor, or a list
    or tuple of one)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise NotImplementedError(
                f"Model: {what} must be one KerasTensor (models with several "
                f"{what} are not supported), got {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        raise NotImplementedError(f"Model: {what} as a dict is not supported; "
                                  "pass the KerasTensor")
    if not isinstance(value, KerasTensor):
        raise TypeError(f"Model: {what} must be a KerasTensor (from keras.Input or "
                        f"a layer call), got {type(value).__name__}")
    return value


def _map_graph(x, y):
    """Keras's map_graph for one input and one output: the layers from x
    to y ordered by depth (the longest path to y, deepest first), ties by
    first visit of a depth-first walk from y; refuses a graph that does
    not reach x."""
    order, finished, indices, stack, active = [], set(), {}, [], set()

    def enter(t):
        layer, index, _ = t._keras_history
        node = layer._inbound_nodes[index]
        if id(node) not in finished and id(node) not in active:
            indices.setdefault(layer, len(indices))
            stack.append((node, iter(node.input_tensors)))
            active.add(id(node))

    # Keras's depth-first walk from y (post-order), without recursion: a
    # config of thousands of layers must not exhaust Python's stack.
    enter(y)
    while stack:
        node, parents = stack[-1]
        t = next(parents, None)
        if t is None:
            stack.pop()
            active.discard(id(node))
            finished.add(id(node))
            order.append(node)
        else:
            enter(t)
    depth = {}
    for node in reversed(order):
        d = depth.setdefault(id(node), 0)
        for parent in node.parent_nodes:
            depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
    nodes = sorted(order, key=lambda n: (-depth[id(n)], indices[n.operation]))
    source = x._keras_history.operation
    for node in nodes:
        if node.is_input and node.operation is not source:
            raise ValueError(
                f"Graph disconnected: cannot find parent for tensor "
                f"{node.outputs[0]} at layer '{node.operation.name}': the model's "
                f"output depends on an Input other than its input "
                f"'{source.name}'")
    if not any(node.operation is source for node in nodes):
        raise ValueError(f"Graph disconnected: the output {y} does not depend on "
                         f"the input {x}")
    names = [n.operation.name for n in nodes]
    for name in names:
        if names.count(name) != 1:
            raise ValueError(f'The name "{name}" is used {names.count(name)} times '
                             "in the model. All layer names should be unique.")
    return nodes


def _is_chain(nodes):
    """Each layer reads the one before it, alone (a Sequential's shape)."""
    return all(not n.merge and len(n.input_tensors) == 1
               and n.input_tensors[0] is prev.outputs[0]
               for prev, n in zip(nodes, nodes[1:]))


class Functional(Model):
    """``Model(inputs, outputs, name=None)`` over layers called on
    KerasTensors (see the module docstring).

    Args:
        inputs: the model's input, what ``keras.Input(shape)`` returned (or a
            list of it).
        outputs: the KerasTensor of the last layer's call (or a list of it).
        name: optional model name ("functional", "functional_1", ...).
    """
    _kind = _default_name = "functional"

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model got unexpected arguments: {sorted(kwargs)}")
        super().__init__(name=name, trainable=trainable)
        self._listed = (isinstance(inputs, (list, tuple)),
                        isinstance(outputs, (list, tuple)))
        x, y = _single(inputs, "inputs"), _single(outputs, "outputs")
        if not isinstance(x._keras_history.operation, layers_mod.InputLayer):
            raise NotImplementedError(
                "Model: inputs must come from keras.Input(shape) (a model "
                "starting at another layer's output is not supported)")
        nodes = _map_graph(x, y)
        self._in_tensor, self._out_tensor = x, y
        self._layers = [n.operation for n in nodes]
        self._input_shape = tuple(x.shape[1:])
        self._input_dtype = None if x.dtype == "float32" else x.dtype
        self._nodes = nodes
        for layer in self._layers:
            layer._owners.add(self)
        self._replan()

    def _replan(self):
        nodes, x, y = self._nodes, self._in_tensor, self._out_tensor
        ops = [(n.operation, n.input_tensors) for n in nodes[1:]]
        self._plan = (Plan([layer for layer, _ in ops], self._input_shape)
                      if _is_chain(nodes) else GraphPlan(ops, x, y, self._layers))
        self._make_net()
        if self.optimizer is not None:
            self.optimizer.build(self.weights)

    # ------------------------------------------------------------ structure
    @property
    def layers(self):
        """Keras's list: the InputLayer, then every layer in graph order."""
        return list(self._layers)

    @property
    def inputs(self):
        return [self._in_tensor]

    @property
    def outputs(self):
        return [self._out_tensor]

    @property
    def input(self):
        return self._in_tensor

    @property
    def output(self):
        return self._out_tensor

    def _connections(self, layer):
        """Keras's summary column: 'name[node][tensor]' of each input."""
        node = layer._inbound_nodes[0]
        return [f"{t._keras_history.operation.name}[{t._keras_history.node_index}]"
                f"[{t._keras_history.tensor_index}]" for t in node.input_tensors]

    def _first_name(self):
        """The layer input errors name: the first after the InputLayer."""
        return self._layers[1].name if len(self._layers) > 1 else self.name

    @property
    def _sequential_like(self):
        return not self._plan.dag

    def _shape_texts(self):
        return {id(l): _show(l.output.shape[1:]) for l in self._layers}

    def build(self, input_shape=None):
        """Built at construction; checks ``input_shape`` (Keras's, the batch
        axis first) against the input."""
        if input_shape is not None:
            t = tuple(input_shape) if not isinstance(input_shape, int) else (input_shape,)
            shape = _shape(t if len(t) == 1 else t[1:], f"Model '{self.name}'")
            if shape != self._input_shape:
                raise ValueError(f"Model '{self.name}' expects input shape "
                                 f"{_show(self._input_shape)}, build() got "
                                 f"{_show(shape)}")

    # -------------------------------------------------------------- config
    def get_config(self):
        """Keras's functional config: each layer's config with the calls
        that feed it ("inbound_nodes", tensors as "__keras_tensor__"), and
        the input and output layers."""
        def tensor(t):
            layer, node, index = t._keras_history
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(t.shape), "dtype": t.dtype,
                               "keras_history": [layer.name, node, index]}}

        layers = []
        for layer in self._layers:
            node = layer._inbound_nodes[0]
            entry = dict(layers_mod.serialize(layer), name=layer.name)
            args = [tensor(t) for t in node.input_tensors]
            entry["inbound_nodes"] = [] if node.is_input else [
                {"args": [args if node.merge else args[0]], "kwargs": {}}]
            layers.append(entry)

        def ends(t, listed):
            h = [t._keras_history.operation.name, t._keras_history.node_index,
                 t._keras_history.tensor_index]
            return [h] if listed else h
        return {"name": self.name, "trainable": True, "layers": layers,
                "input_layers": ends(self._in_tensor, self._listed[0]),
                "output_layers": ends(self._out_tensor, self._listed[1])}

    @classmethod
    def from_config(cls, config):
        """The model ``get_config`` described (also a Keras functional
        config, when its layers are ones dropout_engine offers)."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("functional config must be a dict with a 'layers' list")
        made = []
        for i, entry in enumerate(config["layers"]):
            if not isinstance(entry, dict):
                raise ValueError(f"layers[{i}] must be a dict, got {entry!r:.100}")
            made.append(layers_mod.deserialize(entry, f"layers[{i}]"))
        return cls._from_layers(config, made)

    @classmethod
    def _from_layers(cls, config, layers):
        """The model of a functional config (ours or Keras's) whose layers
        (``config["layers"]``'s entries, in order) are already made: each
        called on the tensors its inbound node names."""
        made, outputs = {}, {}
        for i, (entry, layer) in enumerate(zip(config["layers"], layers)):
            name = entry.get("name", layer.name)
            if not isinstance(name, str):
                raise ValueError(f"layers[{i}]: the name must be a string, got "
                                 f"{name!r:.100}")
            if name in made:
                raise ValueError(f"layers[{i}]: the name {name!r} is used twice")
            made[name] = layer
        pending = [(name, entry.get("inbound_nodes", []))
                   for name, entry in zip(made, config["layers"])]
        for name, layer in made.items():
            if isinstance(layer, layers_mod.InputLayer):
                outputs[name] = layer.output
        # Call each layer once its inputs exist (a config lists them in
        # graph order; any order is accepted).
        while pending:
            left = []
            for name, nodes in pending:
                if name in outputs:
                    continue
                if not isinstance(nodes, list) or len(nodes) != 1:
                    raise ValueError(f"layer {name!r}: expected one inbound node, got "
                                     f"{nodes!r:.200}")
                args = _node_args(nodes[0], name)
                if all(h[0] in outputs for h in _histories(args)):
                    outputs[name] = made[name](_resolve(args, outputs))
                else:
                    left.append((name, nodes))
            if len(left) == len(pending):
                raise ValueError("functional config: the inbound nodes of "
                                 f"{[n for n, _ in left]} name layers that are not "
                                 "in the config (or form a cycle)")
            pending = left
        ends = []
        for key in ("input_layers", "output_layers"):
            h = config.get(key)
            if isinstance(h, list) and len(h) == 1 and isinstance(h[0], list):
                h = h[0]
            elif isinstance(h, list) and len(h) > 1 and all(isinstance(e, list) for e in h):
                raise NotImplementedError(
                    f"functional config: {len(h)} {key} (models with several inputs "
                    "or outputs are not supported)")
            if not (isinstance(h, list) and len(h) == 3 and h[0] in outputs):
                raise ValueError(f"functional config: {key} must be [layer name, 0, "
                                 f"0] of a layer of the config, got {h!r:.100}")
            ends.append(outputs[h[0]])
        return cls(ends[0], ends[1], name=config.get("name"))


def _node_args(node, name):
    """The tensors (one, or a list for a merge) of an inbound node; its
    kwargs may only be Keras's record of an inference call."""
    args = node.get("args") if isinstance(node, dict) else None
    kwargs = node.get("kwargs", {}) if isinstance(node, dict) else None
    if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
        raise ValueError(f"layer {name!r}: an inbound node must be {{'args': "
                         f"[tensor or list of tensors], 'kwargs': {{}}}}, got "
                         f"{node!r:.200}")
    if any(k not in ("training", "mask") or v not in (None, False)
           for k, v in kwargs.items()):
        raise ValueError(f"layer {name!r}: call arguments {kwargs!r:.200} are not "
                         "supported (a layer called on its inputs alone)")
    return args[0]


def _histories(arg):
    items = arg if isinstance(arg, list) else [arg]
    out = []
    for t in items:
        h = t.get("config", {}).get("keras_history") if isinstance(t, dict) else None
        if not (isinstance(h, list) and len(h) == 3 and isinstance(h[0], str)):
            raise ValueError(f"expected a __keras_tensor__ with a keras_history "
                             f"[layer, node, index], got {t!r:.200}")
        out.append(h)
    return out


def _resolve(arg, outputs):
    hs = [outputs[h[0]] for h in _histories(arg)]
    return hs if isinstance(arg, list) else hs[0]
