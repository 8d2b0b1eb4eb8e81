"""scikeras code runs on our KerasClassifier / KerasRegressor with only the
imports changed: the build function's meta / compile_kwargs / routed
arguments, scikeras's routing of optimizer__, loss__, metrics__, fit__,
predict__, callbacks__ and score__ parameters, grid searches over routed
parameters, warm starts and partial_fit.  The model functions below are
scikeras's documentation's (quickstart, Basic_Usage, MLPClassifier
notebooks), with `import keras` made `from dropout_engine import keras`."""
import inspect
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (make_classification, make_moons,  # noqa: E402
                              make_regression)
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

from dropout_engine import keras  # noqa: E402
from dropout_engine.sklearn import KerasClassifier, KerasRegressor  # noqa: E402


# ------------------------------------------------ scikeras's model functions
def get_clf(meta, hidden_layer_sizes, dropout):
    n_features_in_ = meta["n_features_in_"]
    model = keras.models.Sequential()
    model.add(keras.layers.Input(shape=(n_features_in_,)))
    for hidden_layer_size in hidden_layer_sizes:
        model.add(keras.layers.Dense(hidden_layer_size, activation="relu"))
        model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def get_reg(meta, hidden_layer_sizes, dropout):
    n_features_in_ = meta["n_features_in_"]
    model = keras.models.Sequential()
    model.add(keras.layers.Input(shape=(n_features_in_,)))
    for hidden_layer_size in hidden_layer_sizes:
        model.add(keras.layers.Dense(hidden_layer_size, activation="relu"))
        model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(1))
    return model


def get_model(hidden_layer_dim, meta):
    # note that meta is a special argument that will be
    # handed a dict containing input metadata
    n_features_in_ = meta["n_features_in_"]
    X_shape_ = meta["X_shape_"]
    n_classes_ = meta["n_classes_"]

    model = keras.models.Sequential()
    model.add(keras.layers.Dense(n_features_in_, input_shape=X_shape_[1:]))
    model.add(keras.layers.Activation("relu"))
    model.add(keras.layers.Dense(hidden_layer_dim))
    model.add(keras.layers.Activation("relu"))
    model.add(keras.layers.Dense(n_classes_))
    model.add(keras.layers.Activation("softmax"))
    return model


def get_clf_model(hidden_layer_sizes, meta, compile_kwargs):
    model = keras.Sequential()
    inp = keras.layers.Input(shape=(meta["n_features_in_"],))
    model.add(inp)
    for hidden_layer_size in hidden_layer_sizes:
        layer = keras.layers.Dense(hidden_layer_size, activation="relu")
        model.add(layer)
    if meta["target_type_"] == "binary":
        n_output_units = 1
        output_activation = "sigmoid"
        loss = "binary_crossentropy"
    elif meta["target_type_"] == "multiclass":
        n_output_units = meta["n_classes_"]
        output_activation = "softmax"
        loss = "sparse_categorical_crossentropy"
    else:
        raise NotImplementedError(f"Unsupported task type: {meta['target_type_']}")
    out = keras.layers.Dense(n_output_units, activation=output_activation)
    model.add(out)
    model.compile(loss=loss, optimizer=compile_kwargs["optimizer"])
    return model


class MLPClassifier(KerasClassifier):

    def __init__(self, hidden_layer_sizes=(100, ), optimizer="adam",
                 optimizer__learning_rate=0.001, epochs=200, verbose=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.optimizer = optimizer
        self.epochs = epochs
        self.verbose = verbose

    def _keras_build_fn(self, compile_kwargs):
        model = keras.Sequential()
        inp = keras.layers.Input(shape=(self.n_features_in_,))
        model.add(inp)
        for hidden_layer_size in self.hidden_layer_sizes:
            layer = keras.layers.Dense(hidden_layer_size, activation="relu")
            model.add(layer)
        if self.target_type_ == "binary":
            n_output_units = 1
            output_activation = "sigmoid"
            loss = "binary_crossentropy"
        elif self.target_type_ == "multiclass":
            n_output_units = self.n_classes_
            output_activation = "softmax"
            loss = "sparse_categorical_crossentropy"
        else:
            raise NotImplementedError(f"Unsupported task type: {self.target_type_}")
        out = keras.layers.Dense(n_output_units, activation=output_activation)
        model.add(out)
        model.compile(loss=loss, optimizer=compile_kwargs["optimizer"])
        return model


class MaxValLoss(keras.callbacks.Callback):

    def __init__(self, monitor: str, threashold: float):
        self.monitor = monitor
        self.threashold = threashold

    def on_epoch_end(self, epoch, logs=None):
        if logs[self.monitor] > self.threashold:
            self.model.stop_training = True


def _binary(n=300, seed=0):
    X, y = make_classification(n, 20, n_informative=10, random_state=seed)
    return X, y


# ---------------------------------------------------------- the tutorials
def test_basic_usage_classifier(capsys):
    X, y = make_classification(1000, 20, n_informative=10, random_state=0)
    clf = KerasClassifier(model=get_clf, loss="binary_crossentropy",
                          hidden_layer_sizes=(100,), dropout=0.5)
    clf.fit(X, y)
    assert "loss" in capsys.readouterr().out      # scikeras's verbose=1 default
    assert set(clf.predict(X[:5])) <= {0, 1}
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X[:5]), proba.argmax(axis=1))
    dense = [l for l in clf.model_.layers if hasattr(l, "units")]
    assert [l.units for l in dense] == [100, 1]
    assert [l.rate for l in clf.model_.layers if hasattr(l, "rate")] == [0.5]
    assert clf.model_.optimizer.name == "rmsprop"        # scikeras's default


def test_grid_search_over_routed_model_and_optimizer_params():
    X, y = _binary()
    clf = KerasClassifier(
        model=get_clf,
        loss="binary_crossentropy",
        optimizer="adam",
        optimizer__learning_rate=0.1,
        model__hidden_layer_sizes=(100,),
        model__dropout=0.5,
        verbose=False,
    )
    params = {
        'optimizer__learning_rate': [0.05, 0.1],
        'model__hidden_layer_sizes': [(100, ), (50, 50, )],
        'model__dropout': [0, 0.5],
    }
    gs = GridSearchCV(clf, params, scoring='accuracy', cv=3)
    gs.fit(X, y)
    assert gs.best_score_ > 0.7
    assert len(gs.cv_results_["params"]) == 8
    best, bp = gs.best_estimator_, gs.best_params_
    lr = bp["optimizer__learning_rate"]
    assert best.model_.optimizer.learning_rate == pytest.approx(lr)
    assert type(best.model_.optimizer).__name__ == "Adam"
    assert [l.units for l in best.model_.layers if hasattr(l, "units")][:-1] == \
        list(bp["model__hidden_layer_sizes"])
    rates = {l.rate for l in best.model_.layers if hasattr(l, "rate")}
    assert rates <= {bp["model__dropout"]}


def test_grid_search_in_worker_processes():
    # The tutorial's n_jobs=-1: the estimator is pickled to joblib workers.
    X, y = _binary(150)
    clf = KerasClassifier(model=get_clf, loss="binary_crossentropy",
                          model__hidden_layer_sizes=(16,), model__dropout=0.5,
                          epochs=5, verbose=False)
    gs = GridSearchCV(clf, {"model__dropout": [0, 0.5]}, cv=2, n_jobs=2).fit(X, y)
    assert gs.best_params_["model__dropout"] in (0, 0.5)
    assert gs.predict(X[:3]).shape == (3,)


def test_quickstart_meta_pipeline_and_search():
    X, y = make_classification(300, 20, n_informative=10, random_state=0)
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    clf = KerasClassifier(get_model, loss="sparse_categorical_crossentropy",
                          hidden_layer_dim=100, verbose=0)
    clf.fit(X, y)
    assert clf.predict_proba(X).shape == (300, 2)
    pipe = Pipeline([('scale', StandardScaler()), ('clf', clf)])
    pipe.fit(X, y)
    assert pipe.predict_proba(X).shape == (300, 2)
    params = {
        "hidden_layer_dim": [50, 100],
        "loss": ["sparse_categorical_crossentropy"],
        "optimizer": ["adam", "sgd"],
        "optimizer__learning_rate": [0.001, 0.1],
    }
    gs = GridSearchCV(clf, params, refit=False, cv=3, scoring='accuracy')
    gs.fit(X, y)
    assert set(gs.best_params_) == set(params)
    assert gs.best_score_ > 0.6


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mlp_classifier_tutorial_compiles_in_the_build_function(n_classes):
    X, y = make_classification(random_state=0, n_classes=n_classes, n_informative=6)
    clf = KerasClassifier(model=get_clf_model, hidden_layer_sizes=(100, ),
                          optimizer="adam", optimizer__learning_rate=0.001,
                          epochs=50, verbose=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.7
    assert clf.target_type_ == ("binary" if n_classes == 2 else "multiclass")
    assert clf.model_.loss == ("binary_crossentropy" if n_classes == 2
                               else "sparse_categorical_crossentropy")


def test_mlp_classifier_subclass_with_keras_build_fn():
    X, y = make_classification(random_state=0)
    clf = MLPClassifier(epochs=20)
    assert clf.fit(X, y).score(X, y) > 0.7
    fresh = clone(clf)
    assert type(fresh) is MLPClassifier and fresh.epochs == 20
    assert fresh.get_params()["hidden_layer_sizes"] == (100,)
    assert not hasattr(fresh, "model_")


def test_regressor_pickle_and_keras_saving(tmp_path):
    X_regr, y_regr = make_regression(300, 20, n_informative=10, random_state=0)
    reg = KerasRegressor(model=get_reg, loss="mse", hidden_layer_sizes=(100,),
                         dropout=0.5, verbose=0)
    reg.fit(X_regr, y_regr)
    y_pred = reg.predict(X_regr[:5])
    assert y_pred.shape == (5,)
    new_reg = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(new_reg.predict(X_regr[:5]), y_pred)
    pred_old = reg.predict(X_regr)
    reg.model_.save(tmp_path / "my_model.keras")
    new_reg_model = keras.saving.load_model(tmp_path / "my_model.keras")
    reg_new = KerasRegressor(new_reg_model)
    reg_new.initialize(X_regr, y_regr)
    pred_new = reg_new.predict(X_regr)
    np.testing.assert_allclose(pred_old, pred_new)


def test_callbacks_tutorial_max_val_loss():
    X, y = make_moons(n_samples=100, noise=0.2, random_state=0)
    kwargs = dict(model=get_clf, loss="binary_crossentropy", dropout=0.5,
                  hidden_layer_sizes=(100,), metrics=["binary_accuracy"],
                  fit__validation_split=0.2, epochs=20, verbose=False,
                  random_state=0)
    clf = KerasClassifier(**kwargs)
    clf.fit(X, y)
    assert len(clf.history_["loss"]) == 20
    acc = clf.history_['val_binary_accuracy']
    assert len(acc) == 20
    thr = 0.75                                   # the tutorial's threshold
    clf = KerasClassifier(**kwargs, callbacks=[MaxValLoss(monitor="val_binary_accuracy",
                                                          threashold=thr)])
    clf.fit(X, y)
    # Same seed, same run, until the first epoch above the threshold.
    first = next(i for i, a in enumerate(acc) if a > thr)
    assert first < 19
    assert len(clf.history_["loss"]) == first + 1
    assert clf.history_["val_binary_accuracy"] == pytest.approx(acc[:first + 1])


# ------------------------------------------------------------- the build call
def test_meta_holds_scikeras_fitted_attributes():
    seen = {}

    def build(meta):
        seen.update(meta)
        return get_clf(meta, (8,), 0.0)

    X, y = _binary(60)
    labels = np.array(["no", "yes"])[y]
    clf = KerasClassifier(build, loss="binary_crossentropy", verbose=0).fit(X, labels)
    assert seen["n_features_in_"] == 20 and seen["X_shape_"] == (60, 20)
    assert seen["X_dtype_"] == np.float64 and seen["y_ndim_"] == 1
    assert seen["target_type_"] == "binary"
    assert list(seen["classes_"]) == ["no", "yes"] and seen["n_classes_"] == 2
    assert seen["n_outputs_"] == 1 and seen["n_outputs_expected_"] == 1
    np.testing.assert_array_equal(seen["target_encoder_"].transform(labels), y)
    np.testing.assert_array_equal(seen["feature_encoder_"].transform(X), X)
    assert set(clf.predict(X)) <= {"no", "yes"}

    def build_reg(meta):
        seen.clear()
        seen.update(meta)
        return keras.Sequential([keras.Input((meta["n_features_in_"],)),
                                 keras.layers.Dense(meta["n_outputs_"])])

    X, Y = make_regression(40, 5, n_targets=3, random_state=0)
    reg = KerasRegressor(build_reg, verbose=0).fit(X, Y)
    assert seen["n_outputs_"] == 3 and seen["target_type_"] == "continuous-multioutput"
    assert reg.predict(X).shape == (40, 3)


def test_compile_kwargs_hold_built_optimizer_loss_and_metrics():
    seen = {}

    def build(meta, compile_kwargs):
        seen.update(compile_kwargs)
        model = get_clf(meta, (8,), 0.0)
        model.compile(**compile_kwargs)
        return model

    X, y = _binary(60)
    clf = KerasClassifier(build, optimizer=keras.optimizers.SGD,
                          optimizer__learning_rate=0.05, optimizer__momentum=0.9,
                          loss="binary_crossentropy", metrics="accuracy", verbose=0)
    clf.fit(X, y)
    opt = seen["optimizer"]
    assert isinstance(opt, keras.optimizers.SGD) and clf.model_.optimizer is opt
    assert (opt.learning_rate, opt.momentum) == (pytest.approx(0.05), pytest.approx(0.9))
    assert seen["loss"] == "binary_crossentropy" and seen["metrics"] == ["accuracy"]
    assert seen["run_eagerly"] is False
    assert set(clf.history_) == {"loss", "accuracy"}


def test_loss_and_metric_classes_are_built_with_routed_params():
    X, y = _binary(60)
    clf = KerasClassifier(lambda meta: get_clf(meta, (8,), 0.0),
                          loss=keras.losses.BinaryCrossentropy, loss__name="bce",
                          metrics=[keras.metrics.BinaryAccuracy],
                          metrics__0__name="acc01", verbose=0).fit(X, y)
    assert isinstance(clf.model_.loss, keras.losses.BinaryCrossentropy)
    assert clf.model_.loss.name == "bce"
    assert "acc01" in clf.history_


def test_uncompiled_model_gets_a_default_loss_from_its_output():
    X, y = _binary(60)
    one = KerasClassifier(get_clf, model__hidden_layer_sizes=(4,), model__dropout=0,
                          verbose=0).fit(X, y)
    assert one.model_._loss_obj.name == "binary_crossentropy"
    two = KerasClassifier(get_model, hidden_layer_dim=4, verbose=0).fit(X, y)
    assert two.model_._loss_obj.name == "sparse_categorical_crossentropy"


# ---------------------------------------------------------------- routing
def test_fit_and_predict_params_are_routed(monkeypatch):
    X, y = _binary(100)
    calls = {}
    model_cls = keras.Sequential
    for name in ("fit", "predict"):
        real = getattr(model_cls, name)

        def spy(self, *a, _real=real, _name=name, **kw):
            calls[_name] = kw
            return _real(self, *a, **kw)
        monkeypatch.setattr(model_cls, name, spy)
    clf = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(4,),
                          dropout=0.0, batch_size=-1, shuffle=False,
                          fit__validation_split=0.1, predict__batch_size=7,
                          epochs=3, verbose=0)
    clf.fit(X, y)
    clf.predict(X)
    assert calls["fit"]["batch_size"] == 100 and calls["fit"]["shuffle"] is False
    assert calls["fit"]["validation_split"] == 0.1 and calls["fit"]["epochs"] == 3
    assert calls["predict"]["batch_size"] == 7
    assert len(clf.history_["val_loss"]) == 3


class _After:
    def __init__(self, epochs=1):
        self.epochs = epochs


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.rule.epochs:
            self.model.stop_training = True


@pytest.mark.parametrize("kwargs", [
    dict(callbacks=keras.callbacks.EarlyStopping, callbacks__monitor="loss",
         callbacks__min_delta=10.0, callbacks__patience=1),
    dict(callbacks=[keras.callbacks.History, keras.callbacks.EarlyStopping],
         callbacks__1__monitor="loss", callbacks__1__min_delta=10.0,
         callbacks__1__patience=1),
    dict(callbacks={"stop": _StopAfter}, callbacks__stop__0=_After,
         callbacks__stop__0__epochs=2),
    dict(fit__callbacks=_StopAfter, fit__callbacks__0=_After,
         fit__callbacks__0__epochs=2),
], ids=["class", "list", "dict-positional", "fit-only"])
def test_callback_classes_are_built_with_routed_params(kwargs):
    X, y = _binary(60)
    clf = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(4,),
                          dropout=0.0, epochs=10, verbose=0, **kwargs).fit(X, y)
    assert len(clf.history_["loss"]) == 2


def test_score_params_are_routed():
    X, y = _binary(60)
    clf = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(4,),
                          dropout=0.0, verbose=0, score__normalize=False).fit(X, y)
    assert clf.score(X, y) == (clf.predict(X) == y).sum()


# -------------------------------------------------- params, clone, set_params
def test_defaults_are_scikeras_defaults():
    sig = inspect.signature(KerasClassifier).parameters
    assert {k: sig[k].default for k in sig if k != "kwargs"} == dict(
        model=None, build_fn=None, warm_start=False, random_state=None,
        optimizer="rmsprop", loss=None, metrics=None, batch_size=None,
        validation_batch_size=None, verbose=1, callbacks=None,
        validation_split=0.0, shuffle=True, run_eagerly=False, epochs=1,
        class_weight=None)
    assert "class_weight" not in inspect.signature(KerasRegressor).parameters


def test_get_set_params_and_clone_carry_routed_params():
    clf = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(4,),
                          model__dropout=0.2, optimizer__learning_rate=0.01)
    params = clf.get_params()
    assert params["model__dropout"] == 0.2 and params["hidden_layer_sizes"] == (4,)
    assert params["optimizer__learning_rate"] == 0.01 and params["epochs"] == 1
    clf.set_params(model__dropout=0.0, fit__shuffle=False, epochs=2)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert copy.get_params()["fit__shuffle"] is False
    with pytest.raises(ValueError, match="Invalid parameter 'dropuot'"):
        clf.set_params(dropuot=0.1)
    assert "model__dropout=0.0" in repr(clf)
    X, y = _binary(60)
    copy.fit(X, y)
    assert {l.rate for l in copy.model_.layers if hasattr(l, "rate")} == {0.0}
    assert len(copy.history_["loss"]) == 2


def test_parameters_the_model_function_does_not_take_are_refused():
    X, y = _binary(60)
    with pytest.raises(TypeError, match="'hiden_layer_sizes' is not an argument"):
        KerasClassifier(get_clf, hiden_layer_sizes=(4,), dropout=0.0,
                        verbose=0).fit(X, y)
    with pytest.raises(TypeError, match="model__units"):
        KerasClassifier(get_clf, hidden_layer_sizes=(4,), dropout=0.0,
                        model__units=3, verbose=0).fit(X, y)
    with pytest.raises(TypeError, match="must return a Sequential"):
        KerasClassifier(lambda: "net", verbose=0).fit(X, y)
    with pytest.raises(ValueError, match="needs model="):
        KerasClassifier(verbose=0).fit(X, y)
    with pytest.raises(TypeError, match="not a class"):
        KerasClassifier(get_clf, hidden_layer_sizes=(4,), dropout=0.0,
                        optimizer=keras.optimizers.Adam(),
                        optimizer__learning_rate=0.1, verbose=0).fit(X, y)


def test_a_loss_the_compiled_model_does_not_use_is_refused():
    X, y = _binary(60)
    with pytest.raises(ValueError, match="data may not match"):
        KerasClassifier(get_clf_model, hidden_layer_sizes=(4,), loss="mse",
                        verbose=0).fit(X, y)


def test_build_fn_alias_and_prebuilt_model():
    X, y = _binary(60)
    with pytest.warns(UserWarning, match="build_fn"):
        clf = KerasClassifier(build_fn=get_clf, loss="binary_crossentropy",
                              hidden_layer_sizes=(4,), dropout=0.0, verbose=0).fit(X, y)
    assert clf.predict(X).shape == (60,)
    net = get_clf({"n_features_in_": 20}, (4,), 0.0)
    pre = KerasClassifier(net, loss="binary_crossentropy", verbose=0).fit(X, y)
    assert pre.model_ is net


# ------------------------------------------------ weights, warm start, seeds
def test_class_weight_is_sample_weighting():
    X, y = _binary(120)
    kw = dict(model=get_clf, loss="binary_crossentropy", hidden_layer_sizes=(8,),
              dropout=0.0, epochs=3, verbose=0, random_state=0)
    a = KerasClassifier(**kw, class_weight="balanced").fit(X[:100], y[:100])
    w = compute_sample_weight("balanced", y[:100])
    b = KerasClassifier(**kw).fit(X[:100], y[:100], sample_weight=w)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = KerasClassifier(**kw).fit(X[:100], y[:100])
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_zero_sample_weights_drop_their_rows():
    X, y = _binary(100)
    kw = dict(model=get_clf, loss="binary_crossentropy", hidden_layer_sizes=(8,),
              dropout=0.0, epochs=2, verbose=0, random_state=0)
    w = np.ones(100)
    w[::3] = 0
    a = KerasClassifier(**kw).fit(X, y, sample_weight=w)
    b = KerasClassifier(**kw).fit(X[w > 0], y[w > 0])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    with pytest.raises(ValueError, match="non-zero|any weight"):
        KerasClassifier(**kw).fit(X, y, sample_weight=np.zeros(100))


def test_random_state_reproduces_a_fit():
    X, y = _binary(100)
    kw = dict(model=get_clf, loss="binary_crossentropy", hidden_layer_sizes=(8,),
              dropout=0.5, epochs=2, verbose=0)
    a = KerasClassifier(**kw, random_state=3).fit(X, y).predict_proba(X)
    b = KerasClassifier(**kw, random_state=3).fit(X, y).predict_proba(X)
    c = KerasClassifier(**kw, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_partial_fit_trains_on_and_keeps_the_classes():
    X, y = make_classification(150, 10, n_informative=5, n_classes=3, random_state=0)
    clf = KerasClassifier(get_model, hidden_layer_dim=8, verbose=0)
    first = np.isin(y, [0, 1])                    # the first batch lacks class 2
    clf.partial_fit(X[first], y[first], classes=[0, 1, 2])
    model = clf.model_
    assert clf.n_classes_ == 3 and clf.model_.layers[-2].units == 3
    clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert clf.model_ is model and clf.current_epoch == 3
    assert len(clf.history_["loss"]) == 3
    with pytest.raises(TypeError, match="partial_fit"):
        clf.partial_fit(X, y, epochs=2)


def test_warm_start_keeps_the_model_and_restarts_the_history():
    X, y = _binary(100)
    clf = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(8,),
                          dropout=0.0, epochs=2, verbose=0, warm_start=True).fit(X, y)
    model, w = clf.model_, [a.copy() for a in clf.model_.get_weights()]
    clf.fit(X, y)
    assert clf.model_ is model and len(clf.history_["loss"]) == 2
    assert not np.array_equal(w[0], clf.model_.get_weights()[0])
    cold = KerasClassifier(get_clf, loss="binary_crossentropy", hidden_layer_sizes=(8,),
                           dropout=0.0, verbose=0)
    cold.fit(X, y)
    first = cold.model_
    cold.fit(X, y)
    assert cold.model_ is not first


def test_unseen_labels_at_fit_time_are_refused():
    X, y = _binary(60)
    clf = KerasClassifier(get_model, hidden_layer_dim=4, verbose=0)
    clf.partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="not seen in fit"):
            clf.partial_fit(X, np.where(y == 1, 5, 0))


def _sklearn_check_model(meta):
    out = meta.get("n_classes_") or meta["n_outputs_"]
    return keras.Sequential([
        keras.Input((meta["n_features_in_"],)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(out, activation="softmax" if "n_classes_" in meta else None)])


@pytest.mark.parametrize("cls", [KerasClassifier, KerasRegressor])
def test_check_estimator_passes_but_scikeras_expected_failures(cls):
    from sklearn.utils.estimator_checks import check_estimator
    est = cls(_sklearn_check_model, optimizer="adam", optimizer__learning_rate=0.01,
              epochs=40, verbose=0, random_state=0)
    check_estimator(est, expected_failed_checks={
        # as scikeras: routed and extra parameters are set in __init__
        "check_no_attributes_set_in_init":
            "parameters given as **kwargs are attributes set in __init__",
        "check_sample_weight_equivalence_on_dense_data":
            "mini-batch SGD: weight 2 is not a duplicated sample"})


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError
    clf = KerasClassifier(get_clf, hidden_layer_sizes=(4,), dropout=0.0)
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((2, 20)))
    with pytest.raises(NotFittedError):
        clf.predict_proba(np.zeros((2, 20)))
