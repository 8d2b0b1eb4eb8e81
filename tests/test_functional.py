"""The functional API (issue 15): Input, layers called on KerasTensors,
Model(inputs, outputs) over chains and DAGs of merged branches.  A chain
runs the C net of the same Sequential (bit-identical training); a DAG's
gradients are checked against finite differences of a float64 reference of
the graph, its predictions against real Keras with the same weights
(test_functional_keras.py), and fit, evaluate, predict, MC dropout,
save/load and quantize run on it as on a Sequential."""
import copy
import pickle

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import keras as dk
from dropout_engine._plan import OP_IDENTITY
from dropout_engine.models import Functional, Model, Sequential

import reference as ref

L = dk.layers


# ------------------------------------------------------------------ graphs
# Each builds a model from a namespace with Input, Model and layers (ours
# here; real Keras in test_functional_keras.py); no dropout unless named.
def concat_branches(k):
    x = k.Input((8,))
    a = k.layers.Dense(6, activation="relu")(x)
    b = k.layers.Dense(5, activation="tanh")(x)
    return k.Model(x, k.layers.Dense(3, activation="softmax")(
        k.layers.Concatenate()([a, b])))


def residual_add(k):
    x = k.Input((6,))
    h = k.layers.Dense(6, activation="relu")(x)
    y = k.layers.Dense(6)(h)
    z = k.layers.Activation("relu")(k.layers.Add()([h, y]))
    return k.Model(inputs=x, outputs=k.layers.Dense(2)(z))


def average_three(k):
    x = k.Input((5,))
    hs = [k.layers.Dense(4, activation=a)(x) for a in ("relu", "sigmoid", "elu")]
    return k.Model(x, k.layers.Dense(1, activation="sigmoid")(k.layers.Average()(hs)))


def multiply_gate(k):
    x = k.Input((7,))
    g = k.layers.Dense(5, activation="sigmoid")(x)
    v = k.layers.Dense(5, activation="tanh")(x)
    return k.Model(x, k.layers.Dense(2)(k.layers.Multiply()([g, v, g])))


def subtract_softmax(k):
    x = k.Input((4,))
    a = k.layers.Dense(4)(x)
    b = k.layers.Dense(4, activation="relu")(x)
    return k.Model(x, k.layers.Dense(3, activation="softmax")(k.layers.Subtract()([a, b])))


def max_min(k):
    x = k.Input((6,))
    a, b, c = (k.layers.Dense(4)(x) for _ in range(3))
    m = k.layers.Concatenate()([k.layers.Maximum()([a, b]), k.layers.Minimum()([b, c, a])])
    return k.Model(x, k.layers.Dense(3)(m))


def input_skip(k):
    x = k.Input((5,))
    h = k.layers.Dense(4, activation="elu")(x)
    return k.Model(x, k.layers.Dense(2)(k.layers.Concatenate()([x, h])))


def fan_out(k):
    # one tensor read by four layers, a merge on the raw input, a merge
    # that is the output, an activation layer on a merge, PReLU on a merge
    x = k.Input((6,))
    h = k.layers.Dense(5, activation="relu")(x)
    a = k.layers.Dense(3)(h)
    b = k.layers.Dense(3, activation="tanh")(h)
    c = k.layers.PReLU(alpha_initializer="random_normal")(k.layers.Add()([a, b]))
    s = k.layers.LeakyReLU(0.1)(h)
    d = k.layers.Dense(3)(k.layers.Concatenate()([s, c, h]))
    e = k.layers.Add()([k.layers.Dense(3)(x), d, a])
    return k.Model(x, k.layers.Softmax()(e))


def unfused_activations(k):
    # after a dropout they do not commute with: stages of their own
    x = k.Input((6,))
    h = k.layers.Dropout(0.3, seed=8)(k.layers.Concatenate()([
        k.layers.Dense(4, activation="relu")(x), k.layers.Dense(3)(x)]))
    s = k.layers.Activation("sigmoid")(h)
    p = k.layers.PReLU()(k.layers.Dropout(0.2, seed=9)(k.layers.Dense(7, activation="relu")(x)))
    return k.Model(x, k.layers.Dense(2)(k.layers.Concatenate()([s, p])))


def dropout_everywhere(k):
    # Dropouts on a branch, after a merge, on a tensor read twice, on the
    # raw input read by nothing else; inference ignores them all
    x = k.Input((8,))
    x1 = k.layers.Dropout(0.1, seed=1)(x)
    a = k.layers.Dropout(0.3, seed=2)(k.layers.Dense(6, activation="relu")(x1))
    b = k.layers.Dense(6)(x1)
    m = k.layers.Dropout(0.2, seed=3)(k.layers.Concatenate()([a, b]))
    c = k.layers.Dense(4, activation="relu")(m)
    d = k.layers.Dropout(0.5, seed=4)(c)
    e = k.layers.GaussianDropout(0.2, seed=5)(k.layers.AlphaDropout(0.1, seed=6)(c))
    return k.Model(x, k.layers.Dense(2, activation="sigmoid")(k.layers.Add()([
        k.layers.Dense(2)(d), k.layers.Dense(2)(e)])))


DETERMINISTIC = [concat_branches, residual_add, average_three, multiply_gate,
                 subtract_softmax, max_min, input_skip, fan_out]
GRAPHS = DETERMINISTIC + [dropout_everywhere, unfused_activations]


def _random(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _x(model, n=12, seed=1):
    return np.random.default_rng(seed).standard_normal((n, model._n_in)).astype(np.float32)


# ------------------------------------------------------------- inference
@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: g.__name__)
def test_predict_matches_the_float64_reference_of_the_graph(graph):
    m = _random(graph(dk))
    assert isinstance(m, Functional) and isinstance(m, Model)
    assert m._plan.dag
    x = _x(m, 40)
    want = ref.graph_forward(m, x, [w.astype(np.float64) for w in m.get_weights()])
    np.testing.assert_allclose(m.predict(x), want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: g.__name__)
def test_predict_in_chunks_and_per_row_agree_bit_for_bit(graph):
    m = _random(graph(dk))
    x = _x(m, 37)
    whole = m.predict(x)
    np.testing.assert_array_equal(m.predict(x, batch_size=5), whole)
    np.testing.assert_array_equal(np.vstack([m.predict(x[i:i + 1]) for i in range(37)]),
                                  whole)


# ------------------------------------------------------------- gradients
def _step_gradients(m, x, t, loss="mse"):
    """One SGD step (lr 1, one batch, no shuffle): before - after is the
    gradient of the loss, for every weight."""
    before = [w.astype(np.float64) for w in m.get_weights()]
    m.compile(de.optimizers.SGD(learning_rate=1.0), loss)
    m.fit(x, t, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return before, [b - a for b, a in zip(before, m.get_weights())]


def check_mse_gradients(m, x, t):
    """The gradients of one full-batch fit step of ``m`` against finite
    differences of the float64 reference of its graph (mse)."""
    before, got = _step_gradients(m, x, t)
    for i, p in enumerate(before):
        fd = ref.finite_differences(
            lambda: ((ref.graph_forward(m, x, before) - t) ** 2).mean(), p)
        np.testing.assert_allclose(got[i], fd, rtol=2e-3, atol=3e-5,
                                   err_msg=f"weight {i} ({m.weights[i].shape})")


@pytest.mark.parametrize("graph", DETERMINISTIC, ids=lambda g: g.__name__)
def test_fit_gradients_match_finite_differences(graph):
    m = _random(graph(dk), seed=3)
    x = _x(m, 10, seed=4)
    check_mse_gradients(m, x, np.random.default_rng(5).standard_normal(
        (10, m._n_out)).astype(np.float32))


def test_softmax_on_a_merge_fuses_with_cross_entropy_and_its_gradient_is_right():
    m = _random(fan_out(dk), seed=6)                 # ends Softmax(Add([...]))
    assert m._plan.stages[-1].op == OP_IDENTITY
    x = _x(m, 10, seed=7)
    t = np.eye(3)[np.random.default_rng(8).integers(0, 3, 10)].astype(np.float32)
    m.compile("sgd", "categorical_crossentropy")
    assert m._fused()
    before, got = _step_gradients(m, x, t, "categorical_crossentropy")

    def loss():
        p = np.clip(ref.graph_forward(m, x, before), 1e-7, 1 - 1e-7)
        return -(t * np.log(p)).sum(1).mean()
    for i, p in enumerate(before):
        np.testing.assert_allclose(got[i], ref.finite_differences(loss, p), rtol=2e-3,
                                   atol=3e-5, err_msg=f"weight {i}")


def test_dropout_after_a_merge_draws_the_masks_of_its_stage():
    """The merge's dropout site is its stage: keys (seed, stage + 1, step)
    as for a Dense's dropout; the gradient matches finite differences of
    the reference with those masks."""
    x_in = dk.Input((5,))
    a = L.Dense(4, activation="tanh")(x_in)
    b = L.Dense(4)(x_in)
    drop = L.Dropout(0.4, seed=7)
    m = _random(Model(x_in, L.Dense(2)(drop(L.Add()([a, b]))), name="m"), 11)
    stage = next(i for i, s in enumerate(m._plan.stages) if s[2].rate)
    assert m._plan.stages[stage].op == OP_IDENTITY         # a GEMM-less stage
    x = _x(m, 9, seed=12)
    t = np.random.default_rng(13).standard_normal((9, 2)).astype(np.float32)
    keep = ref.keep_mask(ref.rng_key(7, stage + 1, 0), 9, 4, 0.4)
    scale = np.float64(ref.dropout_params(0.4)[1])

    def loss(w):
        h = np.asarray(x, np.float64)
        za, zb = np.tanh(h @ w[0] + w[1]), h @ w[2] + w[3]
        s = np.where(keep, (za + zb) * scale, 0.0)
        return (((s @ w[4] + w[5]) - t) ** 2).mean()
    before, got = _step_gradients(m, x, t)
    for i, p in enumerate(before):
        np.testing.assert_allclose(got[i], ref.finite_differences(lambda: loss(before), p),
                                   rtol=2e-3, atol=3e-5, err_msg=f"weight {i}")


# -------------------------------------------- chains: a Sequential's C net
def _chain_layers(k):
    return [k.layers.Dropout(0.2, seed=5), k.layers.Dense(16),
            k.layers.Dropout(0.5, seed=6), k.layers.PReLU(),
            k.layers.Dense(8), k.layers.Activation("tanh"),
            k.layers.Dense(3, activation="softmax")]


def _fit_weights(model, x, y):
    de.set_random_seed(42)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0)
    return model.get_weights(), h.history


def test_a_chain_plans_the_c_net_of_the_same_sequential_and_trains_bit_identically():
    seq = Sequential([dk.Input((10,)), *_chain_layers(dk)])
    x = dk.Input((10,))
    h = x
    for layer in _chain_layers(dk):
        h = layer(h)
    fun = Model(x, h)
    fun.set_weights(seq.get_weights())
    assert not fun._plan.dag
    strip = ("w", "b", "slopes")
    assert [{k: v for k, v in c.items() if k not in strip}
            for c in map(fun._plan._c_layer, fun._plan.stages)] == \
        [{k: v for k, v in c.items() if k not in strip}
         for c in map(seq._plan._c_layer, seq._plan.stages)]
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((96, 10)).astype(np.float32)
    ys = rng.integers(0, 3, 96)
    ws, hs = _fit_weights(seq, xs, ys)
    wf, hf = _fit_weights(fun, xs, ys)
    assert hs == hf
    for a, b in zip(ws, wf):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(seq.predict(xs), fun.predict(xs))


# ------------------------------------------------------ training a DAG
def _data(m, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, m._n_in)).astype(np.float32), \
        rng.standard_normal((n, m._n_out)).astype(np.float32)


def test_a_dag_fit_is_bit_identical_for_1_and_2_threads_and_reruns():
    x, t = _data(dropout_everywhere(dk))
    out = []
    for threads in (1, 2, 2):
        before = de.get_num_threads()
        de.set_num_threads(threads)
        try:
            de.set_random_seed(3)
            m = dropout_everywhere(dk)
            m.compile("adam", "mse")
            m.fit(x, t, batch_size=8, epochs=2, verbose=0)
            out.append(m.get_weights())
        finally:
            de.set_num_threads(before)
    for w in out[1:]:
        for a, b in zip(out[0], w):
            np.testing.assert_array_equal(a, b)


def test_a_dag_learns_and_evaluate_agrees_with_the_reference_loss():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 0.5)
    de.set_random_seed(0)
    m = concat_branches(dk)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    first = m.evaluate(x, y, verbose=0)[0]
    m.fit(x, y, batch_size=16, epochs=100, verbose=0)
    loss, acc = m.evaluate(x, y, verbose=0)
    assert loss < 0.4 * first and acc > 0.85
    p = ref.graph_forward(m, x, [w.astype(np.float64) for w in m.get_weights()])
    want = -np.log(np.clip(p[np.arange(256), y], 1e-7, 1)).mean()
    assert abs(loss - want) < 1e-5


def test_mc_dropout_on_a_dag_is_reproducible_and_unbiased_before_a_linear_output():
    x_in = dk.Input((6,))
    a = L.Dense(5, activation="relu")(x_in)
    b = L.Dense(5, activation="relu")(x_in)
    m = _random(Model(x_in, L.Dense(2)(L.Dropout(0.3)(L.Concatenate()([a, b])))))
    x = _x(m, 4)
    de.set_random_seed(9)
    mean, std = m.predict(x, mc_samples=4000)
    de.set_random_seed(9)
    again = m.predict(x, mc_samples=4000)
    np.testing.assert_array_equal(mean, again[0])
    assert (std > 0).all()
    np.testing.assert_allclose(mean, m.predict(x), atol=6 * std.max() / np.sqrt(4000))


def test_save_load_pickle_and_deepcopy_keep_predictions_and_training(tmp_path):
    m = _random(fan_out(dk))
    x, t = _data(m)
    m.compile("adam", "mse")
    m.fit(x, t, epochs=1, verbose=0)
    path = tmp_path / "m.safetensors"
    m.save(path)
    copies = [de.saving.load_model(path), pickle.loads(pickle.dumps(m)), copy.deepcopy(m)]
    for c in copies:
        assert isinstance(c, Functional)
        assert [type(l).__name__ for l in c.layers] == [type(l).__name__ for l in m.layers]
        assert [l.name for l in c.layers] == [l.name for l in m.layers]
        np.testing.assert_array_equal(c.predict(x), m.predict(x))
        assert c.get_config() == m.get_config()
    de.set_random_seed(4)
    m.fit(x, t, epochs=1, verbose=0)
    for c in copies:
        de.set_random_seed(4)
        c.fit(x, t, epochs=1, verbose=0)
        for a, b in zip(c.get_weights(), m.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_config_round_trip_rebuilds_the_graph():
    m = _random(dropout_everywhere(dk))
    clone = Model.from_config(m.get_config())
    assert isinstance(clone, Functional)
    assert clone.get_config() == m.get_config()
    clone.set_weights(m.get_weights())
    x = _x(m)
    np.testing.assert_array_equal(clone.predict(x), m.predict(x))
    assert [s.sources for s in clone._plan.stages] == [s.sources for s in m._plan.stages]


def test_quantized_dag_predicts_close_to_float_and_reloads(tmp_path):
    m = _random(concat_branches(dk))
    x = _x(m, 30)
    want = m.predict(x)
    m.quantize("int8")
    got = m.predict(x)
    np.testing.assert_allclose(got, want, atol=0.05)
    m.save(tmp_path / "q.safetensors")
    np.testing.assert_array_equal(de.saving.load_model(tmp_path / "q.safetensors").predict(x),
                                  got)


def test_weights_come_in_keras_graph_order_not_creation_order():
    # Keras orders layers by depth (longest path to the output), ties by
    # first visit from the output; test_functional_keras checks the same
    # graph against Keras itself.
    x = dk.Input((5,), name="x")
    late = L.Dense(2, name="late")
    a = L.Dense(3, name="a")(x)
    b = L.Dense(3, name="b")(a)
    c = L.Dense(3, name="c")(x)
    m = Model(x, late(L.Add(name="add")([b, c])))
    assert [l.name for l in m.layers] == ["x", "a", "b", "c", "add", "late"]
    assert [w.shape for w in m.get_weights()] == [(5, 3), (3,), (3, 3), (3,), (5, 3), (3,),
                                                  (3, 2), (2,)]
    assert m.get_weights()[0] is not m.layers[1].kernel
    np.testing.assert_array_equal(m.get_weights()[4], m.get_layer("c").kernel)


# ------------------------------------------------------------------ refused
def test_errors_name_the_layer_and_why():
    x = dk.Input((4,))
    d = L.Dense(3)
    d(x)
    with pytest.raises(NotImplementedError, match="already called.*shared layers"):
        d(x)
    with pytest.raises(TypeError, match="takes one tensor, got a list of 2"):
        L.Dense(2)([x, x])
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        L.Add()(x)
    with pytest.raises(ValueError, match="Inputs have incompatible shapes"):
        L.Add()([x, L.Dense(5)(x)])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        L.Subtract()([x, x, x])
    with pytest.raises(ValueError, match="axis=-1"):
        L.Concatenate(axis=0)
    with pytest.raises(ValueError, match=r"expected input shape \(None, 3\), got \(None, 4\)"):
        L.Dense(2, input_shape=(3,))(x)
    with pytest.raises(NotImplementedError, match="training=True"):
        L.Dropout(0.5)(x, training=True)
    with pytest.raises(NotImplementedError, match="several inputs"):
        Model([x, dk.Input((4,))], L.Dense(1)(x))
    with pytest.raises(TypeError, match="must be a KerasTensor"):
        Model(x, "y")
    with pytest.raises(NotImplementedError, match="subclassed"):
        Model()
    other = dk.Input((4,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(x, L.Add()([L.Dense(2)(x), L.Dense(2)(other)]))
    with pytest.raises(ValueError, match="at least one Dense"):
        Model(x, L.Add()([x, x]))
    with pytest.raises(ValueError, match="Layer 'sig'.*cannot be fused"):   # a chain
        Model(x, L.Activation("sigmoid", name="sig")(L.Dropout(0.5)(
            L.Dense(3, activation="relu")(x))))
    with pytest.raises(TypeError, match="InputLayer .* is not called"):
        x._keras_history.operation(x)


def test_sequential_accepts_an_input_tensor_and_refuses_a_layer_output():
    x = dk.Input((4,))
    s = Sequential([x, L.Dense(2)])
    assert s.inputs[0] is x and s.input is x and s.output.shape == (None, 2)
    with pytest.raises(TypeError, match="got the output of layer"):
        Sequential([L.Dense(3)(dk.Input((4,)))])


def test_merge_layers_are_refused_in_a_sequential():
    with pytest.raises(TypeError, match="Concatenate is not supported in a Sequential"):
        Sequential([dk.Input((4,)), L.Dense(3), L.Concatenate()])


def test_normalization_runs_in_a_functional_chain_and_is_refused_where_a_dag_cannot_fuse_it():
    x = dk.Input((4,))
    chain = Model(x, L.Dense(2)(L.BatchNormalization()(L.Dense(3)(x))))
    seq = Sequential([dk.Input((4,)), L.Dense(3), L.BatchNormalization(), L.Dense(2)])
    seq.set_weights(chain.get_weights())
    xs = np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_array_equal(chain.predict(xs), seq.predict(xs))
    y = dk.Input((4,))
    a = L.Dense(3)(y)
    b = L.Dense(3)(y)
    with pytest.raises(NotImplementedError, match="'bn_dag'.*right after a Dense"):
        Model(y, L.Add()([L.BatchNormalization(name="bn_dag")(L.Add()([a, b])),
                          L.Dense(3)(y)]))
    z = dk.Input((4,))
    c = L.Dense(3)(z)
    with pytest.raises(NotImplementedError, match="'bn_shared'.*nothing else reads"):
        Model(z, L.Add()([L.BatchNormalization(name="bn_shared")(c), c]))


def test_a_graph_deeper_than_the_recursion_limit_builds_and_round_trips():
    import sys
    x = dk.Input((3,))
    h = x
    for _ in range(sys.getrecursionlimit() + 200):
        h = L.Add()([L.Dense(3)(h), h])
    m = Model(x, h)
    assert m._plan.dag and len(m._plan.stages) == 2 * (sys.getrecursionlimit() + 200)
    clone = Model.from_config(m.get_config())
    clone.set_weights(m.get_weights())
    xs = _x(m, 3)
    np.testing.assert_array_equal(clone.predict(xs), m.predict(xs))


def _tampered(tmp_path, change):
    import json
    from dropout_engine.safetensors import load_tensors, save_tensors
    m = concat_branches(dk)
    path = tmp_path / "m.safetensors"
    m.save(path)
    tensors, meta = load_tensors(path)
    config = json.loads(meta["model"])
    change(config)
    meta["model"] = json.dumps(config)
    save_tensors(path, tensors, meta)
    return path


def _set(path, value):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


TAMPERED = {
    "unknown_source": _set(["layers", 1, "inbound_nodes", 0, "args", 0, "config",
                            "keras_history"], ["nope", 0, 0]),
    "no_inbound_node": _set(["layers", 2, "inbound_nodes"], []),
    "two_inbound_nodes": lambda c: c["layers"][2]["inbound_nodes"].append(
        c["layers"][2]["inbound_nodes"][0]),
    "input_is_a_dense": _set(["input_layers"], ["dense", 0, 0]),
    "output_unknown": _set(["output_layers"], ["zz", 0, 0]),
    "merge_of_one_tensor_not_a_list": _set(["layers", 3, "inbound_nodes", 0, "args", 0],
                                           {"class_name": "__keras_tensor__"}),
    "empty_merge": _set(["layers", 3, "inbound_nodes", 0, "args", 0], []),
    "concat_axis_0": _set(["layers", 3, "config", "axis"], 0),
    "layer_reads_itself": lambda c: c["layers"][1]["inbound_nodes"][0]["args"][0][
        "config"].__setitem__("keras_history", [c["layers"][1]["name"], 0, 0]),
    "args_not_a_list": _set(["layers", 1, "inbound_nodes", 0, "args"], "x"),
    "layers_not_dicts": _set(["layers", 1], 5),
    "duplicate_names": lambda c: c["layers"][2].__setitem__("name", c["layers"][1]["name"]),
    "widths_disagree": _set(["layers", 4, "config", "units"], 7),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_functional_config_is_refused_with_a_message(tmp_path, case):
    path = _tampered(tmp_path, TAMPERED[case])
    with pytest.raises(de.saving.ModelFileError, match="invalid|do not match|must be"):
        de.saving.load_model(path)


def _two_branch_classifier(meta):
    x = dk.Input((meta["n_features_in_"],))
    h = L.Concatenate()([L.Dense(8, activation="relu")(x), L.Dense(8, activation="tanh")(x)])
    return Model(x, L.Dense(meta["n_classes_"], activation="softmax")(h))


def test_scikeras_wrappers_take_a_functional_model_and_pickle_it():
    pytest.importorskip("sklearn")
    from dropout_engine.sklearn import KerasClassifier
    build = _two_branch_classifier
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    clf = KerasClassifier(build, loss="sparse_categorical_crossentropy", epochs=3,
                          verbose=0, random_state=0).fit(x, y)
    assert isinstance(clf.model_, Functional)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))
