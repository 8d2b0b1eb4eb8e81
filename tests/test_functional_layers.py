"""The functional API with the layers beyond Dense and Dropout: noise layers,
BatchNormalization / LayerNormalization, Flatten/Reshape, Embedding +
GlobalAveragePooling1D, per-step Dense, SpatialDropout1D.  A functional
chain of them trains bit-identically to the same Sequential; a DAG takes
what it can run (predictions against the float64 reference of the graph,
gradients against finite differences, threads, files, ONNX) and refuses the
rest with the layer named (real Keras: test_functional_keras.py)."""
import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import keras as dk
from dropout_engine._plan import OP_EMBED, OP_IDENTITY
from dropout_engine.models import Functional, Model, Sequential
from dropout_engine.training import distribution

import reference as ref
from test_functional import check_mse_gradients

L = dk.layers


# ------------------------------------------------------------- chains
# Each gives (the Input's arguments, the layers after it), fresh layers per call.
def noise_chain():
    return {"shape": (12,)}, [L.GaussianNoise(0.1, seed=1), L.Dense(16, activation="relu"),
                              L.GaussianDropout(0.2, seed=2), L.AlphaDropout(0.1, seed=3),
                              L.Dense(3, activation="softmax")]


def norm_chain():
    return {"shape": (12,)}, [L.Dense(16), L.BatchNormalization(), L.Activation("relu"),
                              L.Dropout(0.3, seed=4), L.Dense(8), L.LayerNormalization(),
                              L.Dense(3, activation="softmax")]


def flatten_chain():
    return {"shape": (4, 3)}, [L.Flatten(), L.Dense(10, activation="tanh"),
                               L.Dropout(0.2, seed=5), L.Dense(3, activation="softmax")]


def embedding_chain():
    return {"shape": (9,), "dtype": "int32"}, [
        L.Embedding(30, 6, mask_zero=True), L.GlobalAveragePooling1D(),
        L.Dense(8, activation="relu"), L.Dropout(0.25, seed=6),
        L.Dense(3, activation="softmax")]


def per_step_chain():
    return {"shape": (4, 3)}, [L.Dense(5, activation="relu"), L.SpatialDropout1D(0.3, seed=7),
                               L.Reshape((20,)), L.Dense(3, activation="softmax")]


CHAINS = [noise_chain, norm_chain, flatten_chain, embedding_chain, per_step_chain]


def _x_for(model, n, seed=1):
    rng = np.random.default_rng(seed)
    if model._vocab():
        return rng.integers(0, model._vocab(), (n,) + model._input_shape)
    return rng.standard_normal((n,) + model._input_shape).astype(np.float32)


def _seeded_fit(model, x, y):
    de.set_random_seed(11)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0)
    return model.get_weights(), h.history


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.__name__)
def test_a_functional_chain_of_the_new_layers_trains_as_the_sequential(chain):
    args, layers = chain()
    seq = Sequential([dk.Input(**args), *layers])
    args, layers = chain()
    x_in = h = dk.Input(**args)
    for layer in layers:
        h = layer(h)
    fun = Model(x_in, h)
    assert not fun._plan.dag
    assert [type(l).__name__ for l in fun.layers[1:]] == [type(l).__name__ for l in seq.layers]
    fun.set_weights(seq.get_weights())
    x = _x_for(seq, 96)
    y = np.random.default_rng(2).integers(0, 3, 96)
    ws, hs = _seeded_fit(seq, x, y)
    wf, hf = _seeded_fit(fun, x, y)
    assert hs == hf
    for a, b in zip(ws, wf):
        assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(seq.predict(x), fun.predict(x))


# --------------------------------------------------------------- DAGs
def flatten_dag(k):
    x = k.Input((4, 5))
    f = k.layers.Flatten()(x)
    a = k.layers.Dense(6, activation="relu")(f)
    b = k.layers.Dense(4, activation="tanh")(f)
    return k.Model(x, k.layers.Dense(3)(k.layers.Concatenate()([a, b])))


def embedding_dag(k):
    x = k.Input((7,), dtype="int32")
    e = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(12, 5, mask_zero=True)(x))
    a = k.layers.Dense(4, activation="relu")(e)
    b = k.layers.Dense(4)(e)
    return k.Model(x, k.layers.Dense(2)(k.layers.Add()([a, b])))


def norm_dag(k):
    x = k.Input((6,))
    a = k.layers.Activation("relu")(k.layers.BatchNormalization()(k.layers.Dense(5)(x)))
    b = k.layers.LayerNormalization()(k.layers.Dense(5, activation="tanh")(x))
    return k.Model(x, k.layers.Dense(2)(k.layers.Dropout(0.2, seed=3)(
        k.layers.Concatenate()([a, b]))))


def noise_dag(k):
    x = k.Input((6,))
    a = k.layers.Dense(5, activation="relu")(k.layers.GaussianNoise(0.2, seed=1)(x))
    b = k.layers.GaussianDropout(0.3, seed=2)(k.layers.Dense(5)(x))
    m = k.layers.AlphaDropout(0.1, seed=3)(k.layers.Add()([a, b]))
    return k.Model(x, k.layers.Dense(2, activation="sigmoid")(m))


DETERMINISTIC = [flatten_dag, embedding_dag]
DAGS = DETERMINISTIC + [norm_dag, noise_dag]


def _random(model, seed=0):
    rng = np.random.default_rng(seed)
    ws = []
    for layer in model.layers:
        for name, w in zip(getattr(layer, "weight_names", ()), layer.weights):
            v = rng.normal(0, 0.6, w.shape)
            if name == "moving_variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            ws.append(v.astype(np.float32))
    model.set_weights(ws)
    return model


@pytest.mark.parametrize("graph", DAGS, ids=lambda g: g.__name__)
def test_a_dag_of_the_new_layers_predicts_as_the_float64_reference(graph):
    m = _random(graph(dk))
    assert isinstance(m, Functional) and m._plan.dag
    x = _x_for(m, 40)
    want = ref.graph_forward(m, x, [w.astype(np.float64) for w in m.get_weights()])
    np.testing.assert_allclose(m.predict(x), want, rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(m.predict(x, batch_size=7), m.predict(x))


def test_an_embedding_dag_fuses_the_mean_into_the_gather():
    m = embedding_dag(dk)
    assert m._plan.stages[0].op == OP_EMBED and m._plan.stages[0].pool
    assert m._plan.stages[0].mask_zero and m._vocab() == 12
    with pytest.raises(ValueError, match="12"):
        m.predict(np.full((2, 7), 12))
    with pytest.raises(TypeError, match="'embedding.*' .*integer token ids"):
        m.predict(np.full((2, 7), 1.0, np.float32))     # not the C fast path


@pytest.mark.parametrize("graph", DETERMINISTIC, ids=lambda g: g.__name__)
def test_dag_gradients_match_finite_differences(graph):
    m = _random(graph(dk), seed=3)
    x = _x_for(m, 10, seed=4)
    check_mse_gradients(m, x, np.random.default_rng(5).standard_normal(
        (10, m._n_out)).astype(np.float32))


def test_batch_normalization_in_a_dag_moves_its_statistics_and_trains():
    m = norm_dag(dk)
    bn = next(l for l in m.layers if type(l).__name__ == "BatchNormalization")
    dense = next(s for s in m._plan.stages if s.norm is not None and s.norm[0] is bn)
    assert dense[0] is bn._inbound_nodes[0].input_tensors[0]._keras_history.operation
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (64, 6)).astype(np.float32)
    y = (x[:, 0] > 3).astype(np.float32)[:, None] * np.ones((1, 2), np.float32)
    m.compile("adam", "mse")
    first = m.evaluate(x, y, verbose=0)
    z = x @ dense[0].kernel + dense[0].bias        # before the step
    m.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    # one step: moving = 0.99 * moving + 0.01 * the batch's mean of Dense(x)
    np.testing.assert_allclose(bn.moving_mean, ref.moving_update(0.0, z.mean(0), 0.99),
                               rtol=1e-5, atol=1e-6)
    m.fit(x, y, batch_size=16, epochs=30, verbose=0)
    assert m.evaluate(x, y, verbose=0) < 0.5 * first


def _fit_weights(graph, x, t, threads):
    before = de.get_num_threads()
    de.set_num_threads(threads)
    try:
        de.set_random_seed(5)
        m = graph(dk)
        m.compile("adam", "mse")
        m.fit(x, t, batch_size=8, epochs=2, verbose=0)
        return m.get_weights()
    finally:
        de.set_num_threads(before)


@pytest.mark.parametrize("graph", [norm_dag, noise_dag, embedding_dag],
                         ids=lambda g: g.__name__)
def test_a_dag_fit_is_bit_identical_for_1_and_2_threads(graph):
    m = graph(dk)
    x = _x_for(m, 48)
    t = np.random.default_rng(1).standard_normal((48, m._n_out)).astype(np.float32)
    one, two, again = (_fit_weights(graph, x, t, n) for n in (1, 2, 2))
    for a, b, c in zip(one, two, again):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_noise_in_a_dag_is_drawn_in_training_and_mc_and_reproducible():
    m = _random(noise_dag(dk))
    assert [s.op for s in m._plan.stages].count(OP_IDENTITY) >= 2   # noise on x, after Add
    x = _x_for(m, 5)
    de.set_random_seed(2)
    mean, std = m.predict(x, mc_samples=64)
    de.set_random_seed(2)
    again = m.predict(x, mc_samples=64)
    np.testing.assert_array_equal(mean, again[0])
    assert (std > 0).all()


@pytest.mark.parametrize("graph", DAGS, ids=lambda g: g.__name__)
def test_a_dag_saves_loads_and_round_trips_its_config(graph, tmp_path):
    m = _random(graph(dk))
    x = _x_for(m, 9)
    path = tmp_path / "m.safetensors"
    m.save(path)
    back = de.saving.load_model(path)
    assert isinstance(back, Functional) and back.get_config() == m.get_config()
    np.testing.assert_array_equal(back.predict(x), m.predict(x))
    clone = Model.from_config(m.get_config())
    clone.set_weights(m.get_weights())
    np.testing.assert_array_equal(clone.predict(x), m.predict(x))


@pytest.mark.parametrize("graph", [flatten_dag, norm_dag, noise_dag], ids=lambda g: g.__name__)
def test_onnx_export_of_a_dag_of_the_new_layers(graph, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from dropout_engine import onnx as de_onnx
    m = _random(graph(dk))
    path = tmp_path / "m.onnx"
    de_onnx.export(m, path)
    x = _x_for(m, 11)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    np.testing.assert_allclose(got, m.predict(x), rtol=1e-5, atol=1e-5)


def test_onnx_export_refuses_an_embedding_dag_naming_it():
    pytest.importorskip("onnx")
    from dropout_engine import onnx as de_onnx
    with pytest.raises(NotImplementedError, match="Layer 'embedding.*is not exported"):
        de_onnx.to_onnx(embedding_dag(dk))


# ------------------------------------------------------------ refused
def _per_step_dense():
    x = dk.Input((4, 3))
    return Model(x, L.Dense(2)(L.Flatten()(L.Concatenate()([L.Dense(2, name="step")(x),
                                                             L.Dense(2)(x)]))))


def _per_step_dense_alone():
    x = dk.Input((4, 3))
    h = L.Dense(5, name="step")(x)
    return Model(x, L.Add()([L.Dense(2)(L.Flatten()(h)), L.Dense(2)(L.Flatten()(x))]))


def _broadcast_mask():
    x = dk.Input((6,))
    a = L.Dropout(0.3, noise_shape=(None, 1), name="bcast")(L.Dense(4)(x))
    return Model(x, L.Add()([a, L.Dense(4)(x)]))


def _spatial():
    x = dk.Input((4, 3))
    s = L.Flatten()(L.SpatialDropout1D(0.2, name="spatial")(x))
    return Model(x, L.Add()([L.Dense(2)(s), L.Dense(2)(L.Flatten()(x))]))


def _embedding_without_pool():
    x = dk.Input((5,), dtype="int32")
    e = L.Flatten()(L.Embedding(10, 3, name="emb")(x))
    return Model(x, L.Add()([L.Dense(2)(e), L.Dense(2)(e)]))


def _pool_elsewhere():
    x = dk.Input((4, 3))
    p = L.GlobalAveragePooling1D(name="gap")(x)
    return Model(x, L.Add()([L.Dense(2)(p), L.Dense(2)(p)]))


def _embedding_after_dropout():
    x = dk.Input((5,), dtype="int32")
    e = L.GlobalAveragePooling1D()(L.Embedding(10, 3, name="emb")(L.Dropout(0.2)(x)))
    return Model(x, L.Add()([L.Dense(2)(e), L.Dense(2)(e)]))


def _merge_of_steps():
    x = dk.Input((4, 3))
    return Model(x, L.Add(name="add_steps")([x, x]))


def _softmax_on_steps():
    x = dk.Input((4, 3))
    s = L.Flatten()(L.Softmax(name="sm")(x))
    return Model(x, L.Add()([L.Dense(2)(s), L.Dense(2)(L.Flatten()(x))]))


REFUSED = {
    "per_step_dense": (_per_step_dense, NotImplementedError, "'add_steps'|'concatenate"),
    "per_step_dense_alone": (_per_step_dense_alone, NotImplementedError,
                             "'step': a Dense on an input of shape"),
    "broadcast_mask": (_broadcast_mask, NotImplementedError, "'bcast': a broadcast"),
    "spatial_dropout": (_spatial, NotImplementedError, "'spatial': a broadcast"),
    "embedding_without_pool": (_embedding_without_pool, NotImplementedError,
                               "'emb': an Embedding .* GlobalAveragePooling1D"),
    "pool_elsewhere": (_pool_elsewhere, NotImplementedError,
                       "'gap': GlobalAveragePooling1D .* right after an Embedding"),
    "embedding_after_dropout": (_embedding_after_dropout, NotImplementedError,
                                "'emb': an Embedding .* must read the model's input"),
    "merge_of_steps": (_merge_of_steps, NotImplementedError,
                       "'add_steps': Add of inputs of shapes"),
    "softmax_on_steps": (_softmax_on_steps, NotImplementedError,
                         "'sm': Softmax on an input of shape"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_a_dag_cannot_run_is_refused_naming_the_layer(case):
    build, error, message = REFUSED[case]
    with pytest.raises(error, match=message):
        build()


class _TwoRanks(distribution.Distribution):
    """What the Trainer sees under mpirun with two ranks (the C hook is
    never reached: the plan refuses first)."""
    world_size = 2
    allreduce = object()


def test_a_dag_in_a_distributed_fit_is_refused_and_a_chain_is_not_asked():
    before = distribution.distribution()
    m = flatten_dag(dk)
    m.compile("sgd", "mse")
    x = _x_for(m, 8)
    t = np.zeros((8, 3), np.float32)
    w = m.get_weights()
    distribution.set_distribution(_TwoRanks())
    try:
        with pytest.raises(NotImplementedError, match="merged branches .* distributed fit"):
            m.fit(x, t, verbose=0)
    finally:
        distribution.set_distribution(before)
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)
