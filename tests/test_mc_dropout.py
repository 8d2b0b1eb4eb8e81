"""Monte-Carlo dropout: predict(x, mc_samples=k) -> (mean, std)."""
import numpy as np
import pytest

import dropout_engine as de
from dropout_engine.layers import Dense, Dropout, Input


def linear_net(rate=0.3, scaling="inverted", n_in=12, hidden=64, seed=0):
    de.set_random_seed(seed)
    return de.Sequential([Input((n_in,)), Dense(hidden), Dropout(rate, scaling=scaling),
                          Dense(3)])


def test_mean_agrees_with_deterministic_predict_within_standard_error():
    # A linear net: E[output under dropout] is exactly the inference output.
    model = linear_net()
    x = np.random.default_rng(1).normal(size=(50, 12)).astype(np.float32)
    k = 400
    mean, std = model.predict(x, mc_samples=k)
    det = model.predict(x)
    assert mean.shape == std.shape == det.shape == (50, 3)
    assert (std > 0).all()
    z = (mean - det) / (std / np.sqrt(k))
    assert abs(z.mean()) < 0.3           # 150 z-scores: unbiased ...
    assert 0.7 < z.std() < 1.3           # ... and the std is the right size
    assert (np.abs(z) < 5).all()


def test_weight_scaling_mean_matches_its_inference_rule():
    model = linear_net(scaling="weight")
    x = np.random.default_rng(2).normal(size=(40, 12)).astype(np.float32)
    k = 400
    mean, std = model.predict(x, mc_samples=k)
    z = (mean - model.predict(x)) / (std / np.sqrt(k))
    assert abs(z.mean()) < 0.3 and (np.abs(z) < 5).all()


def input_dropout_law(p, k, n, rows, seed, **predict_kwargs):
    """Check MC dropout through an input Dropout(p) and an identity Dense:
    y = x * mask / (1 - p), so over k passes the mean is x*q/(1-p) and the
    std x*sqrt(q(1-q))/(1-p) for the kept fraction q -- both from one q.
    Returns the q of every unit."""
    de.set_random_seed(seed)
    model = de.Sequential([Input((n,)), Dropout(p), Dense(n, use_bias=False)])
    model.set_weights([np.eye(n, dtype=np.float32)])
    x = np.random.default_rng(seed).uniform(1, 2, size=(rows, n)).astype(np.float32)
    mean, std = model.predict(x, mc_samples=k, **predict_kwargs)
    q = mean.astype(np.float64) * (1 - p) / x
    np.testing.assert_allclose(q * k, np.round(q * k), atol=1e-3)   # whole counts
    np.testing.assert_allclose(std, x / (1 - p) * np.sqrt(q * (1 - q)), rtol=1e-4,
                               atol=1e-5)
    return q


def test_input_dropout_statistics_are_exact_per_unit():
    q = input_dropout_law(0.25, 64, 256, rows=4, seed=3)
    assert abs(q.mean() - 0.75) < 0.02     # 1024 units x 64 draws


def test_more_samples_than_batch_size_merge_groups_exactly():
    # batch_size=7 with 50 samples: groups of at most 7 copies, merged into
    # running statistics, follow the same exact law as one group.
    q = input_dropout_law(0.25, 50, 64, rows=3, seed=9, batch_size=7)
    assert abs(q.mean() - 0.75) < 0.04


def test_passes_and_rows_draw_independent_masks():
    # One row repeated: identical inputs must still get different masks.
    model = linear_net(rate=0.5)
    x = np.repeat(np.random.default_rng(4).normal(size=(1, 12)), 8, axis=0)
    mean, std = model.predict(x.astype(np.float32), mc_samples=16)
    assert len(np.unique(mean[:, 0])) == 8
    assert (std > 0).all()


def test_without_dropout_std_is_zero_and_mean_is_predict():
    de.set_random_seed(5)
    model = de.Sequential([Input((6,)), Dense(8, activation="gelu"),
                           Dense(4, activation="softmax")])
    x = np.random.default_rng(5).normal(size=(30, 6)).astype(np.float32)
    mean, std = model.predict(x, mc_samples=5)
    np.testing.assert_allclose(mean, model.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, 0, atol=1e-6)


def test_reproducible_after_set_random_seed_and_fresh_per_call():
    model = linear_net()
    x = np.random.default_rng(6).normal(size=(10, 12)).astype(np.float32)
    de.set_random_seed(7)
    a = model.predict(x, mc_samples=8)
    b = model.predict(x, mc_samples=8)
    de.set_random_seed(7)
    c = model.predict(x, mc_samples=8)
    np.testing.assert_array_equal(a[0], c[0])
    assert not np.array_equal(a[0], b[0])


def test_chunks_cover_every_row():
    model = linear_net()
    x = np.random.default_rng(8).normal(size=(37, 12)).astype(np.float32)
    mean, std = model.predict(x, batch_size=5, mc_samples=3)
    assert np.isfinite(mean).all() and (std > 0).all()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10", 1 << 20])
def test_bad_mc_samples_is_a_value_error(bad):
    model = linear_net()
    with pytest.raises(ValueError, match="mc_samples"):
        model.predict(np.zeros((2, 12), np.float32), mc_samples=bad)


def test_mc_samples_validates_x():
    model = linear_net()
    with pytest.raises(ValueError, match="expected input shape"):
        model.predict(np.zeros((2, 5), np.float32), mc_samples=4)

