"""Losses: Keras's values, and gradients against finite differences, for
the loss kernel alone and for every loss/activation pair through a model's
training step."""
import numpy as np
import pytest

import reference as ref
from dropout_engine import _engine, losses
from dropout_engine.layers import Dense
from dropout_engine.model import Sequential
from dropout_engine.optimizers import SGD

KINDS = {"mse": losses.MSE, "mae": losses.MAE, "bce": losses.BCE,
         "cce": losses.CCE, "scce": losses.SCCE}
CLASSES = {"mse": losses.MeanSquaredError, "mae": losses.MeanAbsoluteError,
           "bce": losses.BinaryCrossentropy, "cce": losses.CategoricalCrossentropy,
           "scce": losses.SparseCategoricalCrossentropy}
KERAS_NAMES = {"mse": "mse", "mae": "mae", "bce": "binary_crossentropy",
               "cce": "categorical_crossentropy",
               "scce": "sparse_categorical_crossentropy"}


def _case(name, m=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, (m, k))
    if name in ("cce", "scce"):
        p /= p.sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, m)
    if name == "scce":
        t = labels.astype(np.float64)[:, None]
    elif name == "cce":
        t = np.eye(k)[labels]
    elif name == "bce":
        t = rng.integers(0, 2, (m, k)).astype(np.float64)
    else:
        t = rng.normal(size=(m, k))
    return p.astype(np.float32), t.astype(np.float32)


@pytest.mark.parametrize("name", list(KINDS))
def test_loss_value_matches_keras_formula(name):
    p, t = _case(name)
    got = CLASSES[name]()(t, p)
    assert got == pytest.approx(ref.loss(name, t, p), rel=1e-6)


def test_loss_clips_saturated_probabilities_like_keras():
    p = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    t = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    for name in ("bce", "cce"):
        got = CLASSES[name]()(t, p)
        assert np.isfinite(got)
        assert got == pytest.approx(ref.loss(name, t, p), rel=1e-6)


def _fd(f, x, h=1e-6):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


@pytest.mark.parametrize("name", list(KINDS))
def test_loss_gradient_wrt_probabilities_matches_finite_differences(name):
    p, t = _case(name, seed=1)
    g = np.zeros_like(p)
    _engine.loss_rows(KINDS[name], p, t, g, False, 1.0 / p.shape[0])
    want = _fd(lambda q: ref.loss(name, t, q), p)
    np.testing.assert_allclose(g, want, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("name,act", [("cce", "softmax"), ("scce", "softmax"),
                                      ("bce", "sigmoid")])
def test_fused_gradient_is_the_gradient_through_the_activation(name, act):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 3))
    _, t = _case(name, m=5, k=3, seed=2)
    p = ref.activation(act, z).astype(np.float32)
    g = np.zeros_like(p)
    _engine.loss_rows(KINDS[name], p, t, g, True, 1.0 / 5)
    want = _fd(lambda zz: ref.loss(name, t, ref.activation(act, zz)), z)
    np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-6)


PAIRS = ([(l, a) for l in ("mse", "mae") for a in
          ("linear", "relu", "tanh", "sigmoid", "elu", "selu", "gelu", "softmax")]
         + [("bce", "sigmoid"), ("bce", "softmax"), ("cce", "softmax"),
            ("cce", "sigmoid"), ("scce", "softmax"), ("scce", "sigmoid")])


@pytest.mark.parametrize("name,act", PAIRS)
def test_model_step_gradient_matches_finite_differences(name, act):
    """One full-batch SGD step moves the weights by -lr * the gradient of
    Keras's loss of act(x @ w + b): checked against finite differences."""
    rng = np.random.default_rng(3)
    m, d, k, lr = 8, 5, 3, 1e-3
    x = rng.normal(size=(m, d)).astype(np.float32)
    _, t = _case(name, m=m, k=k, seed=4)
    model = Sequential([Dense(k, activation=act, input_shape=(d,))])
    model.compile(optimizer=SGD(lr), loss=KERAS_NAMES[name])
    w0 = [rng.normal(scale=0.5, size=(d, k)).astype(np.float32),
          rng.normal(scale=0.1, size=k).astype(np.float32)]
    model.set_weights(w0)
    y = t.ravel() if name == "scce" else t
    model.fit(x, y, batch_size=m, epochs=1, shuffle=False, verbose=0)
    w1 = model.get_weights()
    x64 = x.astype(np.float64)

    def total(wflat):
        w, b = wflat[:d * k].reshape(d, k), wflat[d * k:]
        return ref.loss(name, t, ref.activation(act, x64 @ w + b))
    flat = np.concatenate([w0[0].ravel(), w0[1]]).astype(np.float64)
    want = _fd(total, flat)
    got = np.concatenate([(w0[0] - w1[0]).ravel(), w0[1] - w1[1]]) / lr
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-4)


def test_standalone_losses_and_metrics_check_shapes():
    from dropout_engine import metrics
    p = np.full((3, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\), y_pred \(3, 4\)"):
        losses.CategoricalCrossentropy()(np.zeros(3), p)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 1, 9]), p)
    acc = metrics.SparseCategoricalAccuracy()
    acc.update_state(np.array([0, 1, 2]), np.eye(3, 4, dtype=np.float32))
    assert acc.result() == pytest.approx(1.0)
