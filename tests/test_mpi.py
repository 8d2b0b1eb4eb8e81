"""Data-parallel training (dropout_engine.distribute, training.distribution).

Without MPI (no mpirun or no mpi4py) only the tests that launch mpirun
skip; the one-process path of ``distribute`` and the chief-only writes are
tested always.  The launch tests run ``mpirun -np 2`` on scripts written
here, with a timeout each (a hang fails, it never blocks the suite).
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import distribute
from dropout_engine.keras import callbacks, layers, models, optimizers
from dropout_engine.training import distribution

from mpi_launch import env, mpirun, needs_mpi, run, write_script


# ------------------------------------------------------ one process, no MPI
def _model(seed=3):
    de.set_random_seed(seed)
    m = models.Sequential([layers.Input((6,)), layers.Dropout(0.2),
                           layers.Dense(16, activation="relu"), layers.Dropout(0.5),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(0.05, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(n=90):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


@pytest.fixture
def restore_distribution():
    before = distribution.distribution()
    yield
    distribution.set_distribution(before)


def test_the_package_and_distribute_import_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import dropout_engine as de, dropout_engine.distribute as d\n"
            "dp = d.DataParallel(); d.set_distribution(dp)\n"
            "print(dp.world_size, dp.rank, dp.allreduce, d.is_chief())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "0", "None", "True"]


def test_under_a_launcher_without_mpi4py_the_error_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import dropout_engine.distribute as d\n"
            "d.DataParallel()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env(OMPI_COMM_WORLD_SIZE="2"), timeout=60)
    assert r.returncode != 0
    assert "needs mpi4py" in r.stderr and "dropout_engine[mpi]" in r.stderr


def test_one_process_data_parallel_trains_as_without_it(restore_distribution):
    x, y = _data()
    plain = _model()
    h0 = plain.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2)
    distribute.set_distribution(distribute.DataParallel())
    dp = _model()
    h1 = dp.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2)
    for a, b in zip(plain.get_weights(), dp.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h0.history == h1.history


def test_set_distribution_and_data_parallel_check_their_arguments(restore_distribution):
    with pytest.raises(TypeError, match="Distribution"):
        distribute.set_distribution("mpi")
    with pytest.raises(ValueError, match="buckets"):
        distribute.DataParallel(buckets="bucket")
    for t in (0, -1.0, "5", True):
        with pytest.raises(ValueError, match="timeout"):
            distribute.DataParallel(timeout=t)
    with pytest.raises(ValueError, match="shared_memory must be True or False"):
        distribute.DataParallel(shared_memory="yes")
    distribute.set_distribution(None)
    assert type(distribute.distribution()) is distribution.Distribution
    assert distribute.is_chief()


class _Worker(distribution.Distribution):
    """What a rank other than 0 looks like to the chief-only code, without
    MPI: it trains alone (allreduce None)."""
    rank, world_size = 1, 2


def test_a_worker_skips_the_writes_the_chief_makes(tmp_path, restore_distribution, capsys):
    distribute.set_distribution(_Worker())
    assert not distribute.is_chief()
    x, y = _data()
    m = _model()
    csv = callbacks.CSVLogger(str(tmp_path / "log.csv"))
    seen = []
    cbs = [callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.safetensors")), csv,
           callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))]
    m.fit(x, y, batch_size=16, epochs=2, verbose=1, callbacks=cbs)
    m.save(str(tmp_path / "final.safetensors"))
    m.save_weights(str(tmp_path / "final.weights.safetensors"))
    de.saving.save_model(m, str(tmp_path / "fn.safetensors"))
    assert seen == [0, 1]                       # the other callbacks ran
    assert list(tmp_path.iterdir()) == []       # nothing written
    assert csv.csv_file is None
    assert "Epoch 1/2" not in capsys.readouterr().out
    distribute.set_distribution(None)           # the chief writes
    m.save(str(tmp_path / "final.safetensors"))
    assert (tmp_path / "final.safetensors").exists()


def test_a_worker_prints_and_warns_nothing_but_decides_as_the_chief(
        restore_distribution, capsys, recwarn):
    x, y = _data()

    def fit():
        m = _model()
        stop = callbacks.EarlyStopping(monitor="loss", min_delta=10, patience=1,
                                       verbose=1, restore_best_weights=True)
        cbs = [stop, callbacks.EarlyStopping(monitor="nothing"),
               callbacks.ReduceLROnPlateau(monitor="loss", min_delta=10, patience=1,
                                           verbose=1)]
        h = m.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=cbs)
        return h.history, capsys.readouterr(), [str(w.message) for w in recwarn]

    chief_history, said, warned = fit()
    assert "early stopping" in said.out and "reducing learning rate" in said.out
    assert any("`nothing` which is not available" in w for w in warned)
    recwarn.clear()
    distribute.set_distribution(_Worker())
    history, said, warned = fit()
    assert history == chief_history and len(history["loss"]) == 2
    assert said.out == said.err == "" and warned == []


# ------------------------------------------------------- launched by mpirun
TRAIN = """
import json, sys
import numpy as np
import dropout_engine as de
from dropout_engine.keras import callbacks, layers, models, optimizers

import os
shm = os.environ.get("SHARED_MEMORY", "1") == "1"
de.distribute.set_distribution(de.distribute.DataParallel(shared_memory=shm))  # the one line
out = sys.argv[1]
dist = de.distribute.distribution()

de.set_random_seed(7)
rng = np.random.default_rng(0)
x = rng.standard_normal((1000, 30)).astype(np.float32)
y = rng.integers(0, 4, 1000)
sw = rng.uniform(0.5, 2.0, 1000).astype(np.float32)
xv = rng.standard_normal((101, 30)).astype(np.float32)
yv = rng.integers(0, 4, 101)
model = models.Sequential([
    layers.Input((30,)), layers.Dropout(0.2),
    layers.Dense(64, activation="relu"), layers.Dropout(0.5),
    layers.Dense(32, activation="tanh"), layers.Dropout(0.3),
    layers.Dense(4, activation="softmax")])
model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
seen = []
csv = callbacks.CSVLogger(out + "/log.csv")
began = []
_begin = csv.on_train_begin
csv.on_train_begin = lambda logs=None: (began.append(1), _begin(logs))
ckpt = callbacks.ModelCheckpoint(out + "/ckpt-{epoch}.safetensors")
saves = []
_save = ckpt._save
ckpt._save = lambda *a: (saves.append(a), _save(*a))
cbs = [ckpt, csv,
       callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))]
# 1000 rows, batch 33: 31 batches an epoch (the last of 10 rows), 124 steps
import time
t0 = time.perf_counter()
hist = model.fit(x, y, batch_size=33, epochs=4, verbose=2, sample_weight=sw,
                 validation_data=(xv, yv), callbacks=cbs)
fit_s = time.perf_counter() - t0
model.save(f"{out}/final_{dist.rank}.safetensors")      # rank 0 alone writes
de.saving.save_weights(model, f"{out}/weights_{dist.rank}.safetensors")
np.save(f"{out}/weights_{dist.rank}.npy",
        np.concatenate([w.ravel() for w in model.get_weights()]))
with open(f"{out}/report_{dist.rank}.json", "w") as f:
    json.dump({"world": dist.world_size, "history": hist.history, "seen": seen,
               "saves": len(saves), "csv_began": len(began),
               "comm_s": model._net.comm_seconds(), "fit_s": fit_s}, f)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The training script run by one process, then twice by 2 ranks."""
    root = tmp_path_factory.mktemp("mpi")
    script = root / "train.py"
    script.write_text(textwrap.dedent(TRAIN))
    results = {}
    # "mpi": MPI_Allreduce alone; "nodes": each rank its own node, so the
    # window's slices are summed over the "nodes" by MPI_Allreduce
    for name, cmd, extra in (("one", [sys.executable, str(script)], {}),
                             ("two", mpirun(script), {}), ("again", mpirun(script), {}),
                             ("mpi", mpirun(script), {"SHARED_MEMORY": "0"}),
                             ("nodes", mpirun(script),
                              {"DROPOUT_ENGINE_RANKS_PER_NODE": "1"})):
        out = root / name
        out.mkdir()
        rc, stdout, stderr = run(cmd + [str(out)], timeout=90, **extra)
        assert rc == 0, f"{name}: {stderr}"
        results[name] = (out, stdout)
    return results


def _report(out, rank):
    return json.loads((out / f"report_{rank}.json").read_text())


@needs_mpi
def test_two_ranks_train_the_one_process_model(runs):
    one = np.load(runs["one"][0] / "weights_0.npy")
    two = np.load(runs["two"][0] / "weights_0.npy")
    assert _report(runs["two"][0], 0)["world"] == 2
    assert np.abs(two - one).max() <= 1e-5 * np.abs(one).max()


@needs_mpi
def test_every_rank_holds_the_same_weights_and_two_runs_are_bit_identical(runs):
    a0, a1 = (np.load(runs["two"][0] / f"weights_{r}.npy") for r in (0, 1))
    b0 = np.load(runs["again"][0] / "weights_0.npy")
    np.testing.assert_array_equal(a0, a1)
    np.testing.assert_array_equal(a0, b0)


@needs_mpi
@pytest.mark.parametrize("how", ["mpi", "nodes"])
def test_the_shared_window_sums_as_mpi_allreduce_does(runs, how):
    # default ("two"): the node's ranks sum through a shared window; "mpi":
    # MPI_Allreduce alone; "nodes": window slices summed over 2 one-rank
    # nodes.  Same model to float rounding; every rank the same bits.
    two = np.load(runs["two"][0] / "weights_0.npy")
    other = [np.load(runs[how][0] / f"weights_{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(other[0], other[1])
    assert np.abs(other[0] - two).max() <= 1e-5 * np.abs(two).max()
    h2, ho = (_report(runs[k][0], 0)["history"] for k in ("two", how))
    np.testing.assert_allclose(ho["loss"], h2["loss"], rtol=1e-5)


@needs_mpi
def test_the_loop_times_its_sums_over_the_processes(runs):
    # what bench reports as the communication share of a step
    assert _report(runs["one"][0], 0)["comm_s"] == 0.0
    for how in ("two", "mpi", "nodes"):
        for r in (0, 1):
            rep = _report(runs[how][0], r)
            assert 0.0 < rep["comm_s"] < rep["fit_s"], (how, r, rep["comm_s"])


@needs_mpi
def test_callbacks_see_the_global_metrics_on_every_rank(runs):
    r0, r1 = (_report(runs["two"][0], r) for r in (0, 1))
    one = _report(runs["one"][0], 0)
    assert r0["seen"] == r1["seen"] and r0["history"] == r1["history"]
    assert set(r0["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for k, v in one["history"].items():
        np.testing.assert_allclose(r0["history"][k], v, rtol=1e-5, atol=1e-6)


@needs_mpi
def test_rank_0_alone_prints_the_progress_and_writes_files(runs):
    out, stdout = runs["two"]
    assert stdout.count("Epoch 1/4") == 1 and stdout.count("Epoch 4/4") == 1
    assert (_report(out, 0)["saves"], _report(out, 1)["saves"]) == (4, 0)
    assert sorted(p.name for p in out.glob("*.safetensors") if "ckpt" not in p.name) \
        == ["final_0.safetensors", "weights_0.safetensors"]
    assert (_report(out, 0)["csv_began"], _report(out, 1)["csv_began"]) == (1, 0)
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch") and len(lines) == 5
    assert sorted(p.name for p in out.glob("ckpt-*")) == [f"ckpt-{e}.safetensors"
                                                          for e in range(1, 5)]


FAULT = """
import os, signal, sys, time
import numpy as np
import dropout_engine as de
from dropout_engine.keras import callbacks, layers, models

mode, out = sys.argv[1], sys.argv[2]
dist = de.distribute.DataParallel(timeout=3)
de.distribute.set_distribution(dist)
with open(f"{out}/pid_{dist.rank}", "w") as f:
    f.write(str(os.getpid()))
rng = np.random.default_rng(0)
x = rng.standard_normal((2000, 20)).astype(np.float32)
y = rng.integers(0, 3, 2000)
model = models.Sequential([layers.Input((20,)), layers.Dense(32, activation="relu"),
                           layers.Dense(3, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

def fault(epoch, logs):
    if epoch == 1 and dist.rank == 1:
        if mode == "raise":
            raise RuntimeError("boom on rank 1")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "hang":
            time.sleep(120)
    if epoch == 1 and mode == "interrupt":
        open(f"{out}/training_{dist.rank}", "w").close()

model.fit(x, y, batch_size=8, epochs=10000 if mode == "interrupt" else 3, verbose=0,
          callbacks=[callbacks.LambdaCallback(on_epoch_begin=fault)])
"""


@pytest.fixture
def fault_script(tmp_path):
    script = tmp_path / "fault.py"
    script.write_text(textwrap.dedent(FAULT))
    return script


def _gone(pids, within):
    """Whether every pid has exited within `within` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _pids(out):
    return [int((out / f"pid_{r}").read_text()) for r in (0, 1)]


@needs_mpi
def test_an_exception_on_one_rank_stops_all_with_its_message(fault_script, tmp_path):
    t0 = time.monotonic()
    rc, _, err = run(mpirun(fault_script, "raise", tmp_path), timeout=60)
    assert rc != 0 and time.monotonic() - t0 < 30
    assert "RuntimeError: boom on rank 1" in err
    assert "rank 1 of 2: RuntimeError in fit" in err
    assert _gone(_pids(tmp_path), 10)


@needs_mpi
def test_an_error_every_rank_meets_is_raised_on_each_as_usual(tmp_path):
    # A diverging fit: every rank sees the NaN loss at the same batch.
    script = write_script(tmp_path / "nan.py", """
        out = open(f"{sys.argv[1]}/said_{rank}", "w")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((400, 5)).astype(np.float32) * 1e3
        y = rng.standard_normal((400, 1)).astype(np.float32)
        m = models.Sequential([layers.Input((5,)), layers.Dense(8), layers.Dense(1)])
        m.compile(optimizer=optimizers.SGD(1e6), loss="mse")
        try:
            m.fit(x, y, batch_size=16, epochs=5, verbose=0)
        except FloatingPointError as e:
            print("caught on", rank, str(e)[:20], file=out)
        m.set_weights([w * 0 for w in m.get_weights()])
        h = m.fit(x[:40], y[:40] * 0, batch_size=16, epochs=1, verbose=0)  # goes on
        print("then", h.history["loss"], file=out)
        """)
    rc, _, err = run(mpirun(script, tmp_path), timeout=60)
    assert rc == 0, err
    for r in (0, 1):
        assert (tmp_path / f"said_{r}").read_text().splitlines() == [
            f"caught on {r} fit: the loss became", "then [0.0]"]


@needs_mpi
def test_ranks_given_different_data_are_told_so(tmp_path):
    script = write_script(tmp_path / "differ.py", """
        x = np.ones((100 - rank, 3), np.float32)
        m = models.Sequential([layers.Input((3,)), layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        try:
            m.fit(x, x[:, :1], batch_size=10, verbose=0)
        except ValueError as e:
            open(f"{sys.argv[1]}/said_{rank}", "w").write(str(e))
        """)
    rc, _, err = run(mpirun(script, tmp_path), timeout=60)
    assert rc == 0, err
    for r in (0, 1):
        said = (tmp_path / f"said_{r}").read_text()
        assert "every process must train on the same data" in said
        assert "(100, 10, 1, False, 10) on rank 0 but (99, 10, 1, False, 10) on rank 1" in said


@needs_mpi
def test_a_killed_rank_stops_the_others(fault_script, tmp_path):
    t0 = time.monotonic()
    rc, out, err = run(mpirun(fault_script, "kill", tmp_path), timeout=60)
    assert rc != 0 and time.monotonic() - t0 < 30
    assert "signal 9" in out + err
    assert _gone(_pids(tmp_path), 10)


@needs_mpi
def test_a_hung_rank_makes_the_others_abort_after_the_timeout(fault_script, tmp_path):
    t0 = time.monotonic()
    rc, _, err = run(mpirun(fault_script, "hang", tmp_path), timeout=60)
    took = time.monotonic() - t0
    assert rc != 0 and 3 < took < 30
    assert "rank 0 of 2: waited more than 3 s in a training step" in err
    assert _gone(_pids(tmp_path), 10)


@needs_mpi
def test_ctrl_c_on_mpirun_stops_every_rank(fault_script, tmp_path):
    p = subprocess.Popen(mpirun(fault_script, "interrupt", tmp_path), env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        end = time.monotonic() + 60
        while not all((tmp_path / f"training_{r}").exists() for r in (0, 1)):
            assert p.poll() is None and time.monotonic() < end, "training never started"
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
        assert p.returncode != 0
        assert _gone(_pids(tmp_path), 10)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
