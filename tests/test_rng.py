"""rng.c: stream keys, the flat stream of the mask generator, thresholds."""
import numpy as np
import pytest

from dropout_engine import _engine, ops

import reference as ref


@pytest.mark.parametrize("args", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1),
                                  (2**64 - 1, 5, 2**63), (12345, 2, 999)])
def test_rng_key_matches_the_documented_formula(args):
    assert _engine.rng_key(*args) == ref.rng_key(*args)


def test_rng_keys_of_neighbouring_arguments_are_unrelated():
    keys = [_engine.rng_key(s, t, u) for s in range(8) for t in range(8)
            for u in range(8)]
    assert len(set(keys)) == len(keys)
    # consecutive seeds flip about half the key bits
    flips = [bin(_engine.rng_key(s, 0, 0) ^ _engine.rng_key(s + 1, 0, 0)).count("1")
             for s in range(200)]
    assert 28 < np.mean(flips) < 36


def test_random_bits_match_the_reference_generator():
    for seed in (0, 1, 2**64 - 1):
        want = ref.random_bits(ref.rng_key(seed, 0, 0), 1000)
        np.testing.assert_array_equal(ops.random_bits(seed, 1000), want)


def test_random_bits_are_reproducible_and_seed_dependent():
    a = ops.random_bits(7, 4096)
    np.testing.assert_array_equal(a, ops.random_bits(7, 4096))
    b = ops.random_bits(8, 4096)
    assert np.mean(a == b) < 0.01
    # a prefix of a longer stream is the shorter stream
    np.testing.assert_array_equal(ops.random_bits(7, 21), a[:21])


def test_random_bits_are_balanced():
    n = 1 << 18
    bits = np.unpackbits(ops.random_bits(3, n).view(np.uint8)).reshape(n, 32)
    # every bit position is 1 about half the time (5 sigma)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 5 * 0.5 / np.sqrt(n))
    # the 256 byte values are uniform: chi-square with 255 dof, far tail
    counts = np.bincount(ops.random_bits(4, n).view(np.uint8), minlength=256)
    e = 4 * n / 256
    assert ((counts - e) ** 2 / e).sum() < 400


@pytest.mark.parametrize("rate", [0.0, 1e-12, 0.1, 0.5, 0.9, 1 - 1e-12])
def test_dropout_params_threshold_and_scale(rate):
    drop_below, scale = _engine.dropout_params(rate, True, 0)
    want_t, want_s = ref.dropout_params(rate)
    assert drop_below == want_t
    assert np.float32(scale) == want_s
    if rate > 0:  # keep probability as thresholded times scale is 1
        keep = (2.0**32 - drop_below) / 2.0**32
        assert abs(keep * scale - 1) < 1e-7
    assert _engine.dropout_params(rate, False, 0) == (drop_below, 1.0)
