"""Dask and joblib: grid searches under joblib's "dask" backend on a
LocalCluster give the sequential search's results, with one engine thread
per worker thread; dropout_engine.dask.predict over a dask array equals
model.predict; the model ships to workers as its model file; the package
imports without dask."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dask.array", reason="dask is not installed (pip install "
                    "'dask[distributed]')")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not "
                                  "installed (pip install 'dask[distributed]')")
pytest.importorskip("sklearn", reason="scikit-learn is not installed")
threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

import dropout_engine  # noqa: E402
from dropout_engine import callbacks, keras, seeding  # noqa: E402
from dropout_engine import dask as de_dask  # noqa: E402
from dropout_engine.layers import Dense, Dropout, Input  # noqa: E402
from dropout_engine.model import Sequential  # noqa: E402
from dropout_engine.sklearn import DropoutMLPClassifier, KerasClassifier  # noqa: E402

ROOT = pathlib.Path(dropout_engine.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client():
    """One cluster for the module (starting one takes about a second)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                       processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _engine_threads():
    """What a task sees: the engine's threads and threadpoolctl's OpenMP pools."""
    return {"engine": dropout_engine.get_num_threads(),
            "omp_env": os.environ.get("OMP_NUM_THREADS"),
            "pools": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()
                             if p["user_api"] == "openmp"}),
            "in_worker": de_dask.task_thread_budget() is not None}


def test_workers_run_this_build(client):
    files = client.run(lambda: __import__("dropout_engine").__file__)
    assert set(files.values()) == {dropout_engine.__file__}


def test_engine_in_a_worker_uses_the_worker_s_thread_budget(client):
    # Dask's nanny sets OMP_NUM_THREADS=1; the engine's OpenMP pool (which
    # threadpoolctl sees) follows: 2 workers x 1 thread on the machine.
    workers = list(client.scheduler_info()["workers"])
    seen = [client.submit(_engine_threads, workers=[w], pure=False).result()
            for w in workers]
    assert len(seen) == 2
    for info in seen:
        assert info == {"engine": 1, "omp_env": "1", "pools": [1], "in_worker": True}


# ---------------------------------------------------------- grid searches
def _data():
    x, y = make_classification(n_samples=160, n_features=8, n_informative=5,
                               random_state=0)
    return x.astype(np.float32), y


def _threads_scorer(est, x, y):
    return float(dropout_engine.get_num_threads())


def _worker_scorer(est, x, y):
    return float(de_dask.task_thread_budget() is not None)


class FitThreads(callbacks.Callback):
    """Logs the engine's thread count during fit (into history_)."""
    batch_hooks_at_chunk_ends = True

    def on_epoch_end(self, epoch, logs=None):
        logs["engine_threads"] = float(dropout_engine.get_num_threads())


def _fit_threads_scorer(est, x, y):
    return est.history_["engine_threads"][-1]


def build_clf(meta, hidden, dropout):
    model = keras.models.Sequential([keras.layers.Input((meta["n_features_in_"],))])
    model.add(keras.layers.Dense(hidden, activation="relu"))
    model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def _search(est, grid, scoring, backend):
    x, y = _data()
    search = GridSearchCV(est, grid, cv=StratifiedKFold(3), scoring=scoring,
                          refit="accuracy", n_jobs=-1)
    if backend is None:
        return search.fit(x, y)
    with joblib.parallel_config(backend=backend):
        return search.fit(x, y)


def _same_search(seq, par, extra):
    assert seq.best_params_ == par.best_params_
    assert seq.best_score_ == par.best_score_
    for k in ("mean_test_accuracy", "std_test_accuracy", "rank_test_accuracy"):
        np.testing.assert_array_equal(seq.cv_results_[k], par.cv_results_[k])
    assert list(seq.cv_results_["params"]) == list(par.cv_results_["params"])
    # Every fit ran in a worker (the sequential search's did not), with
    # one engine thread, however many the parent has.
    np.testing.assert_array_equal(par.cv_results_["mean_test_in_worker"], 1.0)
    np.testing.assert_array_equal(seq.cv_results_["mean_test_in_worker"], 0.0)
    for k in extra:
        np.testing.assert_array_equal(par.cv_results_[k], 1.0)
    x, _ = _data()
    np.testing.assert_array_equal(seq.predict_proba(x), par.predict_proba(x))


def test_grid_search_over_dropout_mlp_under_dask_equals_sequential(client):
    est = DropoutMLPClassifier((16,), epochs=6, batch_size=16, learning_rate=0.01,
                               random_state=0)
    grid = {"dropout_rate": [0.0, 0.3], "hidden_layer_sizes": [(8,), (16,)]}
    scoring = {"accuracy": "accuracy", "threads": _threads_scorer,
               "in_worker": _worker_scorer}
    seq = _search(est, grid, scoring, None)
    par = _search(est, grid, scoring, "dask")
    _same_search(seq, par, ["mean_test_threads"])


def test_grid_search_over_keras_classifier_under_dask_equals_sequential(client):
    est = KerasClassifier(model=build_clf, hidden=8, dropout=0.2, loss="binary_crossentropy",
                          optimizer="adam", optimizer__learning_rate=0.01, epochs=6,
                          batch_size=16, verbose=0, random_state=0,
                          callbacks=[FitThreads])
    grid = {"dropout": [0.0, 0.4], "hidden": [4, 12]}
    scoring = {"accuracy": "accuracy", "fit_threads": _fit_threads_scorer,
               "in_worker": _worker_scorer}
    seq = _search(est, grid, scoring, None)
    par = _search(est, grid, scoring, "dask")
    _same_search(seq, par, ["mean_test_fit_threads"])


def test_worker_threads_limits_a_threaded_worker_in_its_task_thread_only():
    # processes=False: the workers are threads of this process, whose
    # environment does not limit OpenMP; a fit there is limited all the same.
    if dropout_engine.get_num_threads() < 2:
        pytest.skip("one core: nothing to limit")
    before = dropout_engine.get_num_threads()
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=":0")
    with distributed.Client(cluster, set_as_default=False) as c:
        x, y = _data()
        est = KerasClassifier(model=build_clf, hidden=8, dropout=0.2,
                              loss="binary_crossentropy", epochs=2, verbose=0,
                              random_state=0, callbacks=[FitThreads])
        fitted = c.submit(lambda e: e.fit(x, y), est, pure=False).result()
        plain = c.submit(dropout_engine.get_num_threads, pure=False).result()
    cluster.close()
    assert fitted.history_["engine_threads"] == [1.0, 1.0]
    assert plain == before and dropout_engine.get_num_threads() == before


# ------------------------------------------------------------- predict
def _model():
    seeding.set_random_seed(4)
    m = Sequential([Input((10,)), Dense(32, activation="relu"), Dropout(0.5),
                    Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("chunks", [(100, -1), (333, 4), ((0, 500, 0, 500), (10,))],
                         ids=["rows", "rows-and-columns", "empty-blocks"])
def test_predict_over_a_dask_array_equals_predict(client, chunks):
    model = _model()
    x = np.random.default_rng(0).standard_normal((1000, 10)).astype(np.float32)
    y = de_dask.predict(model, da.from_array(x, chunks=chunks))
    assert y.dtype == np.float32 and y.shape == (1000, 3)
    assert y.chunks[0] == da.from_array(x, chunks=chunks).chunks[0]
    out = y.compute()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(x))


def test_predict_converts_other_dtypes_as_predict_does(client):
    model = _model()
    x = np.random.default_rng(1).standard_normal((300, 10))
    out = de_dask.predict(model, da.from_array(x, chunks=(64, -1))).compute()
    np.testing.assert_array_equal(out, model.predict(x))


def test_predict_puts_the_model_in_the_graph_once():
    y = de_dask.predict(_model(), da.zeros((1000, 10), chunks=(100, 10)))
    # A graph value is the model itself or a node holding it (dask >= 2024.12).
    held = [v for v in dict(y.__dask_graph__()).values()
            if isinstance(v, Sequential) or isinstance(getattr(v, "value", None), Sequential)]
    assert len(held) == 1


def test_model_ships_to_workers_as_its_model_file(client):
    model = _model()
    header, frames = distributed.protocol.serialize(model)
    assert header["serializer"] == "pickle"
    # The model file's metadata names its format: the bytes are the file's.
    assert any(b"dropout_engine.model" in bytes(f) for f in frames)
    x = np.random.default_rng(2).standard_normal((50, 10)).astype(np.float32)
    remote = client.submit(lambda m: (type(m).__name__, m.predict(x), m.optimizer.iterations),
                           model, pure=False).result()
    assert remote[0] == "Sequential" and remote[2] == model.optimizer.iterations
    np.testing.assert_array_equal(remote[1], model.predict(x))


@pytest.mark.parametrize("x, err, match", [
    (np.zeros((4, 10), np.float32), TypeError, "dask.array"),
    (da.zeros((4, 9), chunks=2), ValueError, "9 features"),
    (da.zeros((4, 10, 1), chunks=2), ValueError, "2-d"),
    (da.from_array(np.array([["a"] * 10] * 4)), TypeError, "real numbers")])
def test_predict_refuses_what_it_cannot_read(x, err, match):
    with pytest.raises(err, match=match):
        de_dask.predict(_model(), x)


def test_predict_refuses_an_unbuilt_model():
    with pytest.raises(ValueError, match="built"):
        de_dask.predict(Sequential([Dense(2)]), da.zeros((4, 3), chunks=2))


def test_worker_threads_is_a_no_op_outside_a_worker():
    assert de_dask.task_thread_budget() is None
    before = dropout_engine.get_num_threads()
    with de_dask.worker_threads():
        assert dropout_engine.get_num_threads() == before


def test_package_imports_and_fits_without_dask():
    code = """
import sys
sys.modules["dask"] = sys.modules["distributed"] = None   # import dask fails
import numpy as np
import dropout_engine, dropout_engine.dask, dropout_engine.sklearn
from dropout_engine.sklearn import DropoutMLPClassifier
x = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
DropoutMLPClassifier((4,), epochs=1).fit(x, x[:, 0] > 0).predict(x)
try:
    import dask
except ImportError:
    print("ok")
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
