"""Every bad input to the ops API is a ValueError/TypeError raised before C
runs, with a message naming what was expected and what came."""
import numpy as np
import pytest

from dropout_engine import ops

F = np.float32


def x23():
    return np.ones((2, 3), F)


def w34():
    return np.ones((3, 4), F)


BAD_MATMUL = [
    (np.ones((2, 3)), np.ones((4, 5)), {}, ValueError, "inner dimensions"),
    (np.ones((2, 3, 1)), np.ones((3, 5)), {}, ValueError, "2-D"),
    (np.ones(3), np.ones((3, 5)), {}, ValueError, "2-D"),
    (np.array([[object()]]), np.ones((1, 1)), {}, TypeError, "object"),
    (np.array([["a"]]), np.ones((1, 1)), {}, TypeError, "str"),
    (np.ones((1, 1), bool), np.ones((1, 1)), {}, TypeError, "bool"),
    (np.ones((1, 1), complex), np.ones((1, 1)), {}, TypeError, "complex"),
    (None, np.ones((1, 1)), {}, TypeError, "None"),
    ([[1, 2], [3]], np.ones((2, 1)), {}, TypeError, "array of numbers"),
    (np.ones((2, 3)), np.ones((3, 5)), {"out": np.ones((2, 5))}, TypeError, "float32"),
    (np.ones((2, 3)), np.ones((3, 5)), {"out": np.ones((5, 2), F)}, ValueError, "shape"),
    (np.ones((2, 3)), np.ones((3, 5)), {"out": np.ones((5, 2), F).T}, ValueError, "contiguous"),
    (np.ones((2, 3)), np.ones((3, 5)), {"out": [[0.0]]}, TypeError, "numpy"),
    (np.ones((2, 3)), np.ones((3, 5)), {"trans_a": 1}, TypeError, "True or False"),
]


@pytest.mark.parametrize("a,b,kw,exc,words", BAD_MATMUL)
def test_matmul_refuses_bad_input(a, b, kw, exc, words):
    with pytest.raises(exc, match=words):
        ops.matmul(a, b, **kw)


def test_matmul_refuses_out_overlapping_input():
    a = np.ones((4, 4), F)
    with pytest.raises(ValueError, match="overlap"):
        ops.matmul(a, np.ones((4, 4), F), out=a)


def test_matmul_handles_strided_and_negative_views():
    rng = np.random.default_rng(0)
    big = rng.standard_normal((20, 30)).astype(F)
    for a in (big[::2, 1:8], big[::-1, ::-1][:5, :7], big[:7, :5].T, big[2:9, 3:8]):
        b = rng.standard_normal((a.shape[1], 4)).astype(F)
        want = a.astype(np.float64) @ b
        np.testing.assert_allclose(ops.matmul(a, b), want, rtol=1e-5, atol=1e-5)


def test_matmul_converts_other_dtypes_once():
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.ones((3, 2), np.float16)
    c = ops.matmul(a, b)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c, [[3, 3], [12, 12]])


@pytest.mark.parametrize("m,k,n", [(0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_matmul_empty_shapes_follow_numpy(m, k, n):
    c = ops.matmul(np.ones((m, k)), np.ones((k, n)))
    assert c.shape == (m, n)
    assert np.all(c == 0)


@pytest.mark.parametrize("rate", [-0.5, 1.0, 1.5, float("nan"), float("inf")])
def test_rates_outside_unit_interval_are_refused(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ops.dense_forward(x23(), w34(), None, dropout_rate=rate)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ops.dropout(np.ones(4, F), rate)


@pytest.mark.parametrize("rate", ["0.5", None, True, [0.5]])
def test_rates_of_wrong_type_are_refused(rate):
    with pytest.raises(TypeError, match="float in"):
        ops.dropout(np.ones(4, F), rate)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="rleu.*relu, tanh"):
        ops.dense_forward(x23(), w34(), None, activation="rleu")
    with pytest.raises(TypeError, match="string"):
        ops.dense_forward(x23(), w34(), None, activation=3)


def test_activation_names_are_case_insensitive_and_none_is_linear():
    y1, _ = ops.dense_forward(x23(), w34(), None, activation="ReLU")
    y2, _ = ops.dense_forward(x23(), w34(), None, activation=None)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("x,w,b,words", [
    (np.ones((2, 5)), np.ones((3, 4)), None, "5 features but w expects 3"),
    (np.ones((2, 3)), np.ones((3, 4)), np.ones(5), r"b must have shape \(4,\)"),
    (np.ones((2, 3)), np.ones((3, 4)), np.ones((1, 4)), "1-D"),
    (np.ones((2, 0)), np.ones((0, 4)), None, "at least one input"),
    (np.ones(3), np.ones((3, 4)), None, "2-D"),
])
def test_dense_forward_refuses_bad_shapes(x, w, b, words):
    with pytest.raises(ValueError, match=words):
        ops.dense_forward(x, w, b)


@pytest.mark.parametrize("kw,exc", [
    ({"seed": -1}, ValueError), ({"seed": 2 ** 64}, ValueError),
    ({"seed": 1.5}, TypeError), ({"step": True}, TypeError),
    ({"step": "1"}, TypeError), ({"training": 1}, TypeError),
])
def test_dense_forward_refuses_bad_seed_step_training(kw, exc):
    with pytest.raises(exc):
        ops.dense_forward(x23(), w34(), None, dropout_rate=0.5, **kw)


def test_dense_backward_refuses_missing_or_wrong_mask():
    x, w = x23(), w34()
    y, mask = ops.dense_forward(x, w, None, activation="relu", dropout_rate=0.5)
    dy = np.ones_like(y)
    with pytest.raises(ValueError, match="mask is None"):
        ops.dense_backward(dy, x, w, y, None, activation="relu", dropout_rate=0.5)
    with pytest.raises(ValueError, match="bytes"):
        ops.dense_backward(dy, x, w, y, mask[:0], activation="relu", dropout_rate=0.5)
    with pytest.raises(TypeError, match="uint8"):
        ops.dense_backward(dy, x, w, y, mask.astype(np.int64), activation="relu",
                           dropout_rate=0.5)
    with pytest.raises(ValueError, match="dy must have shape"):
        ops.dense_backward(dy[:1], x, w, y, mask, activation="relu", dropout_rate=0.5)


def test_dense_backward_gelu_needs_the_bias():
    x, w = x23(), w34()
    y, _ = ops.dense_forward(x, w, None, activation="gelu")
    with pytest.raises(ValueError, match="needs b="):
        ops.dense_backward(np.ones_like(y), x, w, y, None, activation="gelu",
                           dropout_rate=0.0)


def test_dropout_out_must_match_and_not_partially_overlap():
    x = np.ones((4, 8), F)
    with pytest.raises(ValueError, match="shape"):
        ops.dropout(x, 0.5, out=np.empty((8, 4), F))
    buf = np.ones(40, F)
    with pytest.raises(ValueError, match="overlap"):
        ops.dropout(buf[:32].reshape(4, 8), 0.5, out=buf[8:].reshape(4, 8))
    xd = np.ones((4, 8))
    with pytest.raises(TypeError, match="float32"):
        ops.dropout(xd, 0.5, out=xd)


def test_random_bits_refuses_bad_counts():
    with pytest.raises(ValueError):
        ops.random_bits(0, -1)
    with pytest.raises(TypeError):
        ops.random_bits(0, 2.0)
    assert ops.random_bits(0, 0).shape == (0,)
