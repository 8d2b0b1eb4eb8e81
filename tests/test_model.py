"""Sequential end to end: the C training step against a numpy reference,
the tutorial programs, dropout scaling rules, weights, determinism and
thread safety."""
import threading

import numpy as np
import pytest

import reference as ref
import dropout_engine as de
from dropout_engine import constraints, seeding
from dropout_engine.callbacks import Callback
from dropout_engine.layers import Activation, Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import SGD, Adam


def _blobs(n=600, d=10, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, n)
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


def test_training_steps_match_a_numpy_reference_with_dropout():
    """Two full-batch steps of input dropout -> relu + dropout -> softmax,
    SCCE, SGD with momentum: masks from (seed, site, step), weights after
    each step equal the float64 reference."""
    rng = np.random.default_rng(5)
    m, d, h, k, lr, mom = 16, 12, 20, 4, 0.05, 0.9
    x = rng.normal(size=(m, d)).astype(np.float32)
    y = rng.integers(0, k, m)
    model = Sequential([Input((d,)), Dropout(0.2, seed=11), Dense(h, activation="relu"),
                        Dropout(0.5, seed=22), Dense(k, activation="softmax")])
    model.compile(SGD(lr, momentum=mom), "sparse_categorical_crossentropy")
    w = [v.astype(np.float64) for v in model.get_weights()]
    st = [{} for _ in w]
    t = np.eye(k)[y]
    for step in range(2):
        keep0 = ref.keep_mask(ref.rng_key(11, 0, step), m, d, 0.2)
        keep1 = ref.keep_mask(ref.rng_key(22, 1, step), m, h, 0.5)
        s0, s1 = ref.dropout_params(0.2)[1], ref.dropout_params(0.5)[1]
        xd = np.where(keep0, x * np.float64(s0), 0.0)
        a1, _ = ref.dense_forward(xd, w[0], w[1], "relu", keep1, s1)
        p, _ = ref.dense_forward(a1, w[2], w[3], "softmax")
        dz2 = (p - t) / m
        da1 = dz2 @ w[2].T
        _, dw0, db0 = ref.dense_backward(da1, xd, w[0], w[1], "relu", keep1, s1)
        grads = [dw0, db0, a1.T @ dz2, dz2.sum(axis=0)]
        w = [ref.keras_step("sgd", wi, gi, si, step, lr, momentum=mom)
             for wi, gi, si in zip(w, grads, st)]
        model.fit(x, y, batch_size=m, epochs=1, shuffle=False, verbose=0)
        for got, want in zip(model.get_weights(), w):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert model.optimizer.iterations == 2


def test_classifier_with_hidden_dropout_and_validation_data_learns():
    seeding.set_random_seed(0)
    x, y = _blobs()
    model = Sequential([Input((10,)), Dense(32, activation="relu"), Dropout(0.5),
                        Dense(32, activation="relu"), Dropout(0.5),
                        Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    onehot = np.eye(3, dtype=np.float32)[y]
    hist = model.fit(x[:500], onehot[:500], epochs=15, batch_size=32, verbose=0,
                     validation_data=(x[500:], onehot[500:]))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 15
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["val_accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x[500:], onehot[500:], verbose=0)
    assert acc == pytest.approx(hist.history["val_accuracy"][-1])
    assert loss == pytest.approx(hist.history["val_loss"][-1], rel=1e-5)


def test_regression_head_with_mse_learns():
    seeding.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.3
    model = Sequential([Dense(16, activation="tanh", input_shape=(4,)), Dense(1)])
    model.compile(optimizer=Adam(0.01), loss="mse", metrics=["mae"])
    hist = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < 0.05 * np.var(y)
    assert model.predict(x[:5]).shape == (5, 1)
    assert set(hist.history) == {"loss", "mae"}


def test_input_dropout_max_norm_sgd_binary_classifier_learns():
    seeding.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 8)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype(np.float32)
    model = Sequential([Input((8,)), Dropout(0.2),
                        Dense(32, activation="relu", kernel_constraint=constraints.MaxNorm(3)),
                        Dense(1, activation="sigmoid")])
    model.compile(SGD(0.1, momentum=0.9), "binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=10, batch_size=32, validation_split=0.25, verbose=0)
    assert hist.history["val_accuracy"][-1] > 0.9
    norms = np.sqrt((model.get_weights()[0].astype(np.float64) ** 2).sum(axis=0))
    assert norms.max() <= 3.0 + 1e-4


def test_weight_scaling_is_one_minus_rate_times_inverted_at_inference():
    x = np.random.default_rng(3).normal(size=(7, 6)).astype(np.float32)

    def build(scaling):
        m = Sequential([Input((6,)), Dense(5, activation="relu"),
                        Dropout(0.3, scaling=scaling)])
        m.set_weights(w)
        return m
    seeding.set_random_seed(3)
    w = Sequential([Input((6,)), Dense(5)]).get_weights()
    np.testing.assert_allclose(build("weight").predict(x),
                               np.float32(0.7) * build("inverted").predict(x), rtol=1e-6)


def test_weight_scaling_on_the_input_scales_the_input():
    x = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    a = Sequential([Input((4,)), Dropout(0.5, scaling="weight"), Dense(2, use_bias=False)])
    b = Sequential([Input((4,)), Dense(2, use_bias=False)])
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(a.predict(x), 0.5 * b.predict(x), rtol=1e-6)


def test_activation_layers_fuse_into_the_dense_layer():
    x = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    a = Sequential([Input((3,)), Dense(4), Activation("relu"), Dense(2), Activation("softmax")])
    b = Sequential([Input((3,)), Dense(4, activation="relu"), Dense(2, activation="softmax")])
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="Activation\\('tanh'\\) cannot be fused"):
        Sequential([Input((3,)), Dense(4, activation="relu"), Activation("tanh")])


def test_get_set_weights_round_trip_in_keras_order():
    m = Sequential([Input((3,)), Dense(4), Dense(2, use_bias=False)])
    shapes = [w.shape for w in m.get_weights()]
    assert shapes == [(3, 4), (4,), (4, 2)]
    new = [np.full(s, i, np.float64) for i, s in enumerate(shapes)]
    m.set_weights(new)
    for got, want in zip(m.get_weights(), new):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.float32
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(m.predict(x), x @ (new[0]) @ new[2] + new[1] @ new[2])


def test_set_weights_with_a_wrong_shape_leaves_the_model_unchanged():
    m = Sequential([Input((3,)), Dense(4), Dense(2)])
    before = m.get_weights()
    bad = [w + 1 for w in before]
    bad[2] = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"weights\[2\] must have shape \(4, 2\), got \(5, 2\)"):
        m.set_weights(bad)
    for got, want in zip(m.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def _seeded_fit(threads, opt):
    from dropout_engine import regularizers
    de.set_num_threads(threads)
    try:
        seeding.set_random_seed(42)
        x, y = _blobs(n=300, d=40)
        # 300 x 300 is large enough for the update to run on both threads.
        m = Sequential([Input((40,)), Dropout(0.2), Dense(300, activation="relu"),
                        Dropout(0.5), Dense(300, activation="tanh",
                                            kernel_regularizer=regularizers.l1_l2(1e-4, 1e-3),
                                            kernel_constraint=constraints.MaxNorm(2.0)),
                        Dense(3, activation="softmax")])
        m.compile(opt(), "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        return m.get_weights(), h.history
    finally:
        de.set_num_threads(2)


@pytest.mark.parametrize("opt", [lambda: SGD(0.05, momentum=0.9),
                                 lambda: Adam(0.001), lambda: de.optimizers.RMSprop(centered=True)])
def test_seeded_fit_is_bit_identical_with_one_and_two_threads(opt):
    (one, h1), (two, h2) = _seeded_fit(1, opt), _seeded_fit(2, opt)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2


def test_predict_is_safe_from_eight_threads_at_once():
    m = Sequential([Input((50,)), Dense(64, activation="relu"), Dense(10, activation="softmax")])
    xs = [np.random.default_rng(i).normal(size=(33, 50)).astype(np.float32) for i in range(8)]
    want = [m.predict(x) for x in xs]
    got = [None] * 8
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        for _ in range(20):
            got[i] = m.predict(xs[i])
            if not np.array_equal(got[i], want[i]):
                return
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_predict_converts_other_dtypes_once_and_returns_float32():
    m = Sequential([Input((3,)), Dense(2)])
    x = np.arange(6).reshape(2, 3)
    out = m.predict(x)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, m.predict(x.astype(np.float32)))
    np.testing.assert_array_equal(m.predict(x[:, ::-1].copy()), m.predict(np.ascontiguousarray(x[:, ::-1], np.float32)))


@pytest.mark.parametrize("layout", ["big-endian", "fortran", "strided", "subclass"])
def test_predict_reads_every_float32_layout_by_value(layout):
    # Only a C-contiguous native float32 ndarray goes to C as is; the others
    # are converted first (a big-endian array was once read as native bytes).
    m = Sequential([Input((3,)), Dense(2, activation="tanh")])
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    other = {"big-endian": lambda: x.astype(">f4"), "fortran": lambda: np.asfortranarray(x),
             "strided": lambda: np.repeat(x, 2, axis=1)[:, ::2],
             "subclass": lambda: x.view(np.memmap)}[layout]()
    np.testing.assert_array_equal(other, x)
    np.testing.assert_array_equal(m.predict(other), m.predict(x))


def test_the_c_net_refuses_an_x_it_cannot_read_as_is():
    # predict checks x before its one C call; the binding checks again, so a
    # caller that skipped the check gets an error, never a wrong read.
    m = Sequential([Input((3,)), Dense(2)])
    x = np.ones((2, 3), np.float32)
    for bad in (x.astype(">f4"), x.astype(np.float64), np.asfortranarray(np.ones((3, 3), np.float32)),
                x[:, :2], x[:0], x[0], x.view(np.memmap), x.tolist()):
        assert not m._net.reads(bad)
        with pytest.raises(ValueError, match="C-contiguous native float32"):
            m._net.predict(bad, 1024)
    assert m._net.reads(x) and m._net.reads(x[:1])
    np.testing.assert_array_equal(m._net.predict(x, 1024), m.predict(x))


def test_evaluate_returns_a_float_without_metrics():
    m = Sequential([Input((3,)), Dense(1)])
    m.compile("sgd", "mse")
    out = m.evaluate(np.ones((4, 3)), np.zeros(4), verbose=0)
    assert isinstance(out, float)
    assert out == pytest.approx(float((m.predict(np.ones((4, 3))) ** 2).mean()))


def test_regularization_penalty_is_in_the_reported_loss():
    from dropout_engine import regularizers
    m = Sequential([Input((3,)), Dense(2, kernel_regularizer=regularizers.l2(0.5))])
    m.compile("sgd", "mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    plain = float((m.predict(x).astype(np.float64) ** 2).mean())
    pen = 0.5 * float((m.get_weights()[0].astype(np.float64) ** 2).sum())
    assert m.evaluate(x, y, verbose=0) == pytest.approx(plain + pen, rel=1e-5)


class _StopOnNaN(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if np.isnan(logs["loss"]) or np.isinf(logs["loss"]):
            self.model.stop_training = True
            self.seen = batch


def test_a_non_finite_loss_stops_fit_with_the_last_good_weights():
    x = np.random.default_rng(6).normal(size=(64, 3)).astype(np.float32)
    y = np.full(64, 1e30, np.float32)
    m = Sequential([Input((3,)), Dense(1)])
    m.compile(SGD(10.0), "mse")
    with pytest.raises(FloatingPointError, match="last good batch"):
        m.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())
    cb = _StopOnNaN()
    m.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb])
    assert m.stop_training and all(np.isfinite(w).all() for w in m.get_weights())


class _Interrupt(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_the_weights_of_the_last_completed_batch():
    x, y = _blobs(n=320, d=10)

    def model():
        seeding.set_random_seed(7)
        m = Sequential([Input((10,)), Dense(8, activation="relu"), Dropout(0.5),
                        Dense(3, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        return m
    m = model()
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[_Interrupt()])
    assert m.optimizer.iterations == 4
    ref_model = model()
    ref_model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), ref_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    m.fit(x, y, batch_size=32, epochs=1, verbose=0)   # still usable


def test_a_batch_larger_than_the_data_is_one_batch():
    x, y = _blobs(n=50)
    m = Sequential([Input((10,)), Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=10**9, epochs=2, verbose=0)
    assert m.optimizer.iterations == 2


def test_config_round_trip_and_summary(capsys):
    m = Sequential([Input((4,)), Dense(3, activation="relu", name="h"),
                    Dropout(0.25, scaling="weight", name="d"), Dense(2, name="o")])
    clone = Sequential.from_config(m.get_config())
    assert [type(l).__name__ for l in clone.layers] == ["Dense", "Dropout", "Dense"]
    assert clone.layers[1].scaling == "weight" and clone.layers[1].rate == 0.25
    assert [w.shape for w in clone.get_weights()] == [(4, 3), (3,), (3, 2), (2,)]
    m.summary()
    out = capsys.readouterr().out
    assert "h (Dense)" in out and "(None, 3)" in out and "Total params: 23" in out


def test_package_exports_the_model_api_lazily():
    assert de.Sequential is Sequential
    assert callable(de.load_model) and callable(de.set_random_seed)


def test_softmax_rows_predicted_in_blocks_or_alone_agree_bit_for_bit():
    # Narrow softmax rows are done 8 at a time (rows as vector lanes); the
    # arithmetic must be the per-row pass's, so batching changes nothing.
    rng = np.random.default_rng(3)
    model = Sequential([Input((20,)), Dense(16, activation="relu"),
                        Dense(10, activation="softmax")])
    x = rng.normal(size=(19, 20)).astype(np.float32)
    together = model.predict(x)
    alone = np.concatenate([model.predict(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose(together.sum(1), 1, rtol=1e-6)
