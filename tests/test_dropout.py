"""Dropout (elementwise.inc + dense.c): masks, values, statistics,
determinism across threads and ISAs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dropout_engine import ops
from dropout_engine._runtime import available_isas

import reference as ref

RNG = np.random.default_rng(1234)


def keep_flags(mask, shape):
    return ref.unpack_mask(mask, shape)


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (5, 256), (7, 300),
                                   (2, 1000), (40, 64)])
def test_mask_is_the_documented_stream(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    _, mask = ops.dropout(x, 0.4, seed=11, step=3)
    want = ref.keep_mask(ref.rng_key(11, 0, 3), *shape, 0.4)
    np.testing.assert_array_equal(keep_flags(mask, shape), want)


def test_kept_values_are_scaled_and_dropped_are_zero():
    x = RNG.standard_normal((33, 517)).astype(np.float32)
    x[0, :5] = [np.inf, -np.inf, np.nan, 0.0, -0.0]
    y, mask = ops.dropout(x, 0.3, seed=2)
    keep = keep_flags(mask, x.shape)
    _, scale = ref.dropout_params(0.3)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y[keep], x[keep] * scale)
    assert np.all(y[~keep] == 0) and not np.signbit(y[~keep]).any()


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.8, 0.95])
def test_keep_fraction_is_one_minus_rate(rate):
    n = 1 << 18
    _, mask = ops.dropout(np.ones((64, n // 64), np.float32), rate, seed=5)
    p = 1 - rate
    frac = keep_flags(mask, (n,)).mean()
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_dropout_preserves_the_mean():
    n = 1 << 20
    rate = 0.7
    y, _ = ops.dropout(np.full(n, 1.5, np.float32), rate, seed=9)
    sd = 1.5 / np.sqrt(1 - rate) * np.sqrt(rate)  # sd of one output
    assert abs(y.astype(np.float64).mean() - 1.5) < 5 * sd / np.sqrt(n)


def test_rate_zero_is_the_identity_without_mask():
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    y, mask = ops.dropout(x, 0.0)
    assert mask is None
    np.testing.assert_array_equal(y, x)


def test_in_place_equals_out_of_place():
    x = RNG.standard_normal((9, 700)).astype(np.float32)
    y, m1 = ops.dropout(x, 0.5, seed=4)
    z = x.copy()
    z2, m2 = ops.dropout(z, 0.5, seed=4, out=z)
    assert z2 is z
    np.testing.assert_array_equal(z, y)
    np.testing.assert_array_equal(m1, m2)


def test_another_step_or_seed_gives_another_mask():
    x = np.ones((16, 300), np.float32)
    _, a = ops.dropout(x, 0.5, seed=1, step=0)
    _, b = ops.dropout(x, 0.5, seed=1, step=1)
    _, c = ops.dropout(x, 0.5, seed=2, step=0)
    _, d = ops.dropout(x, 0.5, seed=1, step=0)
    np.testing.assert_array_equal(a, d)
    for other in (b, c):  # independent masks agree on about half the units
        agree = (keep_flags(a, x.shape) == keep_flags(other, x.shape)).mean()
        assert 0.45 < agree < 0.55


def test_rows_and_segments_draw_independent_bits():
    # the same column of different rows / segments must not repeat
    x = np.ones((64, 1024), np.float32)
    _, mask = ops.dropout(x, 0.5, seed=3)
    k = keep_flags(mask, x.shape).reshape(64, 4, 256)
    assert 0.45 < (k[1:] == k[:-1]).mean() < 0.55
    assert 0.45 < (k[:, 1:] == k[:, :-1]).mean() < 0.55


@pytest.mark.parametrize("shape", [(1001, 333), (4, 70001), (1, 300001)])
def test_one_and_two_threads_are_bit_identical(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(1)
        y1, m1 = ops.dropout(x, 0.25, seed=8)
        ops.set_num_threads(2)
        y2, m2 = ops.dropout(x, 0.25, seed=8)
    finally:
        ops.set_num_threads(before)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1, m2)


def test_a_long_1d_array_split_over_threads_is_the_documented_stream():
    # One row of many RNG segments: the threads split it by segment.
    x = RNG.standard_normal(100_003).astype(np.float32)
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(2)
        y, mask = ops.dropout(x, 0.3, seed=5, step=1)
    finally:
        ops.set_num_threads(before)
    want = ref.keep_mask(ref.rng_key(5, 0, 1), 1, x.size, 0.3)[0]
    np.testing.assert_array_equal(keep_flags(mask, (1, x.size))[0], want)
    _, scale = ref.dropout_params(0.3)
    np.testing.assert_array_equal(y, np.where(want, x * np.float32(scale), 0))


# The same computations on every ISA, in a subprocess each; all outputs must
# be identical (masks, dropout, activations, their derivatives; the dense
# forward masks, whose values differ only by the GEMM's rounding).
ISA_SCRIPT = r"""
import hashlib, json
import numpy as np
from dropout_engine import ops, _engine
rng = np.random.default_rng(0)
out = {}
def h(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
x = rng.standard_normal((37, 777)).astype(np.float32) * 3
y, m = ops.dropout(x, 0.37, seed=1, step=2)
out["dropout"] = h(y) + h(m)
b = rng.standard_normal(777).astype(np.float32)
w = rng.standard_normal((5, 777)).astype(np.float32)
x5 = np.ascontiguousarray(x[:, :5])
for i, act in enumerate(ops.ACTIVATIONS):
    z = x.copy()
    _engine.bias_act(z, b, i)
    out["act_" + act] = h(z)
    yy, mm = ops.dense_forward(x5, w, b, activation=act,
                               dropout_rate=0.5, seed=3)
    out["mask_" + act] = h(mm)
    zz = ops.dropout(z, 0.5, seed=3)[0]
    dz = np.empty_like(z)
    words = np.zeros(-(-z.size // 64), np.uint64)
    words.view(np.uint8)[:mm.size] = mm
    _engine.dense_backward(x, x5, w, zz, x, words, i, 0.5, True,
                           dz, np.empty((37, 5), np.float32),
                           np.empty_like(w), np.empty(777, np.float32))
    out["dz_" + act] = h(dz)
print(json.dumps(out))
"""


def test_every_isa_gives_identical_masks_and_values():
    results = {}
    for isa in available_isas():
        r = subprocess.run([sys.executable, "-c", ISA_SCRIPT], text=True,
                           capture_output=True, timeout=120,
                           env=dict(os.environ, DROPOUT_ENGINE_ISA=isa))
        assert r.returncode == 0, r.stderr
        results[isa] = json.loads(r.stdout)
    first = results["generic"]
    for isa, got in results.items():
        diff = [k for k in first if got[k] != first[k]]
        assert not diff, f"{isa} differs from generic in {diff}"
