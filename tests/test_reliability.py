"""Reliability beyond single calls: threads (fit beside predict, the GIL
released), a real SIGINT during fit, reruns and seeds, extreme logits and
rate 0, and resident memory over 1,000 epochs.  (Eight threads predicting,
1 vs 2 threads and a callback-raised KeyboardInterrupt are in
test_model.py.)"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import ops, seeding
from dropout_engine.callbacks import Callback
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.saving import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data(n=256, d=20, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, rng.integers(0, k, n)


def _model(seed, d=20, k=4, width=32):
    seeding.set_random_seed(seed)
    m = Sequential([Input((d,)), Dense(width, activation="relu"), Dropout(0.5),
                    Dense(width, activation="relu"), Dropout(0.3),
                    Dense(k, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _fit_weights(seed, epochs=3):
    x, y = _data()
    m = _model(seed)
    m.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return m.get_weights()


# ---------------------------------------------------------------- threads

def test_fit_on_one_model_while_eight_threads_predict_on_another():
    x, y = _data()
    want_fit = _fit_weights(1)
    other = _model(2)
    xs = [np.random.default_rng(i).normal(size=(50, 20)).astype(np.float32) for i in range(8)]
    want = [other.predict(v) for v in xs]
    trainee = _model(1)
    stop = threading.Event()
    mismatches = []

    def predictor(i):
        while not stop.is_set():
            if not np.array_equal(other.predict(xs[i]), want[i]):
                mismatches.append(i)
                return
    threads = [threading.Thread(target=predictor, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        trainee.fit(x, y, epochs=3, batch_size=32, verbose=0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not mismatches
    for a, b in zip(trainee.get_weights(), want_fit):
        np.testing.assert_array_equal(a, b)


def test_a_second_fit_on_the_same_model_from_another_thread_is_refused():
    x, y = _data()
    m = _model(3)
    errors = []
    started, tried = threading.Event(), threading.Event()

    class Hold(Callback):     # keeps the first fit running until the second tried
        def on_epoch_begin(self, epoch, logs=None):
            started.set()
            tried.wait(10)

    t = threading.Thread(target=lambda: m.fit(x, y, epochs=2, verbose=0, callbacks=[Hold()]))
    t.start()
    started.wait(10)
    try:
        m.fit(x, y, epochs=1, verbose=0)
    except RuntimeError as e:
        errors.append(str(e))
    finally:
        tried.set()
        t.join()
    assert errors and "already being trained" in errors[0]


def test_predict_releases_the_gil():
    # One long C call (a single chunk); a pure-Python thread must keep
    # running meanwhile.  Holding the GIL would freeze its counter.
    m = Sequential([Input((256,)), Dense(512, activation="relu"),
                    Dense(512, activation="relu"), Dense(10)])
    x = np.random.default_rng(0).normal(size=(12000, 256)).astype(np.float32)
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        spins = []
        for _ in range(3):
            c0 = count[0]
            m.predict(x, batch_size=12000)
            spins.append(count[0] - c0)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert max(spins) > 1000, spins


# ---------------------------------------------------------------- Ctrl-C

class _SigintSoon(Callback):
    """Sends the process a real SIGINT from another thread once training runs."""

    def on_train_begin(self, logs=None):
        def fire():
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=fire, daemon=True).start()


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                    reason="needs POSIX signals")
def test_a_real_sigint_stops_fit_at_a_batch_boundary(tmp_path):
    x, y = _data(n=320)
    m = _model(5)
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=10 ** 6, batch_size=32, verbose=0, shuffle=False,
              callbacks=[_SigintSoon()])
    k = m.optimizer.iterations
    assert k > 0
    # The weights are those of exactly k whole batches.
    ref = _model(5)
    if k >= 10:
        ref.fit(x, y, epochs=k // 10, batch_size=32, verbose=0, shuffle=False)
    if k % 10:
        ref.fit(x[:32 * (k % 10)], y[:32 * (k % 10)], epochs=1, batch_size=32,
                verbose=0, shuffle=False)
    assert ref.optimizer.iterations == k
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    m.save(tmp_path / "m.safetensors")
    again = load_model(tmp_path / "m.safetensors")
    for a, b in zip(again.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    again.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert again.optimizer.iterations == k + 10


# ------------------------------------------------------------ determinism

def test_a_rerun_with_the_same_seed_is_bit_identical_and_another_seed_differs():
    first, again, other = _fit_weights(11), _fit_weights(11), _fit_weights(12)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, c) for a, c in zip(first, other))


# ------------------------------------------------------- numerical safety

@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_softmax_and_cross_entropy_stay_finite_for_logits_of_1e4(scale):
    k = 5
    x = np.eye(k, dtype=np.float32)
    w = np.eye(k, dtype=np.float32) * scale        # logits: +-1e4 on the diagonal
    y, _ = ops.dense_forward(x, w, None, activation="softmax")
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    m = Sequential([Input((k,)), Dense(k, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.set_weights([w, np.zeros(k, np.float32)])
    labels = np.roll(np.arange(k), 1)                # always the wrong class
    loss = m.evaluate(x, labels, verbose=0)
    assert np.isfinite(loss) and loss > 0
    if scale > 0:   # confidently wrong: Keras's clip of p at 1e-7, not inf
        assert loss == pytest.approx(-np.log(1e-7), rel=1e-3)
    m.fit(x, labels, epochs=1, batch_size=k, verbose=0)
    assert all(np.isfinite(v).all() for v in m.get_weights())


def test_binary_cross_entropy_stays_finite_for_logits_of_1e4():
    x = np.array([[1.0], [-1.0]], np.float32)
    m = Sequential([Input((1,)), Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    m.set_weights([np.array([[1e4]], np.float32), np.zeros(1, np.float32)])
    assert np.isfinite(m.evaluate(x, np.array([0.0, 1.0]), verbose=0))
    m.fit(x, np.array([0.0, 1.0]), epochs=1, verbose=0)
    assert all(np.isfinite(v).all() for v in m.get_weights())


def test_rate_zero_is_the_identity_everywhere():
    x = np.random.default_rng(0).normal(size=(7, 9)).astype(np.float32)
    out, mask = ops.dropout(x, 0.0)
    assert mask is None
    np.testing.assert_array_equal(out, x)
    w = np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32)
    y0, m0 = ops.dense_forward(x, w, None, activation="relu", dropout_rate=0.0)
    y1, _ = ops.dense_forward(x, w, None, activation="relu", dropout_rate=0.5,
                              training=False)
    assert m0 is None and np.isfinite(y0).all()
    np.testing.assert_array_equal(y0, y1)
    dx, dw, db = ops.dense_backward(np.ones_like(y0), x, w, y0, None,
                                    activation="relu", dropout_rate=0.0)
    assert all(np.isfinite(g).all() for g in (dx, dw, db))
    xs, ys = _data(n=64)
    for scaling in ("inverted", "weight"):
        m = Sequential([Input((20,)), Dropout(0.0, scaling=scaling), Dense(8, activation="relu"),
                        Dropout(0.0, scaling=scaling), Dense(4, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        h = m.fit(xs, ys, epochs=2, verbose=0)
        assert np.isfinite(h.history["loss"]).all()
        assert np.isfinite(m.predict(xs)).all()


# ------------------------------------------------------------- long run

_LONG_RUN = """
import json, os, sys
import numpy as np
import dropout_engine as de
from dropout_engine import seeding
from dropout_engine.callbacks import Callback
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

class Probe(Callback):
    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % 100 == 0:
            samples.append(rss())

seeding.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 100)).astype(np.float32)
y = rng.integers(0, 10, 256)
samples = []
m = Sequential([Input((100,)), Dense(64, activation="relu"), Dropout(0.5),
                Dense(64, activation="relu"), Dropout(0.5), Dense(10, activation="softmax")])
m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
m.fit(x, y, epochs=1000, batch_size=32, verbose=0, callbacks=[Probe()])
m.evaluate(x, y, verbose=0)
m.predict(x)
print(json.dumps({"rss": samples, "iterations": m.optimizer.iterations}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine keeps freed memory resident")
def test_a_thousand_epochs_of_w2_keep_resident_memory_flat():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-c", _LONG_RUN], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out["rss"]
    assert out["iterations"] == 8000 and len(rss) == 10
    base = rss[0]                       # after the first 100 epochs (warm-up)
    drift = max(abs(r - base) for r in rss[1:]) / base
    assert drift <= 0.05, [r // 1024 for r in rss]
