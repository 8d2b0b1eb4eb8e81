"""BatchNormalization and LayerNormalization (norm.c, layers/normalization.py).

The kernels against the float64 numpy references (reference.py), finite
differences and torch (float64, autograd; skipped without torch); whole
models against a float64 numpy replay, torch and real Keras 3 (predict to
1e-5, a fit step by step); bit-identity across thread counts and ISAs;
saving, int8 quantization, ONNX; the planner's rules and the layers'
validation.  The C library's side is in test_embed.py.
"""
import os

import numpy as np
import pytest

import reference as ref
import dropout_engine as de
from dropout_engine import _engine
from dropout_engine.layers import (Activation, BatchNormalization, Dense, Dropout,
                                   GaussianDropout, Input, LayerNormalization, PReLU,
                                   deserialize, serialize)
from dropout_engine.model import Sequential
from dropout_engine.optimizers import SGD, Adam

F32 = np.float32
KINDS = {"batch": 1, "layer": 2}
ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


def _keras():
    if ASAN:
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def _torch():
    if ASAN:
        pytest.skip("torch's C++ runtime is not run under ASan")
    return pytest.importorskip("torch")


def cnorm(kind, n, rng, gamma=True, beta=True, eps=1e-3, momentum=0.99):
    """The binding's description of a normalisation with random gamma/beta."""
    return {"kind": KINDS[kind], "post": False, "epsilon": eps, "momentum": momentum,
            "gamma": rng.normal(1, 0.5, n).astype(F32) if gamma else None,
            "beta": rng.normal(0, 0.5, n).astype(F32) if beta else None,
            "moving_mean": rng.normal(0, 1, n).astype(F32),
            "moving_var": rng.uniform(0.2, 3, n).astype(F32)}


def forward(d, x):
    m, n = x.shape
    xhat, y = np.empty_like(x), np.empty_like(x)
    stat = np.empty(_engine.norm_stat_floats(d, m, n), F32)
    _engine.norm_forward_train(d, x, xhat, stat, y)
    return y, xhat, stat


def backward(d, xhat, stat, dy):
    dx = np.empty_like(dy)
    dg = np.empty(dy.shape[1], F32) if d["gamma"] is not None else None
    db = np.empty(dy.shape[1], F32) if d["beta"] is not None else None
    _engine.norm_backward(d, xhat, stat, dy, dx, dg, db)
    return dx, dg, db


AFFINE = [(True, True), (False, True), (True, False), (False, False)]


# ------------------------------------------------------------ the kernels
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n", [(1, 5), (7, 3), (64, 300), (33, 517)])
@pytest.mark.parametrize("affine", AFFINE, ids=["gb", "b", "g", "none"])
def test_training_forward_matches_the_reference(kind, m, n, affine):
    rng = np.random.default_rng(m * n)
    d = cnorm(kind, n, rng, *affine)
    x = rng.normal(2, 3, (m, n)).astype(F32)
    y, xhat, stat = forward(d, x)
    want, want_xhat, mean, var = ref.norm_forward(kind, x, d["gamma"], d["beta"])
    np.testing.assert_allclose(xhat, want_xhat, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=4e-6)
    k = len(mean)
    np.testing.assert_allclose(stat[:k], mean, rtol=1e-6, atol=1e-6)
    if kind == "batch":
        np.testing.assert_allclose(stat[k:2 * k], var, rtol=1e-6)
    np.testing.assert_allclose(stat[-k:], 1 / np.sqrt(var + 1e-3), rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("affine", AFFINE, ids=["gb", "b", "g", "none"])
def test_backward_matches_finite_differences(kind, affine):
    rng = np.random.default_rng(3)
    m, n = 6, 5
    d = cnorm(kind, n, rng, *affine)
    x = rng.normal(0, 2, (m, n)).astype(F32)
    dy = rng.normal(size=(m, n)).astype(F32)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    g64 = None if d["gamma"] is None else d["gamma"].astype(np.float64)
    b64 = None if d["beta"] is None else d["beta"].astype(np.float64)

    def loss():
        return (dy64 * ref.norm_forward(kind, x64, g64, b64)[0]).sum()
    _, xhat, stat = forward(d, x)
    dx, dg, db = backward(d, xhat, stat, dy)
    fd = ref.finite_differences(loss, x64)
    np.testing.assert_allclose(ref.norm_backward(kind, x64, dy64, g64)[0], fd,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, fd, rtol=1e-4, atol=1e-5)
    if g64 is not None:
        np.testing.assert_allclose(dg, ref.finite_differences(loss, g64),
                                   rtol=1e-4, atol=1e-5)
    if b64 is not None:
        np.testing.assert_allclose(db, ref.finite_differences(loss, b64),
                                   rtol=1e-4, atol=1e-5)


def test_backward_may_overwrite_its_upstream_gradient():
    rng = np.random.default_rng(4)
    for kind in KINDS:
        d = cnorm(kind, 300, rng)
        x = rng.normal(size=(40, 300)).astype(F32)
        dy = rng.normal(size=x.shape).astype(F32)
        _, xhat, stat = forward(d, x)
        dx, dg, db = backward(d, xhat, stat, dy)
        dg2, db2 = np.empty_like(dg), np.empty_like(db)
        _engine.norm_backward(d, xhat, stat, dy, dy, dg2, db2)
        assert np.array_equal(dy, dx) and np.array_equal(dg, dg2) and np.array_equal(db, db2)


@pytest.mark.parametrize("kind", KINDS)
def test_kernels_match_torch(kind):
    torch = _torch()
    rng = np.random.default_rng(5)
    m, n = 16, 9
    d = cnorm(kind, n, rng)
    d["moving_mean"][:] = 0.0
    d["moving_var"][:] = 1.0
    x = rng.normal(1, 2, (m, n)).astype(F32)
    dy = rng.normal(size=(m, n)).astype(F32)
    mod = (torch.nn.BatchNorm1d(n, eps=1e-3, momentum=0.01, dtype=torch.float64)
           if kind == "batch" else torch.nn.LayerNorm(n, eps=1e-3, dtype=torch.float64))
    with torch.no_grad():
        mod.weight.copy_(torch.tensor(d["gamma"].astype(np.float64)))
        mod.bias.copy_(torch.tensor(d["beta"].astype(np.float64)))
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = mod.train()(xt)
    yt.backward(torch.tensor(dy.astype(np.float64)))
    y, xhat, stat = forward(d, x)
    dx, dg, db = backward(d, xhat, stat, dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=3e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dg, mod.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(db, mod.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    if kind == "batch":
        # torch's momentum is Keras's 1 - momentum; its running_var takes the
        # unbiased batch variance, Keras's (ours) the biased one.
        _engine.norm_update_moving(d, stat)
        np.testing.assert_allclose(d["moving_mean"], mod.running_mean.numpy(),
                                   rtol=1e-5, atol=1e-7)
        unbiased = (mod.running_var.numpy() - 0.99) / 0.01
        np.testing.assert_allclose(d["moving_var"], 0.99 + 0.01 * unbiased * (m - 1) / m,
                                   rtol=1e-5)


def test_moving_statistics_follow_keras_rule_in_float32():
    rng = np.random.default_rng(6)
    d = cnorm("batch", 37, rng, momentum=0.9)
    before_mean, before_var = d["moving_mean"].copy(), d["moving_var"].copy()
    _, _, stat = forward(d, rng.normal(size=(20, 37)).astype(F32))
    _engine.norm_update_moving(d, stat)
    assert np.array_equal(d["moving_mean"], ref.moving_update(before_mean, stat[:37], 0.9))
    assert np.array_equal(d["moving_var"], ref.moving_update(before_var, stat[37:74], 0.9))


@pytest.mark.parametrize("affine", AFFINE, ids=["gb", "b", "g", "none"])
def test_batch_norm_inference_is_keras_formula(affine):
    rng = np.random.default_rng(7)
    d = cnorm("batch", 600, rng, *affine)
    x = rng.normal(1, 3, (5, 600)).astype(F32)
    y = np.empty_like(x)
    _engine.norm_forward_infer(d, x, y)
    want = ref.batch_norm_infer(x, d["moving_mean"], d["moving_var"], d["gamma"], d["beta"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-6)


def test_layer_norm_inference_equals_its_training_forward():
    rng = np.random.default_rng(8)
    d = cnorm("layer", 70, rng)
    x = rng.normal(size=(9, 70)).astype(F32)
    y = np.empty_like(x)
    _engine.norm_forward_infer(d, x, y)
    assert np.array_equal(y, forward(d, x)[0])


def test_kernels_are_bit_identical_for_any_thread_count_and_isa():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(256, 700)).astype(F32)
    dy = rng.normal(size=x.shape).astype(F32)
    runs, before_threads, before_isa = [], de.get_num_threads(), _engine.isa_get()
    try:
        for isa in range(3):
            if not _engine.isa_available(isa):
                continue
            _engine.isa_set(isa)
            for threads in (1, 2):
                de.set_num_threads(threads)
                out = []
                for kind in KINDS:
                    d = cnorm(kind, 700, np.random.default_rng(1))
                    y, xhat, stat = forward(d, x)
                    out += [y, stat, *backward(d, xhat, stat, dy)]
                runs.append(out)
    finally:
        de.set_num_threads(before_threads)
        _engine.isa_set(before_isa)
    assert all(np.array_equal(a, b) for run in runs[1:] for a, b in zip(runs[0], run))


# ------------------------------------------------------------- the models
def spec(L, drop=0.0):
    """Every placement: BN pre-activation (then Dropout), BN after an
    activation without beta, LN pre-activation without gamma, LN on the
    softmax's logits."""
    return [L.Dense(8), L.BatchNormalization(momentum=0.9), L.Activation("relu"),
            L.Dropout(drop), L.Dense(6, activation="tanh"),
            L.BatchNormalization(center=False, epsilon=0.01),
            L.Dense(5, activation="relu"), L.LayerNormalization(scale=False),
            L.Dense(3), L.LayerNormalization(), L.Activation("softmax")]


def ours(drop=0.0, n_in=5):
    import dropout_engine.layers as L
    return Sequential([Input((n_in,))] + spec(L, drop))


def randomize(model, seed):
    """Random weights; positive moving variances.  Returns them."""
    rng = np.random.default_rng(seed)
    names = [n for layer in model.layers for n in getattr(layer, "weight_names", ())]
    ws = [rng.normal(0, 0.7, w.shape).astype(F32) for w in model.get_weights()]
    ws = [np.abs(w) + 0.2 if n == "moving_variance" else w for n, w in zip(names, ws)]
    model.set_weights(ws)
    return ws


def replay(ws, x, y):
    """float64 loss of spec() (no dropout) in training mode, for weights ws
    in model.weights order (the moving statistics unused)."""
    k1, b1, g1, be1, _, _, k2, b2, g2, _, _, k3, b3, be3, k4, b4, g4, be4 = ws
    h = np.maximum(ref.norm_forward("batch", x @ k1 + b1, g1, be1)[0], 0)
    h = ref.norm_forward("batch", np.tanh(h @ k2 + b2), g2, None, eps=0.01)[0]
    h = ref.norm_forward("layer", np.maximum(h @ k3 + b3, 0), None, be3)[0]
    p = ref.activation("softmax", ref.norm_forward("layer", h @ k4 + b4, g4, be4)[0])
    return -np.log(p[np.arange(len(y)), y]).mean()


def one_sgd_step(seed):
    """(weights before, our gradients from one SGD(1.0) step, x, y)."""
    m = ours()
    ws = randomize(m, seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 5)).astype(F32)
    y = rng.integers(0, 3, 32)
    m.compile(SGD(1.0), "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    grads = [(a.astype(np.float64) - b) for a, b in zip(ws, m.get_weights())]
    return m, ws, grads, x, y


def test_a_fit_step_follows_the_finite_difference_gradient():
    m, ws, grads, x, y = one_sgd_step(10)
    w64 = [w.astype(np.float64) for w in ws]
    x64 = x.astype(np.float64)
    for i, w in enumerate(m.trainable_weights):
        j = next(j for j, v in enumerate(m.weights) if v is w)
        fd = ref.finite_differences(lambda: replay(w64, x64, y), w64[j])
        np.testing.assert_allclose(grads[j], fd, rtol=2e-3, atol=2e-6)


def test_a_fit_step_matches_torch_autograd():
    torch = _torch()
    m, ws, grads, x, y = one_sgd_step(11)
    tw = [torch.tensor(w.astype(np.float64), requires_grad=True) for w in ws]
    k1, b1, g1, be1, _, _, k2, b2, g2, _, _, k3, b3, be3, k4, b4, g4, be4 = tw
    bn = torch.nn.functional.batch_norm
    ln = torch.nn.functional.layer_norm
    h = torch.relu(bn(torch.tensor(x.astype(np.float64)) @ k1 + b1, None, None, g1, be1,
                      training=True, eps=1e-3))
    h = bn(torch.tanh(h @ k2 + b2), None, None, g2, None, training=True, eps=0.01)
    h = ln(torch.relu(h @ k3 + b3), (5,), None, be3, eps=1e-3)
    logits = ln(h @ k4 + b4, (3,), g4, be4, eps=1e-3)
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    for i, t in enumerate(tw):
        if t.grad is not None:        # the moving statistics have none
            np.testing.assert_allclose(grads[i], t.grad.numpy(), rtol=2e-3, atol=2e-6)
    assert sum(t.grad is None for t in tw) == 4


def test_predictions_match_keras():
    keras = _keras()
    m, k = ours(0.3), keras.Sequential([keras.Input((5,))] + spec(keras.layers, 0.3))
    k.set_weights(randomize(m, 12))
    assert [w.path.split("/")[-1] for w in k.weights] == [
        n for layer in m.layers for n in getattr(layer, "weight_names", ())]
    x = np.random.default_rng(12).normal(0, 2, (50, 5)).astype(F32)
    np.testing.assert_allclose(m.predict(x), k.predict(x, verbose=0), rtol=0, atol=1e-5)


def test_fit_matches_keras_step_by_step():
    """SGD with momentum, 8 batches: weights and moving statistics stay
    within float32 rounding of Keras's."""
    keras = _keras()
    m, k = ours(), keras.Sequential([keras.Input((5,))] + spec(keras.layers))
    k.set_weights(randomize(m, 13))
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(64, 5)).astype(F32), rng.integers(0, 3, 64)
    m.compile(SGD(0.1, momentum=0.5), "sparse_categorical_crossentropy")
    k.compile(keras.optimizers.SGD(0.1, momentum=0.5), "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    k.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
    np.testing.assert_allclose(m.predict(x), k.predict(x, verbose=0), rtol=0, atol=2e-5)


def _seeded_fit(threads, isa=None):
    before_threads, before_isa = de.get_num_threads(), _engine.isa_get()
    try:
        de.set_num_threads(threads)
        if isa is not None:
            _engine.isa_set(isa)
        de.set_random_seed(5)
        m = Sequential([Input((40,)), Dense(600), BatchNormalization(), Activation("relu"),
                        Dropout(0.3), Dense(300, activation="elu"), LayerNormalization(),
                        Dropout(0.2), Dense(4, activation="softmax")])
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(512, 40)).astype(F32), rng.integers(0, 4, 512)
        m.compile(Adam(1e-3), "sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=128, epochs=2, verbose=0)
        return m.get_weights(), m.predict(x)
    finally:
        de.set_num_threads(before_threads)
        _engine.isa_set(before_isa)


def test_seeded_fit_is_bit_identical_for_any_thread_count():
    (w1, p1), (w2, p2) = _seeded_fit(1), _seeded_fit(2)
    assert all(np.array_equal(a, b) for a, b in zip(w1 + [p1], w2 + [p2]))


def test_every_isa_trains_to_the_same_weights():
    """The normalisation is portable C; the GEMM and the element-wise
    kernels each ISA brings are compared on the same fit."""
    runs = [_seeded_fit(1, isa) for isa in range(3) if _engine.isa_available(isa)]
    for w, p in runs[1:]:
        for a, b in zip(runs[0][0] + [runs[0][1]], w + [p]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_evaluate_and_validation_use_the_moving_statistics():
    m = ours()
    randomize(m, 14)
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(40, 5)).astype(F32), rng.integers(0, 3, 40)
    m.compile(SGD(0.01), "sparse_categorical_crossentropy")
    p = m.predict(x).astype(np.float64)
    want = ref.loss("scce", y, p)
    assert m.evaluate(x, y, verbose=0) == pytest.approx(want, rel=1e-5)
    h = m.fit(x, y, epochs=1, batch_size=40, validation_data=(x, y), verbose=0)
    after = ref.loss("scce", y, m.predict(x).astype(np.float64))
    assert h.history["val_loss"][0] == pytest.approx(after, rel=1e-5)


def test_a_non_finite_batch_moves_no_statistic():
    m = Sequential([Input((3,)), Dense(4), BatchNormalization(), Dense(1)])
    x = np.random.default_rng(15).normal(size=(16, 3)).astype(F32)
    m.compile(SGD(0.1), "mse")
    with pytest.raises(FloatingPointError):
        m.fit(x, np.full(16, 1e30, F32), batch_size=8, verbose=0)
    bn = m.layers[1]
    assert not bn.moving_mean.any() and (bn.moving_variance == 1).all()
    m.fit(x, np.zeros(16, F32), batch_size=8, verbose=0)
    assert bn.moving_mean.any() and (bn.moving_variance != 1).all()


def test_mc_dropout_runs_the_norms_in_inference_mode():
    m = ours(0.0)
    randomize(m, 16)
    x = np.random.default_rng(16).normal(size=(7, 5)).astype(F32)
    mean, std = m.predict(x, mc_samples=3)
    np.testing.assert_allclose(mean, m.predict(x), rtol=1e-6, atol=1e-7)
    assert (std < 1e-6).all()


def _prelu(z, alpha):
    return np.where(z > 0, z, alpha * z)


@pytest.mark.parametrize("order", ["bn_then_prelu", "prelu_then_ln"])
def test_prelu_slopes_and_a_norm_train_by_their_gradients(order):
    """PReLU's trained alpha next to a norm, both orders: one SGD(1.0) step
    against finite differences of a float64 replay (mse)."""
    rng = np.random.default_rng(17)
    x, y = rng.normal(size=(24, 4)).astype(F32), rng.normal(size=(24, 1)).astype(F32)
    first = ([BatchNormalization(), PReLU()] if order == "bn_then_prelu"
             else [PReLU(), LayerNormalization()])
    m = Sequential([Input((4,)), Dense(6)] + first + [Dense(1)])
    ws = randomize(m, 17)

    def loss():
        if order == "bn_then_prelu":
            k1, b1, g, be, _, _, alpha, k2, b2 = w64
            h = _prelu(ref.norm_forward("batch", x64 @ k1 + b1, g, be)[0], alpha)
        else:
            k1, b1, alpha, g, be, k2, b2 = w64
            h = ref.norm_forward("layer", _prelu(x64 @ k1 + b1, alpha), g, be)[0]
        return ((h @ k2 + b2 - y) ** 2).mean()
    w64, x64 = [w.astype(np.float64) for w in ws], x.astype(np.float64)
    m.compile(SGD(1.0), "mse")
    m.fit(x, y, batch_size=24, verbose=0)
    trained = {id(w) for w in m.trainable_weights}
    for w, before, after in zip(m.weights, w64, m.get_weights()):
        if id(w) in trained:
            np.testing.assert_allclose(before - after, ref.finite_differences(loss, before),
                                       rtol=2e-3, atol=2e-6)


def test_gamma_regularizer_and_constraint_reach_the_c_loop():
    from dropout_engine.constraints import NonNeg
    from dropout_engine.regularizers import L2
    m = Sequential([Input((3,)), Dense(4), BatchNormalization(
        gamma_regularizer=L2(0.5), gamma_constraint=NonNeg()), Dense(1)])
    bn = m.layers[1]
    bn.gamma[:] = [2.0, -1.0, 1.0, 3.0]
    m.compile(SGD(0.01), "mse")
    x = np.zeros((4, 3), F32)
    assert m.evaluate(x, np.zeros(4), verbose=0) == pytest.approx(
        0.5 * 15 + np.mean(m.predict(x) ** 2), rel=1e-5)
    m.fit(x, np.zeros(4), verbose=0)
    assert (bn.gamma >= 0).all()


def test_trainable_split_and_summary():
    m = ours()
    bn = m.layers[1]
    want = (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    assert len(bn.weights) == 4 and all(a is b for a, b in zip(bn.weights, want))
    assert len(bn.trainable_weights) == 2 and bn.trainable_weights[1] is bn.beta
    assert len(m.non_trainable_weights) == 4 and sum(w.size for w in m.non_trainable_weights) == 28
    lines = []
    m.summary(print_fn=lines.append)
    n = m.count_params()
    # summary hands print_fn Keras's whole text (counts, then sizes).
    text = "".join(lines).splitlines()
    assert f" Trainable params: {n - 28:,} ({4 * (n - 28)}.00 B)" in text
    assert " Non-trainable params: 28 (112.00 B)" in text


def test_save_load_keeps_statistics_and_training_goes_on_the_same(tmp_path):
    rng = np.random.default_rng(18)
    x, y = rng.normal(size=(64, 5)).astype(F32), rng.integers(0, 3, 64)
    de.set_random_seed(1)
    m = ours(0.2)
    m.compile(Adam(0.01), "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    m.save(tmp_path / "m.safetensors")
    m2 = de.load_model(tmp_path / "m.safetensors")
    assert all(np.array_equal(a, b) for a, b in zip(m.get_weights(), m2.get_weights()))
    assert np.array_equal(m.predict(x), m2.predict(x))
    for model in (m, m2):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(m.get_weights(), m2.get_weights()))


def test_int8_quantization_keeps_the_norms_float32():
    m = Sequential([Input((20,)), Dense(16), BatchNormalization(), Activation("relu"),
                    Dense(8, activation="relu"), LayerNormalization(), Dense(3)])
    randomize(m, 19)
    x = np.random.default_rng(19).normal(size=(9, 20)).astype(F32)
    m.quantize("int8")
    d1, bn, _, d2, ln, d3 = m.layers
    assert all(w.dtype == F32 for w in bn.weights + ln.weights)

    def norm(layer, h, post):     # the engine's kernels, checked above
        out = np.empty_like(h)
        _engine.norm_forward_infer(layer._c_norm(post), h, out)
        return out
    # Keras's int8 arithmetic (reference.py), bit for bit, around the norms.
    h = np.maximum(norm(bn, ref.qdense_pre(x, d1.kernel, d1.kernel_scale, d1.bias),
                        False), 0)
    h = norm(ln, np.maximum(ref.qdense_pre(h, d2.kernel, d2.kernel_scale, d2.bias), 0),
             True)
    want = ref.qdense_pre(h, d3.kernel, d3.kernel_scale, d3.bias)
    assert np.array_equal(m.predict(x), want)


def test_onnxruntime_matches_predict(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dropout_engine import onnx as de_onnx
    m = ours(0.4)
    randomize(m, 20)
    proto = de_onnx.export(m, tmp_path / "m.onnx")
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("BatchNormalization") == 2 and ops.count("LayerNormalization") == 2
    x = np.random.default_rng(20).normal(size=(33, 5)).astype(F32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], m.predict(x), rtol=0, atol=1e-5)


# ------------------------------------------------------ planning, configs
@pytest.mark.parametrize("layers,match", [
    ([BatchNormalization, lambda: Dense(3)], "before the first Dense"),
    ([lambda: Dense(3), lambda: Dropout(0.5), BatchNormalization], "before the Dropout"),
    ([lambda: Dense(3), lambda: GaussianDropout(0.2), LayerNormalization],
     "before the GaussianDropout"),
    ([lambda: Dense(3), BatchNormalization, LayerNormalization], "already normalized"),
    ([lambda: Dense(3, activation="relu"), BatchNormalization,
      lambda: Activation("tanh")], "make the Dense linear"),
])
def test_unsupported_placements_are_refused_clearly(layers, match):
    with pytest.raises(ValueError, match=match):
        Sequential([Input((4,))] + [f() for f in layers])


def test_a_post_norm_on_the_output_is_not_fused_with_the_loss():
    """softmax -> BN: the loss sees BN's output, its gradient goes through
    the softmax (a fused p - t would skip the normalisation)."""
    m = Sequential([Input((3,)), Dense(4, activation="softmax"), BatchNormalization()])
    m.compile(SGD(0.1), "mse")
    assert m._plan.out_act == 0 and not m._fused()
    m2 = Sequential([Input((3,)), Dense(4), BatchNormalization(), Activation("softmax")])
    m2.compile(SGD(0.1), "categorical_crossentropy")
    assert m2._fused()


@pytest.mark.parametrize("cls,kwargs,err,match", [
    (BatchNormalization, {"axis": 0}, ValueError, "axis=-1"),
    (LayerNormalization, {"axis": [0, 1]}, ValueError, "axis=-1"),
    (BatchNormalization, {"momentum": 1.5}, ValueError, "momentum"),
    (BatchNormalization, {"momentum": "high"}, TypeError, "momentum"),
    (BatchNormalization, {"epsilon": 0}, ValueError, "epsilon"),
    (LayerNormalization, {"epsilon": float("nan")}, ValueError, "epsilon"),
    (BatchNormalization, {"center": "yes"}, TypeError, "center"),
    (BatchNormalization, {"renorm": True}, NotImplementedError, "renorm"),
    (BatchNormalization, {"synchronized": True}, ValueError, "TensorFlow"),
    (LayerNormalization, {"rms_scaling": True}, NotImplementedError, "rms_scaling"),
    (BatchNormalization, {"gamma_initializer": "nope"}, ValueError, "nope"),
])
def test_bad_arguments_are_refused(cls, kwargs, err, match):
    with pytest.raises(err, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [BatchNormalization, LayerNormalization])
def test_config_round_trips_and_has_keras_keys(cls):
    layer = cls(epsilon=0.01, center=False, name=f"n_{cls.__name__}")
    c = layer.get_config()
    again = deserialize(serialize(layer))
    assert type(again) is cls and again.get_config() == c
    keras = _keras()
    theirs = set(getattr(keras.layers, cls.__name__)().get_config())
    assert theirs - set(c) <= {"trainable", "dtype"}
    assert set(c) - theirs == set()


def test_layer_norm_reads_a_built_keras_axis():
    assert LayerNormalization(axis=[-1]).get_config()["axis"] == [-1]
    m = Sequential([Input((3,)), Dense(2), LayerNormalization(axis=[-1])])
    assert m.predict(np.ones((1, 3), F32)).shape == (1, 2)
