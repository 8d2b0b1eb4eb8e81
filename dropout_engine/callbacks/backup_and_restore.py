"""BackupAndRestore: resume a fit that was killed (Keras 3's callback).

A backup is one model file (``_model_file.save_fit_state``), written
atomically: weights, optimizer state and its iteration count (which keys
the dropout masks), the Dropout seeds, plus the fit's position (epoch,
batch, the shuffle generator's state, the epoch's running log sums:
``training.fit_state``), the learning rate and every stateful callback's
state (``Callback._backup_attributes``: History, EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint, TensorBoard's step).  A process killed
at any moment, in the middle of a backup included, leaves the previous
backup whole; the same ``fit`` call started again goes on from it and ends
with the weights, History and callback states of a fit never interrupted,
bit for bit.

It is dispatched after the other callbacks (``_dispatch_last``), so that a
backup holds the state they reach at the end of the epoch (Keras's, listed
before EarlyStopping, saves EarlyStopping's state of the epoch before) and
the restore comes after their ``on_train_begin`` has reset them.
"""
import glob
import os
import shutil

import numpy as np

from .. import _model_file
from ..safetensors import ModelFileError, write_atomically
from .base import Callback

__all__ = ["BackupAndRestore"]

_ARRAY = "__ndarray__"


class BackupAndRestore(Callback):
    """Back the training state up, and restore it when fit starts again.

    Keras 3's arguments and defaults.  At the start of fit, a backup in
    ``backup_dir`` (left by a fit that did not finish) is restored and the
    fit goes on from where the backup was taken; at the end of fit the
    backup is deleted.  Start the interrupted script again with the same
    model, compile and fit arguments and callbacks.

    Args:
        backup_dir: directory for the backup (created when needed); use it
            for nothing else.
        save_freq: "epoch" (a backup at the end of each epoch), an int n
            (every n batches; with fit's chunks, at the first chunk end at
            or after n batches, as ModelCheckpoint's) or False (never).
        double_checkpoint: also keep the previous backup
            (``latest.safetensors.bkp``), restored when the latest cannot be
            read.
        delete_checkpoint: delete the backup when fit ends normally.

    Ours: the callbacks' states are restored too, History's included (the
    History of a resumed fit holds every epoch, Keras's only those run
    after the restart); a backup taken in the middle of an epoch resumes
    that epoch at the next batch, in the same order, with the same running
    logs (Keras's restarts the epoch); the backup is one file, whose write is atomic
    (Keras's writes weights and metadata one after the other); at the end
    we delete our own files and then ``backup_dir`` only if it is empty
    (Keras deletes the directory tree).  In a distributed fit only the
    chief process (rank 0) writes; every process reads the backup, which
    must be on a file system they share.

    Example:
        >>> backup = BackupAndRestore("backup")
        >>> # model.fit(x, y, epochs=100, callbacks=[backup, EarlyStopping()])
        >>> # killed at epoch 40?  Run the same script: it goes on at epoch 40.
    """

    batch_hooks_at_chunk_ends = True
    _dispatch_last = True

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"backup_dir must be a str or os.PathLike, got "
                            f"{type(backup_dir).__name__}")
        if save_freq != "epoch" and not (save_freq is False or (
                isinstance(save_freq, int) and not isinstance(save_freq, bool)
                and save_freq > 0)):
            raise ValueError("Invalid value for argument `save_freq`. "
                             f"Received: save_freq={save_freq!r}. Expected either "
                             "'epoch', a positive integer (batches) or False.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._backup_path = os.path.join(self.backup_dir, "latest.safetensors")
        self._prev_backup_path = self._backup_path + ".bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    # ------------------------------------------------------------- restore
    def on_train_begin(self, logs=None):
        if self._fit_state().chief:
            self._remove_temporaries()
        if not os.path.exists(self._backup_path):
            return
        try:
            self._restore(self._backup_path)
        except (ModelFileError, OSError):
            if not os.path.exists(self._prev_backup_path):
                raise
            self._restore(self._prev_backup_path)

    def _fit_state(self):
        trainer = getattr(self.model, "_trainer", None)
        state = getattr(trainer, "state", None)
        if state is None:
            raise RuntimeError("BackupAndRestore works inside a dropout_engine "
                               "model's fit only")
        return state

    def _others(self, fit):
        """The fit's callbacks whose state a backup holds, in order."""
        return [cb for cb in fit.callbacks.callbacks
                if cb is not self and cb._backup_attributes]

    def _restore(self, path):
        fit = self._fit_state()
        state, arrays = _model_file.load_fit_state(self.model, path)

        def fail(msg):
            return ModelFileError(f"{path!r}: {msg}")
        if not isinstance(state, dict):
            raise fail(f"fit_state must be a JSON object, got {state!r:.100}")
        epoch, batch = state.get("epoch"), state.get("batch")
        steps = (self.params or {}).get("steps")
        for name, v in (("epoch", epoch), ("batch", batch)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise fail(f"fit_state {name} must be an int >= 0, got {v!r:.100}")
        if steps is not None and batch > steps:
            raise fail(f"it was taken after batch {batch} of an epoch; this fit "
                       f"has {steps} batches per epoch")
        others = self._others(fit)
        saved = state.get("callbacks")
        if (not isinstance(saved, list) or not all(
                isinstance(s, list) and len(s) == 2 and isinstance(s[1], dict)
                for s in saved)):
            raise fail(f"fit_state callbacks must be a list of [name, state], "
                       f"got {saved!r:.100}")
        if [s[0] for s in saved] != [type(cb).__name__ for cb in others]:
            raise ValueError(
                f"{path!r} was written by a fit with the stateful callbacks "
                f"{[s[0] for s in saved]}; this fit has "
                f"{[type(cb).__name__ for cb in others]}: pass the same callbacks "
                f"(or delete {self.backup_dir!r} to start afresh)")
        values = [_decode(s[1], arrays, fail) for s in saved]
        lr = state.get("learning_rate")
        if lr is not None and not isinstance(lr, (int, float)):
            raise fail(f"fit_state learning_rate must be a number, got {lr!r:.100}")
        try:
            fit.resume(epoch, batch, state.get("rng"), state.get("totals"),
                       state.get("seen", 0.0), bool(state.get("stopped")))
        except (TypeError, ValueError) as e:
            raise fail(f"fit_state: {e}") from None
        # Checked: now change the callbacks and the rate.
        for cb, attrs in zip(others, values):
            for name, v in attrs.items():
                if name in cb._backup_attributes:
                    setattr(cb, name, v)
        if lr is not None and _constant_rate(self.model.optimizer):
            self.model.optimizer.learning_rate = float(lr)
        self._current_epoch = epoch
        self._last_batch_seen = batch - 1 if batch else 0
        self._batches_seen_since_last_saving = 0

    # ---------------------------------------------------------------- save
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            fit = self._fit_state()
            # The generator's state now is the next epoch's start.
            self._save(fit, epoch + 1, 0, fit.rng.bit_generator.state, None, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        # A stopped fit goes straight to its epoch end, which saves.
        if self._should_save_on_batch(batch) and not self.model.stop_training:
            fit = self._fit_state()
            self._save(fit, fit.epoch, fit.batch, fit.epoch_rng_state,
                       fit.totals.tolist(), fit.seen)

    def _should_save_on_batch(self, batch):
        """Keras's count: batch indices jump by a chunk at a time and start
        again at each epoch."""
        if self.save_freq in ("epoch", False):
            return False
        if batch <= self._last_batch_seen:     # a new epoch
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _save(self, fit, epoch, batch, rng_state, totals, seen):
        if not fit.chief:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._backup_path):
            with open(self._backup_path, "rb") as src:
                write_atomically(self._prev_backup_path,
                                 lambda f: shutil.copyfileobj(src, f))
        arrays = {}
        opt = self.model.optimizer
        state = {"epoch": epoch, "batch": batch, "rng": rng_state,
                 "totals": totals, "seen": seen,
                 "stopped": bool(self.model.stop_training),
                 "learning_rate": opt.learning_rate if _constant_rate(opt) else None,
                 "callbacks": [
                     [type(cb).__name__,
                      _encode({a: getattr(cb, a) for a in cb._backup_attributes},
                              type(cb).__name__, arrays)]
                     for cb in self._others(fit)]}
        _model_file.save_fit_state(self.model, self._backup_path, state, arrays)

    # ----------------------------------------------------------------- end
    def on_train_end(self, logs=None):
        if not (self.delete_checkpoint and self._fit_state().chief):
            return
        for path in (self._backup_path, self._prev_backup_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._remove_temporaries()
        try:
            os.rmdir(self.backup_dir)
        except OSError:       # absent, or holds files not ours: kept
            pass

    def _remove_temporaries(self):
        """A write killed half-way leaves its temporary file (never the
        backup itself): remove those."""
        for path in (self._backup_path, self._prev_backup_path):
            d, base = os.path.split(path)
            for tmp in glob.glob(os.path.join(glob.escape(d), f".{glob.escape(base)}.*.tmp")):
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass


def _constant_rate(opt):
    """Whether the optimizer's rate is a float (which callbacks may change),
    not a schedule (a function of the restored iterations)."""
    return not isinstance(opt.get_config().get("learning_rate"), dict)


def _encode(value, where, arrays):
    """``value`` as JSON, its numpy arrays moved to ``arrays`` (named by
    number) and replaced by {"__ndarray__": name}."""
    if isinstance(value, np.ndarray):
        name = str(len(arrays))
        arrays[name] = value
        return {_ARRAY: name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, f"{where}[{k!r}]", arrays) for k, v in value.items()}
    raise TypeError(f"BackupAndRestore: {where} is a {type(value).__name__}; a backup "
                    "holds JSON values and numpy arrays, in lists and str-keyed dicts")


def _decode(value, arrays, fail):
    if isinstance(value, list):
        return [_decode(v, arrays, fail) for v in value]
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            if value[_ARRAY] not in arrays:
                raise fail(f"a callback state names the array {value[_ARRAY]!r:.50}, "
                           "which the file does not hold")
            return arrays[value[_ARRAY]]
        return {k: _decode(v, arrays, fail) for k, v in value.items()}
    return value
