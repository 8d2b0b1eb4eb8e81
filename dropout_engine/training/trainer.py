"""The Trainer: fit's epoch loop, chunks of batches handed to C.

Per chunk, Python does O(1) work: one C call (GIL released) that runs
several whole batches, then one numpy reduction of the chunk's per-batch
stats into the epoch's running means, then the callbacks' batch hook.
Chunks grow until one takes about ``_CHUNK_SECONDS``, so the progress bar,
Ctrl-C (raised when the C call returns, i.e. at a batch boundary, with the
weights of the last completed batch) and callbacks stay responsive.  A
callback that needs every batch (``CallbackList.wants_batch_hooks``), or a
learning-rate schedule that only Python can evaluate, makes chunks of one
batch.

While a fit runs, ``trainer.state`` is its ``FitState`` (fit_state.py):
the loop's position, which a callback may back up, and, set in
``on_train_begin``, a position to resume from (epoch, batches of it done,
the shuffle generator's state, the epoch's running sums).

The rows come from an adapter (``inputs.get_data``): arrays in memory, or
chunks that a prefetch thread gathers from a memmap or a table, or builds
from a generator's or a PyDataset's batches, while C trains on the chunk
before.  A bad batch (wrong shape or dtype, NaN, an exception in the
user's generator) is raised naming its epoch and batch after every batch
before it was trained.  A generator that runs out ends the epoch and the
fit (Keras's warning; ``generator_adapter``).

A batch whose loss is NaN/Inf is not applied (the C loop stops before its
update).  Its logs go to ``on_train_batch_end``; unless a callback (such as
TerminateOnNaN) then sets ``model.stop_training``, fit raises
FloatingPointError.  Either way the model keeps the last good weights.

What the Trainer uses of a model, and nothing else (models/base.py's "Trainer's
interface" section):
    name, optimizer, stop_training (set by callbacks), history (set by
    the History callback);
    _xy(x, y, what)     validated float32 (x, targets); builds the model;
    _metric_names()     "loss" then each metric's log name;
    _train_net(batch_size, t_cols, weighted, allreduce)
                        the ``_net.Net`` set up to train: its
                        ``train(x, t, index, first, count, stats, sw)``
                        runs batches in C;
    _evaluate(x, t, sw, batch_size)   logs over validated arrays.
(``inputs`` also uses, for evaluate and predict: _x(x, check_finite, what),
x validated for predict, and _net.predict.)
"""
import math
import threading
import time

import numpy as np

from .. import _validation, seeding
from . import distribution as distribution_mod, inputs
from .fit_state import FitState

_CHUNK_SECONDS = 0.1


class Trainer:
    """fit's epoch loop; each model owns one (``model._trainer``).

    Args:
        distribution: a ``Distribution`` (default: the one in force when
            fit runs, ``training.distribution.set_distribution``).
    """

    def __init__(self, distribution=None):
        self._distribution = distribution
        self.state = None     # the running fit's FitState (BackupAndRestore's seam)
        # The training arena is the model's: one fit at a time.
        self._lock = threading.Lock()

    @property
    def distribution(self):
        return self._distribution or distribution_mod.distribution()

    def fit(self, model, *args):
        """``model.fit(*args)`` (Keras's arguments, in order) on a compiled
        model; returns the History."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(f"Model '{model.name}' is already being trained "
                               "(fit is running in another thread)")
        try:
            with self.distribution.fitting():
                return self._fit(model, *args)
        finally:
            self.state = None
            self._lock.release()

    def _fit(self, model, x, y, batch_size, epochs, verbose, callbacks,
             validation_split, validation_data, shuffle, class_weight,
             sample_weight, initial_epoch, steps_per_epoch, validation_steps,
             validation_batch_size, validation_freq):
        should_validate = _validation_epochs(validation_freq)
        vbs = _validation.batch_size(validation_batch_size, "validation_batch_size",
                                     _validation.batch_size(batch_size))
        for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if not _validation.is_int(v) or v < 0:
                raise ValueError(f"fit: {name} must be an int >= 0, got {v!r}")
        data, val = inputs.get_data(model, x, y, sample_weight, class_weight,
                                    validation_split, validation_data, batch_size,
                                    shuffle, steps_per_epoch, vbs, validation_steps)
        dist = self.distribution
        data = dist.shard(data)
        verbose = 1 if verbose == "auto" else int(verbose)

        # The callbacks load on first fit, not with the model.
        from .. import callbacks as callbacks_mod
        B, steps = data.batch_size, data.num_batches
        names = model._metric_names()
        opt = model.optimizer

        cbl = callbacks_mod.CallbackList(callbacks, add_history=True,
                                         add_progbar=verbose != 0 and dist.is_chief(),
                                         model=model, runs=dist.runs,
                                         verbose=verbose, epochs=epochs, steps=steps,
                                         samples=data.num_samples, batch_size=B)
        stats = np.empty((steps or 1, len(names)), np.float32)
        rng = seeding.numpy_rng()
        state = self.state = FitState(rng, cbl, len(names), dist.is_chief())
        model.stop_training = False
        chunk, logs = 1, {}
        cbl.on_train_begin()
        # After on_train_begin: a callback may have restored the model there.
        first, _ = start = state.start(initial_epoch, epochs)
        dist.agree("start at the same (epoch, batch) (a BackupAndRestore "
                   "backup_dir must be on a file system they all share)", start)
        net = model._train_net(B, data.t_cols, data.weighted, dist.allreduce)
        every_batch = cbl.wants_batch_hooks("train") or opt._per_batch_lr()
        for epoch in range(first, epochs):
            if not data.more():      # a generator that ran out: warned, stop
                break
            cbl.on_epoch_begin(epoch)
            # A resumed epoch skips its first `skip` batches (their sums given).
            totals, seen, skip = state.begin_epoch(epoch)
            b = 0
            if seen:
                logs = {k: float(v / seen) for k, v in zip(names, totals)}
            for part in inputs.chunks_of(data, rng, f"fit: epoch {epoch}", True):
                if part.batch_size not in (None, B):   # a generator's batches grew
                    B = part.batch_size
                    net = model._train_net(B, data.t_cols, data.weighted, dist.allreduce)
                # The part's batches: j counts them, b + j is the epoch's index.
                rows = part.index.shape[0]
                part_steps = -(-rows // B)
                sizes = np.full(part_steps, B, np.float64)
                sizes[-1] = rows - B * (part_steps - 1)
                if stats.shape[0] < part_steps:
                    stats = np.empty((part_steps, len(names)), np.float32)
                j = min(max(skip - b, 0), part_steps)
                while j < part_steps and not model.stop_training:
                    count = 1 if every_batch else min(chunk, part_steps - j)
                    if every_batch:
                        cbl.on_train_batch_begin(b + j)
                    t0 = time.perf_counter()
                    done = net.train(part.x, part.t, part.index, j, count, stats[j:],
                                     part.sw)
                    elapsed = time.perf_counter() - t0
                    # Not `@`: a BLAS call would wake numpy's OpenBLAS threads, which
                    # then spin against the engine's OpenMP threads.
                    totals += (stats[j:j + done] * sizes[j:j + done, None]).sum(axis=0)
                    seen += sizes[j:j + done].sum()
                    j += done
                    if done < count:
                        bad = dict(zip(names, map(float, stats[j])))
                        cbl.on_train_batch_end(b + j, bad)
                        if not model.stop_training:
                            raise FloatingPointError(
                                f"fit: the loss became {bad['loss']} at epoch {epoch}, "
                                f"batch {b + j}; the model keeps the weights of the "
                                "last good batch (try a lower learning rate)")
                        logs = bad
                        break
                    logs = {k: float(v / seen) for k, v in zip(names, totals)}
                    state.batch, state.seen = b + j, seen
                    cbl.on_train_batch_end(b + j - 1, logs)
                    if not every_batch:
                        grow = _CHUNK_SECONDS / max(elapsed, 1e-6)
                        chunk = max(1, int(count * min(grow, 8.0)))
                b += j
                if model.stop_training:
                    break
            logs = dist.reduce_logs(logs)
            if (val is not None and should_validate(epoch)
                    and not math.isnan(logs.get("loss", 0.0))):
                vlogs = inputs.validate(model, val, vbs, dist)
                logs.update({"val_" + k: float(v) for k, v in (vlogs or {}).items()})
            cbl.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbl.on_train_end(logs)
        return model.history


def _validation_epochs(validation_freq):
    """Keras's ``validation_freq``: an int n (validate after every n-th
    epoch, counted from 1) or a list of epochs (from 1); the test."""
    if _validation.is_int(validation_freq) and validation_freq >= 1:
        return lambda epoch: (epoch + 1) % validation_freq == 0
    if isinstance(validation_freq, (list, tuple, set, range)) and all(
            _validation.is_int(e) for e in validation_freq):
        wanted = {int(e) for e in validation_freq}
        return lambda epoch: epoch + 1 in wanted
    raise ValueError("Expected `validation_freq` to be a list or int. Received: "
                     f"validation_freq={validation_freq!r} of the type "
                     f"{type(validation_freq)}.")
