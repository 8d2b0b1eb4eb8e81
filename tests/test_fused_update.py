"""The optimizer update fused into each Dense kernel's weight-gradient GEMM
(optim.c's de_param_update_gemm through gemm.c's block hook) gives exactly
the bits of the separate pass after the backward (de_param_update, which an
optimizer's ``_unfused_update`` flag makes the C loop run instead): for
every optimizer and option, every GEMM path (small-m, thin, packed over
several KC, MC and NC blocks), 1 and 2 threads, each ISA."""
import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import _engine, constraints, optimizers, regularizers
from dropout_engine.keras import layers, models
from dropout_engine.optimizers import schedules

OPTIMIZERS = {
    "sgd": lambda lr, wd: optimizers.SGD(lr, weight_decay=wd),
    "sgd_momentum": lambda lr, wd: optimizers.SGD(lr, momentum=0.9, weight_decay=wd),
    "sgd_nesterov": lambda lr, wd: optimizers.SGD(lr, momentum=0.9, nesterov=True,
                                                  weight_decay=wd),
    "adam": lambda lr, wd: optimizers.Adam(lr, weight_decay=wd),
    "adamw": lambda lr, wd: optimizers.AdamW(lr, weight_decay=wd or 0.004),
    "rmsprop": lambda lr, wd: optimizers.RMSprop(lr, weight_decay=wd),
    "rmsprop_momentum": lambda lr, wd: optimizers.RMSprop(lr, momentum=0.5,
                                                          weight_decay=wd),
    "rmsprop_centered": lambda lr, wd: optimizers.RMSprop(lr, centered=True,
                                                          weight_decay=wd),
    "rmsprop_centered_momentum": lambda lr, wd: optimizers.RMSprop(
        lr, centered=True, momentum=0.5, weight_decay=wd),
}

# Per option: the weight decay, the learning rate (a float or a schedule)
# and the first two kernels' regularizer and constraint.
OPTIONS = {
    "plain": (None, lambda: 0.01, [{}, {}]),
    "decay_l1_l2": (0.02, lambda: 0.01,
                    [{"kernel_regularizer": regularizers.L1L2(1e-3, 1e-3)},
                     {"kernel_regularizer": regularizers.L1(1e-3)}]),
    "maxnorm_schedule": (None, lambda: schedules.ExponentialDecay(0.05, 2, 0.5),
                         [{"kernel_constraint": constraints.MaxNorm(0.5)},
                          {"kernel_constraint": constraints.MaxNorm(0.8, axis=1)}]),
    "nonneg_l2_cosine": (0.01, lambda: schedules.CosineDecay(0.05, 5),
                         [{"kernel_constraint": constraints.NonNeg()},
                          {"kernel_regularizer": regularizers.L2(1e-2),
                           "kernel_constraint": constraints.MaxNorm(0.7)}]),
}

# (sizes, batch, batches): the first cuts dW 140 x 80 into two MC blocks
# and ends on a thin dW (40 x 10); the second has a dW of 2 NC blocks
# (5 x 2100), a thin one (2100 x 3) and a small-m one (3 x 4).  Sums over
# more than one KC block of the batch: check_direct_equals_pass.
SHAPES = [((140, 80, 40, 10), 64, 3), ((5, 2100, 3, 4), 8, 3)]


def _bits(arrays):
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


def _fit(opt_name, option, sizes, batch, batches, unfused, threads):
    """Weights, optimizer state and step after a seeded fit (2 epochs)."""
    wd, lr, kernel_kw = OPTIONS[option]
    de.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * batches, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], len(x))
    model = models.Sequential([
        layers.Input((sizes[0],)), layers.Dropout(0.1, seed=3),
        layers.Dense(sizes[1], activation="relu", **kernel_kw[0]),
        layers.Dropout(0.3, seed=4),
        layers.Dense(sizes[2], activation="tanh", **kernel_kw[1]),
        layers.Dense(sizes[3], activation="softmax")])
    model.set_weights(_start(model))
    opt = OPTIMIZERS[opt_name](lr(), wd)
    opt._unfused_update = unfused
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0)
    moved = [not np.array_equal(a, b) for a, b in zip(model.get_weights(), _start(model))]
    return _bits(model.get_weights() + opt.variables()) + [opt.iterations], moved


def _start(model):
    """The same starting weights for every fit: seeded kernels, the 1-D
    weights' own (constant) initial values."""
    return [np.random.default_rng(i).uniform(-0.3, 0.3, w.shape).astype(np.float32)
            if w.ndim > 1 else w for i, w in enumerate(model.get_weights())]


def check_fits_equal_unfused():
    before = de.get_num_threads()
    try:
        for opt_name in OPTIMIZERS:
            for option in OPTIONS:
                for sizes, batch, batches in SHAPES:
                    case = (opt_name, option, sizes)
                    want, moved = _fit(opt_name, option, sizes, batch, batches,
                                       True, 1)
                    assert all(moved[::2]), case     # every kernel was trained
                    for threads in (1, 2):
                        got, _ = _fit(opt_name, option, sizes, batch, batches,
                                      False, threads)
                        assert got == want, (case, threads)
    finally:
        de.set_num_threads(before)


def test_fits_equal_unfused():
    check_fits_equal_unfused()


@pytest.mark.parametrize("isa", [0, 1, 2])
def test_fits_equal_unfused_each_isa(isa):
    from test_gemm import run_under_isa
    run_under_isa(isa, "test_fused_update", ["check_fits_equal_unfused",
                                             "check_direct_equals_pass"])


def _layers_fit(unfused, opt):
    """A net whose other params (embedding table, biases, BN gamma/beta,
    PReLU slopes) stay unfused around the fused kernels."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 30, (64, 6))
    y = rng.integers(0, 5, 64)
    model = models.Sequential([
        layers.Input((6,)), layers.Embedding(30, 12),
        layers.GlobalAveragePooling1D(),
        layers.Dense(40), layers.BatchNormalization(), layers.PReLU(),
        layers.Dropout(0.2, seed=5), layers.Dense(20, activation="relu"),
        layers.LayerNormalization(), layers.Dense(5, activation="softmax")])
    model.set_weights(_start(model))
    opt._unfused_update = unfused
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return _bits(model.get_weights() + opt.variables())


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(0.05, momentum=0.9),
                                  lambda: optimizers.Adam(0.01)])
def test_other_params_update_as_unfused(make):
    assert _layers_fit(False, make()) == _layers_fit(True, make())


def _direct_case(opt, shape, m, seed, reg=None, con=None):
    """de_param_update_gemm vs gemm + de_param_update on the same inputs."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    x = rng.standard_normal((m, rows)).astype(np.float32)
    dz = rng.standard_normal((m, cols)).astype(np.float32)
    w0 = rng.standard_normal(shape).astype(np.float32)
    s0 = rng.uniform(0.05, 0.2, shape).astype(np.float32)
    out = []
    for fused in (False, True):
        w = w0.copy()
        opt.build([w])
        for s in opt._slots[0]:
            s[...] = s0
        param = {"w": w, "slots": opt._slots[0],
                 "l1": reg.l1 if reg else 0.0, "l2": reg.l2 if reg else 0.0}
        if con is not None:
            param.update(constraint=con._c[0], max_value=con._c[1], axis=con._c[2])
        cfg = opt._c_config()
        g = np.empty(shape, np.float32)
        for step in range(2):
            if fused:
                _engine.param_update_gemm(cfg, step, param, x, dz, g)
            else:
                _engine.gemm(True, False, x, dz, g)
                _engine.param_update(cfg, step, param, g.ravel())
        out.append(_bits([w] + opt._slots[0]))
    assert out[0] == out[1], (type(opt).__name__, shape, m)
    assert not np.array_equal(w0, w)


def check_direct_equals_pass():
    before = de.get_num_threads()
    # small-m (3 rows), thin (n <= 16), packed with MC and KC edges, with an
    # NC edge, 1 x 1, rows in 3 MC blocks
    shapes = [((3, 70), 9), ((70, 10), 33), ((140, 300), 260), ((6, 2100), 5),
              ((1, 1), 1), ((300, 65), 17)]
    try:
        for threads in (1, 2):
            de.set_num_threads(threads)
            for i, (shape, m) in enumerate(shapes):
                for name, make in OPTIMIZERS.items():
                    _direct_case(make(0.01, 0.01), shape, m, i)
                _direct_case(optimizers.Adam(0.01), shape, m, i,
                             regularizers.L1L2(1e-2, 1e-2), constraints.MaxNorm(2.0))
                _direct_case(optimizers.SGD(0.1), shape, m, i, None,
                             constraints.NonNeg())
    finally:
        de.set_num_threads(before)


def test_direct_equals_pass():
    check_direct_equals_pass()


def test_direct_refuses_mismatched_shapes():
    w = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        _engine.param_update_gemm({"kind": 0, "lr": 0.1}, 0, {"w": w, "slots": []},
                                  np.zeros((2, 5), np.float32),
                                  np.zeros((2, 3), np.float32),
                                  np.zeros((4, 3), np.float32))


def _graph_fit(unfused, opt, policy="float32"):
    """A functional DAG (two Dense branches concatenated): each kernel's dx
    (dag_dx) reads it before its fused update; and under mixed_bfloat16 the
    update is not fused (its dW is de_gemm_bf16's)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 9)).astype(np.float32)
    y = rng.integers(0, 3, 48)
    inp = layers.Input((9,))
    h = layers.Dense(24, activation="relu", dtype=policy)(inp)
    a = layers.Dense(12, activation="relu", dtype=policy)(h)
    b = layers.Dropout(0.3, seed=3)(layers.Dense(8, activation="tanh", dtype=policy)(h))
    out = layers.Dense(3, activation="softmax")(layers.Concatenate()([a, b]))
    model = models.Model(inp, out)
    model.set_weights(_start(model))
    opt._unfused_update = unfused
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return _bits(model.get_weights() + opt.variables())


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_a_dag_and_mixed_bfloat16_update_as_unfused(policy):
    make = lambda: optimizers.Adam(0.01)    # noqa: E731
    assert _graph_fit(False, make(), policy) == _graph_fit(True, make(), policy)
