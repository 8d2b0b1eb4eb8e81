"""Calling a layer or a model on a numpy array, Keras's eager call:
``Dense(4)(x)``, ``Dropout(0.5)(x, training=True)``, ``model(x,
training=True)`` (Monte-Carlo dropout the Keras way)."""
import numpy as np
import pytest

import reference as ref
from dropout_engine import activations
from dropout_engine.layers import (ELU, PReLU, Activation, AlphaDropout, Dense,
                                   Dropout, GaussianDropout, Input, InputLayer,
                                   LeakyReLU, ReLU, Softmax)
from dropout_engine.model import Sequential
from dropout_engine.seeding import set_random_seed


def _x(m=40, k=6, seed=0):
    return np.random.default_rng(seed).standard_normal((m, k)).astype(np.float32)


# ----------------------------------------------------------- Dense
@pytest.mark.parametrize("act", ["linear", "relu", "tanh", "sigmoid", "gelu", "softmax"])
def test_dense_call_builds_from_x_and_computes_act_x_w_plus_b(act):
    x = _x()
    layer = Dense(5, activation=act, bias_initializer="normal")
    y = layer(x)
    assert layer.built and layer.kernel.shape == (6, 5)
    assert y.dtype == np.float32 and y.shape == (40, 5)
    want = ref.activation(act, ref.gemm(x, layer.kernel) + layer.bias)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-6)


def test_dense_call_is_what_predict_computes_bit_for_bit():
    x = _x()
    layer = Dense(7, activation="relu")
    y = layer(x)
    m = Sequential([Input((6,)), layer])
    np.testing.assert_array_equal(m.predict(x), y)
    np.testing.assert_array_equal(m(x), y)


def test_dense_call_takes_any_leading_axes_as_keras():
    x = np.random.default_rng(1).standard_normal((3, 4, 6)).astype(np.float32)
    layer = Dense(2, activation="tanh")
    y = layer(x)
    assert y.shape == (3, 4, 2)
    np.testing.assert_array_equal(y, layer(x.reshape(12, 6)).reshape(3, 4, 2))


def test_dense_call_converts_once_and_checks_the_width():
    x = _x()
    layer = Dense(3)
    y = layer(x.astype(np.float64).tolist())
    np.testing.assert_array_equal(y, layer(x))
    with pytest.raises(ValueError, match=r"Layer 'd1' expected input shape \(None, 6\), got \(40, 5\)"):
        Dense(3, name="d1", input_shape=(6,))(x[:, :5])
    with pytest.raises(ValueError, match=r"expected input shape \(None, 6\), got \(40, 4\)"):
        layer(x[:, :4])
    with pytest.raises(ValueError, match=r"x\[None, :\] or x\.reshape\(1, -1\)"):
        layer(x[0])
    with pytest.raises(TypeError, match="must hold numbers"):
        layer(np.array([["a"] * 6]))
    with pytest.raises(ValueError, match="required"):
        layer(None)


def test_a_layer_built_by_a_call_goes_into_a_model_with_its_weights():
    x = _x()
    layer = Dense(4)
    y = layer(x)
    m = Sequential([layer, Dense(1)])
    m.build((None, 6))
    np.testing.assert_array_equal(m.layers[0].kernel, layer.kernel)
    np.testing.assert_array_equal(m.layers[0](x), y)
    other = Dense(4)
    other(x[:, :3])
    with pytest.raises(ValueError, match=r"expected input shape \(None, 3\)"):
        Sequential([Input((6,)), other])


def test_a_quantized_dense_is_not_called_on_its_own():
    layer = Dense(4)
    layer(_x())
    layer.quantize("int8")
    with pytest.raises(NotImplementedError, match="model.predict"):
        layer(_x())


# ------------------------------------------------------- Dropout
def test_dropout_call_is_the_identity_at_inference_and_a_copy():
    x = _x()
    for training in (None, False):
        y = Dropout(0.5)(x, training=training)
        np.testing.assert_array_equal(y, x)
        assert y is not x
    np.testing.assert_array_equal(Dropout(0.5, scaling="weight")(x),
                                  x * np.float32(0.5))


def test_dropout_call_in_training_drops_and_scales_with_fresh_masks():
    x = np.abs(_x(200, 50)) + 0.5               # no zeros of its own
    layer = Dropout(0.3)
    a, b = layer(x, training=True), layer(x, training=True)
    for y in (a, b):
        kept = y != 0
        assert abs(1 - kept.mean() - 0.3) < 0.02
        np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    assert not np.array_equal(a, b)             # a new mask at each call
    w = Dropout(0.3, scaling="weight")(x, training=True)
    np.testing.assert_array_equal(w[w != 0], x[w != 0])   # unscaled in training


def test_dropout_masks_follow_set_random_seed():
    x = _x()
    runs = []
    for _ in range(2):
        set_random_seed(9)
        layer = Dropout(0.5)
        runs.append([layer(x, training=True) for _ in range(2)])
    for u, v in zip(*runs):
        np.testing.assert_array_equal(u, v)


def test_dropout_call_takes_any_shape_and_keeps_nan_of_kept_units():
    x = np.ones((2, 3, 4), np.float32)
    x[0, 0, 0] = np.nan
    y = Dropout(0.5, seed=3)(x, training=True)
    assert y.shape == (2, 3, 4)
    assert np.isnan(y[0, 0, 0]) or y[0, 0, 0] == 0     # dropped NaN is 0 (Keras 3)
    assert set(np.unique(y[~np.isnan(y)])) <= {0.0, 2.0}
    np.testing.assert_array_equal(Dropout(0.5)(np.float32(2.0)), np.float32(2.0))


def test_gaussian_dropout_call_multiplies_by_noise_of_its_variance():
    rate = 0.2
    x = np.full((400, 250), 3.0, np.float32)
    y = GaussianDropout(rate)(x, training=True)
    noise = y / 3.0
    assert abs(noise.mean() - 1.0) < 5e-3
    assert abs(noise.var() - rate / (1 - rate)) < 5e-3
    np.testing.assert_array_equal(GaussianDropout(rate)(x), x)


def test_alpha_dropout_call_keeps_mean_and_variance_of_selu_activations():
    x = np.random.default_rng(2).standard_normal((400, 250)).astype(np.float32)
    y = AlphaDropout(0.2)(x, training=True)
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1.0) < 0.03
    assert not np.array_equal(y, AlphaDropout(0.2)(x, training=True))
    np.testing.assert_array_equal(AlphaDropout(0.2)(x), x)


# ------------------------------------------------- activation layers
@pytest.mark.parametrize("layer,fn", [
    (Activation("gelu"), activations.gelu), (Activation("softplus"), activations.softplus),
    (ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2),
     lambda x: activations.relu(x, 0.1, 1.0, 0.2)),
    (LeakyReLU(0.25), lambda x: activations.leaky_relu(x, 0.25)),
    (ELU(0.7), lambda x: activations.elu(x, 0.7)), (Softmax(), activations.softmax)])
def test_activation_layers_call_their_functions(layer, fn):
    x = _x()
    x[0, 0] = np.nan
    np.testing.assert_array_equal(layer(x), fn(x))
    np.testing.assert_array_equal(layer(x[:, :3]), fn(x[:, :3]))   # no width pinned


def test_prelu_call_builds_alpha_and_computes_keras_formula():
    x = _x()
    layer = PReLU(alpha_initializer="random_uniform")
    y = layer(x)
    assert layer.alpha.shape == (6,)
    want = np.maximum(x, 0) - layer.alpha * np.maximum(-x, 0)
    np.testing.assert_array_equal(y, want)
    with pytest.raises(ValueError, match=r"expected input shape \(None, 6\)"):
        layer(x[:, :2])


def test_call_arguments_are_checked():
    x = _x()
    with pytest.raises(TypeError, match="training must be True or False"):
        Dropout(0.5)(x, training="yes")
    with pytest.raises(NotImplementedError, match="mask"):
        Dense(2)(x, mask=np.ones(40, bool))
    # Input() is a KerasTensor (the functional API's); its layer is never called.
    with pytest.raises(TypeError, match="is not called"):
        InputLayer(shape=(6,))(x)


# ------------------------------------------------------------ models
def _mc_model(seed=5):
    set_random_seed(seed)
    return Sequential([Input((6,)), Dense(16, activation="relu"), Dropout(0.5),
                       Dense(8, activation="relu"), Dropout(0.5)])


def test_model_call_is_predict_at_inference():
    x = _x()
    m = _mc_model()
    np.testing.assert_array_equal(m(x), m.predict(x))
    np.testing.assert_array_equal(m(x, training=False), m.predict(x))
    assert isinstance(m(x), np.ndarray)


def test_model_call_in_training_drops_units_with_fresh_masks():
    """The last Dropout(0.5) (inverted: kept units times 2 exactly) after
    a relu: every output is 0 or twice a training-mode relu output; two
    calls draw different masks."""
    x = _x(64)
    m = _mc_model()
    a, b = m(x, training=True), m(x, training=True)
    assert a.shape == (64, 8) and a.dtype == np.float32
    assert not np.array_equal(a, b)
    assert 0.45 < (a == 0).mean() < 0.85          # dropped, or relu's zeros
    # Through a purely linear model, the mean of many training calls is the
    # inference output (inverted dropout keeps the expectation).
    set_random_seed(2)
    lin = Sequential([Input((6,)), Dropout(0.3), Dense(3), Dropout(0.2), Dense(2)])
    mean = np.mean([lin(x[:4], training=True) for _ in range(4000)], axis=0)
    np.testing.assert_allclose(mean, lin.predict(x[:4]), atol=0.05)


def test_model_call_in_training_follows_set_random_seed_and_matches_mc_statistics():
    x = _x(8)
    runs = []
    for _ in range(2):
        m = _mc_model(seed=7)
        set_random_seed(11)
        runs.append(m(x, training=True))
    np.testing.assert_array_equal(*runs)
    m = _mc_model()
    n = 3000
    calls = np.stack([m(x, training=True) for _ in range(n)])
    mean, std = m.predict(x, mc_samples=n)
    # Two independent estimates each: six standard errors of their
    # difference (the std's from the fourth moment: the outputs are far
    # from normal, mostly 0 with rare large values).
    s = calls.std(0)
    m4 = ((calls - calls.mean(0)) ** 4).mean(0)
    se_std = np.sqrt(np.maximum(m4 - s ** 4, 0) / (4 * n * s ** 2))
    assert (np.abs(calls.mean(0) - mean) <= 6 * s * np.sqrt(2 / n) + 1e-4).all()
    assert (np.abs(s - std) <= 6 * np.sqrt(2) * se_std + 1e-4).all()


def test_model_call_builds_an_unbuilt_model_and_runs_gaussian_noise():
    x = _x()
    m = Sequential([Dense(4), GaussianDropout(0.3), Dense(1)])
    y = m(x)
    assert m.built and y.shape == (40, 1)
    assert not np.array_equal(m(x, training=True), y)
    no_dropout = Sequential([Input((6,)), Dense(3)])
    np.testing.assert_allclose(no_dropout(x, training=True), no_dropout(x), rtol=1e-6)


def test_model_call_checks_its_input():
    m = _mc_model()
    with pytest.raises(ValueError, match=r"x\[None, :\]"):
        m(_x()[0], training=True)
    with pytest.raises(TypeError, match="training must be True or False"):
        m(_x(), training="no")
    m.quantize("int8")
    with pytest.raises(NotImplementedError, match="training=True"):
        m(_x(), training=True)
    assert m(_x()).shape == (40, 8)


def test_keras_mc_dropout_idiom_runs():
    """The Keras recipe, import changed: a stack of model(x, training=True)."""
    from dropout_engine import keras
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.5),
                              keras.layers.Dense(1, activation="sigmoid")])
    preds = np.stack([np.asarray(model(_x(), training=True)) for _ in range(20)])
    assert preds.shape == (20, 40, 1) and preds.std(axis=0).mean() > 0
