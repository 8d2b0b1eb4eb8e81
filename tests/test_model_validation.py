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


# ------------------------------------ a model without Input, before build
def _unbuilt(loss="sparse_categorical_crossentropy"):
    m = Sequential([Dense(8, activation="relu"), Dropout(0.2),
                    Dense(3, activation="softmax")])
    m.compile("adam", loss)
    return m


@pytest.mark.parametrize("entry", [
    lambda m: m.predict(X), lambda m: m.predict(X, mc_samples=3),
    lambda m: m.evaluate(X, Y, verbose=0), lambda m: m.fit(X, Y, verbose=0),
    lambda m: m(X), lambda m: m(X, training=True), lambda m: m.train_on_batch(X, Y),
    lambda m: m.test_on_batch(X, Y), lambda m: m.predict_on_batch(X),
    lambda m: m.build((None, 5)), lambda m: m.build((5,))],
    ids=["predict", "predict_mc", "evaluate", "fit", "call", "call_training",
         "train_on_batch", "test_on_batch", "predict_on_batch", "build", "build_1d"])
def test_an_unbuilt_model_builds_from_its_first_data(entry):
    m = _unbuilt()
    assert not m.built
    entry(m)
    assert m.built
    assert [w.shape for w in m.get_weights()] == [(5, 8), (8,), (8, 3), (3,)]


def test_get_weights_before_build_says_how_to_build():
    m = _unbuilt()
    msg = ("This model has not yet been built. Build the model first by calling "
           r"build\(\) or by calling the model on a batch of data.")
    with pytest.raises(ValueError, match=msg):
        m.get_weights()
    with pytest.raises(ValueError, match=msg):
        m.set_weights([np.zeros((5, 8))])
    m.set_weights([])                  # nothing to set: as Keras, no error
    assert m.weights == []
    with pytest.raises(ValueError, match="no input shape yet"):
        m.build()


# --------------------------------------- one sample without its batch axis
ONE_D_ENTRIES = {
    "predict": lambda m, v: m.predict(v), "predict_mc": lambda m, v: m.predict(v, mc_samples=2),
    "evaluate": lambda m, v: m.evaluate(v, Y[:1], verbose=0),
    "fit": lambda m, v: m.fit(v, Y[:1], verbose=0),
    "fit.validation_data": lambda m, v: m.fit(X, Y, validation_data=(v, Y[:1]), verbose=0),
    "train_on_batch": lambda m, v: m.train_on_batch(v, Y[:1]),
    "test_on_batch": lambda m, v: m.test_on_batch(v, Y[:1]),
    "predict_on_batch": lambda m, v: m.predict_on_batch(v), "call": lambda m, v: m(v),
    "call_training": lambda m, v: m(v, training=True),
    "layer_call": lambda m, v: m.layers[0](v)}


@pytest.mark.parametrize("built", [True, False], ids=["built", "unbuilt"])
@pytest.mark.parametrize("entry", sorted(ONE_D_ENTRIES))
def test_a_single_1d_sample_gets_the_batch_axis_hint(entry, built):
    m = _model() if built else _unbuilt()
    if entry == "fit.validation_data" and not built:
        m.build((None, 5))
    before = m.get_weights() if m.built else None
    with pytest.raises(ValueError, match=r"got \(5,\); inputs are 2-D \[batch, features\]: "
                                         r"x(_val)?\[None, :\] or x(_val)?\.reshape\(1, -1\) for one sample"):
        ONE_D_ENTRIES[entry](m, np.zeros(5, np.float32))
    if before is not None:
        _unchanged(m, before)


def test_a_1d_column_of_one_feature_gets_the_column_hint():
    m = Sequential([Input((1,)), Dense(1)])
    with pytest.raises(ValueError, match=r"x\.reshape\(-1, 1\) for 4 samples of one feature"):
        m.predict(np.zeros(4))
    with pytest.raises(ValueError, match="got \\(4,\\)$"):   # 4 values for 5 features: no guess
        _model().predict(np.zeros(4))


# ------------------------------- 0/1 labels, a 2-unit softmax and BCE
@pytest.mark.parametrize("entry", [
    lambda m, y: m.fit(X, y, verbose=0), lambda m, y: m.evaluate(X, y, verbose=0),
    lambda m, y: m.train_on_batch(X, y), lambda m, y: m.test_on_batch(X, y)],
    ids=["fit", "evaluate", "train_on_batch", "test_on_batch"])
@pytest.mark.parametrize("y", [np.array([0.0, 1.0, 1.0, 0.0]),
                               np.array([[0.0], [1.0], [1.0], [0.0]])], ids=["1d", "column"])
def test_binary_labels_for_a_two_unit_softmax_name_both_fixes(entry, y):
    m = _model(loss="binary_crossentropy", out=2)
    before = m.get_weights()
    with pytest.raises(ValueError) as e:
        entry(m, y)
    msg = str(e.value)
    assert "the model outputs (None, 2)" in msg
    assert "2-unit softmax output wants categorical labels" in msg
    assert "sparse_categorical_crossentropy" in msg and "Dense(1, activation='sigmoid')" in msg
    _unchanged(m, before)
