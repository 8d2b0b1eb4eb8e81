"""ONNX export: ``dropout_engine.onnx.export(model, path)`` (needs ``onnx``).

The graph is the model at inference, as ``predict`` computes it, from the
same fused plan: per Dense layer a ``Gemm`` (x @ kernel + bias), its
activation, and its dropout as inference sees it; a functional model's
merges become Concat, Add, Sub, Mul, Max, Min (Average: Add, then Div).  Dropout with the default
"inverted" scaling, GaussianDropout and AlphaDropout are the identity and
emit nothing; ``Dropout(scaling="weight")`` (ours) becomes a ``Mul`` by
1 - rate.  Activations: Relu, LeakyRelu, PRelu (the trained alpha), Tanh,
Sigmoid, HardSigmoid (alpha 1/6, beta 1/2: Keras 3's relu6(x + 3) / 6),
Softplus, Elu (its alpha), Selu (Keras's constants), Softmax (last axis),
silu as ``x * Sigmoid(x)``, relu6 and ReLU's general form from Clip /
LessOrEqual / Where, and GELU in Keras's exact form
``0.5 * x * (1 + Erf(x / sqrt(2)))`` built from Erf, which every opset
since 9 has.  BatchNormalization becomes ONNX's BatchNormalization
(inference mode, the moving statistics) and LayerNormalization ONNX's
LayerNormalization (opset 17, last axis), each where the plan puts it:
right after the Gemm, or after the activation ("post"); gamma and beta
default to ones and zeros when the layer has none.  The input is float32 ``[batch, features]`` with a symbolic
batch dimension (``[batch, *shape]`` and a ``Flatten`` for a model whose
Flatten or Reshape comes first); noise layers are the identity.  Models
with an Embedding, a GlobalAveragePooling1D or a Dense on [batch, steps,
features] are not exported (NotImplementedError names the layer).  onnxruntime's output matches ``predict`` to ~1e-6
(tests/test_onnx.py checks 1e-5).
"""
import math

import numpy as np

from . import activations as A
from .layers import merging as M

OPSET = 17
SELU_ALPHA = 1.67326324235437728481704299167176
SELU_SCALE = 1.05070098735548049341933498529460


class _Graph:
    """Nodes and initializers with unique names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, value):
        name = self.name(base)
        self.inits.append(self.numpy_helper.from_array(
            np.asarray(value, np.float32), name))
        return name

    def op(self, op_type, inputs, base=None, **attrs):
        out = self.name(base or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out],
                                                name=self.name(op_type), **attrs))
        return out


def _relu_family(g, act, x):
    """Keras's ReLU: x <= threshold ? slope * (x - threshold) : min(x, max)."""
    slope, mx, thr = act.alpha, act.max_value, act.threshold
    if thr == 0.0 and mx == math.inf:
        return g.op("LeakyRelu", [x], alpha=slope) if slope else g.op("Relu", [x])
    if thr == 0.0 and slope == 0.0:
        return g.op("Clip", [x, g.const("zero", 0.0), g.const("max_value", mx)])
    pos = x if mx == math.inf else g.op("Min", [x, g.const("max_value", mx)])
    neg = (g.op("Mul", [g.op("Sub", [x, g.const("threshold", thr)]),
                        g.const("negative_slope", slope)])
           if slope else g.const("zero", 0.0))
    low = g.op("LessOrEqual", [x, g.const("threshold", thr)])
    return g.op("Where", [low, neg, pos], "relu")


def _activation(g, act, x, layer):
    k = act.kind
    if k == A.LINEAR:
        return x
    if k in (A.RELU, A.LEAKY_RELU, A.RELU6, A.RELU_X):
        return _relu_family(g, act, x)
    if k == A.PRELU:
        return g.op("PRelu", [x, g.const(f"{act.prelu.name}/alpha", act.prelu.alpha)])
    simple = {A.TANH: "Tanh", A.SIGMOID: "Sigmoid", A.SOFTPLUS: "Softplus"}
    if k in simple:
        return g.op(simple[k], [x])
    if k == A.HARD_SIGMOID:
        return g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    if k == A.SILU:
        return g.op("Mul", [x, g.op("Sigmoid", [x])], "silu")
    if k == A.ELU:
        return g.op("Elu", [x], alpha=act.alpha)
    if k == A.SELU:
        return g.op("Selu", [x], alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if k == A.SOFTMAX:
        return g.op("Softmax", [x], axis=-1)
    if k == A.GELU:
        e = g.op("Erf", [g.op("Mul", [x, g.const("inv_sqrt2", 1 / math.sqrt(2))])])
        half_x = g.op("Mul", [x, g.const("half", 0.5)])
        return g.op("Mul", [half_x, g.op("Add", [e, g.const("one", 1.0)])], "gelu")
    raise ValueError(f"Layer '{layer.name}': activation kind {k} has no ONNX export")


def _normalization(g, layer, x):
    """BatchNormalization (moving statistics) or LayerNormalization (last axis)."""
    n = layer.input_dim
    scale = g.const(f"{layer.name}/gamma",
                    layer.gamma if layer.gamma is not None else np.ones(n))
    bias = g.const(f"{layer.name}/beta",
                   layer.beta if layer.beta is not None else np.zeros(n))
    if hasattr(layer, "moving_mean"):
        return g.op("BatchNormalization", [
            x, scale, bias, g.const(f"{layer.name}/moving_mean", layer.moving_mean),
            g.const(f"{layer.name}/moving_variance", layer.moving_variance)],
            layer.name, epsilon=layer.epsilon)
    return g.op("LayerNormalization", [x, scale, bias], layer.name, axis=-1,
                epsilon=layer.epsilon)


def _merge(g, stage, xs):
    """A functional model's merge of its stage's sources, in Keras's order
    of operations (Add, Multiply left to right; Average their sum / n)."""
    kind, name = stage.combine, stage[0].name
    if kind == M.CONCAT:
        return g.op("Concat", xs, name, axis=1)
    if kind in (M.MAXIMUM, M.MINIMUM):
        return g.op("Max" if kind == M.MAXIMUM else "Min", xs, name)
    if kind == M.SUBTRACT:
        return g.op("Sub", xs, name)
    x = xs[0]
    for other in xs[1:]:
        x = g.op("Mul" if kind == M.MULTIPLY else "Add", [x, other], name)
    if kind == M.AVERAGE:
        x = g.op("Div", [x, g.const("count", float(len(xs)))], name)
    return x


def _dropout(g, drop, x):
    """Dropout at inference: identity, or x * (1 - rate) for weight scaling."""
    if drop.rate > 0.0 and not drop.inverted and not drop.noise:
        return g.op("Mul", [x, g.const("keep", 1.0 - drop.rate)], "dropout")
    return x


def to_onnx(model):
    """The model as an ``onnx.ModelProto`` (see the module docstring)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        raise ImportError("dropout_engine.onnx needs the onnx package: "
                          "pip install onnx") from e
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built: give it an input "
                         "shape (Input(shape)) or call fit/predict first")
    # A bfloat16 model exports its rounded kernels as float32 (ONNX runs
    # them as we do: float32 math on those values); int8 is refused.
    if model._plan.quantized == "int8":
        raise NotImplementedError(f"Model '{model.name}' is quantized (int8): ONNX "
                                  "export of quantized models is not supported; "
                                  "export the float model")
    plan, g = model._plan, _Graph(helper, numpy_helper)
    from ._plan import OP_DENSE, OP_IDENTITY
    for stage in plan.stages:
        if stage.op not in (OP_DENSE, OP_IDENTITY) or stage.rows != 1:
            raise NotImplementedError(
                f"Layer '{stage[0].name}': ONNX export covers Dense stacks on "
                f"[batch, features]; {type(stage[0]).__name__} "
                f"{'on steps ' if stage.rows != 1 else ''}is not exported")
    shape = list(plan.input_shape)
    x = g.op("Flatten", ["x"], axis=1) if len(shape) > 1 else "x"
    x = x0 = _dropout(g, plan.input_drop, x)
    outs = []
    for stage, norm in zip(plan.stages, plan.norms):
        layer, act, drop = stage
        if plan.dag:
            x = _merge(g, stage, [x0 if s < 0 else outs[s] for s in stage.sources])
        if stage.op == OP_DENSE:
            inputs = [x, g.const(f"{layer.name}/kernel", layer.kernel)]
            if layer.use_bias:
                inputs.append(g.const(f"{layer.name}/bias", layer.bias))
            x = g.op("Gemm", inputs, layer.name)
        if norm is not None and not norm[1]:
            x = _normalization(g, norm[0], x)
        x = _activation(g, act, x, layer)
        if norm is not None and norm[1]:
            x = _normalization(g, norm[0], x)
        x = _dropout(g, drop, x)
        outs.append(x)
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name="output"))
    graph = helper.make_graph(
        g.nodes, model.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", model._n_out])],
        initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dropout_engine")
    onnx.checker.check_model(proto)
    return proto


def export(model, path):
    """Write ``model`` (a built Sequential or functional model) to ``path``
    as an ONNX file."""
    import onnx
    proto = to_onnx(model)
    onnx.save_model(proto, path)
    return proto
