"""Noise layers anywhere in the stack: Dropout's noise_shape (a broadcast
mask), SpatialDropout1D, GaussianNoise, and GaussianDropout / AlphaDropout
on the input or stacked.  Masks and noise against the numpy definitions of
tests/reference.py, their statistics against Keras's definitions,
gradients against finite differences, inference against real Keras, seeds,
threads, files and the C library."""
import os
import shutil

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import _engine
from dropout_engine.layers import (AlphaDropout, Activation, Dense, Dropout, Flatten,
                                   GaussianDropout, GaussianNoise, Input,
                                   SpatialDropout1D)
from dropout_engine.optimizers import SGD
from reference import (broadcast_keep, dropout_params, finite_differences, keep_mask,
                       noise_mul_add, rng_key)

SAMPLE, STEP, FEATURE = 1, 2, 4
ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


# ------------------------------------------------------------ the kernels
@pytest.mark.parametrize("m,steps,n", [(5, 1, 7), (3, 4, 300), (2, 3, 1), (40, 2, 513)])
@pytest.mark.parametrize("axes", [SAMPLE, FEATURE, STEP, SAMPLE | FEATURE, STEP | FEATURE,
                                  SAMPLE | STEP, 0b111])
@pytest.mark.parametrize("group", [0, 2])
def test_broadcast_mask_is_the_small_masks_draws(m, steps, n, axes, group):
    rng = np.random.default_rng(m * n + axes)
    x = rng.normal(size=(m * steps, n)).astype(np.float32)
    y, mask = x.copy(), np.zeros(-(-x.size // 64), np.uint64)
    key, rate = 12345 + axes, 0.4
    _engine.dropout_bcast(y, mask, steps, axes, group, rate, True, key)
    keep = broadcast_keep(key, m, steps, n, rate, sample=bool(axes & SAMPLE),
                          step=bool(axes & STEP), feature=bool(axes & FEATURE),
                          group=group)
    scale = dropout_params(rate)[1]
    np.testing.assert_array_equal(y, np.where(keep, x * scale, np.float32(0)))
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")[:x.size]
    np.testing.assert_array_equal(bits.reshape(keep.shape).astype(bool), keep)


def test_every_axis_is_the_element_wise_mask():
    x = np.random.default_rng(0).normal(size=(6, 300)).astype(np.float32)
    y, mask = x.copy(), np.zeros(-(-x.size // 64), np.uint64)
    _engine.dropout_bcast(y, mask, 1, 0b111, 0, 0.3, True, 99)
    assert np.array_equal(y != 0, keep_mask(99, 6, 300, 0.3))


def test_broadcast_mask_is_thread_count_independent():
    x = np.random.default_rng(1).normal(size=(512, 300)).astype(np.float32)
    outs = []
    for threads in (1, 2):
        de.set_num_threads(threads)
        y, mask = x.copy(), np.zeros(-(-x.size // 64), np.uint64)
        _engine.dropout_bcast(y, mask, 4, SAMPLE | FEATURE, 0, 0.5, True, 7)
        outs.append((y, mask))
    de.set_num_threads(os.cpu_count() or 1)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_a_dropped_nan_is_zero_and_a_kept_one_stays():
    y = np.full((4, 64), np.nan, np.float32)
    _engine.dropout_bcast(y, np.zeros(4, np.uint64), 1, SAMPLE, 0, 0.5, True, 3)
    dropped = np.all(y == 0, axis=1)
    assert dropped.any() and (~dropped).any() and np.isnan(y[~dropped]).all()


@pytest.mark.parametrize("kind,code,rate", [("gaussian", 1, 0.3), ("alpha", 2, 0.2),
                                            ("additive", 3, 0.7)])
def test_noise_kernel_is_the_reference_draw(kind, code, rate):
    n = 1001
    x = np.random.default_rng(2).normal(size=n).astype(np.float32)
    y, mul = x.copy(), np.empty(n + 1, np.float32)
    _engine.noise(code, rate, 77, y, mul)
    m, a = noise_mul_add(kind, 77, n, rate)
    np.testing.assert_allclose(y, x * m + a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind,code,rate", [("gaussian", 1, 0.3), ("alpha", 2, 0.2),
                                            ("additive", 3, 0.25)])
def test_noise_statistics_are_kerass(kind, code, rate):
    """Keras: GaussianDropout multiplies by N(1, rate / (1 - rate));
    GaussianNoise adds N(0, stddev^2); AlphaDropout keeps a standard
    normal input at mean 0 and variance 1."""
    n = 400_000
    x = np.random.default_rng(3).normal(size=n).astype(np.float32)
    ones = np.ones(n, np.float32)
    y, mul = (x if kind == "alpha" else ones).copy(), np.empty(n + 1, np.float32)
    _engine.noise(code, rate, 5, y, mul)
    if kind == "gaussian":
        assert abs(y.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)
        assert y.var() == pytest.approx(rate / (1 - rate), rel=0.01)
    elif kind == "additive":
        noise = y - 1
        assert abs(noise.mean()) < 5 * rate / np.sqrt(n)
        assert noise.std() == pytest.approx(rate, rel=0.01)
    else:
        assert abs(y.mean()) < 0.01 and y.var() == pytest.approx(1.0, abs=0.01)


# ----------------------------------------------- training: the C loop's steps
def c_gradients(model, x, t):
    """The gradient fit's C loop applies for one full batch of mse: one
    SGD(1.0) step, w0 - w1; and the float64 starting weights."""
    w0 = [w.astype(np.float64) for w in model.get_weights()]
    model.compile(optimizer=SGD(1.0), loss="mse")
    model.fit(x, t, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return [a - b for a, b in zip(w0, model.get_weights())], w0


def check_gradients(model, x, t, forward):
    """C gradients equal finite differences of the float64 forward(ws, x)
    with the step's noise (mse)."""
    got, ws = c_gradients(model, x, t)
    loss = (lambda: np.mean((forward(ws, x) - t) ** 2))
    for g, w in zip(got, ws):
        np.testing.assert_allclose(g, finite_differences(loss, w), rtol=2e-3, atol=2e-5)
    return got, ws


def seeded(layers, seed=0):
    """The model of ``layers`` (a list, or a function making one: then the
    layers' own seeds come from the global seed too) after set_random_seed."""
    de.set_random_seed(seed)
    return de.Sequential(layers() if callable(layers) else layers)


def data(*shape, out=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape).astype(np.float32),
            rng.normal(size=(shape[0], out)).astype(np.float32))


@pytest.mark.parametrize("noise_shape,sample,feature", [((1, 6), False, True),
                                                        ((None, 1), True, False),
                                                        ((1, 1), False, False)])
def test_dropout_noise_shape_on_features_trains_with_its_mask(noise_shape, sample, feature):
    x, t = data(8, 5)
    drop = Dropout(0.5, noise_shape=noise_shape, seed=4)
    model = seeded([Input((5,)), Dense(6, activation="tanh"), drop, Dense(2)])
    keep = broadcast_keep(rng_key(4, 1, 0), 8, 1, 6, 0.5, sample=sample, feature=feature)
    scale = float(dropout_params(0.5)[1])

    def forward(ws, x):
        w1, b1, w2, b2 = ws
        return np.where(keep, np.tanh(x @ w1 + b1) * scale, 0.0) @ w2 + b2
    check_gradients(model, x, t, forward)


def test_spatial_dropout_on_steps_drops_whole_channels():
    x, t = data(6, 4, 3)
    model = seeded([Input((4, 3)), Dense(5, activation="tanh"), SpatialDropout1D(0.4, seed=9),
                    Flatten(), Dense(2)])
    keep = broadcast_keep(rng_key(9, 1, 0), 6, 4, 5, 0.4, step=False)
    scale = float(dropout_params(0.4)[1])
    assert keep.reshape(6, 4, 5).all(axis=1).sum() + (~keep.reshape(6, 4, 5)).all(
        axis=1).sum() == 30                     # each channel kept or dropped whole

    def forward(ws, x):
        w1, b1, w2, b2 = ws
        h = np.tanh(x.reshape(24, 3) @ w1 + b1)
        return np.where(keep, h * scale, 0.0).reshape(6, 20) @ w2 + b2
    check_gradients(model, x, t, forward)


@pytest.mark.parametrize("make,kind,rate", [
    (lambda: GaussianDropout(0.3, seed=21), "gaussian", 0.3),
    (lambda: AlphaDropout(0.2, seed=21), "alpha", 0.2),
    (lambda: GaussianNoise(0.5, seed=21), "additive", 0.5),
    (lambda: SpatialDropout1D(0.5, seed=21), "spatial", 0.5)])
def test_noise_on_the_input_trains_with_its_draw(make, kind, rate):
    """A noise layer first gets an identity stage (C layer 0, stream 1)."""
    spatial = kind == "spatial"
    x, t = data(7, 3, 4) if spatial else data(7, 4)
    model = seeded([Input(x.shape[1:]), make(), Flatten(), Dense(2, activation="tanh")])
    key = rng_key(21, 1, 0)
    if spatial:
        keep = broadcast_keep(key, 7, 3, 4, rate, step=False).reshape(x.shape)
        mul, add = np.where(keep, float(dropout_params(rate)[1]), 0.0), 0.0
    else:
        mul, add = (v.reshape(x.shape) for v in noise_mul_add(kind, key, x.size, rate))

    def forward(ws, x):
        w, b = ws
        return np.tanh((x * mul + add).reshape(7, -1) @ w + b)
    check_gradients(model, x, t, forward)


def test_noise_stacked_after_a_dropout_gets_a_site_of_its_own():
    x, t = data(9, 4)
    drop, noise = Dropout(0.3, seed=2), GaussianNoise(0.4, seed=3)
    model = seeded([Input((4,)), Dense(6, activation="tanh"), drop, noise, Dense(2)])
    assert [s.op for s in model._plan.stages] == [0, 3, 0]     # Dense, identity, Dense
    keep = keep_mask(rng_key(2, 1, 0), 9, 6, 0.3)
    scale = float(dropout_params(0.3)[1])
    _, add = noise_mul_add("additive", rng_key(3, 2, 0), 54, 0.4)

    def forward(ws, x):
        w1, b1, w2, b2 = ws
        h = np.where(keep, np.tanh(x @ w1 + b1) * scale, 0.0) + add.reshape(9, 6)
        return h @ w2 + b2
    check_gradients(model, x, t, forward)


def test_gaussian_noise_after_a_dense_fuses_into_its_site():
    model = seeded([Input((4,)), Dense(6), GaussianNoise(0.1), Dense(2)])
    assert [s.op for s in model._plan.stages] == [0, 0]
    assert model._plan.stages[0][2].noise == 3


# ------------------------------------------------- inference, MC, statistics
@pytest.mark.skipif(ASAN, reason="Keras's imports abort under ASan")
def test_inference_is_the_identity_as_in_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(4).normal(size=(6, 5, 3)).astype(np.float32)
    ours = de.Sequential([Input((5, 3)), GaussianNoise(0.3), SpatialDropout1D(0.2),
                          Dense(4, activation="relu"), Dropout(0.5, noise_shape=(None, 1, 4)),
                          AlphaDropout(0.1), GaussianDropout(0.2), Flatten(),
                          Dense(2, activation="softmax")])
    K = keras.layers
    theirs = keras.Sequential([keras.Input((5, 3)), K.GaussianNoise(0.3),
                               K.SpatialDropout1D(0.2), K.Dense(4, activation="relu"),
                               K.Dropout(0.5, noise_shape=(None, 1, 4)), K.AlphaDropout(0.1),
                               K.GaussianDropout(0.2), K.Flatten(),
                               K.Dense(2, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_mc_pass_shares_a_batch_broadcast_mask_across_rows():
    """noise_shape (1, features): in one Monte-Carlo pass every row gets the
    same mask, as a training batch does; passes differ."""
    model = seeded([Input((64,)), Dense(64, use_bias=False),
                    Dropout(0.5, noise_shape=(1, 64))])
    model.set_weights([np.eye(64, dtype=np.float32)])
    x = np.ones((5, 64), np.float32)
    one, _ = model.predict(x, mc_samples=1)
    assert (one == one[0]).all() and 10 < (one[0] == 0).sum() < 54
    _, std = model.predict(x, mc_samples=8)
    assert std.max() > 0


def test_gaussian_noise_mc_statistics_are_kerass():
    model = seeded([Input((256,)), GaussianNoise(0.3), Dense(256, use_bias=False)])
    model.set_weights([np.eye(256, dtype=np.float32)])
    x = np.full((4, 256), 2.0, np.float32)
    mean, std = model.predict(x, mc_samples=400)
    assert abs(mean.mean() - 2.0) < 0.01
    assert std.mean() == pytest.approx(0.3, rel=0.03)


# --------------------------------------------------- seeds, threads, files
def fitted(layers, seed, threads=None, x=None, t=None, epochs=2):
    if threads:
        de.set_num_threads(threads)
    x, t = (x, t) if x is not None else data(64, 6, 5, out=3, seed=1)
    model = seeded(layers, seed)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, t, batch_size=16, epochs=epochs, verbose=0)
    de.set_num_threads(os.cpu_count() or 1)
    return model.get_weights()


NOISY = lambda: [Input((6, 5)), SpatialDropout1D(0.3), Dense(8, activation="relu"),
                 Dropout(0.4, noise_shape=(1, 1, 8)), GaussianNoise(0.2),
                 Flatten(), AlphaDropout(0.1), Dense(3)]


def test_seeded_fit_is_bit_identical_for_any_thread_count():
    a, b, c = fitted(NOISY, 5, 1), fitted(NOISY, 5, 2), fitted(NOISY, 5)
    for u, v, w in zip(a, b, c):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
    other = fitted(NOISY, 6)
    assert any(not np.array_equal(u, v) for u, v in zip(a, other))


def test_a_dropout_seed_fixes_its_masks_whatever_the_global_seed():
    """Keras's Dropout(seed=): with the same weights and data the layer's
    seed gives the same training whatever the global seed; without one the
    global seed decides."""
    x, t = data(32, 30, out=3, seed=2)

    def run(global_seed, seed):
        de.set_random_seed(global_seed)
        model = de.Sequential([Input((30,)), Dense(8, activation="relu"),
                               Dropout(0.5, seed=seed), Dense(3)])
        rng = np.random.default_rng(11)
        model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                           for w in model.get_weights()])
        model.compile(optimizer=SGD(0.1), loss="mse")
        model.fit(x, t, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()
    same, free = [run(1, 77), run(2, 77)], [run(1, None), run(2, None)]
    for u, v in zip(*same):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(*free))


def test_save_load_round_trip_keeps_layers_seeds_and_training(tmp_path):
    x, t = data(32, 6, 5, out=3, seed=3)
    model = seeded(NOISY, 8)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, t, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.safetensors")
    back = de.load_model(tmp_path / "m.safetensors")
    assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in model.layers]
    for a, b in zip(model.layers, back.layers):
        assert a.get_config() | {"seed": None} == b.get_config() | {"seed": None}
        assert getattr(a, "_seed", None) == getattr(b, "_seed", None)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    for m in (model, back):     # the same masks and noise from here on
        m.fit(x, t, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for u, v in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_configs_are_kerass():
    assert Dropout(0.2, noise_shape=(None, 1, 4)).get_config()["noise_shape"] == [None, 1, 4]
    assert set(SpatialDropout1D(0.2).get_config()) == {"name", "rate", "seed"}
    assert set(GaussianNoise(0.1, seed=3).get_config()) == {"name", "stddev", "seed"}
    assert "noise_shape" not in GaussianDropout(0.1).get_config()
    assert AlphaDropout(0.1).get_config()["noise_shape"] is None


# ------------------------------------------------------------ refusals
def test_what_is_refused_names_the_layer_and_why():
    with pytest.raises(NotImplementedError, match="'ad'.*broadcast noise_shape"):
        de.Sequential([Input((3,)), Dense(4), AlphaDropout(0.1, noise_shape=(1, 4),
                                                           name="ad"), Dense(1)])
    with pytest.raises(ValueError, match="'d'.*must have the input's rank 2"):
        de.Sequential([Input((3,)), Dense(4), Dropout(0.1, noise_shape=(None, 1, 4),
                                                      name="d"), Dense(1)])
    with pytest.raises(ValueError, match="'d'.*does not broadcast"):
        de.Sequential([Input((3,)), Dense(4), Dropout(0.1, noise_shape=(None, 3),
                                                      name="d"), Dense(1)])
    with pytest.raises(ValueError, match="'sd'.*steps, features"):
        de.Sequential([Input((3,)), SpatialDropout1D(0.1, name="sd"), Dense(1)])
    with pytest.raises(ValueError, match="noise_shape"):
        Dropout(0.1, noise_shape=(None, 0))
    with pytest.raises(ValueError, match="stddev"):
        GaussianNoise(1.5)
    with pytest.raises(ValueError, match="'n'.*cannot be fused"):
        de.Sequential([Input((3,)), Dense(4), GaussianNoise(0.1), Activation("tanh", name="n"),
                       Dense(1)])
    # relu commutes with a dropout's 0/1 mask, not with Gaussian factors
    # (which may be negative): the message says so, not the Dropout rule.
    for noise in (GaussianDropout(0.2), AlphaDropout(0.1)):
        kind = type(noise).__name__
        with pytest.raises(ValueError, match=f"'r'.*then {kind}.*before the {kind} "
                                             f"\\(no activation fuses after {kind}"):
            de.Sequential([Input((3,)), Dense(4), noise, Activation("relu", name="r"),
                           Dense(1)])


def test_keras_namespace_exports_them():
    from dropout_engine.keras import layers
    assert layers.GaussianNoise is GaussianNoise
    assert layers.SpatialDropout1D is SpatialDropout1D


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_embedding_library_runs_them_as_the_identity(tmp_path):
    from test_embed import ROOT, _cc, _run_predict, _save
    exe = _cc(tmp_path / "predict", os.path.join(ROOT, "examples", "c", "predict.c"))
    m, path = _save(tmp_path, "noisy", NOISY)
    x = np.random.default_rng(1).normal(size=(5, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(_run_predict(exe, path, x.reshape(5, 30), tmp_path),
                               m.predict(x), rtol=1e-6, atol=1e-6)
