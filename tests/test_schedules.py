"""Learning-rate schedules (schedules.py, _csrc/schedule.c): the C loop's
rate against Python's schedule(step) bit for bit, Keras 3's values to
float32 rounding, configs and model files, and fits that keep whole chunks
of batches per C call."""
import itertools
import os
import time

import numpy as np
import pytest

from dropout_engine import _engine, callbacks, optimizers, schedules, seeding
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.saving import load_model

# name -> (args, kwargs), the same for ours and Keras's; a peak rate of 0.1.
CASES = {
    "exponential": ("ExponentialDecay", (0.1, 37, 0.9), {}),
    "exponential-staircase": ("ExponentialDecay", (0.1, 37, 0.9), {"staircase": True}),
    "inverse-time": ("InverseTimeDecay", (0.1, 37, 0.5), {}),
    "inverse-time-staircase": ("InverseTimeDecay", (0.1, 50, 2.0), {"staircase": True}),
    "polynomial": ("PolynomialDecay", (0.1, 300), {"end_learning_rate": 0.001, "power": 0.5}),
    "polynomial-cycle": ("PolynomialDecay", (0.1, 300), {"power": 2.0, "cycle": True}),
    "piecewise": ("PiecewiseConstantDecay", ([100, 250, 600], [0.1, 0.05, 0.01, 0.001]), {}),
    "cosine": ("CosineDecay", (0.1, 500), {"alpha": 0.1}),
    "cosine-warmup": ("CosineDecay", (0.0, 500), {"warmup_target": 0.1, "warmup_steps": 100}),
    "restarts": ("CosineDecayRestarts", (0.1, 100), {}),
    "restarts-flat": ("CosineDecayRestarts", (0.1, 100),
                      {"t_mul": 1.0, "m_mul": 0.8, "alpha": 0.05}),
    "restarts-slow": ("CosineDecayRestarts", (0.1, 60), {"t_mul": 1.5, "m_mul": 0.9}),
}


def _ours(case):
    name, args, kwargs = CASES[case]
    return getattr(schedules, name)(*args, **kwargs)


class _InPython(schedules.LearningRateSchedule):
    """`inner`, evaluated by Python per batch (its own __call__)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, step):
        return self.inner(step)


class _Counting:
    """A model's C net that counts the batches of each train call."""

    def __init__(self, net):
        self.net, self.counts = net, []

    def train(self, x, t, index, first, count, *rest):
        self.counts.append(count)
        return self.net.train(x, t, index, first, count, *rest)

    def __getattr__(self, name):
        return getattr(self.net, name)


def _data(n=480, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0)


def _model(lr, opt=optimizers.SGD):
    seeding.set_random_seed(7)
    m = Sequential([Input((8,)), Dense(16, activation="relu"), Dropout(0.3),
                    Dense(3, activation="softmax")])
    m.compile(opt(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _fit(lr, *, epochs=3, batch_size=8, opt=optimizers.SGD, cbs=None, n=480):
    """A seeded fit; returns the model and its C net's per-call batch counts."""
    m = _model(lr, opt)
    m.optimizer.build(m.weights)
    m._net = _Counting(m._net)
    x, y = _data(n)
    seeding.set_random_seed(9)
    m.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=cbs)
    return m, m._net.counts


@pytest.fixture
def steady_clock(monkeypatch):
    """fit's chunk timer sees each C call take 1 us, so chunks grow at
    their fastest whatever the machine's load: call counts are exact."""
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks) * 1e-6)


STEPS = np.concatenate([np.arange(20000), [10 ** 6, 2 ** 40, 2 ** 53 + 1]]).astype(np.int64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_c_rate_is_python_schedule_bit_for_bit(case):
    s = _ours(case)
    c = np.empty(len(STEPS))
    _engine.schedule_lr(s._c_config(), STEPS, c)
    py = np.array([s(int(step)) for step in STEPS])
    np.testing.assert_array_equal(c, py)
    # ... and through the optimizer's de_optim_t, as the training loop reads it.
    cfg = optimizers.Adam(s)._c_config()
    for step in (0, 1, 99, 100, 101, 777, 19999):
        assert _engine.optim_lr(cfg, step) == s(step)


@pytest.fixture(scope="module")
def keras_values():
    """(schedule class name, args, kwargs, steps) -> real Keras's rates."""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")

    def values(name, args, kwargs, steps):
        theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
        steps = np.asarray(steps, np.int64)
        if keras.backend.backend() == "jax":     # one vectorised call, not 500
            import jax
            return theirs, np.asarray(jax.vmap(theirs)(steps), np.float64)
        return theirs, np.array([float(theirs(int(s))) for s in steps])
    return values


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_keras_to_float32_rounding(case, keras_values):
    name, args, kwargs = CASES[case]
    ours = _ours(case)
    steps = list(range(0, 1600, 3)) + [100, 250, 251, 300, 301, 600, 601, 700, 1500]
    theirs, want = keras_values(name, args, kwargs, steps)
    got = np.array([ours(s) for s in steps])
    # float32 keeps 24 bits: a few units of 2**-24 of the peak rate (0.1).
    tol = {"rtol": 1e-6, "atol": 0.1 * 2 ** -22}
    np.testing.assert_allclose(got, want, **tol)
    # Their config builds ours and ours theirs, the same schedule.
    assert type(ours).from_config(theirs.get_config())(777) == ours(777)
    np.testing.assert_allclose(float(type(theirs).from_config(ours.get_config())(777)),
                               ours(777), **tol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trips(case):
    s = _ours(case)
    again = schedules.deserialize(schedules.serialize(s))
    assert type(again) is type(s) and again.get_config() == s.get_config()
    assert [again(i) for i in range(0, 900, 7)] == [s(i) for i in range(0, 900, 7)]
    # Keras's serialized form adds module and registered_name.
    keras_form = dict(schedules.serialize(s), module="keras.optimizers.schedules",
                      registered_name=None)
    assert schedules.deserialize(keras_form).get_config() == s.get_config()
    opt = optimizers.get(optimizers.serialize(optimizers.SGD(s, momentum=0.5)))
    assert type(opt._schedule) is type(s) and opt._schedule.get_config() == s.get_config()


def test_keras_defaults_and_argument_order():
    c = schedules.CosineDecay(0.1, 10)
    assert (c.alpha, c.name, c.warmup_target, c.warmup_steps) == (0.0, "CosineDecay", None, 0)
    p = schedules.PolynomialDecay(0.1, 10)
    assert (p.end_learning_rate, p.power, p.cycle, p.name) == (0.0001, 1.0, False,
                                                               "PolynomialDecay")
    r = schedules.CosineDecayRestarts(0.1, 10)
    assert (r.t_mul, r.m_mul, r.alpha, r.name) == (2.0, 1.0, 0.0, "SGDRDecay")
    assert schedules.PiecewiseConstantDecay([1], [0.1, 0.2]).name == "PiecewiseConstant"
    assert schedules.InverseTimeDecay(0.1, 10, 0.5).staircase is False
    assert schedules.PiecewiseConstantDecay([5, 10], [0.3, 0.2, 0.1]).get_config()[
        "boundaries"] == [5, 10]


@pytest.mark.parametrize("make,match", [
    (lambda: schedules.CosineDecay(0.1, 0), "decay_steps must be a finite number > 0"),
    (lambda: schedules.PolynomialDecay(0.1, 10, power=-1.0), "power"),
    (lambda: schedules.InverseTimeDecay(0.1, 10, float("nan")), "decay_rate"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), "1 less than"),
    (lambda: schedules.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3]), "ascending"),
    (lambda: schedules.PiecewiseConstantDecay([1], [0.1, -0.2]), r"values\[1\]"),
    (lambda: schedules.CosineDecayRestarts(0.1, 10, t_mul=0.5), "t_mul"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_target=-1.0, warmup_steps=5),
     "warmup_target"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.9)(-1), "step"),
    (lambda: schedules.deserialize("CosineDecay"), "needs its arguments"),
    (lambda: schedules.deserialize({"class_name": "Nope", "config": {}}), "Unknown"),
])
def test_bad_arguments_say_what_came(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_step_must_be_a_number():
    with pytest.raises(TypeError, match="step must be a number, got str"):
        schedules.CosineDecay(0.1, 10)("3")
    assert schedules.CosineDecay(0.1, 10)(np.array(4)) == schedules.CosineDecay(0.1, 10)(4)


def test_only_a_schedule_with_its_own_call_runs_in_python():
    class Renamed(schedules.CosineDecay):
        pass

    class Shifted(schedules.CosineDecay):
        def __call__(self, step):
            return super().__call__(step + 1)

    assert Renamed(0.1, 10)._c_config() is not None
    assert Shifted(0.1, 10)._c_config() is None
    assert not optimizers.SGD(Renamed(0.1, 10))._per_batch_lr()
    assert optimizers.SGD(Shifted(0.1, 10))._per_batch_lr()
    assert optimizers.SGD(0.1)._c_config()["lr"] == 0.1


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_applies_the_python_rate_in_whole_chunks(case, steady_clock):
    """The C-evaluated schedule trains exactly as the same schedule fed from
    Python one batch at a time, and in a few C calls instead of one per batch."""
    in_c, counts = _fit(_ours(case))
    in_py, py_counts = _fit(_InPython(_ours(case)))
    for a, b in zip(in_c.get_weights(), in_py.get_weights()):
        np.testing.assert_array_equal(a, b)
    batches = 3 * 480 // 8
    assert in_c.optimizer.iterations == in_py.optimizer.iterations == batches
    assert sum(counts) == sum(py_counts) == batches
    assert py_counts == [1] * batches
    assert len(counts) <= 6, counts


class _CallsPerEpoch(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(len(self.model._net.counts))


def test_c_calls_per_epoch_do_not_grow_with_the_batches(steady_clock):
    for n in (480, 3840, 30720):        # 60, 480 and 3840 batches an epoch
        per_epoch = _CallsPerEpoch()
        _fit(schedules.CosineDecay(0.1, 1000), epochs=4, n=n, cbs=[per_epoch])
        calls = np.diff([0] + per_epoch.ends)
        # The first epoch grows the chunk from one batch; then one call each.
        assert calls[0] <= 6 and list(calls[1:]) == [1, 1, 1], (n, calls)


class _Seen(callbacks.Callback):
    """Records (iterations, learning_rate) at every chunk end and epoch end."""
    batch_hooks_at_chunk_ends = True

    def __init__(self):
        super().__init__()
        self.chunks, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        opt = self.model.optimizer
        self.chunks.append((batch, opt.iterations, opt.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        self.epochs.append((opt.iterations, opt.learning_rate))


def test_callbacks_see_the_current_iterations_and_rate(steady_clock):
    s = schedules.PolynomialDecay(0.1, 100, power=2.0)
    seen = _Seen()
    _, counts = _fit(s, cbs=[seen])
    assert len(seen.chunks) == len(counts) <= 6
    for epoch, (it, lr) in enumerate(seen.epochs):
        assert it == 60 * (epoch + 1) and lr == s(it)
    done = np.cumsum(counts)
    for (batch, it, lr), d in zip(seen.chunks, done):
        assert it == d and batch == (d - 1) % 60 and lr == s(it)


def test_a_callback_can_replace_the_schedule_between_epochs(steady_clock):
    first, then = schedules.CosineDecay(0.1, 200), schedules.ExponentialDecay(0.05, 10, 0.8)

    class Switch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.optimizer.learning_rate = then

    class Spliced(schedules.LearningRateSchedule):
        def __call__(self, step):
            return first(step) if step < 60 else then(step)

    switched, counts = _fit(first, cbs=[Switch()])
    assert switched.optimizer._schedule is then and len(counts) <= 6
    assert switched.optimizer.learning_rate == then(180)
    spliced, _ = _fit(Spliced())
    for a, b in zip(switched.get_weights(), spliced.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="schedule"):
        switched.optimizer.learning_rate = 0.01      # as Keras: not settable


def test_reduce_lr_on_plateau_keeps_whole_chunks(steady_clock):
    cb = callbacks.ReduceLROnPlateau(monitor="loss", patience=1, min_delta=10.0,
                                     factor=0.5)
    m, counts = _fit(0.05, epochs=4, cbs=[cb])
    assert m.history.history["learning_rate"] == pytest.approx([0.05, 0.05, 0.025, 0.0125])
    assert len(counts) <= 7, counts


@pytest.mark.parametrize("case", ["exponential-staircase", "piecewise", "cosine-warmup",
                                  "restarts", "polynomial-cycle", "inverse-time"])
def test_a_saved_model_keeps_its_schedule_and_trains_on_the_same(tmp_path, case):
    m, _ = _fit(_ours(case), epochs=1, opt=optimizers.Adam)
    m._net = m._net.net
    m.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    s, t = m.optimizer._schedule, loaded.optimizer._schedule
    assert type(t) is type(s) and t.get_config() == s.get_config()
    assert loaded.optimizer.iterations == m.optimizer.iterations == 60
    assert loaded.optimizer.learning_rate == m.optimizer.learning_rate
    x, y = _data()
    for model in (m, loaded):
        seeding.set_random_seed(11)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
