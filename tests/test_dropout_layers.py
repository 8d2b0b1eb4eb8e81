"""GaussianDropout and AlphaDropout: Keras's training noise, the identity at
inference, exact gradients in fit's C loop, configs and model files."""
import os
import shutil

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import _engine
from dropout_engine.layers import (AlphaDropout, Dense, Dropout, GaussianDropout,
                                   Input, Activation)
from dropout_engine.optimizers import SGD

from reference import ALPHA_P, noise_mul_add


def gaussian_mul(seed, site, step, n, rate):
    """The multiplier noise.c draws: Box-Muller on the site's bit stream."""
    return noise_mul_add("gaussian", _engine.rng_key(seed, site, step), n, rate)[0]


def alpha_noise(seed, site, step, n, rate):
    """(mul, add) of AlphaDropout as noise.c draws them."""
    return noise_mul_add("alpha", _engine.rng_key(seed, site, step), n, rate)


def one_sgd_step(noise_layer, act):
    """Weights after one full-batch SGD step in C, and a float64 reference."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    t = rng.normal(size=(6, 2)).astype(np.float32)
    de.set_random_seed(1)
    model = de.Sequential([Input((4,)), Dense(5, activation=act), noise_layer, Dense(2)])
    w1, b1, w2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    model.compile(optimizer=SGD(0.1), loss="mse")
    hist = model.fit(x, t, batch_size=6, epochs=1, shuffle=False, verbose=0)

    z = x @ w1 + b1
    h = np.tanh(z) if act == "tanh" else np.where(z > 0, z, 0.0)
    n = h.size
    if isinstance(noise_layer, GaussianDropout):
        mul, add = gaussian_mul(noise_layer._seed, 1, 0, n, noise_layer.rate), np.zeros(n)
    else:
        mul, add = alpha_noise(noise_layer._seed, 1, 0, n, noise_layer.rate)
    mul, add = np.reshape(mul, h.shape), np.reshape(add, h.shape)
    o = h * mul + add
    y = o @ w2 + b2
    loss = np.mean((y - t) ** 2)
    dy = 2 * (y - t) / y.size
    dh = (dy @ w2.T) * mul
    dz = dh * (1 - h**2) if act == "tanh" else dh * (z > 0)
    ref = [w1 - 0.1 * x.T @ dz, b1 - 0.1 * dz.sum(0), w2 - 0.1 * o.T @ dy,
           b2 - 0.1 * dy.sum(0)]
    return model.get_weights(), ref, hist.history["loss"][0], loss


@pytest.mark.parametrize("layer", [lambda: GaussianDropout(0.3, seed=11),
                                   lambda: AlphaDropout(0.2, seed=12)],
                         ids=["gaussian", "alpha"])
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_training_step_matches_numpy_reference(layer, act):
    got, ref, loss, ref_loss = one_sgd_step(layer(), act)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [GaussianDropout, AlphaDropout])
def test_identity_at_inference(cls):
    de.set_random_seed(2)
    a = de.Sequential([Input((5,)), Dense(7, activation="selu"), cls(0.4), Dense(3)])
    b = de.Sequential([Input((5,)), Dense(7, activation="selu"), Dense(3)])
    b.set_weights(a.get_weights())
    x = np.random.default_rng(2).normal(size=(9, 5)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def identity_net(layer, n):
    de.set_random_seed(3)
    model = de.Sequential([Input((n,)), Dense(n, use_bias=False), layer])
    model.set_weights([np.eye(n, dtype=np.float32)])
    return model


def test_gaussian_noise_has_mean_one_and_keras_variance():
    rate, n = 0.4, 512
    model = identity_net(GaussianDropout(rate), n)
    x = np.ones((4, n), np.float32)
    mean, std = model.predict(x, mc_samples=200)
    assert abs(mean.mean() - 1) < 0.01
    assert std.mean() == pytest.approx(np.sqrt(rate / (1 - rate)), rel=0.02)


def test_alpha_dropout_keeps_selu_mean_and_variance():
    rate, n = 0.3, 1000
    model = identity_net(AlphaDropout(rate), n)
    x = np.random.default_rng(4).normal(size=(50, n)).astype(np.float32)
    one, _ = model.predict(x, mc_samples=1)
    assert abs(one.mean()) < 0.02 and abs(one.var() - 1) < 0.03
    a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
    dropped = np.isclose(one, a * ALPHA_P - a * ALPHA_P * rate, atol=1e-6)
    assert abs(dropped.mean() - rate) < 0.01


def test_save_and_load_round_trip(tmp_path):
    de.set_random_seed(5)
    model = de.Sequential([Input((3,)), Dense(4, activation="selu"), AlphaDropout(0.1),
                           Dense(4, activation="relu"), GaussianDropout(0.2), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.safetensors")
    back = de.load_model(tmp_path / "m.safetensors")
    x = np.random.default_rng(5).normal(size=(6, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    kinds = [type(l).__name__ for l in back.layers]
    assert kinds == ["Dense", "AlphaDropout", "Dense", "GaussianDropout", "Dense"]
    assert back.layers[3].get_config()["rate"] == 0.2
    assert back.layers[3]._seed == model.layers[3]._seed
    assert "scaling" not in back.layers[3].get_config()


def test_fit_learns_with_both_layers():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, :2].sum(1) > 0).astype(np.float32)
    de.set_random_seed(6)
    model = de.Sequential([Input((8,)), Dense(32, activation="selu"), AlphaDropout(0.1),
                           Dense(32, activation="relu"), GaussianDropout(0.2),
                           Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    assert hist.history["accuracy"][-1] > 0.85


def test_placement_rules_name_the_layer():
    # On the input and stacked they have sites of their own now
    # (tests/test_noise_layers.py); an activation after one still cannot fuse.
    with pytest.raises(ValueError, match="cannot be fused"):
        de.Sequential([Input((3,)), Dense(2), GaussianDropout(0.1), Activation("relu")])
    with pytest.raises(TypeError, match="scaling"):
        GaussianDropout(0.1, scaling="weight")
    with pytest.raises(ValueError, match="rate"):
        AlphaDropout(1.0)


def test_keras_namespace_exports_them():
    from dropout_engine.keras import layers
    assert layers.GaussianDropout is GaussianDropout
    assert layers.AlphaDropout is AlphaDropout


def test_c_embedding_loader_treats_them_as_identity(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    from test_embed import ROOT, _cc, _run_predict, _save
    exe = _cc(tmp_path / "predict", os.path.join(ROOT, "examples", "c", "predict.c"))
    m, path = _save(tmp_path, "noise", lambda: [
        Input((7,)), Dense(9, activation="selu"), AlphaDropout(0.2),
        Dense(6, activation="tanh"), GaussianDropout(0.3), Dense(3)])
    x = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32)
    np.testing.assert_allclose(_run_predict(exe, path, x, tmp_path), m.predict(x),
                               rtol=1e-6, atol=1e-6)
