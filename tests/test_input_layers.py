"""Input layers: Flatten and Reshape (image arrays into an MLP, per-step
Dense on [batch, steps, features]), Embedding + GlobalAveragePooling1D (the
bag-of-words MLP of Keras's text tutorials, mask_zero included).  Forward
passes against numpy (tests/reference.py) and real Keras with the same
weights, gradients of the C loop against finite differences, input
validation, determinism, files and the C library."""
import ctypes
import os
import shutil

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import _validation
from dropout_engine.layers import (Dense, Dropout, Embedding, Flatten,
                                   GlobalAveragePooling1D, Input, Reshape,
                                   SpatialDropout1D)
from dropout_engine.optimizers import SGD
from reference import (dropout_params, embedding_mean, embedding_mean_grad, keep_mask,
                       rng_key)
from test_noise_layers import check_gradients

ASAN = "asan" in os.environ.get("LD_PRELOAD", "")
needs_keras = pytest.mark.skipif(ASAN, reason="Keras's imports abort under ASan")


def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def randomized(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def token_ids(n, steps, vocab, seed=0, pad=False):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1 if pad else 0, vocab, size=(n, steps))
    if pad:      # a random length per row, the rest padding (id 0)
        lengths = rng.integers(1, steps + 1, size=n)
        ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int32)


# ------------------------------------------------------ Flatten / Reshape
def test_image_batch_through_flatten_is_the_flat_model():
    x = np.random.default_rng(0).normal(size=(10, 28, 28)).astype(np.float32)
    img = randomized(de.Sequential([Input((28, 28)), Flatten(), Dense(16, activation="relu"),
                                    Dense(3, activation="softmax")]))
    flat = de.Sequential([Input((784,)), Dense(16, activation="relu"),
                          Dense(3, activation="softmax")])
    flat.set_weights(img.get_weights())
    np.testing.assert_array_equal(img.predict(x), flat.predict(x.reshape(10, 784)))
    reshaped = de.Sequential([Input((28, 28)), Reshape((784,)), Dense(16, activation="relu"),
                              Dense(3, activation="softmax")])
    reshaped.set_weights(img.get_weights())
    np.testing.assert_array_equal(reshaped.predict(x), flat.predict(x.reshape(10, 784)))


def test_a_c_contiguous_float32_batch_is_not_copied():
    x = np.zeros((4, 28, 28), np.float32)
    x2, shape = _validation.model_input(x, (28, 28), "flatten")
    assert x2.shape == (4, 784) and shape == (28, 28) and np.shares_memory(x, x2)
    y2, _ = _validation.model_input(np.zeros((4, 28, 28)), (28, 28), "flatten")
    assert y2.dtype == np.float32 and y2.flags.c_contiguous     # float64: converted once


def test_the_input_shape_comes_from_the_first_fit_as_keras():
    x = np.random.default_rng(1).normal(size=(20, 4, 3)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(20, 1)).astype(np.float32)
    model = de.Sequential([Flatten(), Dense(5, activation="tanh"), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model._input_shape == (4, 3) and model.layers[1].kernel.shape == (12, 5)
    legacy = de.Sequential([Flatten(input_shape=(4, 3)), Dense(2)])
    assert legacy.built and legacy.predict(x).shape == (20, 2)


@needs_keras
@pytest.mark.parametrize("name", ["flatten", "reshape_steps", "per_step_flatten",
                                  "per_step_pool", "pool_keepdims", "spatial"])
def test_forward_equals_keras_with_the_same_weights(name):
    k = keras()
    K = k.layers
    build = {
        "flatten": lambda L: [L.Flatten(), L.Dense(7, activation="relu"), L.Dense(3)],
        "reshape_steps": lambda L: [L.Reshape((4, 6)), L.Dense(5, activation="tanh"),
                                    L.Flatten(), L.Dense(2)],
        "per_step_flatten": lambda L: [L.Dense(5, activation="relu"), L.Flatten(),
                                       L.Dense(2, activation="sigmoid")],
        "per_step_pool": lambda L: [L.Dense(5, activation="gelu"), L.Dense(4),
                                    L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")],
        "pool_keepdims": lambda L: [L.GlobalAveragePooling1D(keepdims=True), L.Flatten(),
                                    L.Dense(2)],
        "spatial": lambda L: [L.SpatialDropout1D(0.3), L.Dense(5, activation="relu"),
                              L.Reshape((20,)), L.Dropout(0.2), L.Dense(2)],
    }[name]
    shape = (4, 6) if name != "reshape_steps" else (24,)
    ours = randomized(de.Sequential([Input(shape)] + build(de.layers)))
    theirs = k.Sequential([k.Input(shape)] + build(K))
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(3).normal(size=(9,) + shape).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_summary_shows_per_sample_shapes():
    lines = []
    de.Sequential([Input((5, 4)), Dense(3), GlobalAveragePooling1D(), Dense(2)]).summary(
        print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 5, 3)" in text and "(None, 3)" in text and "(None, 2)" in text


# ------------------------------------------- Embedding + GlobalAveragePooling1D
@pytest.mark.parametrize("mask_zero", [False, True])
def test_bag_of_words_forward_is_the_mean_of_embedding_rows(mask_zero):
    ids = token_ids(12, 9, 30, pad=mask_zero)
    model = randomized(de.Sequential([Input((9,), dtype="int32"),
                                      Embedding(30, 6, mask_zero=mask_zero),
                                      GlobalAveragePooling1D(), Dense(2, activation="tanh")]))
    table, w, b = (v.astype(np.float64) for v in model.get_weights())
    assert model._plan.stages[0].pool            # the gather's own mean
    ref = np.tanh(embedding_mean(ids, table, mask_zero) @ w + b)
    np.testing.assert_allclose(model.predict(ids), ref, rtol=1e-5, atol=1e-6)


def test_masked_mean_of_all_padding_is_nan_as_keras():
    model = de.Sequential([Input((4,)), Embedding(5, 3, mask_zero=True),
                           GlobalAveragePooling1D(), Dense(1)])
    out = model.predict(np.array([[0, 0, 0, 0], [1, 0, 2, 0]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


@needs_keras
@pytest.mark.parametrize("name", ["bag", "bag_masked", "tutorial", "per_step", "flatten",
                                  "per_step_masked"])
def test_embedding_models_equal_keras_with_the_same_weights(name):
    k = keras()
    build = {
        "bag": lambda L: [L.Embedding(40, 8), L.GlobalAveragePooling1D(),
                          L.Dense(4, activation="relu"), L.Dense(1, activation="sigmoid")],
        "bag_masked": lambda L: [L.Embedding(40, 8, mask_zero=True),
                                 L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")],
        # TensorFlow's text classification tutorial (Dropout between).
        "tutorial": lambda L: [L.Embedding(40, 8), L.Dropout(0.2), L.GlobalAveragePooling1D(),
                               L.Dropout(0.2), L.Dense(1)],
        "per_step": lambda L: [L.Embedding(40, 8), L.Dense(5, activation="tanh"),
                               L.GlobalAveragePooling1D(), L.Dense(2)],
        "flatten": lambda L: [L.Embedding(40, 4), L.Flatten(), L.Dense(1, activation="sigmoid")],
        "per_step_masked": lambda L: [L.Embedding(40, 8, mask_zero=True),
                                      L.SpatialDropout1D(0.2), L.Dense(5, activation="relu"),
                                      L.GlobalAveragePooling1D(), L.Dense(2)],
    }[name]
    ids = token_ids(11, 7, 40, seed=4, pad="masked" in name)
    ours = randomized(de.Sequential([Input((7,), dtype="int32")] + build(de.layers)))
    theirs = k.Sequential([k.Input((7,), dtype="int32")] + build(k.layers))
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(ids), theirs.predict(ids, verbose=0),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ gradients
@pytest.mark.parametrize("mask_zero", [False, True])
def test_embedding_table_gradient_is_the_scatter_of_the_mean(mask_zero):
    ids = token_ids(8, 6, 15, seed=5, pad=mask_zero)
    t = np.random.default_rng(5).normal(size=(8, 2)).astype(np.float32)
    model = randomized(de.Sequential([Input((6,)), Embedding(15, 4, mask_zero=mask_zero),
                                      GlobalAveragePooling1D(), Dense(2, activation="tanh")]))

    def forward(ws, x=None):
        table, w, b = ws
        return np.tanh(embedding_mean(ids, table, mask_zero) @ w + b)
    got, ws = check_gradients(model, ids, t, forward)
    table, w, b = ws
    y = forward(ws)
    dh = (2 * (y - t) / y.size * (1 - y**2)) @ w.T
    np.testing.assert_allclose(got[0], embedding_mean_grad(ids, dh, 15, mask_zero),
                               rtol=1e-4, atol=1e-7)
    unused = np.setdiff1d(np.arange(15), ids[ids != 0] if mask_zero else ids)
    assert (got[0][unused] == 0).all()


def test_tutorial_stack_gradients_with_its_dropouts():
    """Embedding, Dropout, GlobalAveragePooling1D, Dropout, Dense: the
    gather, then a separate mean (the first Dropout sits between)."""
    ids = token_ids(6, 5, 12, seed=6)
    t = np.random.default_rng(6).normal(size=(6, 1)).astype(np.float32)
    d1, d2 = Dropout(0.3, seed=31), Dropout(0.4, seed=32)
    model = randomized(de.Sequential([Input((5,)), Embedding(12, 4), d1,
                                      GlobalAveragePooling1D(), d2, Dense(1)]))
    assert [s.op for s in model._plan.stages] == [1, 2, 0]
    k1 = keep_mask(rng_key(31, 1, 0), 30, 4, 0.3).reshape(6, 5, 4)
    k2 = keep_mask(rng_key(32, 2, 0), 6, 4, 0.4)
    s1, s2 = float(dropout_params(0.3)[1]), float(dropout_params(0.4)[1])

    def forward(ws, x=None):
        table, w, b = ws
        h = np.where(k1, table[ids] * s1, 0.0).mean(axis=1)
        return np.where(k2, h * s2, 0.0) @ w + b
    check_gradients(model, ids, t, forward)


def test_per_step_dense_and_masked_pool_gradients():
    ids = token_ids(5, 6, 10, seed=7, pad=True)
    t = np.random.default_rng(7).normal(size=(5, 2)).astype(np.float32)
    model = randomized(de.Sequential([Input((6,)), Embedding(10, 3, mask_zero=True),
                                      Dense(4, activation="tanh"), GlobalAveragePooling1D(),
                                      Dense(2)]))
    assert [s.op for s in model._plan.stages] == [1, 0, 2, 0]
    assert model._plan.stages[2].mask_zero
    valid = (ids != 0).astype(np.float64)

    def forward(ws, x=None):
        table, w1, b1, w2, b2 = ws
        h = np.tanh(table[ids] @ w1 + b1)                      # [n, T, 4]
        pooled = (h * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
        return pooled @ w2 + b2
    check_gradients(model, ids, t, forward)


def test_bag_of_words_learns_in_the_c_loop():
    """A keyword task: the label is whether token 3 occurs."""
    ids = token_ids(600, 12, 50, seed=8, pad=True)
    y = (ids == 3).any(axis=1).astype(np.float32)
    de.set_random_seed(8)
    model = de.Sequential([Input((12,), dtype="int32"), Embedding(50, 16, mask_zero=True),
                           GlobalAveragePooling1D(), Dense(16, activation="relu"),
                           Dense(1, activation="sigmoid")])
    model.compile(optimizer=de.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(ids, y, batch_size=32, epochs=20, verbose=0, validation_split=0.2)
    assert hist.history["val_accuracy"][-1] > 0.95


def test_embedding_training_is_bit_identical_for_any_thread_count():
    ids = token_ids(256, 20, 300, seed=9)
    y = np.random.default_rng(9).normal(size=(256, 1)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        de.set_num_threads(threads)
        de.set_random_seed(9)
        model = de.Sequential([Input((20,)), Embedding(300, 64), SpatialDropout1D(0.2),
                               GlobalAveragePooling1D(), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(ids, y, batch_size=64, epochs=2, verbose=0)
        runs.append(model.get_weights())
    de.set_num_threads(os.cpu_count() or 1)
    for u, v in zip(*runs):
        np.testing.assert_array_equal(u, v)


def test_embeddings_take_their_regularizer_and_constraint():
    from dropout_engine import constraints, regularizers
    ids = token_ids(16, 4, 8, seed=10)
    y = np.zeros((16, 1), np.float32)
    model = de.Sequential([Input((4,)), Embedding(8, 3, embeddings_regularizer=regularizers.l2(0.1),
                                                  embeddings_constraint=constraints.NonNeg()),
                           GlobalAveragePooling1D(), Dense(1)])
    table = model.get_weights()[0].astype(np.float64)
    model.compile(optimizer=SGD(0.5), loss="mse")
    loss = model.evaluate(ids, y, verbose=0)
    pred = model.predict(ids).astype(np.float64)
    assert loss == pytest.approx(np.mean(pred**2) + 0.1 * (table**2).sum(), rel=1e-5)
    model.fit(ids, y, batch_size=16, epochs=1, verbose=0)
    assert (model.get_weights()[0] >= 0).all()


# ------------------------------------------------------------ validation
def test_token_ids_are_validated_with_clear_errors():
    model = de.Sequential([Input((3,)), Embedding(10, 2, name="emb"),
                           GlobalAveragePooling1D(), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="'emb'.*integer token ids.*float32"):
        model.predict(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"'emb'.*\[0, 10\).*10"):
        model.predict(np.array([[1, 2, 10]]))
    with pytest.raises(ValueError, match=r"'emb'.*\[0, 10\).*-1"):
        model.fit(np.array([[1, -1, 2]]), np.zeros(1), verbose=0)
    with pytest.raises(ValueError, match=r"expected input shape \(None, 3\)"):
        model.predict(np.array([[1, 2]]))
    with pytest.raises(TypeError, match="integer token ids.*bool"):
        model.predict(np.ones((1, 3), bool))
    np.testing.assert_array_equal(model.predict(np.array([[1, 2, 3]], np.uint8)),
                                  model.predict(np.array([[1, 2, 3]], np.int64)))


def test_placements_that_cannot_run_are_refused_naming_the_layer():
    with pytest.raises(ValueError, match="'e'.*Embedding must be the model's first layer"):
        de.Sequential([Input((3,)), Dense(3), Embedding(5, 2, name="e"), Flatten(), Dense(1)])
    with pytest.raises(ValueError, match="'e'.*mask_zero=True needs a GlobalAveragePooling1D"):
        de.Sequential([Input((3,)), Embedding(5, 2, mask_zero=True, name="e"), Dense(1)]).build()
    with pytest.raises(ValueError, match="'f'.*would drop the mask"):
        de.Sequential([Input((3,)), Embedding(5, 2, mask_zero=True), Flatten(name="f"),
                       Dense(1)])
    with pytest.raises(ValueError, match=r"output has shape \(None, 3, 2\).*Flatten"):
        de.Sequential([Input((3, 4)), Dense(2)]).build()
    with pytest.raises(ValueError, match="'g'.*steps, features"):
        de.Sequential([Input((3,)), GlobalAveragePooling1D(name="g"), Dense(1)])
    with pytest.raises(ValueError, match="'r'.*cannot reshape"):
        de.Sequential([Input((6,)), Reshape((4, 2), name="r"), Flatten(), Dense(1)])
    with pytest.raises(NotImplementedError, match="'g'.*channels_first"):
        GlobalAveragePooling1D(data_format="channels_first", name="g")
    with pytest.raises(NotImplementedError, match="'p'.*PReLU"):
        de.Sequential([Input((3, 4)), Dense(2), de.layers.PReLU(name="p"), Flatten(), Dense(1)])
    with pytest.raises(ValueError, match="input_dim must be at most"):
        Embedding(2**24 + 1, 2)
    with pytest.raises(ValueError, match="Input: dtype"):
        Input((3,), dtype="float64")
    with pytest.raises(ValueError, match="variable-length"):
        Input((None, 4))


def test_a_partial_stack_waits_for_its_pooling_before_building():
    model = de.Sequential([Input((5, 3)), Dense(4)])
    assert not model.built
    model.add(GlobalAveragePooling1D())
    model.add(Dense(1))
    assert model.built and model.predict(np.zeros((2, 5, 3), np.float32)).shape == (2, 1)


# ------------------------------------------------------------ files, C
MODELS = {
    "image": lambda: [Input((6, 5)), Flatten(), Dense(7, activation="relu"), Dense(3)],
    "steps": lambda: [Input((30,)), Reshape((6, 5)), Dense(4, activation="tanh"), Flatten(),
                      Dense(2, activation="softmax")],
    "bag": lambda: [Input((8,), dtype="int32"), Embedding(20, 6), GlobalAveragePooling1D(),
                    Dense(3, activation="relu"), Dense(1, activation="sigmoid")],
    "bag_masked": lambda: [Input((8,), dtype="int32"), Embedding(20, 6, mask_zero=True),
                           Dropout(0.1), Dense(5, activation="relu"),
                           GlobalAveragePooling1D(keepdims=True), Flatten(), Dense(2)],
    "tutorial": lambda: [Embedding(20, 6, input_length=8), Dropout(0.2),
                         GlobalAveragePooling1D(), Dropout(0.2), Dense(1)],
}


def model_input(name, n=6):
    if name in ("image", "steps"):
        return np.random.default_rng(1).normal(size=(n, 6, 5) if name == "image"
                                               else (n, 30)).astype(np.float32)
    return token_ids(n, 8, 20, seed=2, pad=name == "bag_masked")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip_keeps_predictions_and_training(tmp_path, name):
    x = model_input(name, 24)
    y = np.random.default_rng(3).normal(size=(24, 1)).astype(np.float32)
    de.set_random_seed(3)
    model = de.Sequential(MODELS[name]())
    model.compile(optimizer="adam", loss="mse")
    t = y if model._n_out == 1 else np.repeat(y, model._n_out, axis=1)
    model.fit(x, t, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.safetensors")
    back = de.load_model(tmp_path / "m.safetensors")
    for a, b in zip(model.layers, back.layers):   # the file stores the seed in use
        assert a.get_config() | {"seed": None} == b.get_config() | {"seed": None}
        assert getattr(a, "_seed", None) == getattr(b, "_seed", None)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    for m in (model, back):
        m.fit(x, t, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for u, v in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_c_embedding_library_runs_them(tmp_path, name):
    from test_embed import ROOT, _cc, _run_predict, _save
    exe = _cc(tmp_path / "predict", os.path.join(ROOT, "examples", "c", "predict.c"))
    m, path = _save(tmp_path, name, MODELS[name])
    x = model_input(name)
    np.testing.assert_allclose(_run_predict(exe, path, x.reshape(len(x), -1).astype(
        np.float32), tmp_path), m.predict(x), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_embedding_library_refuses_a_bad_token_id(tmp_path):
    from dropout_engine import config
    from test_embed import _save
    lib = ctypes.CDLL(os.path.join(config.get_lib_dir(), "libdropout_engine.so"))
    lib.de_last_error.restype = ctypes.c_char_p
    lib.de_model_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_size_t, ctypes.c_void_p]
    lib.de_model_free.argtypes = [ctypes.c_void_p]
    _, path = _save(tmp_path, "bag", MODELS["bag"])
    h = ctypes.c_void_p()
    assert lib.de_model_load(os.fsencode(path), ctypes.byref(h)) == 0
    y = np.empty((1, 1), np.float32)
    for bad in (20.0, -1.0, 2.5, np.nan):
        x = np.full((1, 8), 3.0, np.float32)
        x[0, 4] = bad
        assert lib.de_model_predict(h, x.ctypes.data, 1, 8, y.ctypes.data) == -2
        assert b"token id" in lib.de_last_error()
    x = np.full((1, 8), 3.0, np.float32)
    assert lib.de_model_predict(h, x.ctypes.data, 1, 8, y.ctypes.data) == 0
    lib.de_model_free(h)


def test_command_line_info_and_predict_know_the_input_shape(tmp_path, capsys):
    from dropout_engine.cli import main
    from test_embed import _save
    _, path = _save(tmp_path, "image", MODELS["image"])
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "input (None, 6, 5)" in out and "(None, 30)" in out
    (tmp_path / "x.csv").write_text(",".join(f"f{i}" for i in range(30)) + "\n"
                                    + ",".join(["0.5"] * 30) + "\n")
    assert main(["predict", path, str(tmp_path / "x.csv")]) == 2
    assert "input of shape (None, 6, 5)" in capsys.readouterr().err
