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


def _layers_seq(k):
    return k.Sequential([k.Input((6, 4)), k.layers.Dense(5, activation="relu", name="step"),
                         k.layers.SpatialDropout1D(0.2, name="sd"), k.layers.Flatten(name="f"),
                         k.layers.Dense(8, name="d"), k.layers.BatchNormalization(name="bn"),
                         k.layers.GaussianNoise(0.1, name="gn"),
                         k.layers.Dense(2, name="o")], name="layers_seq")


def _layers_dag(k):
    x = k.Input((9,), dtype="int32", name="ids")
    e = k.layers.GlobalAveragePooling1D(name="gap")(k.layers.Embedding(30, 6, name="emb")(x))
    a = k.layers.LayerNormalization(name="ln")(k.layers.Dense(4, name="a")(e))
    b = k.layers.GaussianDropout(0.1, name="gd")(k.layers.Dense(4, name="b")(e))
    return k.Model(x, k.layers.Dense(2, name="o")(k.layers.Concatenate(name="cat")([a, b])),
                   name="layers_dag")


@pytest.mark.parametrize("build", [_seq, _unbuilt, _chain, _dag, _named_graph, _quantized,
                                   _trained, _layers_seq, _layers_dag],
                         ids=lambda b: b.__name__.strip("_"))
@pytest.mark.parametrize("kwargs", [{}, {"line_length": 100}, {"show_trainable": True},
                                    {"line_length": 60, "positions": [0.5, 0.7, 1.0]}],
                         ids=["default", "wide", "trainable", "narrow"])
def test_summary_text_is_keras_own(build, kwargs):
    if "positions" in kwargs and build in (_dag, _named_graph, _layers_dag):
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


# ------------------------------------------- the new layers, against Keras
from test_functional_layers import (DAGS, _random as _random_layers,  # noqa: E402
                                    _x_for, norm_dag)


@pytest.mark.parametrize("graph", DAGS, ids=lambda g: g.__name__)
def test_dags_of_the_new_layers_predict_as_keras_with_the_same_weights(graph):
    ours, theirs = _random_layers(graph(dk)), graph(keras)
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    theirs.set_weights(ours.get_weights())
    x = _x_for(ours, 30)
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-5, atol=2e-6)


def test_batch_normalization_in_a_dag_trains_as_keras():
    rng = np.random.default_rng(4)
    x = rng.normal(1.0, 2.0, (64, 6)).astype(np.float32)
    t = np.stack([np.tanh(x[:, 0]), x[:, 1] > 0], 1).astype(np.float32)
    ours = _random_layers(norm_dag(dk), 5)
    theirs = norm_dag(keras)
    # without the Dropout's draws, which differ: rate 0 in both
    for m in (ours, theirs):
        next(l for l in m.layers if type(l).__name__ == "Dropout").rate = 0.0
    ours._replan()
    theirs.set_weights(ours.get_weights())
    for m in (ours, theirs):
        m.compile(m is ours and dk.optimizers.SGD(0.05) or keras.optimizers.SGD(0.05), "mse")
        m.fit(x, t, batch_size=64, epochs=20, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------- files
def _keras_mlp(k):
    x = k.Input((8,), name="x")
    a = k.layers.Dense(6, activation="relu", name="a")(x)
    b = k.layers.Dense(5, activation="tanh", name="b")(x)
    c = k.layers.Dropout(0.3, name="drop")(k.layers.Concatenate(name="cat")([a, b]))
    e = k.layers.Add(name="add")([k.layers.Dense(3, name="c")(c),
                                  k.layers.Dense(3, name="skip")(x)])
    return k.Model(x, k.layers.Activation("softmax", name="soft")(e), name="mlp")


def _fitted(model, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 8)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model.compile(k.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return x, y


def test_a_keras_written_functional_file_loads_and_predicts_as_keras(tmp_path):
    theirs = _keras_mlp(keras)
    x, y = _fitted(theirs, keras)
    path = tmp_path / "theirs.keras"
    theirs.save(path)
    ours = dk.saving.load_model(path)
    assert type(ours).__name__ == "Functional" and ours._plan.dag
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations)
    for a, b in zip(ours.optimizer.variables(), [v for v in theirs.optimizer.variables
                                                 if len(v.shape)]):
        np.testing.assert_array_equal(a, np.asarray(b))
    ours.fit(x, y, epochs=1, verbose=0)                  # goes on training
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations) + 1   # 32 rows


def test_our_functional_file_loads_in_keras_and_back(tmp_path):
    ours = _random(_keras_mlp(dk), 3)
    x, _ = _fitted(ours, dk)
    path = tmp_path / "ours.keras"
    ours.save(path)
    theirs = keras.saving.load_model(path)
    assert [l.name for l in theirs.layers] == [l.name for l in ours.layers]
    np.testing.assert_allclose(np.asarray(theirs(x)), ours.predict(x), rtol=1e-6, atol=1e-6)
    assert int(theirs.optimizer.iterations) == ours.optimizer.iterations
    back = dk.saving.load_model(path)
    assert back.get_config() == ours.get_config()
    np.testing.assert_array_equal(back.predict(x), ours.predict(x))


def test_functional_weights_files_trade_with_keras(tmp_path):
    ours, theirs = _random(_keras_mlp(dk), 4), _keras_mlp(keras)
    ours.save_weights(tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    x = np.random.default_rng(2).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(theirs(x)), ours.predict(x), rtol=1e-6, atol=1e-6)
    theirs.set_weights([w * 0.5 for w in theirs.get_weights()])
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)


def _embedding_seq(k):
    return k.Sequential([k.Input((9,), dtype="int32"), k.layers.Embedding(20, 4, mask_zero=True),
                         k.layers.GlobalAveragePooling1D(), k.layers.Dense(3)], name="emb")


def _spatial_seq(k):
    return k.Sequential([k.Input((6, 4)), k.layers.Dense(5, activation="relu"),
                         k.layers.SpatialDropout1D(0.2, seed=3), k.layers.Flatten(),
                         k.layers.Dense(3)], name="spatial")


def _embedding_functional(k):
    x = k.Input((7,), dtype="int32", name="ids")
    e = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(12, 5, mask_zero=True)(x))
    return k.Model(x, k.layers.Add()([k.layers.Dense(2)(e), k.layers.Dense(2)(e)]))


@pytest.mark.parametrize("build", [_embedding_seq, _spatial_seq, _embedding_functional],
                         ids=lambda b: b.__name__.strip("_"))
def test_embedding_and_spatial_dropout_files_trade_with_keras(build, tmp_path):
    theirs = build(keras)
    rng = np.random.default_rng(0)
    theirs.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                        for w in theirs.get_weights()])
    theirs.save(tmp_path / "theirs.keras")
    ours = dk.saving.load_model(tmp_path / "theirs.keras")
    x = _x_for(ours, 12)
    assert x.dtype.kind == ("i" if ours._vocab() else "f")
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)
    ours.save(tmp_path / "ours.keras")
    back = keras.saving.load_model(tmp_path / "ours.keras")
    assert back.get_config()["layers"][0]["config"]["dtype"] == \
        theirs.get_config()["layers"][0]["config"]["dtype"]
    np.testing.assert_allclose(np.asarray(back(x)), ours.predict(x), rtol=1e-6, atol=1e-6)
