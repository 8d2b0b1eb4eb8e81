"""The packed GEMM (gemm.c + gemm_kernels_*.c) against a float64 reference.

Shapes are drawn from a list that puts every dimension below, at and above
the microtile and cache-block sizes of every ISA (MR 6/12, NR 8/16/32,
KC 256, the small-m limit 4), so edge tiles, partial KC blocks and both paths
are all exercised.  Non-default ISAs are checked in a subprocess because the
ISA is chosen once per process.
"""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from dropout_engine import _engine, ops

import reference

SIZES = (1, 2, 3, 7, 13, 31, 64, 97, 128, 257, 300)
GRID = (1, 7, 31, 257)              # every (M, N, K) of these
N_SAMPLE = 40                      # plus this many from SIZES^3
TRANSPOSES = list(itertools.product((False, True), repeat=2))


def _operands(rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    return a, b


def _gemm(a, b, trans_a, trans_b, c=None, accumulate=False):
    """ops.matmul, or the binding when accumulating (C += ..., not public)."""
    if not accumulate:
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        out = np.full((m, n), np.nan, np.float32)   # must be overwritten
        res = ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
        assert res is out
        return out
    _engine.gemm(trans_a, trans_b, a, b, c, True)
    return c


def _assert_close(c, a, b, trans_a, trans_b, c0=None):
    ref = reference.gemm(a, b, trans_a, trans_b, c0)
    bound = reference.gemm_error_bound(a, b, trans_a, trans_b)
    if c0 is not None:
        bound = bound + np.finfo(np.float32).eps * np.abs(ref)
    err = np.abs(c.astype(np.float64) - ref)
    assert np.all(err <= bound), (
        f"max error {err.max():.3g} exceeds bound at "
        f"{np.unravel_index(np.argmax(err - bound), err.shape)}")


def shapes():
    """The (M, N, K) checked for every transpose combination."""
    rng = np.random.default_rng(12345)
    grid = list(itertools.product(GRID, repeat=3))
    sample = [tuple(int(x) for x in rng.choice(SIZES, 3))
              for _ in range(N_SAMPLE)]
    return grid + sample


def check_all_shapes():
    """Every transpose combination over shapes(); used in-process for the
    default ISA and in a subprocess for the others."""
    rng = np.random.default_rng(7)
    for trans_a, trans_b in TRANSPOSES:
        for m, n, k in shapes():
            a, b = _operands(rng, m, n, k, trans_a, trans_b)
            c = _gemm(a, b, trans_a, trans_b)
            _assert_close(c, a, b, trans_a, trans_b)


def test_all_shapes_and_transposes_default_isa():
    check_all_shapes()


def run_under_isa(isa, module, checks):
    """Run ``module.<name>()`` for each name in ``checks`` in a subprocess
    forced to ``isa`` (skips when it is absent or the default)."""
    if not _engine.isa_available(isa):
        pytest.skip(f"{_engine.isa_name(isa)} not available here")
    if isa == _engine.isa_get():
        pytest.skip("the default ISA is checked in-process")
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r})\n"
            "from dropout_engine import _engine\n"
            f"assert _engine.isa_get() == {isa}\n"
            f"import {module}\n"
            + "".join(f"{module}.{c}()\n" for c in checks))
    env = dict(os.environ, DROPOUT_ENGINE_ISA=_engine.isa_name(isa))
    res = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.parametrize("isa", [0, 1, 2])
def test_all_shapes_and_transposes_each_isa(isa):
    run_under_isa(isa, "test_gemm", ["check_all_shapes", "check_small_m_paths",
                                     "check_thin_outputs"])


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_row_strided_views(trans_a, trans_b):
    rng = np.random.default_rng(1)
    for m, n, k in [(13, 31, 7), (97, 300, 257), (2, 257, 64), (128, 64, 300)]:
        ra, ca = (k, m) if trans_a else (m, k)
        rb, cb = (n, k) if trans_b else (k, n)
        big_a = rng.standard_normal((ra + 4, ca + 11)).astype(np.float32)
        big_b = rng.standard_normal((rb + 2, cb + 5)).astype(np.float32)
        a = big_a[2:2 + ra, 3:3 + ca]
        b = big_b[1:1 + rb, 5:5 + cb]
        a_before, b_before = big_a.copy(), big_b.copy()
        c = _gemm(a, b, trans_a, trans_b)
        _assert_close(c, a, b, trans_a, trans_b)
        np.testing.assert_array_equal(big_a, a_before)
        np.testing.assert_array_equal(big_b, b_before)


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_accumulate_adds_to_c(trans_a, trans_b):
    rng = np.random.default_rng(2)
    for m, n, k in [(1, 300, 97), (3, 7, 2), (31, 257, 300), (130, 97, 13)]:
        a, b = _operands(rng, m, n, k, trans_a, trans_b)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        c = _gemm(a, b, trans_a, trans_b, c0.copy(), accumulate=True)
        _assert_close(c, a, b, trans_a, trans_b, c0)


def test_k_zero_gives_zeros_or_leaves_c():
    a = np.zeros((3, 0), np.float32)
    b = np.zeros((0, 5), np.float32)
    c = np.full((3, 5), 2.0, np.float32)
    _engine.gemm(False, False, a, b, c, True)
    np.testing.assert_array_equal(c, 2.0)
    _engine.gemm(False, False, a, b, c, False)
    np.testing.assert_array_equal(c, 0.0)


def check_small_m_paths():
    """m <= 4 takes the unpacked small-m path (B streamed by rows, or dot
    products when B is transposed); the same rows stacked on 9 more go
    through packing.  Both must match the reference, with and without
    accumulate, for every transpose combination."""
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 4):
        for n, k in [(1, 1), (7, 3), (1024, 784), (300, 257), (1000, 13),
                     (5, 31)]:
            for trans_a, trans_b in TRANSPOSES:
                a, b = _operands(rng, m + 9, n, k, trans_a, trans_b)
                packed = _gemm(a, b, trans_a, trans_b)
                _assert_close(packed, a, b, trans_a, trans_b)
                a = np.ascontiguousarray(a[:, :m] if trans_a else a[:m])
                small = _gemm(a, b, trans_a, trans_b)
                _assert_close(small, a, b, trans_a, trans_b)
                c0 = rng.standard_normal((m, n)).astype(np.float32)
                acc = _gemm(a, b, trans_a, trans_b, c0.copy(), accumulate=True)
                _assert_close(acc, a, b, trans_a, trans_b, c0)


def test_small_m_path_and_packed_path_agree_with_reference():
    check_small_m_paths()


@pytest.fixture
def restore_threads():
    before = _engine.get_num_threads()
    yield
    _engine.set_num_threads(before)


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_one_and_two_threads_bit_identical(trans_a, trans_b, restore_threads):
    rng = np.random.default_rng(4)
    for m, n, k in [(128, 784, 1024), (300, 257, 300), (257, 600, 97),
                    (3, 1000, 300), (97, 2100, 31)]:
        a, b = _operands(rng, m, n, k, trans_a, trans_b)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        out = {}
        for t in (1, 2):
            _engine.set_num_threads(t)
            out[t] = (_gemm(a, b, trans_a, trans_b),
                      _gemm(a, b, trans_a, trans_b, c0.copy(), True))
        np.testing.assert_array_equal(out[1][0], out[2][0])
        np.testing.assert_array_equal(out[1][1], out[2][1])


def _dense(x, w, bias, act, rate=0.0, key=0):
    m, n = x.shape[0], w.shape[1]
    y = np.full((m, n), np.nan, np.float32)
    mask = np.zeros((m * n + 63) // 64, np.uint64)
    _engine.dense_forward(x, w, bias, act, rate, True, key, y, mask)
    return y, mask


RELU = 1


@pytest.mark.parametrize("m,n,k", [(1, 784, 1024), (3, 300, 7), (13, 257, 97),
                                   (128, 600, 300), (257, 31, 13),
                                   (257, 10, 300), (130, 1, 31)])   # thin
def test_epilogue_applied_once_to_every_element(m, n, k):
    """The fused epilogue (bias + ReLU here) must reach every tile, edge
    tiles included, exactly once: a second bias add would show."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    bias = (10 * rng.standard_normal(n)).astype(np.float32)
    y, _ = _dense(x, w, bias, RELU)
    ref = np.maximum(reference.gemm(x, w) + bias, 0)
    bound = reference.gemm_error_bound(x, w) + 4e-7 * np.abs(ref)
    assert np.all(np.abs(y - ref) <= bound)


@pytest.mark.parametrize("m,n,k", [(2, 1000, 64), (128, 784, 300),
                                   (300, 520, 97), (257, 10, 300), (64, 1, 100)])
def test_fused_dropout_same_for_one_and_two_threads(m, n, k, restore_threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = {}
    for t in (1, 2):
        _engine.set_num_threads(t)
        out[t] = _dense(x, w, bias, RELU, rate=0.5, key=99)
    np.testing.assert_array_equal(out[1][0], out[2][0])
    np.testing.assert_array_equal(out[1][1], out[2][1])


def check_thin_outputs():
    """n <= 16 (a classifier's output layer) may take the thin path, which
    must do each element's arithmetic exactly as the packed path: the first
    n columns of a wide product equal the thin product bit for bit (so
    predicting row by row or in batches agrees wherever it did before)."""
    rng = np.random.default_rng(11)
    for trans_a, trans_b in TRANSPOSES:
        for m, k in [(5, 7), (12, 1), (13, 300), (128, 784), (257, 31)]:
            a, b = _operands(rng, m, 40, k, trans_a, trans_b)
            wide = _gemm(a, b, trans_a, trans_b)
            c0 = rng.standard_normal((m, 40)).astype(np.float32)
            wide_acc = _gemm(a, b, trans_a, trans_b, c0.copy(), True)
            for n in (1, 3, 10, 16):
                bn = np.ascontiguousarray(b[:n] if trans_b else b[:, :n])
                np.testing.assert_array_equal(_gemm(a, bn, trans_a, trans_b),
                                              wide[:, :n])
                np.testing.assert_array_equal(
                    _gemm(a, bn, trans_a, trans_b,
                          np.ascontiguousarray(c0[:, :n]), True),
                    wide_acc[:, :n])


def test_thin_outputs_bit_identical_to_wide():
    check_thin_outputs()
