"""Bad input: each a ValueError/TypeError naming the layer or argument,
what was expected and what came, with the model unchanged."""
import numpy as np
import pytest

from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential


def _model(loss="sparse_categorical_crossentropy", out=3, act="softmax"):
    m = Sequential([Input((5,)), Dense(8, activation="relu", name="hidden"),
                    Dense(out, activation=act)])
    m.compile("adam", loss, metrics=["accuracy"])
    return m


def _unchanged(m, before):
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == 0


X = np.zeros((4, 5), np.float32)
Y = np.array([0, 1, 2, 0])


@pytest.mark.parametrize("x,y,exc,msg", [
    (np.zeros((4, 6)), Y, ValueError, r"Layer 'hidden' expected input shape \(None, 5\), got \(4, 6\)"),
    (np.zeros((0, 5)), Y[:0], ValueError, "empty"),
    (np.full((4, 5), np.nan), Y, ValueError, "NaN or Inf"),
    (np.array([["a"] * 5] * 4), Y, TypeError, "x must hold numbers"),
    (X, np.array([0, 1, 3, 0]), ValueError, r"labels must be in \[0, 2\]"),
    (X, np.array([0, 1, -1, 0]), ValueError, "class -1"),
    (X, np.array([0, 1.5, 2, 0]), ValueError, "integer class indices"),
    (X, np.array([0, 1, 2]), ValueError, "y has 3 samples, x has 4"),
    (X, np.array([0, 1, np.nan, 0]), ValueError, "integer class indices"),
])
def test_fit_rejects_bad_data_and_leaves_the_model_unchanged(x, y, exc, msg):
    m = _model()
    before = m.get_weights()
    with pytest.raises(exc, match=msg):
        m.fit(x, y, verbose=0)
    _unchanged(m, before)


def test_targets_of_the_wrong_kind_for_the_loss_are_named():
    m = _model(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy or to_categorical"):
        m.fit(X, Y, verbose=0)
    b = _model(loss="binary_crossentropy", out=1, act="sigmoid")
    with pytest.raises(ValueError, match=r"expects y in \[0, 1\]"):
        b.fit(X, np.array([0, 1, 2, 0]), verbose=0)
    r = _model(loss="mse", out=2, act=None)
    with pytest.raises(ValueError, match=r"y has shape \(4, 3\); the model outputs \(None, 2\)"):
        r.fit(X, np.zeros((4, 3)), verbose=0)


@pytest.mark.parametrize("bs", [0, -3])
def test_batch_size_must_be_positive(bs):
    m = _model()
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bs}"):
        m.fit(X, Y, batch_size=bs, verbose=0)
    with pytest.raises(TypeError, match="batch_size"):
        m.predict(X, batch_size=1.5)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_0_1_is_refused(rate):
    with pytest.raises(ValueError, match=r"Layer 'd': rate must be in \[0, 1\)"):
        Dropout(rate, name="d")


@pytest.mark.parametrize("units,exc", [(0, ValueError), (-2, ValueError), (2.5, TypeError)])
def test_dense_units_must_be_a_positive_int(units, exc):
    with pytest.raises(exc, match="Layer 'out': units must be a positive int"):
        Dense(units, name="out")


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'rleu'; expected one of .*'relu'"):
        Dense(3, activation="rleu")
    m = Sequential([Input((5,)), Dense(3)])
    with pytest.raises(ValueError, match="Unknown loss 'msee'"):
        m.compile("sgd", "msee")
    with pytest.raises(ValueError, match="Unknown optimizer 'sgdd'"):
        m.compile("sgdd", "mse")
    with pytest.raises(ValueError, match="Unknown metric 'acuracy'"):
        m.compile("sgd", "mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'"):
        Dense(3, kernel_initializer="glorot")


def test_fit_before_compile_says_so():
    m = Sequential([Input((5,)), Dense(3)])
    with pytest.raises(RuntimeError, match="compile"):
        m.fit(X, Y)


def test_predict_checks_the_feature_count():
    m = _model()
    with pytest.raises(ValueError, match=r"expected input shape \(None, 5\), got \(2, 4\)"):
        m.predict(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"got \(5,\)"):
        m.predict(np.zeros(5, np.float32))


def test_an_unfusable_layer_added_leaves_the_model_as_it_was():
    from dropout_engine.layers import Activation
    m = Sequential([Input((5,)), Dense(4, activation="tanh")])
    with pytest.raises(ValueError, match="cannot be fused"):
        m.add(Activation("sigmoid"))
    assert len(m.layers) == 1
    m.add(Dense(2))
    assert m.predict(X).shape == (4, 2)


def test_validation_split_outside_range_is_refused():
    m = _model()
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        m.fit(X, Y, validation_split=1.0, verbose=0)
