"""train_on_batch / test_on_batch / predict_on_batch (Keras 3's signatures
and return values): a train_on_batch is one step of fit's C loop."""
import inspect
import os
import resource
import threading

import numpy as np
import pytest

from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.seeding import set_random_seed


def _data(n=70, d=6, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d)).astype(np.float32)
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.float32)


def _model(seed=1, metrics=("accuracy",), optimizer="adam", reg=None):
    set_random_seed(seed)
    m = Sequential([Input((6,)), Dense(12, activation="relu", kernel_regularizer=reg),
                    Dropout(0.4), Dense(1, activation="sigmoid")])
    m.compile(optimizer, "binary_crossentropy", metrics=list(metrics))
    return m


def _assert_unchanged(m, before):
    for u, v in zip(before, m.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert m.optimizer.iterations == 0


def test_signatures_are_keras_3s():
    sig = lambda f: list(inspect.signature(f).parameters)
    assert sig(Sequential.train_on_batch) == ["self", "x", "y", "sample_weight",
                                              "class_weight", "return_dict"]
    assert sig(Sequential.test_on_batch) == ["self", "x", "y", "sample_weight",
                                             "return_dict"]
    assert sig(Sequential.predict_on_batch) == ["self", "x"]


def test_return_values_scalar_list_and_dict():
    x, y = _data()
    m = _model()
    out = m.train_on_batch(x[:16], y[:16])
    assert isinstance(out, list) and len(out) == 2 and all(type(v) is float for v in out)
    d = m.train_on_batch(x[:16], y[:16], return_dict=True)
    assert set(d) == {"loss", "accuracy"} and all(type(v) is float for v in d.values())
    t = m.test_on_batch(x, y)
    assert isinstance(t, list) and len(t) == 2
    assert set(m.test_on_batch(x, y, return_dict=True)) == {"loss", "accuracy"}
    p = m.predict_on_batch(x)
    assert isinstance(p, np.ndarray) and p.dtype == np.float32 and p.shape == (70, 1)
    bare = _model(metrics=())
    assert type(bare.train_on_batch(x, y)) is float
    assert type(bare.test_on_batch(x, y)) is float


@pytest.mark.parametrize("weights", ["none", "sample", "class"])
def test_a_loop_of_train_on_batch_is_fit_without_shuffling_bit_for_bit(weights):
    """Same masks (keyed by the optimizer's step), same updates; the last
    batch (70 = 2 * 32 + 6) shorter, as fit's."""
    x, y = _data()
    sw = np.linspace(0.2, 2.0, len(x)).astype(np.float32) if weights == "sample" else None
    cw = {0: 0.5, 1: 2.0} if weights == "class" else None
    a, b = _model(), _model()
    hist = a.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0,
                 sample_weight=sw, class_weight=cw)
    losses, sizes = [], []
    for i in range(0, len(x), 32):
        out = b.train_on_batch(x[i:i + 32], y[i:i + 32],
                               sample_weight=None if sw is None else sw[i:i + 32],
                               class_weight=cw)
        losses.append(out[0])
        sizes.append(len(x[i:i + 32]))
    assert a.optimizer.iterations == b.optimizer.iterations == 3
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert np.average(losses, weights=sizes) == pytest.approx(hist.history["loss"][0],
                                                              rel=1e-6)


def test_metrics_and_loss_are_the_batch_before_the_update_with_the_penalty():
    from dropout_engine.regularizers import l2
    x, y = _data()
    m = Sequential([Input((6,)), Dense(1, activation="sigmoid",
                                       kernel_regularizer=l2(0.01))])
    m.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    want = m.evaluate(x[:20], y[:20], verbose=0)     # no dropout: the same forward
    got = m.train_on_batch(x[:20], y[:20])
    assert got == pytest.approx(want, rel=1e-5)
    assert m.test_on_batch(x[:20], y[:20]) != pytest.approx(want, rel=1e-5)  # updated


def test_test_and_predict_on_batch_equal_evaluate_and_predict():
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=2, verbose=0)
    sw = np.linspace(0.0, 1.0, len(x))
    assert m.test_on_batch(x, y, sample_weight=sw) == pytest.approx(
        m.evaluate(x, y, sample_weight=sw, verbose=0), rel=1e-12)
    np.testing.assert_array_equal(m.predict_on_batch(x), m.predict(x))


def test_one_c_net_and_one_arena_for_a_loop_of_calls():
    x, y = _data()
    m = _model()
    m.train_on_batch(x[:32], y[:32])
    net, token = m._net, m._net._train_token
    for i in range(200):
        m.train_on_batch(x[:32], y[:32])
        m.train_on_batch(x[:7], y[:7])      # a shorter batch reuses the arena
    assert m._net is net and m._net._train_token is token
    assert m.optimizer.iterations == 401
    m.fit(x, y, batch_size=32, epochs=1, verbose=0)       # fit's setup is the same
    assert m._net._train_token is token


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine keeps freed memory resident")
def test_a_long_loop_of_train_on_batch_keeps_memory_flat():
    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024
    x, y = _data(256)
    m = _model()
    for _ in range(1000):                  # warm up: arena, numpy's caches
        m.train_on_batch(x[:32], y[:32])
    before = rss_kb()
    for _ in range(10000):
        m.train_on_batch(x[:32], y[:32])
    assert rss_kb() - before < 1024        # a leak of 100 bytes per call would be 1 MB


def test_train_on_batch_builds_an_unbuilt_model_and_advances_the_step():
    x, y = _data()
    m = Sequential([Dense(5, activation="relu"), Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    m.train_on_batch(x[:10], y[:10])
    assert m.built and m.get_weights()[0].shape == (6, 5)
    assert m.optimizer.iterations == 1
    u = Sequential([Dense(2, activation="softmax")])
    u.compile("sgd", "sparse_categorical_crossentropy")
    assert type(u.test_on_batch(x, y.astype(int))) is float and u.built


def test_masks_differ_between_steps_and_follow_the_seed():
    x, y = _data()
    runs = []
    for _ in range(2):
        m = _model(seed=4)
        runs.append([m.train_on_batch(x[:32], y[:32])[0] for _ in range(3)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3


def test_a_nan_loss_is_refused_and_the_weights_are_kept():
    x, y = _data()
    m = Sequential([Input((6,)), Dense(1)])
    m.compile("sgd", "mse")
    before = m.get_weights()
    with pytest.raises(FloatingPointError, match="not applied"):
        m.train_on_batch(x[:4], np.full(4, 3e38, np.float32))
    _assert_unchanged(m, before)


def test_bad_calls_are_refused_before_any_step():
    x, y = _data()
    m = _model()
    before = m.get_weights()
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([Input((6,)), Dense(1)]).train_on_batch(x, y)
    for call, exc, msg in [
            (lambda: m.train_on_batch(x, y[:-1]), ValueError, "samples"),
            (lambda: m.train_on_batch(x[:, :5], y), ValueError, "expected input shape"),
            (lambda: m.train_on_batch(x, y, sample_weight=-np.ones(70)), ValueError, ">= 0"),
            (lambda: m.train_on_batch(x, y, sample_weight=np.ones(70),
                                      class_weight={0: 1.0}), ValueError, "class_weight"),
            (lambda: m.train_on_batch(x, None), ValueError, "y is required"),
            (lambda: m.test_on_batch(x, y + 2), ValueError, r"in \[0, 1\]")]:
        with pytest.raises(exc, match=msg):
            call()
    _assert_unchanged(m, before)


def test_a_quantized_model_refuses_train_on_batch():
    x, y = _data()
    m = _model()
    m.quantize("int8")
    with pytest.raises(NotImplementedError, match="train_on_batch"):
        m.train_on_batch(x, y)
    assert m.test_on_batch(x, y)[0] > 0


def test_train_on_batch_is_refused_while_fit_runs():
    x, y = _data(4096)
    m = _model()
    from dropout_engine.callbacks import LambdaCallback
    errors, started = [], threading.Event()
    # Every batch signals that fit runs, and takes 10 ms.
    cb = LambdaCallback(on_train_batch_begin=lambda b, logs: (started.set(),
                                                              threading.Event().wait(0.01)))
    t = threading.Thread(target=lambda: m.fit(x, y, epochs=1, batch_size=64,
                                              verbose=0, callbacks=[cb]))
    t.start()
    started.wait(10)
    try:
        m.train_on_batch(x[:8], y[:8])
    except RuntimeError as e:
        errors.append(str(e))
    t.join()
    assert errors and "already being trained" in errors[0]


def test_keras_returns_the_same_structure():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x, y = _data()
    for metrics in ([], ["accuracy"]):
        k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
        k.compile("sgd", "binary_crossentropy", metrics=metrics)
        ours = Sequential([Input((6,)), Dense(1, activation="sigmoid")])
        ours.compile("sgd", "binary_crossentropy", metrics=metrics)
        ours.set_weights(k.get_weights())
        for call in (lambda m: m.test_on_batch(x, y), lambda m: m.train_on_batch(x, y),
                     lambda m: m.train_on_batch(x, y, return_dict=True)):
            want, got = call(k), call(ours)
            assert type(got) is type(want)
            assert got == pytest.approx(want, rel=1e-5)
        np.testing.assert_allclose(ours.predict_on_batch(x), k.predict_on_batch(x),
                                   rtol=1e-5, atol=1e-6)
