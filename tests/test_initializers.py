"""Initializers: Keras 3's names, arguments and defaults; the distributions
they draw (moments, bounds, orthogonality); seeding; configs."""
import math
import os

import numpy as np
import pytest

from dropout_engine import initializers as I
from dropout_engine import keras as dk
from dropout_engine.layers import Dense, Input
from dropout_engine.model import Sequential
from dropout_engine.seeding import set_random_seed

SHAPE = (300, 400)          # 120,000 draws: moments to within a few 1e-3


def _keras():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def _moments_close(w, mean, std):
    """The sample mean and std of w against the distribution's, within five
    standard errors (the std's standard error for near-normal data is about
    std / sqrt(2n); uniform data has less)."""
    n = w.size
    assert abs(float(w.mean()) - mean) < 5 * std / math.sqrt(n) + 1e-7
    assert abs(float(w.std()) - std) < 5 * std / math.sqrt(2 * n) + 1e-7


# ------------------------------------------------------------ names
@pytest.mark.parametrize("name,cls", [
    ("normal", I.RandomNormal), ("random_normal", I.RandomNormal),
    ("uniform", I.RandomUniform), ("random_uniform", I.RandomUniform),
    ("zeros", I.Zeros), ("zero", I.Zeros), ("ones", I.Ones), ("one", I.Ones),
    ("truncated_normal", I.TruncatedNormal), ("orthogonal", I.Orthogonal),
    ("OrthogonalInitializer", I.Orthogonal), ("variance_scaling", I.VarianceScaling),
    ("constant", I.Constant), ("identity", I.Identity),
    ("IdentityInitializer", I.Identity), ("glorot_uniform", I.GlorotUniform),
    ("glorot_normal", I.GlorotNormal), ("he_uniform", I.HeUniform),
    ("he_normal", I.HeNormal), ("lecun_uniform", I.LecunUniform),
    ("lecun_normal", I.LecunNormal), ("TruncatedNormal", I.TruncatedNormal),
])
def test_keras_names_resolve_to_their_classes(name, cls):
    assert type(I.get(name)) is cls
    assert type(I.get(cls)) is cls              # a class: Keras instantiates it
    assert type(Dense(2, kernel_initializer=name).kernel_initializer) is cls


def test_defaults_are_keras_3s():
    assert I.RandomNormal().get_config() == {"seed": None, "mean": 0.0, "stddev": 0.05}
    assert I.RandomUniform().get_config() == {"seed": None, "minval": -0.05,
                                              "maxval": 0.05}
    assert I.TruncatedNormal().get_config() == {"seed": None, "mean": 0.0,
                                                "stddev": 0.05}
    assert I.Orthogonal().get_config() == {"seed": None, "gain": 1.0}
    assert I.VarianceScaling().get_config() == {
        "seed": None, "scale": 1.0, "mode": "fan_in",
        "distribution": "truncated_normal", "input_axes": None, "output_axes": None}
    assert I.Constant().get_config() == {"value": 0.0}
    assert I.Zeros().get_config() == {} == I.Ones().get_config()
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"


def test_the_lower_case_names_are_the_classes_in_both_namespaces():
    for low, cls in [("zeros", "Zeros"), ("ones", "Ones"), ("constant", "Constant"),
                     ("random_normal", "RandomNormal"), ("random_uniform", "RandomUniform"),
                     ("truncated_normal", "TruncatedNormal"), ("orthogonal", "Orthogonal"),
                     ("variance_scaling", "VarianceScaling"), ("identity", "Identity"),
                     ("he_normal", "HeNormal"), ("glorot_uniform", "GlorotUniform")]:
        assert getattr(I, low) is getattr(I, cls)
        assert getattr(dk.initializers, low) is getattr(I, cls)
        assert getattr(dk.initializers, cls) is getattr(I, cls)


def test_keras_configs_load_and_serialize_back():
    keras = _keras()
    ki = keras.initializers
    for k in [ki.RandomNormal(0.1, 0.2, seed=3), ki.RandomUniform(-1.0, 2.0),
              ki.TruncatedNormal(stddev=0.3, seed=1), ki.Orthogonal(gain=2.0),
              ki.VarianceScaling(2.0, "fan_avg", "uniform"), ki.GlorotUniform(seed=5),
              ki.HeNormal(), ki.LecunUniform(), ki.Constant(3.0), ki.Zeros(), ki.Ones(),
              ki.get("normal"), ki.get("uniform")]:
        config = ki.serialize(k)
        ours = I.get(config)
        assert type(ours).__name__ == type(k).__name__
        assert ours.get_config() == k.get_config()
    # Keras 3's Identity config leaves its gain out (it loads as 1.0); ours
    # keeps it.
    assert I.get(ki.serialize(ki.Identity(gain=0.5))).gain == 1.0
    assert I.Identity(0.5).get_config() == {"gain": 0.5}


# ------------------------------------------------------- distributions
def test_random_normal_has_its_mean_and_stddev():
    _moments_close(I.RandomNormal(mean=1.5, stddev=2.0, seed=0)(SHAPE), 1.5, 2.0)
    _moments_close(I.get("normal")(SHAPE), 0.0, 0.05)


def test_random_uniform_stays_in_its_range_with_its_moments():
    w = I.RandomUniform(minval=-1.0, maxval=3.0, seed=1)(SHAPE)
    assert w.min() >= -1.0 and w.max() < 3.0
    _moments_close(w, 1.0, 4.0 / math.sqrt(12.0))
    w = I.get("uniform")(SHAPE)
    assert w.min() >= -0.05 and w.max() < 0.05


def test_truncated_normal_is_cut_at_two_stddev_and_shrinks_its_std():
    mean, sd = 0.5, 2.0
    w = I.TruncatedNormal(mean=mean, stddev=sd, seed=2)(SHAPE)
    assert w.min() >= mean - 2 * sd and w.max() <= mean + 2 * sd
    # Most of the mass is kept: the edges are reached, not clipped to.
    assert w.min() < mean - 1.95 * sd and w.max() > mean + 1.95 * sd
    assert not np.any(np.isin(w, [mean - 2 * sd, mean + 2 * sd]))
    _moments_close(w, mean, 0.87962566103423978 * sd)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("dist", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_has_variance_scale_over_fan(mode, dist):
    shape, scale = (200, 600), 3.0
    n = {"fan_in": 200, "fan_out": 600, "fan_avg": 400}[mode]
    w = I.VarianceScaling(scale, mode, dist, seed=4)(shape)
    std = math.sqrt(scale / n)
    _moments_close(w, 0.0, std)
    if dist == "uniform":
        assert np.abs(w).max() <= math.sqrt(3) * std
    if dist == "truncated_normal":
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978


@pytest.mark.parametrize("cls,var", [
    (I.GlorotUniform, lambda i, o: 2 / (i + o)), (I.GlorotNormal, lambda i, o: 2 / (i + o)),
    (I.HeUniform, lambda i, o: 2 / i), (I.HeNormal, lambda i, o: 2 / i),
    (I.LecunUniform, lambda i, o: 1 / i), (I.LecunNormal, lambda i, o: 1 / i)])
def test_glorot_he_lecun_have_their_variances(cls, var):
    w = cls(seed=7)((250, 500))
    _moments_close(w, 0.0, math.sqrt(var(250, 500)))


def test_fans_follow_keras_for_1d_nd_and_explicit_axes():
    assert I.compute_fans((7,)) == (7, 7)
    assert I.compute_fans(()) == (1, 1)
    assert I.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert I.compute_fans((4, 5, 6), input_axes=[0, 1], output_axes=[2]) == (20, 6)
    w = I.VarianceScaling(1.0, "fan_in", "uniform", input_axes=[0, 1],
                          output_axes=[2], seed=0)((20, 30, 50))
    assert np.abs(w).max() <= math.sqrt(3 / 600)


@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (32, 32), (4, 8, 16)])
def test_orthogonal_gives_orthonormal_columns_or_rows_times_gain(shape):
    gain = 1.7
    q = I.Orthogonal(gain=gain, seed=3)(shape).astype(np.float64)
    m = q.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(gram.shape[0]), atol=1e-5)


def test_orthogonal_needs_two_dimensions_and_identity_exactly_two():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        I.Orthogonal()((5,))
    np.testing.assert_array_equal(I.Identity(gain=2.0)((3, 4)), 2 * np.eye(3, 4))
    with pytest.raises(ValueError, match="only be used for 2D"):
        I.Identity()((2, 2, 2))


def test_constants_fill_and_dtype_is_honoured():
    np.testing.assert_array_equal(I.Constant(2.5)((2, 3)), np.full((2, 3), 2.5))
    assert I.Zeros()((4,)).sum() == 0 and I.Ones()((2, 2)).sum() == 4
    assert I.get("one")((3,)).dtype == np.float32
    assert I.RandomNormal(seed=0)((3,), dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="float arrays"):
        I.Zeros()((3,), dtype="int32")


# ------------------------------------------------------------ seeding
@pytest.mark.parametrize("cls", [I.RandomNormal, I.RandomUniform, I.TruncatedNormal,
                                 I.Orthogonal, I.VarianceScaling, I.GlorotUniform,
                                 I.HeNormal])
def test_a_seed_gives_the_same_values_every_call_and_another_seed_others(cls):
    a = cls(seed=11)((20, 30))
    np.testing.assert_array_equal(a, cls(seed=11)((20, 30)))
    init = cls(seed=11)
    np.testing.assert_array_equal(init((20, 30)), init((20, 30)))
    assert not np.array_equal(a, cls(seed=12)((20, 30)))


def test_unseeded_draws_follow_set_random_seed():
    def model_weights():
        set_random_seed(5)
        m = Sequential([Input((6,)), Dense(4, kernel_initializer="orthogonal",
                                           bias_initializer="normal"),
                        Dense(2, kernel_initializer="truncated_normal")])
        return m.get_weights()
    a, b = model_weights(), model_weights()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    init = I.RandomNormal()            # unseeded: a fresh draw each call
    assert not np.array_equal(init((10,)), init((10,)))


# ------------------------------------------------------------ configs
@pytest.mark.parametrize("init", [
    I.RandomNormal(0.3, 0.1, seed=1), I.RandomUniform(0.0, 2.0, seed=2),
    I.TruncatedNormal(1.0, 0.5, seed=3), I.Orthogonal(0.5, seed=4),
    I.VarianceScaling(2.0, "fan_out", "uniform", seed=5), I.Constant(-1.25),
    I.Identity(3.0), I.GlorotNormal(seed=6), I.LecunUniform(seed=7), I.Zeros(), I.Ones()])
def test_get_config_round_trips(init):
    again = type(init).from_config(init.get_config())
    assert again.get_config() == init.get_config()
    back = I.get(I.serialize(init))
    assert type(back) is type(init) and back.get_config() == init.get_config()
    np.testing.assert_array_equal(back((6, 5)), init((6, 5)))


def test_a_model_file_keeps_the_initializers(tmp_path):
    from dropout_engine.saving import load_model
    m = Sequential([Input((3,)), Dense(4, kernel_initializer=I.Orthogonal(2.0, seed=1),
                                       bias_initializer="normal")])
    m.save(tmp_path / "m.safetensors")
    layer = load_model(tmp_path / "m.safetensors").layers[0]
    assert layer.kernel_initializer.get_config() == {"seed": 1, "gain": 2.0}
    assert type(layer.bias_initializer) is I.RandomNormal


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: I.RandomNormal(stddev=-1.0), ValueError, "stddev must be >= 0"),
    (lambda: I.RandomNormal(mean="a"), TypeError, "mean must be a finite number"),
    (lambda: I.RandomUniform(maxval=float("inf")), TypeError, "maxval"),
    (lambda: I.VarianceScaling(scale=0.0), ValueError, "scale must be > 0"),
    (lambda: I.VarianceScaling(mode="fan"), ValueError, "Invalid `mode`"),
    (lambda: I.VarianceScaling(distribution="gamma"), ValueError, "Invalid `distribution`"),
    (lambda: I.Orthogonal(seed=1.5), TypeError, "seed must be an int or None"),
    (lambda: I.Constant([1, 2]), TypeError, "value must be a finite number"),
    (lambda: I.get("glorot"), ValueError, "Unknown initializer 'glorot'"),
    (lambda: I.Zeros()((2, -1)), ValueError, "ints >= 0"),
    (lambda: I.deserialize("zeros"), TypeError, "config dict"),
])
def test_bad_arguments_are_named(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
