"""mixed_bfloat16 training (issue 14): the bf16 GEMM against its numpy
reference, every kernel path against every other, VDPBF16PS against its
emulation, then training under the policy (gradients, determinism,
accuracy) and the Keras policy API."""
import contextlib
import os

import numpy as np
import pytest

from dropout_engine import _engine
from reference import bf16_pack_round, gemm_bf16

FLT_MIN = np.finfo(np.float32).tiny
# The accuracy runs are long under ASan and add no memory-safety coverage
# (the same kernels run in the other tests).
accuracy_run = pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                                  reason="accuracy, not memory safety: too slow under ASan")


def _bits_equal(a, b):
    """Bit-identical, NaNs compared as NaN (payloads may differ between
    VDPBF16PS and an FMA: the SDM's NaN priorities)."""
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    return (np.array_equal(nan, np.isnan(b))
            and np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32)))


def _gemm(a, b, ta=False, tb=False, c=None):
    m = a.shape[1] if ta else a.shape[0]
    n = b.shape[0] if tb else b.shape[1]
    out = np.zeros((m, n), np.float32) if c is None else c.copy()
    _engine.gemm(ta, tb, a, b, out, accumulate=c is not None, bf16=True)
    return out


def _kernel_paths():
    """(isa, native) for every bf16 kernel this machine runs."""
    paths = [(isa, False) for isa in range(3) if _engine.isa_available(isa)]
    if _engine.bf16_native_available():
        paths.append((2, True))
    return paths


@contextlib.contextmanager
def _path(isa, native):
    before = _engine.isa_get()
    try:
        _engine.isa_set(isa)
        _engine.bf16_set_native(native)
        yield
    finally:
        _engine.isa_set(before)
        _engine.bf16_set_native(True)


def _hostile(rng, shape):
    """Normal values mixed with tiny ones (denormal inputs, products and
    sums near FLT_MIN), huge ones (overflow to Inf) and exact negatives
    (cancellation to zero and to tiny remainders)."""
    x = rng.standard_normal(shape).astype(np.float32)
    pick = rng.random(shape)
    tiny = (rng.standard_normal(shape) * 2.0 ** rng.integers(-140, -60, shape)
            ).astype(np.float32)
    x = np.where(pick < 0.3, tiny, x)
    x = np.where((pick > 0.97), np.float32(3e38) * np.sign(x), x)
    return x.astype(np.float32)


# ------------------------------------------------------------ the GEMM

@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 3, 7), (37, 45, 300),
                                   (13, 70, 257), (130, 33, 512), (4, 10, 9)])
def test_gemm_matches_the_numpy_reference_bit_for_bit(m, n, k):
    rng = np.random.default_rng(m * 1000 + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    assert _bits_equal(_gemm(a, b), gemm_bf16(a, b))


def test_gemm_rounds_its_inputs_to_bfloat16():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 40)).astype(np.float32)
    b = rng.standard_normal((40, 30)).astype(np.float32)
    got = _gemm(a, b)
    assert _bits_equal(got, _gemm(bf16_pack_round(a), bf16_pack_round(b)))
    exact = bf16_pack_round(a).astype(np.float64) @ bf16_pack_round(b)
    assert np.max(np.abs(got - exact)) < 1e-4 * np.max(np.abs(exact))
    assert not np.array_equal(got, a @ b)


def test_gemm_transposes_and_accumulate():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((50, 300)).astype(np.float32)
    b = rng.standard_normal((300, 70)).astype(np.float32)
    c = rng.standard_normal((50, 70)).astype(np.float32)
    want = _gemm(a, b)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    for ta, tb in ((1, 0), (0, 1), (1, 1)):
        got = _gemm(at if ta else a, bt if tb else b, ta, tb)
        assert _bits_equal(got, want), (ta, tb)
    assert _bits_equal(_gemm(a, b, c=c), gemm_bf16(a, b, c))


def test_gemm_hostile_values_match_the_reference():
    rng = np.random.default_rng(3)
    a = _hostile(rng, (24, 300))
    b = _hostile(rng, (300, 40))
    # cancellation: column 0 of b repeats column 1 negated, row pairs of a
    b[:, 0] = -b[:, 1]
    a[1] = a[0]
    with np.errstate(all="ignore"):
        want = gemm_bf16(a, b)
    assert _bits_equal(_gemm(a, b), want)


def _near_flt_min_cases(rng, n):
    """acc = FLT_MIN + a few ulps and one product of the opposite sign just
    below it: the results that round to FLT_MIN or flush, where 'tiny after
    rounding' and 'tiny before' differ."""
    k = 2
    a = np.zeros((n, k), np.float32)
    b = np.zeros((k, 1), np.float32)
    b[0, 0] = 1.0
    acc = FLT_MIN * (1 + rng.integers(0, 4, n) * 2.0 ** -23)
    sign = rng.choice([-1.0, 1.0], n)
    e = rng.integers(140, 170, n)
    mant = 1 + rng.integers(0, 128, n) / 128.0
    a[:, 0] = (sign * acc).astype(np.float32)
    a[:, 1] = (-sign * mant * 2.0 ** -(e // 2)).astype(np.float32)
    b[1, 0] = np.float32(2.0 ** -(e[0] - e[0] // 2))
    return a, b


def test_flush_at_flt_min_is_decided_after_rounding():
    rng = np.random.default_rng(4)
    for _ in range(20):
        a, b = _near_flt_min_cases(rng, 64)
        assert _bits_equal(_gemm(a, b), gemm_bf16(a, b))


def test_every_kernel_path_is_bit_identical():
    rng = np.random.default_rng(5)
    cases = [(rng.standard_normal((128, 784)).astype(np.float32),
              rng.standard_normal((784, 100)).astype(np.float32)),
             (_hostile(rng, (30, 513)), _hostile(rng, (513, 65))),
             _near_flt_min_cases(rng, 200)]
    outs = {}
    with np.errstate(all="ignore"):
        for path in _kernel_paths():
            with _path(*path):
                outs[path] = [_gemm(a, b) for a, b in cases] + [
                    _gemm(np.ascontiguousarray(a.T), b, ta=True) for a, b in cases]
    assert (0, False) in outs and len(outs) >= 2
    first = next(iter(outs.values()))
    for path, got in outs.items():
        for x, y in zip(first, got):
            assert _bits_equal(x, y), path


@pytest.mark.skipif(not _engine.bf16_native_available(),
                    reason="this CPU has no AVX512_BF16 (the emulations are "
                           "still compared with each other and numpy)")
def test_vdpbf16ps_matches_its_emulation_on_random_bits():
    """Any bit pattern (NaN, Inf, denormals, huge): the instruction and the
    AVX-512 emulation agree wherever the result is not NaN."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 2 ** 32, (64, 256), dtype=np.uint64).astype(np.uint32).view(np.float32)
    b = rng.integers(0, 2 ** 32, (256, 64), dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        with _path(2, True):
            hw = _gemm(a, b)
        with _path(2, False):
            em = _gemm(a, b)
    assert _bits_equal(hw, em)


def test_gemm_is_thread_count_independent():
    import dropout_engine as de
    rng = np.random.default_rng(8)
    a = rng.standard_normal((300, 500)).astype(np.float32)
    b = rng.standard_normal((500, 600)).astype(np.float32)
    before = de.get_num_threads()
    try:
        de.set_num_threads(1)
        one = _gemm(a, b)
        de.set_num_threads(2)
        two = _gemm(a, b)
    finally:
        de.set_num_threads(before)
    assert _bits_equal(one, two)


# ------------------------------------------------------------ training

import dropout_engine as de                                    # noqa: E402
from dropout_engine import keras                               # noqa: E402
from dropout_engine.keras import layers, mixed_precision      # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy_after():
    yield
    mixed_precision.set_global_policy("float32")


def _mlp(sizes, policy, acts=None, dropout=0.0, seed=0):
    mixed_precision.set_global_policy(policy)
    try:
        stack = [keras.Input((sizes[0],))]
        acts = acts or ["relu"] * (len(sizes) - 2) + ["softmax"]
        for i, (n, act) in enumerate(zip(sizes[1:], acts)):
            stack.append(layers.Dense(
                n, activation=act,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i)))
            if dropout and i < len(sizes) - 2:
                stack.append(layers.Dropout(dropout, seed=seed + 100 + i))
        return keras.Sequential(stack)
    finally:
        mixed_precision.set_global_policy("float32")


def _weights_equal(m1, m2):
    return all(_bits_equal(a, b) for a, b in zip(m1.get_weights(), m2.get_weights()))


def _fit(model, x, y, epochs=1, batch_size=64, optimizer=None, loss=None):
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3),
                  loss=loss or "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                     shuffle=True)


def _data(rng, n, d, classes=10):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x, rng.integers(0, classes, n)


def test_a_step_under_the_policy_follows_the_gradient():
    """One SGD(1) step on one batch: the bf16 model's update against central
    differences of the float64 loss, within bf16's tolerance; the float32
    model's within float32's; and the two updates differ (bf16 ran)."""
    rng = np.random.default_rng(10)
    x, y = _data(rng, 32, 12, classes=3)
    grads = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = _mlp((12, 16, 3), policy, acts=["tanh", "softmax"])
        model.build((None, 12))
        w0 = [w.astype(np.float64) for w in model.get_weights()]
        _fit(model, x, y, batch_size=32, optimizer=keras.optimizers.SGD(1.0))
        grads[policy] = [a - b for a, b in zip(w0, model.get_weights())]
    w = w0   # the same initial weights for both (seeded initializers)

    def loss():
        h = np.tanh(x @ w[0] + w[1])
        z = h @ w[2] + w[3]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    fd = [__import__("reference").finite_differences(loss, p) for p in w]
    for g32, g16, f in zip(grads["float32"], grads["mixed_bfloat16"], fd):
        scale = np.abs(f).max()
        assert np.abs(g32 - f).max() <= 1e-4 * scale + 1e-7
        assert np.abs(g16 - f).max() <= 3e-2 * scale
    assert any(not np.array_equal(a, b)
               for a, b in zip(grads["float32"], grads["mixed_bfloat16"]))


def test_a_seeded_bf16_fit_is_thread_count_independent():
    rng = np.random.default_rng(11)
    x, y = _data(rng, 512, 256)
    before = de.get_num_threads()
    models = []
    try:
        for threads in (1, 2):
            de.set_num_threads(threads)
            model = _mlp((256, 512, 256, 10), "mixed_bfloat16", dropout=0.3)
            keras.utils.set_random_seed(3)
            _fit(model, x, y, epochs=2, batch_size=128)
            models.append(model)
    finally:
        de.set_num_threads(before)
    assert _weights_equal(*models)


def test_a_bf16_fit_is_the_same_on_every_kernel_path():
    rng = np.random.default_rng(12)
    x, y = _data(rng, 256, 100)
    fits = {}
    for path in _kernel_paths():
        with _path(*path):
            model = _mlp((100, 64, 64, 10), "mixed_bfloat16", dropout=0.2)
            keras.utils.set_random_seed(4)
            _fit(model, x, y, epochs=2, batch_size=32)
            fits[path] = model
    assert len(fits) >= 2
    first = next(iter(fits.values()))
    for path, model in fits.items():
        assert _weights_equal(first, model), path


def test_predict_under_the_policy_runs_the_bf16_gemms():
    rng = np.random.default_rng(13)
    model = _mlp((30, 20, 5), "mixed_bfloat16", acts=["linear", "linear"])
    x = rng.standard_normal((40, 30)).astype(np.float32)
    k1, b1, k2, b2 = model.get_weights()
    h = gemm_bf16(x, k1) + b1
    want = gemm_bf16(h, k2) + b2
    got = model.predict(x, verbose=0)
    assert got.dtype == np.float32
    assert _bits_equal(got, want)


def _accuracy_pair(x, y, xt, yt, sizes, epochs, batch_size, seeds, **kw):
    acc = {}
    for policy in ("float32", "mixed_bfloat16"):
        runs = []
        for seed in seeds:
            model = _mlp(sizes, policy, seed=seed, **kw)
            keras.utils.set_random_seed(seed)
            _fit(model, x, y, epochs=epochs, batch_size=batch_size)
            runs.append(np.mean(model.predict(xt, verbose=0).argmax(1) == yt))
        acc[policy] = 100 * np.mean(runs)
    return acc


@accuracy_run
def test_digits_accuracy_is_within_half_a_point_of_float32():
    (x, y), (xt, yt) = de.datasets.load_digits()
    x, xt = (x / 16).astype(np.float32), (xt / 16).astype(np.float32)
    acc = _accuracy_pair(x, y, xt, yt, (64, 128, 128, 10), epochs=40,
                         batch_size=32, seeds=(0, 1, 2), dropout=0.2)
    assert acc["float32"] > 95
    assert abs(acc["mixed_bfloat16"] - acc["float32"]) <= 0.5, acc


@accuracy_run
def test_w1_shaped_synthetic_task_is_within_half_a_point_of_float32():
    """784-1024-1024-10 on 784 noisy features of a 16-d latent whose labels
    a linear teacher gives (mean of two seeds, 4000 test rows)."""
    rng = np.random.default_rng(14)
    z = rng.standard_normal((8000, 16))
    x = (z @ rng.standard_normal((16, 784)) / 5
         + 0.3 * rng.standard_normal((8000, 784))).astype(np.float32)
    y = (z @ rng.standard_normal((16, 10))).argmax(1)
    acc = _accuracy_pair(x[:4000], y[:4000], x[4000:], y[4000:],
                         (784, 1024, 1024, 10), epochs=3, batch_size=128,
                         seeds=(0, 1))
    assert acc["float32"] > 75
    assert abs(acc["mixed_bfloat16"] - acc["float32"]) <= 0.5, acc


# ------------------------------------------------------------ the policy API

def test_policy_objects_and_global_policy():
    p = mixed_precision.Policy("mixed_bfloat16")
    assert isinstance(p, mixed_precision.DTypePolicy)
    assert (p.name, p.compute_dtype, p.variable_dtype) == (
        "mixed_bfloat16", "bfloat16", "float32")
    assert repr(p) == '<DTypePolicy "mixed_bfloat16">'
    assert mixed_precision.global_policy().name == "float32"
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert mixed_precision.dtype_policy() == p
    assert layers.Dense(3).dtype_policy == p
    assert layers.Dense(3, dtype="float32").compute_dtype == "float32"
    mixed_precision.set_global_policy(mixed_precision.DTypePolicy("float32"))
    d = layers.Dense(3)
    assert d.compute_dtype == d.variable_dtype == "float32"
    assert layers.Dense(3, dtype="mixed_bfloat16").compute_dtype == "bfloat16"
    assert layers.Dense(3, dtype=p).dtype_policy is p


@pytest.mark.parametrize("name", ["mixed_float16", "float16", "float64"])
def test_float16_and_other_policies_are_refused(name):
    with pytest.raises(ValueError, match="not supported"):
        mixed_precision.set_global_policy(name)
    with pytest.raises(ValueError, match="not supported"):
        layers.Dense(3, dtype=name)
    assert mixed_precision.global_policy().name == "float32"


def test_bad_policy_arguments():
    with pytest.raises(ValueError, match="Invalid `policy`"):
        mixed_precision.set_global_policy(3)
    with pytest.raises(ValueError, match="Cannot convert 'bf16'"):
        mixed_precision.Policy("bf16")
    with pytest.raises(TypeError, match="policy name"):
        layers.Dense(3, dtype=[1])


def test_config_and_files_keep_the_policy(tmp_path):
    rng = np.random.default_rng(15)
    model = _mlp((20, 16, 3), "mixed_bfloat16")
    x, y = _data(rng, 64, 20, classes=3)
    _fit(model, x, y)
    assert model.layers[0].get_config()["dtype"] == "mixed_bfloat16"
    for ext in ("safetensors", "keras"):
        if ext == "keras":
            pytest.importorskip("h5py")
        path = tmp_path / f"m.{ext}"
        model.save(path)
        back = keras.saving.load_model(path)
        assert [layer.dtype_policy.name for layer in back.layers] == [
            "mixed_bfloat16"] * 2
        assert all(w.dtype == np.float32 for w in back.get_weights())
        assert _weights_equal(model, back)
        assert _bits_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_file_policy_is_what_keras_writes(tmp_path):
    import json
    import zipfile
    pytest.importorskip("h5py")
    model = _mlp((20, 16, 3), "mixed_bfloat16")
    model.build((None, 20))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        cfg = json.loads(z.read("config.json"))
    dense = [item for item in cfg["config"]["layers"] if item["class_name"] == "Dense"]
    assert dense[0]["config"]["dtype"] == {
        "module": "keras", "class_name": "DTypePolicy",
        "config": {"name": "mixed_bfloat16"}, "registered_name": None}
