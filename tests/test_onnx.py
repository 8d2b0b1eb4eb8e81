"""ONNX export: onnxruntime reproduces predict for every activation."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

import dropout_engine as de  # noqa: E402
from dropout_engine import onnx as de_onnx  # noqa: E402
from dropout_engine.layers import (Activation, AlphaDropout, Dense, Dropout,  # noqa: E402
                                   GaussianDropout, Input)

ACTS = ["linear", "relu", "tanh", "sigmoid", "elu", "selu", "gelu", "softmax"]


def _random(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _max_error(model, tmp_path, rows=33):
    path = tmp_path / "model.onnx"
    de_onnx.export(model, path)
    x = np.random.default_rng(1).normal(0, 1.5, (rows, model._n_in)).astype(np.float32)
    return np.abs(_run(path, x) - model.predict(x)).max()


@pytest.mark.parametrize("act", ACTS)
def test_onnxruntime_matches_predict(act, tmp_path):
    de.set_random_seed(0)
    model = _random(de.Sequential([Input((7,)), Dense(12, activation=act),
                                   Dropout(0.3), Dense(5, activation=act)]), 0)
    assert _max_error(model, tmp_path) < 1e-5


def test_weight_scaling_is_a_mul_and_inverted_dropout_is_absent(tmp_path):
    de.set_random_seed(1)
    model = _random(de.Sequential([
        Input((6,)), Dropout(0.2, scaling="weight"), Dense(9, activation="relu"),
        Dropout(0.5, scaling="weight"), Dense(4), Dropout(0.4),
        Dense(3, activation="sigmoid")]), 1)
    proto = de_onnx.to_onnx(model)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Mul") == 2 and "Dropout" not in ops
    assert _max_error(model, tmp_path) < 1e-5


def test_noise_layers_and_fused_activations_export(tmp_path):
    de.set_random_seed(2)
    model = _random(de.Sequential([
        Input((5,)), Dense(8, activation="selu"), AlphaDropout(0.1), Dense(8),
        Activation("gelu"), Dense(6, activation="tanh"), GaussianDropout(0.2),
        Dense(4, use_bias=False), Activation("softmax")]), 2)
    assert _max_error(model, tmp_path, rows=1) < 1e-5
    assert _max_error(model, tmp_path, rows=64) < 1e-5


def test_batch_dimension_is_symbolic():
    de.set_random_seed(3)
    proto = de_onnx.to_onnx(de.Sequential([Input((4,)), Dense(2)]))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4


def test_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match="not built"):
        de_onnx.to_onnx(de.Sequential([Dense(3)]))


@pytest.mark.parametrize("graph", __import__("test_functional").GRAPHS,
                         ids=lambda g: g.__name__)
def test_functional_dags_export_with_their_merges(graph, tmp_path):
    from dropout_engine import keras as dk
    model = _random(graph(dk), 3)
    assert model._plan.dag
    assert _max_error(model, tmp_path) < 1e-5
