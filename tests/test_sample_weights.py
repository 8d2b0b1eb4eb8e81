"""fit / evaluate / losses with Keras's sample_weight and class_weight.

Keras 3's rule ("sum_over_batch_size"): a batch's loss is sum(w_i * l_i)
divided by the number of rows, so its gradient is each row's gradient times
w_i; `metrics` stay unweighted; class_weight maps each row's class (label,
argmax of a one-hot row, or rounded single column) to its weight.
"""
import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import losses, metrics
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import SGD

from reference import loss_per_sample


def _data(n=40, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return x, y


def _model(k=3, dropout=0.0, seed=1):
    de.set_random_seed(seed)
    layers = [Input((6,)), Dense(8, activation="relu")]
    if dropout:
        layers.append(Dropout(dropout))
    model = Sequential(layers + [Dense(k, activation="softmax")])
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_one_weighted_step_matches_float64_reference():
    x, y = _data()
    sw = np.random.default_rng(5).uniform(0, 3, len(x)).astype(np.float32)
    model = _model()
    w1, b1, w2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    hist = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0,
                     sample_weight=sw)

    z = x @ w1 + b1
    h = np.maximum(z, 0)
    o = h @ w2 + b2
    p = np.exp(o - o.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ref_loss = (loss_per_sample("scce", y, p) * sw).sum() / len(x)
    do = (p - np.eye(3)[y]) * sw[:, None] / len(x)
    dh = (do @ w2.T) * (z > 0)
    ref = [w1 - 0.1 * x.T @ dh, b1 - 0.1 * dh.sum(0), w2 - 0.1 * h.T @ do,
           b2 - 0.1 * do.sum(0)]
    assert hist.history["loss"][0] == pytest.approx(ref_loss, rel=1e-5)
    for got, want in zip(model.get_weights(), ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _fit_weights(**kw):
    x, y = _data(n=100)
    model = _model(dropout=0.3)
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, **kw)
    return model.get_weights(), hist.history


def test_class_weight_is_the_same_as_its_sample_weight():
    _, y = _data(n=100)
    cw = {0: 0.5, 1: 2.0}          # class 2 missing: weight 1
    sw = np.array([cw.get(c, 1.0) for c in y], np.float32)
    w_cw, h_cw = _fit_weights(class_weight=cw)
    w_sw, h_sw = _fit_weights(sample_weight=sw)
    for a, b in zip(w_cw, w_sw):
        assert np.array_equal(a, b)
    assert h_cw == h_sw


def test_unit_weights_change_nothing_and_other_weights_do():
    w_none, h_none = _fit_weights()
    w_ones, h_ones = _fit_weights(sample_weight=np.ones(100))
    for a, b in zip(w_none, w_ones):
        assert np.array_equal(a, b)
    assert h_none == h_ones
    w_two, _ = _fit_weights(sample_weight=np.full(100, 2.0))
    assert not np.array_equal(w_none[0], w_two[0])


def test_class_weight_of_one_hot_and_binary_targets():
    x, y = _data(n=60)
    onehot = np.eye(3, dtype=np.float32)[y]
    cw = {1: 3.0}
    sw = np.where(y == 1, 3.0, 1.0).astype(np.float32)
    runs = []
    for kw in ({"class_weight": cw}, {"sample_weight": sw}):
        de.set_random_seed(2)
        m = Sequential([Input((6,)), Dense(3, activation="softmax")])
        m.compile(optimizer=SGD(0.1), loss="categorical_crossentropy")
        m.fit(x, onehot, batch_size=8, epochs=2, verbose=0, **kw)
        runs.append(m.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    # binary: the class of a row is its rounded target
    yb = (y == 1).astype(np.float32)
    de.set_random_seed(3)
    m = Sequential([Input((6,)), Dense(1, activation="sigmoid")])
    m.compile(optimizer=SGD(0.1), loss="binary_crossentropy")
    p = m.predict(x)
    logs = m.evaluate(x, yb, sample_weight=np.where(yb == 1, 5.0, 1.0),
                      return_dict=True)
    want = (loss_per_sample("bce", yb[:, None], p) * np.where(yb == 1, 5, 1)).mean()
    assert logs["loss"] == pytest.approx(want, rel=1e-5)


def test_evaluate_weights_the_loss_not_the_metrics():
    x, y = _data(n=300)
    model = _model()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    sw = np.random.default_rng(9).uniform(0, 2, len(x))
    p = model.predict(x)
    loss, acc = model.evaluate(x, y, sample_weight=sw, batch_size=7)
    assert loss == pytest.approx((loss_per_sample("scce", y, p) * sw).mean(), rel=1e-5)
    assert acc == pytest.approx((p.argmax(1) == y).mean(), abs=1e-7)


def test_validation_rows_keep_their_weights():
    x, y = _data(n=100)
    sw = np.random.default_rng(4).uniform(0.1, 3, 100).astype(np.float32)
    model = _model()
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0, sample_weight=sw,
                     validation_split=0.25)
    val = model.evaluate(x[75:], y[75:], sample_weight=sw[75:], return_dict=True)
    assert hist.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-6)
    xv, yv = _data(n=30, seed=8)
    swv = np.linspace(0, 2, 30)
    hist = model.fit(x, y, epochs=1, verbose=0, validation_data=(xv, yv, swv))
    val = model.evaluate(xv, yv, sample_weight=swv, return_dict=True)
    assert hist.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-6)


def test_loss_objects_take_sample_weight():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), 10).astype(np.float32)
    y = rng.integers(0, 4, 10)
    sw = rng.uniform(0, 2, 10)
    got = losses.SparseCategoricalCrossentropy()(y, p, sample_weight=sw)
    assert got == pytest.approx((loss_per_sample("scce", y, p) * sw).mean(), rel=1e-6)


def test_metric_objects_take_sample_weight():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), 50).astype(np.float32)
    y = rng.integers(0, 4, 50)
    sw = rng.uniform(0, 2, 50)
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(y[:20], p[:20], sample_weight=sw[:20])
    m.update_state(y[20:], p[20:], sample_weight=sw[20:])
    hit = p.argmax(1) == y
    assert m.result() == pytest.approx((hit * sw).sum() / sw.sum(), rel=1e-6)
    mse = metrics.MeanSquaredError()
    t = rng.normal(size=(50, 4))
    mse.update_state(t, p, sample_weight=sw)
    assert mse.result() == pytest.approx((((t - p) ** 2).mean(1) * sw).sum() / sw.sum(),
                                         rel=1e-5)


@pytest.mark.parametrize("kw, err, match", [
    ({"sample_weight": np.ones(40), "class_weight": {0: 1.0}}, ValueError, "same time"),
    ({"sample_weight": np.ones(39)}, ValueError, r"shape \(40,\)"),
    ({"sample_weight": np.ones((40, 2))}, ValueError, r"shape \(40,\)"),
    ({"sample_weight": np.r_[np.nan, np.ones(39)]}, ValueError, "finite"),
    ({"sample_weight": -np.ones(40)}, ValueError, ">= 0"),
    ({"sample_weight": ["a"] * 40}, TypeError, "numbers"),
    ({"class_weight": [1.0, 2.0]}, TypeError, "dict"),
    ({"class_weight": {"cat": 1.0}}, TypeError, "int"),
    ({"class_weight": {0: -1.0}}, ValueError, "class_weight\\[0\\]"),
    ({"class_weight": {0: float("inf")}}, ValueError, "finite"),
])
def test_bad_weights_are_refused_and_the_model_is_unchanged(kw, err, match):
    x, y = _data()
    model = _model()
    before = model.get_weights()
    with pytest.raises(err, match=match):
        model.fit(x, y, verbose=0, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(ValueError, match="validation sample_weight"):
        model.fit(x, y, verbose=0, validation_data=(x, y, np.ones(3)))
