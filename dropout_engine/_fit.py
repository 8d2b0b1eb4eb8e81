"""The Python side of fit: plan the epochs, call the C batch loop in chunks.

Per chunk, Python does O(1) work: one C call (GIL released) that runs
several whole batches, then one numpy reduction of the chunk's per-batch
stats into the epoch's running means, then the callbacks' batch hook.
Chunks grow until one takes about ``_CHUNK_SECONDS``, so the progress bar,
Ctrl-C (raised when the C call returns, i.e. at a batch boundary, with the
weights of the last completed batch) and callbacks stay responsive.  A
callback that needs every batch (``CallbackList.wants_batch_hooks``), or a
learning-rate schedule that only Python can evaluate, makes chunks of one
batch.

A batch whose loss is NaN/Inf is not applied (the C loop stops before its
update).  Its logs go to ``on_train_batch_end``; unless a callback (such as
TerminateOnNaN) then sets ``model.stop_training``, fit raises
FloatingPointError.  Either way the model keeps the last good weights.
"""
import math
import time

import numpy as np

from ._validation import is_int
from . import _validation as _v, callbacks as callbacks_mod, seeding

_CHUNK_SECONDS = 0.1
def _validation(model, x, t, sw, validation_split, validation_data):
    """(x, t, sw) to train on and (x_val, t_val, sw_val) or None; the held-out
    rows keep their sample weights, as Keras's split does."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        xv, tv = model._xy(validation_data[0], validation_data[1], what="x_val")
        swv = _v.sample_weights(validation_data[2] if len(validation_data) == 3
                                   else None, None, tv, what="validation sample_weight")
        return x, t, sw, (xv, tv, swv)
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split == 0.0:
        return x, t, sw, None
    split = int(math.floor(x.shape[0] * (1.0 - validation_split)))
    if split == 0 or split == x.shape[0]:
        raise ValueError(f"validation_split={validation_split} leaves "
                         f"{split} training and {x.shape[0] - split} validation "
                         f"samples of {x.shape[0]}")
    part = (lambda a, s: None if a is None else a[s])
    return (x[:split], t[:split], part(sw, slice(None, split)),
            (x[split:], t[split:], part(sw, slice(split, None))))


def fit(model, *args):
    # The training arena is the model's: one fit at a time.
    if not model._fit_lock.acquire(blocking=False):
        raise RuntimeError(f"Model '{model.name}' is already being trained "
                           "(fit is running in another thread)")
    try:
        return _fit(model, *args)
    finally:
        model._fit_lock.release()


def _fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split,
         validation_data, shuffle, class_weight, sample_weight, initial_epoch,
         steps_per_epoch, validation_steps, validation_batch_size, validation_freq):
    model._require_compiled("fit")
    for name, v in (("steps_per_epoch", steps_per_epoch),
                    ("validation_steps", validation_steps)):
        if v is not None:
            raise NotImplementedError(f"fit: {name} is not supported")
    if validation_freq != 1:
        raise NotImplementedError("fit: validation_freq other than 1 is not supported")
    B = _v.batch_size(batch_size)
    vbs = _v.batch_size(validation_batch_size, "validation_batch_size", B)
    for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if not is_int(v) or v < 0:
            raise ValueError(f"fit: {name} must be an int >= 0, got {v!r}")
    x, t = model._xy(x, y)
    sw = _v.sample_weights(sample_weight, class_weight, t)
    x, t, sw, val = _validation(model, x, t, sw, validation_split, validation_data)
    verbose = 1 if verbose == "auto" else int(verbose)

    n = x.shape[0]
    B = min(B, n)       # the arena never holds more rows than the data
    steps = -(-n // B)
    names = model._metric_names()
    net, opt = model._train_net(B, t.shape[1], sw is not None), model.optimizer

    cbl = callbacks_mod.CallbackList(callbacks, add_history=True,
                                     add_progbar=verbose != 0, model=model,
                                     verbose=verbose, epochs=epochs, steps=steps,
                                     samples=n, batch_size=B)
    every_batch = cbl.wants_batch_hooks("train") or opt._per_batch_lr()
    sizes = np.full(steps, B, np.float64)
    sizes[-1] = n - B * (steps - 1)
    stats = np.empty((steps, len(names)), np.float32)
    rng = seeding.numpy_rng()
    model.stop_training = False
    chunk, logs = 1, {}
    cbl.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbl.on_epoch_begin(epoch)
        index = (rng.permutation(n) if shuffle else np.arange(n)).astype(np.int64)
        totals, seen, b = np.zeros(len(names)), 0.0, 0
        while b < steps and not model.stop_training:
            count = 1 if every_batch else min(chunk, steps - b)
            if every_batch:
                cbl.on_train_batch_begin(b)
            t0 = time.perf_counter()
            done = net.train(x, t, index, b, count, stats[b:], sw)
            elapsed = time.perf_counter() - t0
            # Not `@`: a BLAS call would wake numpy's OpenBLAS threads, which
            # then spin against the engine's OpenMP threads.
            totals += (stats[b:b + done] * sizes[b:b + done, None]).sum(axis=0)
            seen += sizes[b:b + done].sum()
            b += done
            if done < count:
                bad = dict(zip(names, map(float, stats[b])))
                cbl.on_train_batch_end(b, bad)
                if not model.stop_training:
                    raise FloatingPointError(
                        f"fit: the loss became {bad['loss']} at epoch {epoch}, "
                        f"batch {b}; the model keeps the weights of the last "
                        "good batch (try a lower learning rate)")
                logs = bad
                break
            logs = {k: float(v / seen) for k, v in zip(names, totals)}
            cbl.on_train_batch_end(b - 1, logs)
            if not every_batch:
                grow = _CHUNK_SECONDS / max(elapsed, 1e-6)
                chunk = max(1, int(count * min(grow, 8.0)))
        if val is not None and not math.isnan(logs.get("loss", 0.0)):
            vlogs = model._evaluate(*val, vbs)
            logs.update({"val_" + k: float(v) for k, v in vlogs.items()})
        cbl.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbl.on_train_end(logs)
    return model.history
