"""Optimizer steps of the C loop against numpy references of Keras's rules
(and PyTorch's, where they coincide); regularizers, constraints and the
ExponentialDecay schedule."""
import numpy as np
import pytest

import reference as ref
from dropout_engine import _engine, constraints, optimizers, regularizers


def _run(opt, kind, hyper, steps=5, reg=None, con=None, shape=(7, 5), seed=0):
    """Our C steps vs the Keras reference on the same gradients."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape).astype(np.float32)
    opt.build([w])
    want, state = w.astype(np.float64), {}
    param = {"w": w, "slots": opt._slots[0],
             "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0}
    if con is not None:
        param.update(constraint=con._c[0], max_value=con._c[1], axis=con._c[2])
    for step in range(steps):
        g = rng.normal(size=shape).astype(np.float32)
        g64 = g.astype(np.float64)
        if reg is not None:
            g64 = g64 + reg.l1 * np.sign(want) + 2 * reg.l2 * want
        cfg = opt._c_config()
        lr = _engine.optim_lr(cfg, step)
        _engine.param_update(cfg, step, param, g.ravel())
        want = ref.keras_step(kind, want, g64, state, step, lr, **hyper)
        if con is not None:
            want = (ref.max_norm(want, con.max_value, con.axis)
                    if isinstance(con, constraints.MaxNorm) else np.maximum(want, 0))
        np.testing.assert_allclose(w, want, rtol=2e-5, atol=2e-6)
    return w


@pytest.mark.parametrize("hyper", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}])
def test_sgd_matches_keras(hyper):
    _run(optimizers.SGD(0.1, **hyper), "sgd", hyper)


@pytest.mark.parametrize("hyper", [{}, {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}])
def test_adam_matches_keras(hyper):
    _run(optimizers.Adam(0.01, **hyper), "adam", hyper)


def test_adamw_applies_decoupled_weight_decay():
    _run(optimizers.AdamW(0.01, weight_decay=0.1), "adam", {"weight_decay": 0.1})


@pytest.mark.parametrize("hyper", [{}, {"momentum": 0.9}, {"centered": True},
                                   {"centered": True, "momentum": 0.5, "rho": 0.8}])
def test_rmsprop_matches_keras(hyper):
    _run(optimizers.RMSprop(0.01, **hyper), "rmsprop", hyper)


@pytest.mark.parametrize("kind,ours,theirs", [
    ("sgd", {}, {}),
    ("sgd", {"momentum": 0.9}, {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}, {"momentum": 0.9, "nesterov": True}),
    ("adam", {"epsilon": 1e-8}, {"eps": 1e-8}),
])
def test_updates_equal_pytorch_with_a_constant_learning_rate(kind, ours, theirs):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4)).astype(np.float32)
    opt = optimizers.SGD(0.05, **ours) if kind == "sgd" else optimizers.Adam(0.05, **ours)
    opt.build([w])
    param = {"w": w, "slots": opt._slots[0]}
    want, state = w.astype(np.float64), {}
    for step in range(6):
        g = rng.normal(size=w.shape).astype(np.float32)
        _engine.param_update(opt._c_config(), step, param, g.ravel())
        want = ref.torch_step(kind, want, g, state, step, 0.05, **theirs)
    # Adam: Keras adds eps to sqrt(v), PyTorch to sqrt(v_hat): eps-sized gap.
    np.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-5 if kind == "adam" else 1e-6)


def test_exponential_decay_runs_in_c_with_keras_formula():
    sched = optimizers.schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)
    opt = optimizers.SGD(sched)
    for step in (0, 1, 3, 10):
        assert _engine.optim_lr(opt._c_config(), step) == pytest.approx(0.1 * 0.5 ** (step / 3))
    stair = optimizers.SGD(optimizers.schedules.ExponentialDecay(0.1, 3, 0.5, staircase=True))
    assert _engine.optim_lr(stair._c_config(), 5) == pytest.approx(0.05)
    _run(optimizers.SGD(sched), "sgd", {}, steps=4)


def test_regularizer_gradient_is_added_before_the_update():
    reg = regularizers.L1L2(l1=0.01, l2=0.02)
    _run(optimizers.SGD(0.1), "sgd", {}, reg=reg)


def test_regularizer_penalty_matches_its_formula():
    w = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    reg = regularizers.L1L2(0.01, 0.02)
    want = 0.01 * np.abs(w).sum() + 0.02 * (w.astype(np.float64) ** 2).sum()
    assert reg(w) == pytest.approx(want)
    assert _engine.param_penalty({"w": w, "slots": [], "l1": 0.01, "l2": 0.02}) \
        == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("con", [constraints.MaxNorm(1.5), constraints.MaxNorm(1.0, axis=1),
                                 constraints.NonNeg()])
def test_constraints_are_applied_after_each_update(con):
    _run(optimizers.SGD(0.5), "sgd", {}, con=con)


def test_max_norm_on_a_bias_spans_the_whole_vector():
    b = np.array([3.0, 4.0], np.float32)
    np.testing.assert_allclose(constraints.MaxNorm(1.0)(b), [0.6, 0.8], rtol=1e-6)


def test_learning_rate_is_a_settable_float():
    opt = optimizers.Adam()
    assert opt.learning_rate == pytest.approx(0.001)
    opt.learning_rate = 0.5
    assert opt._c_config()["lr"] == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(-1.0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(0.1, momentum=1.5)


def test_keras_defaults():
    assert optimizers.SGD().learning_rate == pytest.approx(0.01)
    a = optimizers.Adam()
    assert (a.beta_1, a.beta_2, a.epsilon) == (0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == pytest.approx(0.004)
    r = optimizers.RMSprop()
    assert (r.learning_rate, r.rho, r.momentum, r.epsilon) == (pytest.approx(0.001), 0.9, 0.0, 1e-7)
    with pytest.raises(ValueError, match="Unknown optimizer 'adma'"):
        optimizers.get("adma")
