"""Threads: threadpoolctl sees and limits the engine's OpenMP pool, the GIL
is released in the kernels, show_config reports the runtime."""
import threading
import time

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine.layers import Dense, Dropout, Input

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")


@pytest.fixture(autouse=True)
def default_threads():
    before = de.get_num_threads()
    yield
    de.set_num_threads(max(before, 1))


def test_threadpool_info_lists_the_openmp_pool():
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
    assert pools, threadpoolctl.threadpool_info()
    assert de.show_config(mode="dicts")["threads"]["openmp_pools"] == [
        {k: p.get(k) for k in ("internal_api", "prefix", "filepath", "version",
                               "num_threads")} for p in pools]


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits_limit_the_kernels(user_api):
    if de.get_num_threads() < 2:
        pytest.skip("one core: nothing to limit")
    with threadpoolctl.threadpool_limits(1, user_api=user_api):
        assert de.get_num_threads() == 1
    assert de.get_num_threads() >= 2


def test_our_limit_and_theirs_combine_as_the_minimum():
    de.set_num_threads(1)
    with threadpoolctl.threadpool_limits(2):
        assert de.get_num_threads() == 1


def test_results_do_not_depend_on_the_limit():
    de.set_random_seed(0)
    model = de.Sequential([Input((64,)), Dense(256, activation="relu"), Dropout(0.5),
                           Dense(10, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(512, 64)).astype(np.float32)
    full = model.predict(x)
    with threadpoolctl.threadpool_limits(1):
        one = model.predict(x)
    np.testing.assert_array_equal(full, one)


def _count_while(state):
    """Count (the thread's Python progress) while state["running"]."""
    while state["running"]:
        state["count"] += 1


def _python_progress_during(call):
    """Iterations a Python thread makes while `call` runs in another thread,
    and the call's duration."""
    state = {"running": False, "count": 0}

    def worker():
        state["running"] = True
        t0 = time.perf_counter()
        call()
        state["elapsed"] = time.perf_counter() - t0
        state["running"] = False

    t = threading.Thread(target=worker)
    t.start()
    while not state["running"]:
        pass
    _count_while(state)
    t.join()
    return state["count"], state["elapsed"]


def _python_rate():
    """Free-running iterations per second of the same counting loop."""
    state = {"running": True, "count": 0}
    timer = threading.Timer(0.05, lambda: state.update(running=False))
    t0 = time.perf_counter()
    timer.start()
    _count_while(state)
    return state["count"] / (time.perf_counter() - t0)


@pytest.mark.parametrize("what", ["predict", "fit"])
def test_the_gil_is_released_in_long_kernel_calls(what):
    # With the GIL held, the counting thread would stop for the whole C call
    # (it could run at most one switch interval, 5 ms); released, it counts
    # at a good fraction of its free-running rate.
    de.set_num_threads(1)
    de.set_random_seed(1)
    model = de.Sequential([Input((256,)), Dense(512, activation="relu"), Dropout(0.5),
                           Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).normal(size=(8192, 256)).astype(np.float32)
    y = np.zeros(8192)
    call = ((lambda: model.predict(x, batch_size=8192)) if what == "predict" else
            (lambda: model.fit(x, y, batch_size=4096, epochs=3, verbose=0)))
    call()
    count, elapsed = _python_progress_during(call)
    expected = _python_rate() * elapsed
    assert count > 0.2 * expected, (count, expected, elapsed)


def test_show_config_reports_what_a_bug_report_needs(capsys):
    d = de.show_config(mode="dicts")
    assert d["dropout_engine"]["version"] == de.__version__
    assert d["cpu"]["isa"] == de.isa()
    assert d["cpu"]["isa"] in d["cpu"]["available_isas"]
    assert d["threads"]["num_threads"] == de.get_num_threads()
    assert d["build"]["compiler"] and d["build"]["openmp"]["enabled"] in (True, False)
    assert d["numpy"]["version"] == np.__version__
    assert de.show_config() is None
    out = capsys.readouterr().out
    assert f"version: {de.__version__}" in out and f"isa: {de.isa()}" in out
    with pytest.raises(ValueError, match="mode"):
        de.show_config(mode="json")
