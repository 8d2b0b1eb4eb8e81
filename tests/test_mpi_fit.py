"""A 2-rank fit against one process's: validation split over the ranks and
reduced, every print and write of the fit on rank 0 alone (each rank's
stdout and stderr captured apart), and BackupAndRestore resuming a 2-rank
fit killed mid-epoch.  Scripts are written here and run by ``mpirun -np 2``
(mpi_launch); they skip without mpirun or mpi4py."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mpi_launch import env, mpirun, needs_mpi, run, write_script

pytestmark = needs_mpi


def _outputs(folder):
    """{rank: (stdout, stderr)} of a job run with --output-filename folder."""
    runs = list(folder.glob("*/rank.*"))
    return {int(d.name.split(".")[1]): ((d / "stdout").read_text() if (d / "stdout").exists()
                                        else "",
                                        (d / "stderr").read_text() if (d / "stderr").exists()
                                        else "")
            for d in runs}


def _mpirun_apart(script, out, *args):
    """mpirun with each rank's stdout and stderr in files under out/io."""
    cmd = mpirun(script, out, *args)
    return cmd[:1] + ["--output-filename", str(out / "io")] + cmd[1:]


# ------------------------------------------------------ sharded validation
VALIDATE = """
import itertools, json
from dropout_engine.keras import utils
out = sys.argv[1]
rows = []                     # rows of each evaluation this process ran
rng = np.random.default_rng(0)
x = rng.standard_normal((300, 8)).astype(np.float32)
y = rng.integers(0, 3, 300)
sw = rng.uniform(0.5, 2.0, 300).astype(np.float32)
xv = rng.standard_normal((77, 8)).astype(np.float32)
yv = rng.integers(0, 3, 77)
swv = rng.uniform(0.5, 2.0, 77).astype(np.float32)

class Val(utils.PyDataset):
    def __len__(self):
        return 4
    def __getitem__(self, i):
        s = slice(20 * i, 20 * (i + 1))
        return xv[s], yv[s], swv[s]

def batches():                # an endless generator: validation_steps=4 a pass
    for i in itertools.cycle(range(4)):
        s = slice(20 * i, 20 * (i + 1))
        yield xv[s], yv[s], swv[s]

def model():
    de.set_random_seed(5)
    m = models.Sequential([layers.Input((8,)), layers.Dropout(0.3),
                           layers.Dense(24, activation="relu",
                                        kernel_regularizer="l2"),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    evaluate = m._evaluate
    def counted(x, t, sw, batch_size):
        rows.append(int(x.shape[0]))
        return evaluate(x, t, sw, batch_size)
    m._evaluate = counted
    return m

report = {}
for name, kw in (("split", dict(validation_split=0.25)),
                 ("arrays", dict(validation_data=(xv, yv, swv))),
                 ("py_dataset", dict(validation_data=Val())),
                 ("generator", dict(validation_data=batches(), validation_steps=4))):
    m = model()
    del rows[:]
    h = m.fit(x, y, sample_weight=sw, batch_size=32, epochs=3, verbose=0, **kw)
    validated = list(rows)
    # The last epoch's validation again, unsplit, with the final weights.
    if name == "split":
        ev = m.evaluate(x[225:], y[225:], sample_weight=sw[225:], verbose=0,
                        return_dict=True)
    else:
        ev = m.evaluate(xv, yv, sample_weight=swv, verbose=0,
                        return_dict=True)
    report[name] = {"history": h.history, "rows": validated, "evaluate": ev,
                    "weights": float(sum(np.abs(w).sum() for w in m.get_weights()))}
with open(f"{out}/validate_{rank}.json", "w") as f:
    json.dump(report, f)
"""


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    script = write_script(root / "validate.py", VALIDATE)
    reports = {}
    for name, cmd in (("one", [sys.executable, str(script), str(root / "one")]),
                      ("two", mpirun(script, root / "two"))):
        (root / name).mkdir()
        rc, _, err = run(cmd, timeout=120)
        assert rc == 0, err
        reports[name] = [json.loads(p.read_text())
                         for p in sorted((root / name).glob("validate_*.json"))]
    return reports


KINDS = ("split", "arrays", "py_dataset", "generator")


@pytest.mark.parametrize("kind", KINDS)
def test_each_rank_validates_its_share_of_the_rows(validated, kind):
    (one,), (r0, r1) = validated["one"], validated["two"]
    n = sum(one[kind]["rows"])              # one process: every row, each epoch
    assert n == 3 * (75 if kind == "split" else 77)
    mine, theirs = sum(r0[kind]["rows"]), sum(r1[kind]["rows"])
    assert mine + theirs == n and abs(mine - theirs) <= 3 * len(r0[kind]["rows"])


@pytest.mark.parametrize("kind", KINDS)
def test_validation_logs_are_one_process_s_and_the_same_on_every_rank(validated, kind):
    (one,), (r0, r1) = validated["one"], validated["two"]
    assert r0[kind]["history"] == r1[kind]["history"]
    h0, h1 = r0[kind]["history"], one[kind]["history"]
    assert set(h0) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for k in h1:
        np.testing.assert_allclose(h0[k], h1[k], rtol=1e-5, atol=1e-6)
    # The reduced figure is the whole validation set's, to float rounding:
    # the last epoch's val_ logs against evaluate on all rows, same weights.
    for k in ("loss", "accuracy"):
        np.testing.assert_allclose(h0["val_" + k][-1], r0[kind]["evaluate"][k],
                                   rtol=1e-6)


# ----------------------------------------------- rank 0 alone speaks, writes
QUIET = """
import json, os, warnings
from dropout_engine.keras import callbacks
out = sys.argv[1]
os.makedirs(out + "/files", exist_ok=True)
warnings.simplefilter("always")
rng = np.random.default_rng(1)
x = rng.standard_normal((400, 6)).astype(np.float32)
y = rng.integers(0, 2, 400)
de.set_random_seed(3)
m = models.Sequential([layers.Input((6,)), layers.Dropout(0.2),
                       layers.Dense(16, activation="relu"),
                       layers.Dense(2, activation="softmax")])
m.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
          metrics=["accuracy"])
# min_delta 10: nothing counts as an improvement after the first epoch, so
# ReduceLROnPlateau reduces at every epoch and EarlyStopping stops at the 3rd.
cbs = [callbacks.ReduceLROnPlateau(min_delta=10, patience=1, verbose=1),
       callbacks.EarlyStopping(min_delta=10, patience=2, verbose=1,
                               restore_best_weights=True),
       callbacks.EarlyStopping(monitor="val_nothing"),            # warns
       callbacks.ModelCheckpoint(out + "/files/best.safetensors", save_best_only=True,
                                 verbose=1),
       callbacks.ModelCheckpoint(out + "/files/last.safetensors", verbose=1),
       callbacks.CSVLogger(out + "/files/log.csv"),
       callbacks.TensorBoard(out + "/files/tb"),
       callbacks.BackupAndRestore(out + "/files/backup", delete_checkpoint=False)]
h = m.fit(x, y, batch_size=40, epochs=10, validation_split=0.2, verbose=1, callbacks=cbs)

def batches():
    for i in range(5):
        yield x[40 * i:40 * (i + 1)], y[40 * i:40 * (i + 1)]
g = m.fit(batches(), steps_per_epoch=2, epochs=4, verbose=2)   # shuffle, ran out
m.compile(optimizer=optimizers.SGD(1e8), loss="sparse_categorical_crossentropy")
n = m.fit(x * 1e4, y, batch_size=40, epochs=1, verbose=0,
          callbacks=[callbacks.TerminateOnNaN()])
with open(f"{out}/history_{rank}.json", "w") as f:
    json.dump([h.history, g.history, len(n.history["loss"]),
               float(m.optimizer.learning_rate)], f)
"""

SAID = ("Epoch 1/10", "ReduceLROnPlateau reducing learning rate",
        "Epoch 3: early stopping", "Restoring model weights from the end of the best",
        "val_loss improved from None", "saving model to",
        "Epoch 1/4", "Invalid loss, terminating training")
WARNED = ("conditioned on metric `val_nothing`", "`shuffle=True` was passed",
          "Your input ran out of data")


def test_rank_0_alone_prints_warns_and_writes_and_both_decide_alike(tmp_path):
    script = write_script(tmp_path / "quiet.py", QUIET)
    rc, _, err = run(_mpirun_apart(script, tmp_path), timeout=120)
    assert rc == 0, err
    io = _outputs(tmp_path / "io")
    assert sorted(io) == [0, 1]
    out0, err0 = io[0]
    for said in SAID:
        assert said in out0, said
    for warned in WARNED:
        assert warned in err0, warned
    assert io[1] == ("", "")                  # rank 1: not a character
    h0, h1 = (json.loads((tmp_path / f"history_{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1
    assert len(h0[0]["loss"]) == 3 and len(h0[1]["loss"]) == 3   # stopped, ran out
    files = sorted(str(p.relative_to(tmp_path / "files"))
                   for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("tb/")] == [
        "backup/latest.safetensors", "best.safetensors", "last.safetensors", "log.csv"]
    assert len([f for f in files if f.startswith("tb/")]) == 2   # train, validation


# --------------------------------------------------- BackupAndRestore killed
RESUME = """
import json, os, time
from dropout_engine.keras import callbacks
out, pause = sys.argv[1], float(sys.argv[2])
rng = np.random.default_rng(2)
x = rng.standard_normal((600, 10)).astype(np.float32)
y = rng.integers(0, 3, 600)
de.set_random_seed(11)
m = models.Sequential([layers.Input((10,)), layers.Dropout(0.25),
                       layers.Dense(32, activation="relu"), layers.Dropout(0.5),
                       layers.Dense(3, activation="softmax")])
m.compile(optimizer=optimizers.Adam(0.005), loss="sparse_categorical_crossentropy",
          metrics=["accuracy"])

class Pace(callbacks.Callback):
    # Slows the batches (so that a kill lands mid-epoch) and tells the test
    # where the fit is; no effect on training.
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(pause)
    def on_epoch_begin(self, epoch, logs=None):
        open(f"{out}/epoch_{rank}", "w").write(str(epoch))

with open(f"{out}/pid_{rank}", "w") as f:
    f.write(str(os.getpid()))
h = m.fit(x, y, batch_size=20, epochs=6, validation_split=0.25, verbose=0,
          callbacks=[Pace(), callbacks.BackupAndRestore(out + "/backup", save_freq=4),
                     callbacks.EarlyStopping(patience=50, restore_best_weights=True),
                     callbacks.ModelCheckpoint(out + "/best.safetensors",
                                               save_best_only=True)])
np.save(f"{out}/weights_{rank}.npy", np.concatenate([w.ravel() for w in m.get_weights()]))
with open(f"{out}/history_{rank}.json", "w") as f:
    json.dump(h.history, f)
"""


def _finished(folder, ranks):
    weights = [np.load(folder / f"weights_{r}.npy") for r in ranks]
    return weights, [json.loads((folder / f"history_{r}.json").read_text()) for r in ranks]


@pytest.fixture(scope="module")
def resume_script(tmp_path_factory):
    return write_script(tmp_path_factory.mktemp("resume") / "resume.py", RESUME)


def test_a_killed_2_rank_fit_resumes_bit_identical(tmp_path, resume_script):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    for d in (ref, killed, tmp_path / "one"):
        d.mkdir()
    rc, _, err = run(mpirun(resume_script, ref, 0), timeout=120)
    assert rc == 0, err
    (w0, w1), (h0, h1) = _finished(ref, (0, 1))
    np.testing.assert_array_equal(w0, w1)
    assert h0 == h1 and len(h0["loss"]) == 6
    rc, _, err = run([sys.executable, str(resume_script), str(tmp_path / "one"), "0"],
                     timeout=120)
    assert rc == 0, err
    (one,), (h_one,) = _finished(tmp_path / "one", (0,))
    assert np.abs(w0 - one).max() <= 1e-5 * np.abs(one).max()

    # SIGKILL rank 0 (the writer of the backups) at a random moment of
    # epoch 2 or 3; mpirun then ends rank 1.  The same command again resumes.
    rnd = random.Random(os.getpid())
    p = subprocess.Popen(mpirun(resume_script, killed, 0.01), env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        end = time.monotonic() + 90
        at = rnd.choice((2, 3))
        while not ((killed / "epoch_0").exists()
                   and int((killed / "epoch_0").read_text() or -1) >= at):
            assert p.poll() is None and time.monotonic() < end, p.communicate()
            time.sleep(0.02)
        time.sleep(rnd.uniform(0, 0.3))
        os.kill(int((killed / "pid_0").read_text()), signal.SIGKILL)
        p.communicate(timeout=60)
        assert p.returncode != 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert (killed / "backup" / "latest.safetensors").exists()
    assert not (killed / "weights_0.npy").exists()
    rc, _, err = run(mpirun(resume_script, killed, 0), timeout=120)
    assert rc == 0, err
    (k0, k1), (g0, g1) = _finished(killed, (0, 1))
    np.testing.assert_array_equal(k0, w0)
    np.testing.assert_array_equal(k1, w0)
    assert g0 == h0 and g1 == h0
    assert not (killed / "backup").exists()           # deleted at the end


def test_a_backup_that_only_some_ranks_see_is_refused_on_all(tmp_path):
    # backup_dir per rank: rank 0's holds a finished fit's backup (kept),
    # rank 1's nothing; they would start at different epochs.
    script = write_script(tmp_path / "apart.py", """
        from dropout_engine.keras import callbacks
        out = sys.argv[1]
        x = np.ones((40, 3), np.float32)
        m = models.Sequential([layers.Input((3,)), layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        cb = callbacks.BackupAndRestore(f"{out}/b{rank}", delete_checkpoint=False)
        try:
            m.fit(x, x[:, :1], batch_size=10, epochs=2, verbose=0, callbacks=[cb])
            said = "trained"
        except ValueError as e:
            said = str(e)
        open(f"{out}/said_{rank}", "w").write(said)
        """)
    rc, _, err = run([sys.executable, str(script), tmp_path], timeout=60)
    assert rc == 0, err
    rc, _, err = run(mpirun(script, tmp_path), timeout=60)
    assert rc == 0, err
    for r in (0, 1):
        said = (tmp_path / f"said_{r}").read_text()
        assert "every process must start at the same (epoch, batch)" in said, said
        assert "(2, 0) on rank 0 but (0, 0) on rank 1" in said
