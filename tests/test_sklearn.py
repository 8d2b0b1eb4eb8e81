"""scikit-learn estimators: the estimator contract, pipelines, grid search,
pickling, and the scikeras-style wrapper."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from dropout_engine import Sequential  # noqa: E402
from dropout_engine.layers import Dense, Dropout, Input  # noqa: E402
from dropout_engine.sklearn import (DropoutMLPClassifier,  # noqa: E402
                                    DropoutMLPRegressor, KerasClassifier,
                                    KerasRegressor)


def sonar_like(seed=0):
    """208 samples of 60 correlated features in two classes, as Sonar."""
    x, y = make_classification(n_samples=208, n_features=60, n_informative=12,
                               n_redundant=20, class_sep=1.0, random_state=seed)
    return x * 0.3 + 0.5, np.where(y == 1, "M", "R")


@pytest.mark.parametrize("est", [
    DropoutMLPClassifier((16,), epochs=20, dropout_rate=0.1, random_state=0),
    DropoutMLPRegressor((16,), epochs=20, dropout_rate=0.1, random_state=0),
], ids=["classifier", "regressor"])
def test_check_estimator_passes(est):
    # Mini-batch SGD on shuffled batches: a sample weighted 2 is not the same
    # as the sample twice (scikit-learn's own SGD estimators and MLPs are
    # exempt from this check too).  Every other check runs.
    check_estimator(est, expected_failed_checks={
        "check_sample_weight_equivalence_on_dense_data":
            "mini-batch SGD: weight 2 is not a duplicated sample"})


def test_import_does_not_import_sklearn():
    code = "import sys, dropout_engine; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


def test_grid_search_over_dropout_rate_in_pipeline():
    x, y = sonar_like()
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", DropoutMLPClassifier((30,), epochs=30, batch_size=16,
                                                  random_state=0))])
    grid = GridSearchCV(pipe, {"mlp__dropout_rate": [0.0, 0.2, 0.5]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0))
    grid.fit(x, y)
    assert grid.best_params_["mlp__dropout_rate"] in (0.0, 0.2, 0.5)
    assert grid.best_score_ > 0.7          # chance is 0.5
    assert set(grid.predict(x)) <= {"M", "R"}


def test_classifier_attributes_and_labels_of_any_type():
    x, y = sonar_like()
    labels = np.array([("rock",), ("mine",)], dtype=object)[(y == "M").astype(int), 0]
    clf = DropoutMLPClassifier((8,), epochs=5, random_state=1).fit(x, labels)
    assert list(clf.classes_) == ["mine", "rock"]
    assert clf.n_features_in_ == 60
    assert len(clf.loss_curve_) == clf.n_iter_ == 5
    p = clf.predict_proba(x)
    assert p.shape == (208, 2) and np.allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[p.argmax(axis=1)])


def test_random_state_makes_fit_reproducible():
    x, y = sonar_like()
    a = DropoutMLPClassifier((8,), epochs=3, random_state=5).fit(x, y)
    b = DropoutMLPClassifier((8,), epochs=3, random_state=5).fit(x, y)
    c = DropoutMLPClassifier((8,), epochs=3, random_state=6).fit(x, y)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    assert not np.array_equal(a.predict_proba(x), c.predict_proba(x))


def test_pickle_and_clone():
    x, y = sonar_like()
    clf = DropoutMLPClassifier((8,), epochs=3, max_norm=3.0, alpha=1e-3,
                               input_dropout=0.1, random_state=0).fit(x, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "model_")


def test_early_stopping_keeps_a_validation_curve():
    x, y = sonar_like()
    clf = DropoutMLPClassifier((8,), epochs=200, early_stopping=True,
                               n_iter_no_change=3, learning_rate=0.01,
                               random_state=0).fit(x, y)
    assert clf.n_iter_ < 200
    assert len(clf.validation_loss_curve_) == clf.n_iter_


def test_regressor_multi_output():
    x, y = make_regression(n_samples=100, n_features=5, n_targets=2, random_state=0)
    reg = DropoutMLPRegressor((16,), epochs=5, random_state=0).fit(x, y / 100)
    assert reg.predict(x).shape == (100, 2)


def test_bad_parameters_fail_at_fit_with_a_message():
    x, y = sonar_like()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        DropoutMLPClassifier(optimizer="adagrad", epochs=1).fit(x, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        DropoutMLPClassifier(hidden_layer_sizes=(0,), epochs=1).fit(x, y)
    with pytest.raises(ValueError, match="rate"):
        DropoutMLPClassifier(dropout_rate=1.5, epochs=1).fit(x, y)


def build_sonar_model(dropout_rate=0.2, units=30):
    return Sequential([Input((60,)), Dense(units, activation="relu"),
                       Dropout(dropout_rate), Dense(1, activation="sigmoid")])


def test_keras_classifier_grid_search_routes_model_params():
    x, y = sonar_like()
    clf = KerasClassifier(build_sonar_model, loss="binary_crossentropy", epochs=20,
                          batch_size=16, dropout_rate=0.2, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", clf)])
    grid = GridSearchCV(pipe, {"clf__dropout_rate": [0.0, 0.3],
                               "clf__model__units": [8, 16]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0))
    grid.fit(x, y)
    assert grid.best_score_ > 0.7
    best = grid.best_estimator_.named_steps["clf"]
    assert best.model_.layers[0].units == grid.best_params_["clf__model__units"]
    assert best.predict_proba(x[:4]).shape == (4, 2)
    back = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(back.predict(x), best.predict(x))


def test_keras_classifier_sparse_and_one_hot_losses():
    x, y = sonar_like()

    def build():
        return Sequential([Input((60,)), Dense(8, activation="relu"),
                           Dense(2, activation="softmax")])
    for loss in (None, "categorical_crossentropy"):
        clf = KerasClassifier(build, loss=loss, epochs=2, random_state=0).fit(x, y)
        assert set(clf.predict(x)) <= {"M", "R"}


def test_keras_regressor():
    x, y = make_regression(n_samples=64, n_features=4, random_state=0)

    def build():
        return Sequential([Input((4,)), Dense(8, activation="relu"), Dense(1)])
    reg = KerasRegressor(build, epochs=2, random_state=0).fit(x, y / 100)
    assert reg.predict(x).shape == (64,)
    assert clone(reg).get_params()["epochs"] == 2


def test_sample_weight_reaches_the_keras_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    def fit(**kw):
        return DropoutMLPClassifier((8,), epochs=15, random_state=0).fit(X, y, **kw)
    base = fit().predict_proba(X)
    np.testing.assert_array_equal(fit(sample_weight=np.ones(200)).predict_proba(X), base)
    # weighting class 1 heavily raises its predicted probability
    heavy = fit(sample_weight=np.where(y == 1, 10.0, 1.0)).predict_proba(X)
    assert heavy[:, 1].mean() > base[:, 1].mean() + 0.05
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", DropoutMLPClassifier((8,), epochs=40, random_state=0,
                                                  early_stopping=True))])
    pipe.fit(X, y, mlp__sample_weight=np.linspace(0.5, 2, 200))
    assert pipe.score(X, y) > 0.6
    with pytest.raises(ValueError):
        fit(sample_weight=-np.ones(200))


def test_grid_search_in_threads_equals_sequential():
    # joblib's threading backend (as a Dask worker's threads) runs fits at
    # once in one process: each fit's seed stream is its thread's own.
    import joblib
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    est = DropoutMLPClassifier((16,), dropout_rate=0.3, epochs=8, random_state=0)
    grid = {"learning_rate": [0.001, 0.003, 0.01, 0.03]}
    seq = GridSearchCV(est, grid, cv=StratifiedKFold(3)).fit(X, y)
    with joblib.parallel_config(backend="threading"):
        par = GridSearchCV(est, grid, cv=StratifiedKFold(3), n_jobs=4).fit(X, y)
    np.testing.assert_array_equal(seq.cv_results_["mean_test_score"],
                                  par.cv_results_["mean_test_score"])
    assert seq.best_params_ == par.best_params_
