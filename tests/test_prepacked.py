"""Prepacked weights (de_gemm_pack_b / de_gemm_prepacked, _engine.Net's
packed kernel panels): bit-identical to the unpacked path on every ISA, made
lazily, and never stale after any way of changing a weight."""
import numpy as np
import pytest

from dropout_engine import _engine
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential

# (m, n, k): below, at and above every MR/NR/KC/NC and both sides of the
# small-m (4) and thin (16) limits.
SHAPES = [(5, 17, 3), (6, 32, 256), (13, 64, 257), (64, 300, 513),
          (97, 1024, 100), (300, 31, 700), (8, 16, 9), (3, 40, 50),
          (64, 1030, 784)]


def check_gemm_bit_identical():
    rng = np.random.default_rng(7)
    for m, n, k in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        for acc in (False, True):
            want, got = c0.copy(), c0.copy()
            _engine.gemm(False, False, a, b, want, acc)
            _engine.gemm_prepacked(a, b, _engine.PackedB(b), got, acc)
            assert np.array_equal(want, got), (m, n, k, acc)


def _model(seed=0):
    rng = np.random.default_rng(seed)
    m = Sequential([Input((100,)), Dense(300, activation="relu"), Dropout(0.3),
                    Dense(64, activation="tanh"), Dense(10, activation="softmax")])
    m.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.1
                   for w in m.weights])
    return m


def check_predict_bit_identical():
    m = _model()
    x = np.random.default_rng(1).standard_normal((64, 100)).astype(np.float32)
    packed = m.predict(x)
    assert m._net.packed_bytes() > 0
    # The same net through de_net_predict without panels: ops.dense_forward
    # per layer is the unpacked fused forward.
    from dropout_engine import ops
    h = x
    for d in (l for l in m.layers if isinstance(l, Dense)):
        h, _ = ops.dense_forward(h, d.kernel, d.bias, activation=d.activation,
                                 training=False)
    assert np.array_equal(packed, h)


def test_gemm_bit_identical():
    check_gemm_bit_identical()


def test_predict_bit_identical():
    check_predict_bit_identical()


@pytest.mark.parametrize("isa", [0, 1, 2])
def test_bit_identical_each_isa(isa):
    from test_gemm import run_under_isa
    run_under_isa(isa, "test_prepacked", ["check_gemm_bit_identical",
                                          "check_predict_bit_identical"])


def test_panels_for_other_kernels_are_not_used():
    """A copy packed for another ISA is ignored (B packed per call)."""
    isas = [i for i in range(3) if _engine.isa_available(i)]
    if len(isas) < 2:
        pytest.skip("one ISA here")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 300)).astype(np.float32)
    b = rng.standard_normal((300, 200)).astype(np.float32)
    first = _engine.isa_get()
    try:
        for isa in isas:
            _engine.isa_set(isa)
            p = _engine.PackedB(b)
            for other in isas:
                _engine.isa_set(other)
                want, got = np.empty((64, 200), np.float32), np.empty((64, 200), np.float32)
                _engine.gemm(False, False, a, b, want, False)
                _engine.gemm_prepacked(a, b, p, got)
                assert np.array_equal(want, got), (isa, other)
    finally:
        _engine.isa_set(first)


def test_packing_is_lazy():
    m = _model()
    x = np.ones((1, 100), np.float32)
    m.predict(x)
    assert m._net.packed_bytes() == 0           # batch 1: small-m path
    m.predict(np.ones((64, 100), np.float32))
    # Dense(300) and Dense(64) pack; Dense(10) runs the thin path where the
    # ISA has one, which reads the kernel in place.
    assert m._net.packed_bytes() >= 4 * (100 * 300 + 300 * 64)


def test_kernel_is_read_only():
    m = _model()
    with pytest.raises(ValueError, match="read-only"):
        m.layers[0].kernel[...] = 0
    with pytest.raises(ValueError, match="read-only"):
        m.weights[1][:] = 0
    with pytest.raises(ValueError, match="read-only"):
        m.layers[0].kernel += 1


X64 = np.random.default_rng(5).standard_normal((64, 100)).astype(np.float32)


def _changes():
    """Each way to change a weight: name -> f(model)."""
    def model_set(m):
        m.set_weights([w * 2 for w in m.get_weights()])

    def layer_set(m):
        d = m.layers[0]
        d.set_weights([d.kernel[::-1].copy(), d.bias])

    def fit(m):
        m.compile("sgd", "mse")
        m.fit(X64, np.zeros((64, 10), np.float32), epochs=1, verbose=0)

    def train_on_batch(m):
        m.compile("adam", "mse")
        m.train_on_batch(X64, np.ones((64, 10), np.float32))

    def load_weights(m, tmp):
        other = _model(seed=9)
        other.save_weights(tmp)
        m.load_weights(tmp)

    return {"set_weights": model_set, "layer.set_weights": layer_set, "fit": fit,
            "train_on_batch": train_on_batch, "load_weights": load_weights}


@pytest.mark.parametrize("how", sorted(_changes()))
def test_every_weight_change_reaches_the_next_predict(how, tmp_path):
    m = _model()
    before = m.predict(X64)                     # packs
    assert m._net.packed_bytes() > 0
    f = _changes()[how]
    if how == "load_weights":
        f(m, str(tmp_path / "w.weights.safetensors"))
    else:
        f(m)
    after = m.predict(X64)
    fresh = _model()
    fresh.set_weights(m.get_weights())          # a net that never packed old weights
    assert not np.array_equal(before, after)
    assert np.array_equal(after, fresh.predict(X64))


def test_load_gives_the_saved_predict(tmp_path):
    from dropout_engine import saving
    m = _model()
    m.compile("sgd", "mse")
    want = m.predict(X64)
    path = str(tmp_path / "m.keras")
    m.save(path)
    loaded = saving.load_model(path)
    assert np.array_equal(loaded.predict(X64), want)


def test_shared_layer_trained_by_another_model():
    """Two models share a Dense: training one must refresh the other's
    packed copy (the pack epoch is global, not per net)."""
    a = _model()
    b = Sequential([Input((100,)), a.layers[0]])
    before = b.predict(X64)
    a.compile("sgd", "mse")
    a.fit(X64, np.ones((64, 10), np.float32), epochs=1, verbose=0)
    after = b.predict(X64)
    assert not np.array_equal(before, after)
    c = Sequential([Input((100,)), Dense(300, activation="relu")])
    c.set_weights(a.layers[0].get_weights())
    assert np.array_equal(after, c.predict(X64))
