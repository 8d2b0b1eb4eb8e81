"""BackupAndRestore: a fit killed (SIGKILL, in a child process) at any
moment, during a backup write included, and started again with the same
call ends bit-identical to a fit never interrupted; and the callback's
Keras behaviour (files, deletion, double checkpoint, errors) in-process."""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import dropout_engine
from dropout_engine import callbacks as cbs
from dropout_engine import load_model, seeding
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import Adam
from dropout_engine.safetensors import ModelFileError

ROOT = pathlib.Path(dropout_engine.__file__).resolve().parent.parent

# The child: a seeded fit with the stateful callbacks, killing itself at
# the point its config names (or killed by the test).  It writes the final
# weights and what the fit reports to `out`.
CHILD = r'''
import json, os, signal, sys
import numpy as np
cfg = json.loads(sys.argv[1])
from dropout_engine import callbacks as cbs, safetensors, seeding
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import Adam

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

kill = cfg.get("kill") or {}
if kill.get("at") == "write":
    # Die inside the k-th backup write: after half the bytes, or after all
    # of them but before the rename.
    original, calls = safetensors.write_atomically, [0]
    def write_atomically(path, write, **kw):
        calls[0] += 1
        if calls[0] != kill["n"]:
            return original(path, write, **kw)
        def dying(f):
            if kill["how"] == "half":
                import io
                buf = io.BytesIO(); write(buf); data = buf.getvalue()
                f.write(data[:len(data) // 2])
            else:
                write(f)
            f.flush(); os.fsync(f.fileno())
            die()
        return original(path, dying, **kw)
    safetensors.write_atomically = write_atomically
    import dropout_engine.callbacks.backup_and_restore as bar
    bar.write_atomically = write_atomically       # its copy to the .bkp

class Child(cbs.Callback):
    """Marks progress for the test, slows epochs (so that a kill after a
    random delay lands anywhere), kills at a named point; no effect on
    training."""
    batch_hooks_at_chunk_ends = kill.get("at") != "batch"
    first = None
    def on_epoch_begin(self, epoch, logs=None):
        if Child.first is None:
            Child.first = epoch
            open(cfg["out"] + ".started", "w").close()
        if kill.get("at") == "epoch_begin" and epoch == kill["n"]:
            die()
    def on_epoch_end(self, epoch, logs=None):
        if kill.get("at") == "epoch_end" and epoch == kill["n"]:
            die()
        if cfg.get("sleep"):
            import time; time.sleep(cfg["sleep"])
    def on_train_batch_end(self, batch, logs=None):
        if kill.get("at") == "batch":
            self.n = getattr(self, "n", 0) + 1
            if self.n == kill["n"]:
                die()

seeding.set_random_seed(cfg.get("seed", 3))
rng = np.random.default_rng(0)
x = rng.standard_normal((400, 12)).astype(np.float32)
y = (x[:, :3].sum(axis=1) + 0.8 * rng.standard_normal(400) > 0).astype(np.int64)
model = Sequential([Input((12,)), Dropout(0.1), Dense(24, activation="relu"),
                    Dropout(0.4), Dense(2, activation="softmax")])
model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
callbacks = [Child(), cbs.EarlyStopping("val_loss", min_delta=0.002, patience=5, restore_best_weights=True),
             cbs.ReduceLROnPlateau("val_loss", factor=0.5, patience=2)]
if cfg.get("backup"):
    callbacks.insert(0, cbs.BackupAndRestore(cfg["backup"], **cfg.get("args", {})))
h = model.fit(x, y, batch_size=16, epochs=cfg.get("epochs", 30), validation_split=0.25,
              verbose=0, callbacks=callbacks)
es = callbacks[-2]
np.savez(cfg["out"] + ".npz", *model.get_weights())
with open(cfg["out"] + ".json", "w") as f:
    json.dump({"history": h.history, "epoch": h.epoch, "first": Child.first,
               "iterations": model.optimizer.iterations,
               "lr": model.optimizer.learning_rate,
               "es": [es.wait, es.best, es.best_epoch, es.stopped_epoch]}, f)
'''


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [
                   os.environ.get("PYTHONPATH")] if p]))
    env.pop("DROPOUT_ENGINE_ISA", None)
    return env


def _start(tmp, cfg):
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=tmp,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _run(tmp, cfg):
    p = _start(tmp, cfg)
    out, err = p.communicate(timeout=120)
    return p.returncode, err


def _result(out):
    with open(out + ".json") as f:
        r = json.load(f)
    with np.load(out + ".npz") as z:
        r["weights"] = [z[f"arr_{i}"] for i in range(len(z.files))]
    return r


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fit never interrupted, and without BackupAndRestore at all."""
    tmp = tmp_path_factory.mktemp("reference")
    out = str(tmp / "ref")
    rc, err = _run(tmp, {"out": out})
    assert rc == 0, err
    r = _result(out)
    # The fit is long enough, and the callbacks act (the rate is reduced,
    # EarlyStopping stops and restores the best weights), for kills to matter.
    assert len(r["epoch"]) >= 12 and r["lr"] < 0.01 and r["es"][3] > 0, r
    return r


def _assert_same(r, ref):
    assert len(r["weights"]) == len(ref["weights"])
    for a, b in zip(r["weights"], ref["weights"]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for k in ("history", "epoch", "iterations", "lr", "es"):
        assert r[k] == ref[k], k


def _kill_and_resume(tmp, reference, kill, args=None, first=None):
    backup = str(tmp / "backup")
    out = str(tmp / "run")
    cfg = {"out": out, "backup": backup, "args": args or {}}
    rc, err = _run(tmp, dict(cfg, kill=kill))
    assert rc == -signal.SIGKILL, err
    assert os.path.exists(os.path.join(backup, "latest.safetensors"))
    rc, err = _run(tmp, cfg)
    assert rc == 0, err
    r = _result(out)
    if first is not None:
        assert r["first"] == first        # resumed, not started afresh
    _assert_same(r, reference)
    assert not os.path.exists(backup)     # deleted at the end (delete_checkpoint)


@pytest.mark.parametrize("kill, args, first", [
    ({"at": "epoch_begin", "n": 4}, {}, 4),      # the backup of epoch 3 done
    ({"at": "epoch_end", "n": 5}, {}, 5),        # before epoch 5's backup
    # During the 4th backup (epoch 3's): the 3rd stays whole.
    ({"at": "write", "n": 4, "how": "half"}, {}, 3),
    ({"at": "write", "n": 4, "how": "full"}, {}, 3),
    # With double_checkpoint each backup after the first is 2 writes: the
    # copy of the last to .bkp, then the new; the 6th is epoch 3's copy.
    ({"at": "write", "n": 6, "how": "half"}, {"double_checkpoint": True}, 3),
    # Mid-epoch backups every 5 batches (19 per epoch): killed at batch 43
    # of the fit (epoch 2's 5th), the backup after its 2nd batch resumes.
    ({"at": "batch", "n": 43}, {"save_freq": 5}, 2),
], ids=["epoch-begin", "epoch-end", "write-half", "write-before-rename",
        "double-checkpoint-write", "batch-level"])
def test_killed_fit_resumes_bit_identical(tmp_path, reference, kill, args, first):
    _kill_and_resume(tmp_path, reference, kill, args, first)


@pytest.mark.parametrize("args", [{}, {"save_freq": 7}], ids=["epoch", "batches"])
def test_killed_after_random_delays_resumes_bit_identical(tmp_path, reference, args):
    backup, out = str(tmp_path / "backup"), str(tmp_path / "run")
    cfg = {"out": out, "backup": backup, "args": args, "sleep": 0.03}
    seed = random.randrange(1 << 30)
    delays = random.Random(seed).sample(range(0, 300, 10), 2)
    killed = 0
    for delay in delays:
        p = _start(tmp_path, cfg)
        t_end = time.monotonic() + 60
        while not os.path.exists(out + ".started") and p.poll() is None:
            assert time.monotonic() < t_end, "the child did not start"
            time.sleep(0.005)
        time.sleep(delay / 1000)
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=60)
        assert p.returncode in (-signal.SIGKILL, 0), err
        killed += p.returncode == -signal.SIGKILL
        os.unlink(out + ".started")
    assert killed, f"no child was killed (delays {delays} ms, seed {seed})"
    rc, err = _run(tmp_path, cfg)
    assert rc == 0, err
    r = _result(out)
    _assert_same(r, reference)


# ------------------------------------------------------------ in-process
def _data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((160, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    return x, y


def _model(seed):
    seeding.set_random_seed(seed)
    m = Sequential([Input((6,)), Dense(16, activation="relu"), Dropout(0.3),
                    Dense(2, activation="softmax")])
    m.compile(optimizer=Adam(0.02), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


class _Stop(cbs.Callback):
    """Raises (an interruption) at the start of epoch `at`."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def _fit(model, backup, *extra, epochs=8, **kw):
    x, y = _data()
    stop = cbs.EarlyStopping("val_loss", patience=20)
    return model.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, verbose=0,
                     callbacks=[backup, stop, *extra], **kw)


def _interrupt(model, backup, at):
    with pytest.raises(KeyboardInterrupt):
        _fit(model, backup, _Stop(at))


def test_resume_restores_dropout_seeds_and_shuffle_of_another_process(tmp_path):
    # The resumed process was seeded differently (or not at all): the
    # backup's dropout seeds, shuffle state and weights take over.
    ref = _model(5)
    h_ref = _fit(ref, cbs.BackupAndRestore(tmp_path / "r"))
    m = _model(5)
    _interrupt(m, cbs.BackupAndRestore(tmp_path / "b"), 3)
    m = _model(99)
    h = _fit(m, cbs.BackupAndRestore(tmp_path / "b"))
    assert all(np.array_equal(a, b) for a, b in zip(ref.get_weights(), m.get_weights()))
    assert h.history == h_ref.history and h.epoch == list(range(8))
    assert m.optimizer.iterations == ref.optimizer.iterations


def test_backup_is_a_model_file_with_the_fit_position(tmp_path):
    m = _model(1)
    x, y = _data()
    stop = cbs.EarlyStopping("val_loss", patience=20)
    with pytest.raises(KeyboardInterrupt):   # at the start of epoch 2
        m.fit(x, y, batch_size=16, epochs=8, validation_split=0.25, verbose=0,
              callbacks=[cbs.BackupAndRestore(tmp_path), stop, _Stop(2)])
    path = tmp_path / "latest.safetensors"
    loaded = load_model(path)
    x, _ = _data()
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert loaded.optimizer.iterations == m.optimizer.iterations == 2 * 8
    meta = json.loads(dropout_engine.safetensors.load_tensors(path)[1]["fit_state"])
    assert (meta["epoch"], meta["batch"]) == (2, 0)
    # EarlyStopping's state at the end of epoch 1, though it is listed after
    # the backup: the backup is dispatched last.
    assert meta["callbacks"][0] == ["EarlyStopping", {
        "wait": stop.wait, "stopped_epoch": 0, "best": stop.best, "best_weights": None,
        "best_epoch": stop.best_epoch}]
    assert stop.wait + stop.best_epoch == 1
    assert meta["callbacks"][1][0] == "History"
    assert len(meta["callbacks"][1][1]["history"]["loss"]) == 2


def test_backup_deleted_at_the_end_but_not_other_files(tmp_path):
    d = tmp_path / "b"
    _fit(_model(1), cbs.BackupAndRestore(d), epochs=2)
    assert not d.exists()
    d.mkdir()
    (d / "mine.txt").write_text("keep")
    _fit(_model(1), cbs.BackupAndRestore(d), epochs=2)
    assert sorted(os.listdir(d)) == ["mine.txt"]


def test_kept_backup_of_a_finished_fit_runs_no_more_epochs(tmp_path):
    m = _model(1)
    _fit(m, cbs.BackupAndRestore(tmp_path, delete_checkpoint=False), epochs=3)
    w = m.get_weights()
    m2 = _model(2)
    h = _fit(m2, cbs.BackupAndRestore(tmp_path, delete_checkpoint=False), epochs=3)
    assert h.epoch == [0, 1, 2]          # the History of the finished fit
    assert all(np.array_equal(a, b) for a, b in zip(w, m2.get_weights()))
    # More epochs asked: it goes on from epoch 3 (Keras's behaviour).
    h = _fit(m2, cbs.BackupAndRestore(tmp_path, delete_checkpoint=False), epochs=5)
    assert h.epoch == [0, 1, 2, 3, 4]


def test_resumed_epoch_overrides_initial_epoch(tmp_path):
    m = _model(1)
    _interrupt(m, cbs.BackupAndRestore(tmp_path), 3)
    h = _fit(_model(1), cbs.BackupAndRestore(tmp_path), initial_epoch=1)
    assert h.epoch == list(range(8))


def test_initial_epoch_without_backup_counts_from_it():
    m = _model(1)
    h = _fit(m, cbs.Callback(), epochs=5, initial_epoch=2)
    assert h.epoch == [2, 3, 4] and m.optimizer.iterations == 3 * 8


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    m = _model(1)
    _interrupt(m, cbs.BackupAndRestore(tmp_path, double_checkpoint=True), 3)
    assert sorted(os.listdir(tmp_path)) == ["latest.safetensors", "latest.safetensors.bkp"]
    latest = tmp_path / "latest.safetensors"
    latest.write_bytes(latest.read_bytes()[:100])      # damaged on disk
    seen = []
    first = cbs.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
    _fit(_model(1), cbs.BackupAndRestore(tmp_path, double_checkpoint=True), first)
    assert seen[0] == 2                                # the backup of epoch 1


def test_damaged_backup_without_previous_raises(tmp_path):
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path), 2)
    latest = tmp_path / "latest.safetensors"
    latest.write_bytes(latest.read_bytes()[:-5])
    with pytest.raises(ModelFileError, match="latest.safetensors"):
        _fit(_model(1), cbs.BackupAndRestore(tmp_path))


def test_other_callbacks_than_the_backup_s_are_refused(tmp_path):
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path), 2)
    with pytest.raises(ValueError, match="stateful callbacks"):
        _fit(_model(1), cbs.BackupAndRestore(tmp_path),
             cbs.ReduceLROnPlateau("val_loss"))


def test_backup_of_another_model_is_refused(tmp_path):
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path), 2)
    other = Sequential([Input((6,)), Dense(16, activation="relu"),
                        Dense(2, activation="softmax")])
    other.compile(optimizer=Adam(0.02), loss="sparse_categorical_crossentropy")
    with pytest.raises(ModelFileError, match="layers"):
        _fit(other, cbs.BackupAndRestore(tmp_path))


def test_temporary_files_of_killed_writes_are_removed(tmp_path):
    stale = tmp_path / ".latest.safetensors.0123456789ab.tmp"
    stale.write_bytes(b"half a backup")
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path), 1)
    assert not stale.exists()


def test_only_the_chief_writes(tmp_path, monkeypatch):
    from dropout_engine.training import distribution
    monkeypatch.setattr(distribution.Distribution, "is_chief", lambda self: False)
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path / "b"), 3)
    assert not (tmp_path / "b").exists()


def test_learning_rate_and_reduce_lr_state_are_restored(tmp_path):
    def run(model, backup, *extra):
        x, y = _data()
        return model.fit(x, y, batch_size=16, epochs=8, validation_split=0.25,
                         verbose=0, callbacks=[backup, *extra, cbs.ReduceLROnPlateau(
                             "loss", factor=0.5, patience=1, min_delta=10.0)])
    ref = _model(1)
    run(ref, cbs.BackupAndRestore(tmp_path / "r"))
    m = _model(1)
    with pytest.raises(KeyboardInterrupt):
        run(m, cbs.BackupAndRestore(tmp_path / "b"), _Stop(5))
    m = _model(1)
    h = run(m, cbs.BackupAndRestore(tmp_path / "b"))
    assert m.optimizer.learning_rate == ref.optimizer.learning_rate < 0.02
    assert h.history["learning_rate"] == ref.history.history["learning_rate"]


@pytest.mark.parametrize("kwargs, err", [
    ({"backup_dir": ""}, ValueError), ({"backup_dir": 3}, TypeError),
    ({"backup_dir": "d", "save_freq": 0}, ValueError),
    ({"backup_dir": "d", "save_freq": "batch"}, ValueError),
    ({"backup_dir": "d", "save_freq": True}, ValueError)])
def test_bad_arguments_are_refused(kwargs, err):
    with pytest.raises(err):
        cbs.BackupAndRestore(**kwargs)


def test_keras_namespace_exports_it():
    from dropout_engine.keras.callbacks import BackupAndRestore
    assert BackupAndRestore is cbs.BackupAndRestore


@pytest.mark.parametrize("change, match", [
    ({"epoch": -1}, "epoch must be an int"),
    ({"batch": 10 ** 6}, "batches per epoch"),
    ({"rng": {"bit_generator": "PCG64", "state": "x"}}, "rng_state"),
    ({"batch": 2, "totals": [1.0], "seen": 32.0}, "totals"),
    ({"callbacks": "EarlyStopping"}, "list of"),
    ({"learning_rate": "fast"}, "learning_rate")])
def test_tampered_fit_state_is_refused(tmp_path, change, match):
    from dropout_engine.safetensors import load_tensors, save_tensors
    _interrupt(_model(1), cbs.BackupAndRestore(tmp_path), 2)
    path = tmp_path / "latest.safetensors"
    tensors, meta = load_tensors(path)
    meta["fit_state"] = json.dumps(dict(json.loads(meta["fit_state"]), **change))
    save_tensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match=match):
        _fit(_model(1), cbs.BackupAndRestore(tmp_path))
