"""dense.c + the fused epilogue: forward/backward against float64 numpy,
finite differences, fused == unfused, activations to a few ulps."""
import numpy as np
import pytest

from dropout_engine import _engine, ops

import reference as ref

ACTS = ops.ACTIVATIONS
RNG = np.random.default_rng(99)


def data(m, k, n, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((m, k)).astype(np.float32)
    w = (r.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    b = r.standard_normal(n).astype(np.float32) * 0.5
    return x, w, b


@pytest.mark.parametrize("act", ACTS)
def test_activation_within_a_few_ulps_of_float64(act):
    z = np.concatenate([np.linspace(-30, 30, 6001), RNG.standard_normal(4000),
                        [0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, -110.0, 1e30, -1e30,
                         3e38, -3e38]])
    z = z.astype(np.float32).reshape(-1, 1) if act != "softmax" else \
        RNG.standard_normal((50, 200)).astype(np.float32) * 8
    y = z.copy()
    _engine.bias_act(y, None, ACTS.index(act))
    want = ref.activation(act, z)
    err = np.abs(y - want) / ref.ulp32(want)
    # one rounding of a value accurate to ~1e-13; softmax rounds exp and sum
    limit = 2.0 if act == "softmax" else 1.0
    assert err.max() <= limit, (act, z.ravel()[err.argmax()], err.max())


def test_bias_is_added_before_the_activation():
    z = RNG.standard_normal((6, 40)).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32)
    y = z.copy()
    _engine.bias_act(y, b, ACTS.index("tanh"))
    np.testing.assert_array_equal(y, np.tanh((z + b).astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("rate", [0.0, 0.4])
@pytest.mark.parametrize("act", ACTS)
def test_forward_matches_numpy(act, rate):
    x, w, b = data(29, 21, 300)
    y, mask = ops.dense_forward(x, w, b, activation=act, dropout_rate=rate,
                                seed=4, step=1)
    keep, scale = None, 1.0
    if rate:
        keep = ref.unpack_mask(mask, y.shape)
        np.testing.assert_array_equal(
            keep, ref.keep_mask(ref.rng_key(4, 0, 1), 29, 300, rate))
        scale = ref.dropout_params(rate)[1]
        assert np.all(y[~keep] == 0)
    else:
        assert mask is None
    want, _ = ref.dense_forward(x, w, b, act, keep, scale)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(7, 13, 40), (33, 9, 600)])
def test_fused_equals_unfused_bit_for_bit(act, shape):
    m, k, n = shape
    x, w, b = data(m, k, n, seed=n)
    y, mask = ops.dense_forward(x, w, b, activation=act, dropout_rate=0.3,
                                seed=6, step=9)
    z = ops.matmul(x, w)
    _engine.bias_act(z, b, ACTS.index(act))
    y2, mask2 = ops.dropout(z, 0.3, seed=6, step=9)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(mask, mask2)


def test_inference_draws_no_mask():
    x, w, b = data(5, 4, 3)
    y, mask = ops.dense_forward(x, w, b, activation="relu", dropout_rate=0.5,
                                training=False)
    assert mask is None
    want, _ = ref.dense_forward(x, w, b, "relu")
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [0.0, 0.3])
@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_numpy(act, rate):
    x, w, b = data(31, 17, 270, seed=3)
    y, mask = ops.dense_forward(x, w, b, activation=act, dropout_rate=rate, seed=2)
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = ops.dense_backward(dy, x, w, y, mask, activation=act,
                                    dropout_rate=rate, b=b)
    keep = ref.unpack_mask(mask, y.shape) if rate else None
    scale = ref.dropout_params(rate)[1]
    wx, ww, wb = ref.dense_backward(dy, x, w, b, act, keep, scale)
    for got, want in ((dx, wx), (dw, ww), (db, wb)):
        tol = 1e-4 * max(1.0, np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("rate", [0.0, 0.5])
@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_finite_differences(act, rate):
    """d/dθ sum(y * r) by central differences of the float64 forward, with
    the engine's dropout mask held fixed."""
    x, w, b = data(6, 5, 7, seed=8)
    y, mask = ops.dense_forward(x, w, b, activation=act, dropout_rate=rate, seed=1)
    keep = ref.unpack_mask(mask, y.shape) if rate else None
    scale = float(ref.dropout_params(rate)[1])
    r = RNG.standard_normal(y.shape)
    dx, dw, db = ops.dense_backward(r.astype(np.float32), x, w, y, mask,
                                    activation=act, dropout_rate=rate, b=b)
    params = [x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)]

    def loss():
        return (ref.dense_forward(*params, act, keep, scale)[0] * r).sum()

    for p, got in zip(params, (dx, dw, db)):
        np.testing.assert_allclose(got, ref.finite_differences(loss, p), rtol=1e-3,
                                   atol=1e-3)


def test_sum_rows_adds_rows_in_order():
    dz = RNG.standard_normal((1000, 300)).astype(np.float32)
    db = np.empty(300, np.float32)
    # the binding reaches de_sum_rows through the dense backward
    x = np.ones((1000, 1), np.float32)
    w = np.ones((1, 300), np.float32)
    _engine.dense_backward(dz, x, w, dz, None, None, 0, 0.0, True,
                     np.empty_like(dz), None, np.empty_like(w), db)
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(0), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("act", ["relu", "gelu", "softmax"])
def test_one_and_two_threads_are_bit_identical(act):
    x, w, b = data(300, 16, 520, seed=5)
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(1)
        y1, m1 = ops.dense_forward(x, w, b, activation=act, dropout_rate=0.2, seed=3)
        g1 = ops.dense_backward(y1, x, w, y1, m1, activation=act, dropout_rate=0.2, b=b)
        ops.set_num_threads(2)
        y2, m2 = ops.dense_forward(x, w, b, activation=act, dropout_rate=0.2, seed=3)
        g2 = ops.dense_backward(y1, x, w, y1, m1, activation=act, dropout_rate=0.2, b=b)
    finally:
        ops.set_num_threads(before)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1, m2)
    for a, c in zip(g1, g2):
        np.testing.assert_array_equal(a, c)
