"""The functional API and model inspection against real Keras 3 (issues
15 and 16): the same graphs built with keras and with dropout_engine.keras
take each other's weights and predict the same; layer and weight order,
summary text, get_layer/count_params errors and inputs/outputs are
Keras's."""
import json
import os

import numpy as np
import pytest

if "asan" in os.environ.get("LD_PRELOAD", ""):
    pytest.skip("Keras's imports (C++ exceptions) abort under ASan",
                allow_module_level=True)
os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

from dropout_engine import keras as dk  # noqa: E402
from test_functional import GRAPHS, _random, _x, concat_branches  # noqa: E402


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: g.__name__)
def test_a_keras_model_of_the_same_graph_takes_our_weights_and_predicts_the_same(graph):
    ours = _random(graph(dk))
    theirs = graph(keras)
    assert [type(l).__name__ for l in ours.layers] == \
        [type(l).__name__ for l in theirs.layers]
    assert [w.shape for w in ours.get_weights()] == \
        [tuple(w.shape) for w in theirs.get_weights()]
    theirs.set_weights(ours.get_weights())
    x = _x(ours, 50)
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-5, atol=2e-6)
    back = graph(dk)
    back.set_weights(theirs.get_weights())          # and the other way
    np.testing.assert_array_equal(back.predict(x), ours.predict(x))


def _named_graph(k):
    x = k.Input((5,), name="x")
    late = k.layers.Dense(2, name="late")
    a = k.layers.Dense(3, name="a")(x)
    b = k.layers.Dense(3, name="b")(a)
    c = k.layers.Dense(3, name="c")(x)
    d = k.layers.Dense(3, name="d")(k.layers.Concatenate(name="cat")([c, b]))
    return k.Model(x, late(k.layers.Add(name="add")([d, c, a])), name="named")


def test_layers_and_weights_come_in_keras_order():
    ours, theirs = _named_graph(dk), _named_graph(keras)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert ours.get_config()["input_layers"] == theirs.get_config()["input_layers"]
    assert ours.get_config()["output_layers"] == theirs.get_config()["output_layers"]
    theirs_config = json.loads(json.dumps(theirs.get_config()))
    for o, t in zip(ours.get_config()["layers"], theirs_config["layers"]):
        assert (o["name"], o["class_name"], o["inbound_nodes"]) == \
            (t["name"], t["class_name"], t["inbound_nodes"])


def test_full_batch_training_follows_keras():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 8)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 0.5)
    ours = _random(concat_branches(dk), 2)
    theirs = concat_branches(keras)
    theirs.set_weights(ours.get_weights())
    for m in (ours, theirs):
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=128, epochs=40, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), atol=1e-4)


# ------------------------------------------------------------ inspection
def _summaries(build, **kwargs):
    out = []
    for k in (keras, dk):
        lines = []
        build(k).summary(print_fn=lines.append, **kwargs)
        out.append(lines)
    return out


def _seq(k):
    return k.Sequential([k.Input((8,)), k.layers.Dense(16, activation="relu", name="hidden"),
                         k.layers.Dropout(0.5, name="drop"),
                         k.layers.Dense(3, activation="softmax", name="out")], name="seq")


def _unbuilt(k):
    return k.Sequential([k.layers.Dense(4, name="d1"), k.layers.Dense(2, name="d2")],
                        name="unbuilt")


def _chain(k):
    x = k.Input((8,), name="x")
    return k.Model(x, k.layers.Dense(2, name="o")(k.layers.Dense(4, name="h")(x)),
                   name="chain")


def _dag(k):
    x = k.Input((8,), name="x")
    a = k.layers.Dense(4, activation="relu", name="a_rather_long_branch_name")(x)
    b = k.layers.Dense(3, activation="tanh", name="b")(x)
    c = k.layers.Dropout(0.5, name="dd")(k.layers.Concatenate(name="cat")([a, b]))
    return k.Model(inputs=x, outputs=k.layers.Dense(1234, name="e")(c), name="dag")


def _quantized(k):
    m = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="relu", name="q")],
                     name="quant")
    m.quantize("int8")
    return m


def _trained(k):
    m = k.Sequential([k.Input((3,)), k.layers.Dense(2, name="d")], name="trained")
    m.compile(k.optimizers.Adam(), "mse")
    m.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0)
    return m


@pytest.mark.parametrize("build", [_seq, _unbuilt, _chain, _dag, _named_graph, _quantized,
                                   _trained], ids=lambda b: b.__name__.strip("_"))
@pytest.mark.parametrize("kwargs", [{}, {"line_length": 100}, {"show_trainable": True},
                                    {"line_length": 60, "positions": [0.5, 0.7, 1.0]}],
                         ids=["default", "wide", "trainable", "narrow"])
def test_summary_text_is_keras_own(build, kwargs):
    if "positions" in kwargs and build in (_dag, _named_graph):
        kwargs = dict(kwargs, positions=[0.4, 0.6, 0.8, 1.0])
    theirs, ours = _summaries(build, **kwargs)
    assert len(ours) == len(theirs) == 1       # one call with the whole text
    assert ours[0] == theirs[0]


def test_summary_prints_to_stdout_without_print_fn(capsys):
    _dag(dk).summary()
    out = capsys.readouterr().out
    lines = []
    _dag(dk).summary(print_fn=lines.append)
    assert out == lines[0] and "Connected to" in out


def test_summary_layer_range_as_keras():
    theirs, ours = _summaries(_named_graph, layer_range=["a", "cat"])
    assert ours == theirs
    for k in (keras, dk):
        with pytest.raises(ValueError, match="do not match"):
            _named_graph(k).summary(layer_range=["nope", "a"])


def _raised(fn):
    try:
        fn()
    except Exception as e:      # noqa: BLE001 (the test compares them)
        return type(e), str(e)
    return None


@pytest.mark.parametrize("call", [
    lambda m: m.get_layer("zz"), lambda m: m.get_layer(index=99), lambda m: m.get_layer(),
    lambda m: m.get_layer(name="a", index=1)], ids=["name", "index", "neither", "both"])
@pytest.mark.parametrize("build", [_named_graph, _seq], ids=["functional", "sequential"])
def test_get_layer_errors_are_keras(build, call):
    ours = _raised(lambda: call(build(dk)))
    assert ours is not None and ours == _raised(lambda: call(build(keras)))
    assert build(dk).get_layer(index=1).name == build(keras).get_layer(index=1).name


def test_get_layer_count_params_and_layer_weights_as_keras():
    ours, theirs = _named_graph(dk), _named_graph(keras)
    for i in range(len(theirs.layers)):
        assert ours.get_layer(index=i).name == theirs.get_layer(index=i).name
        assert ours.get_layer(index=i).count_params() == theirs.get_layer(index=i).count_params()
    assert ours.count_params() == theirs.count_params()
    assert ours.get_layer("cat") is ours.layers[4]
    theirs.set_weights(ours.get_weights())
    for o, t in zip(ours.layers, theirs.layers):
        assert [w.shape for w in o.get_weights()] == [w.shape for w in t.get_weights()]
        for a, b in zip(o.get_weights(), t.get_weights()):
            np.testing.assert_array_equal(a, b)
    for k in (dk, keras):
        unbuilt = k.Sequential([k.layers.Dense(3)], name="unb")
        with pytest.raises(ValueError, match=r"You tried to call `count_params` on layer "
                                             r"'unb', but the layer isn't built"):
            unbuilt.count_params()
        with pytest.raises(ValueError, match="but the layer isn't built"):
            k.layers.Dense(3).count_params()
        with pytest.raises(AttributeError, match="has no defined inputs yet"):
            unbuilt.inputs
    for m in (ours, theirs):
        with pytest.raises(ValueError, match=r"You called `set_weights\(weights\)` on layer "
                                             "'a' with a weight list of length 1, but the "
                                             "layer was expecting 2 weights."):
            m.get_layer("a").set_weights([np.zeros((5, 3))])
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(3,\), got \(4,\)"):
        ours.get_layer("a").set_weights([np.zeros((5, 3)), np.zeros(4)])
    kernel = ours.get_layer("a").kernel
    ours.get_layer("a").set_weights([np.ones((5, 3)), np.zeros(3)])
    assert ours.get_layer("a").kernel is kernel and (kernel == 1).all()
    x = np.ones((2, 5), np.float32)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-5)


def test_inputs_and_outputs_as_keras():
    for k in (dk, keras):
        x = k.Input((5,))
        y = k.layers.Dense(2)(k.layers.Dense(3)(x))
        m = k.Model(x, y)
        assert m.inputs == [x] and m.outputs == [y] and m.input is x and m.output is y
        assert tuple(m.outputs[0].shape) == (None, 2)
        s = k.Sequential([k.Input((5,)), k.layers.Dense(2)])
        assert [tuple(t.shape) for t in s.inputs] == [(None, 5)]
        assert [tuple(t.shape) for t in s.outputs] == [(None, 2)]
        assert m.get_layer(index=1).output.shape == (None, 3)
