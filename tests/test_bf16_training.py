"""mixed_bfloat16 training (issue 14): the bf16 GEMM against its numpy
reference, every kernel path against every other, VDPBF16PS against its
emulation, then training under the policy (gradients, determinism,
accuracy) and the Keras policy API."""
import contextlib

import numpy as np
import pytest

from dropout_engine import _engine
from reference import bf16_pack_round, gemm_bf16

FLT_MIN = np.finfo(np.float32).tiny


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
