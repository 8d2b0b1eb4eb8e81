"""Training callbacks with Keras 3's names, signatures, defaults and semantics.

The model contract a callback relies on: `model.stop_training` (a bool
attribute), `model.get_weights()` / `model.set_weights(ws)`,
`model.save(path)` / `model.save_weights(path)`, and
`model.optimizer.learning_rate` (a settable float).

Batch hooks and chunks (ours): `fit` runs many batches per C call and
returns to Python only between these chunks.  It calls
`on_train_batch_end(batch, logs)` once per chunk, with the index of the
chunk's last batch and the running epoch averages at that point, unless
`CallbackList.wants_batch_hooks()` says some callback needs every batch; then
it falls back to one batch per C call.  A callback whose batch hooks are
content with chunk ends says so with the class attribute
`batch_hooks_at_chunk_ends = True`; every built-in callback here does, so
none of them slows training down.

Deviations from Keras, each deliberate: an unknown `mode` raises ValueError
(Keras warns and falls back to "auto"); a NaN monitored value never counts
as an improvement (in Keras a NaN first value becomes a "best" nothing can
beat); ModelCheckpoint takes any file name (our model file is safetensors,
not .keras/.h5).  The Callback base is in callback.py, the monitored
callbacks in callbacks_monitor.py; all are importable from here.
"""
import csv
import os

import numpy as np

from .callback import (BATCH_HOOKS, BEGIN_END_HOOKS, HOOKS, Callback,
                       overrides)
from .callbacks_monitor import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from .progbar import Progbar

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger",
           "TerminateOnNaN", "CSVLogger", "LambdaCallback", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau"]
from .tensorboard import TensorBoard; __all__.append("TensorBoard")  # noqa: E402,E702


def _pythonify(logs):
    """A fresh dict per dispatch, numpy scalars as Python floats (Keras)."""
    if not logs:
        return {}
    return {k: float(v) if isinstance(v, (np.generic, np.ndarray)) and np.size(v) == 1
            else v for k, v in logs.items()}


def _dispatcher(hook, indexed):
    if indexed:
        def dispatch(self, index, logs=None):
            logs = _pythonify(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(index, logs)
    else:
        def dispatch(self, logs=None):
            logs = _pythonify(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(logs)
    dispatch.__name__ = dispatch.__qualname__ = hook
    dispatch.__doc__ = f"Calls `{hook}` on every callback, in order."
    return dispatch


class CallbackList(Callback):
    """A list of callbacks called as one.

    Args:
        callbacks: list of Callback instances (or None).
        add_history: add a History callback if the list has none.
        add_progbar: add a ProgbarLogger callback if the list has none.
        model: the model the callbacks see.
        **params: passed to every callback's set_params when given.

    Every hook of Callback exists here and calls that hook on each callback
    in order, with a fresh copy of `logs`.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False,
                 model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks) if callbacks else []
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be dropout_engine Callback "
                                f"instances, got {type(cb).__module__}."
                                f"{type(cb).__qualname__}")
        self._history = next((c for c in self.callbacks
                              if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks
                              if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def append(self, callback):
        self.callbacks.append(callback)

    def wants_batch_hooks(self, mode="train"):
        """Ours: whether some callback needs its batch hooks at every batch.

        Args:
            mode: "train" (fit), "test" (evaluate) or "predict".

        Returns:
            True if a callback that is not content with chunk ends (see the
            module docstring) overrides a batch-level hook of `mode`; fit,
            evaluate or predict should then run one batch per C call.
        """
        if mode not in BATCH_HOOKS:
            raise ValueError(f"mode must be one of {sorted(BATCH_HOOKS)}, "
                             f"got {mode!r}")
        return any(not cb.batch_hooks_at_chunk_ends and overrides(cb, hook)
                   for cb in self.callbacks for hook in BATCH_HOOKS[mode])


for _hook in HOOKS:
    setattr(CallbackList, _hook,
            _dispatcher(_hook, indexed=_hook not in BEGIN_END_HOOKS))
del _hook


class History(Callback):
    """Records each epoch's logs: `history[name]` is a list, `epoch` the
    epoch indices.  fit returns it, and sets `model.history` to it."""

    batch_hooks_at_chunk_ends = True

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints a progress bar and the metrics to stdout (fit adds it when
    verbose != 0).

    It reads params "verbose", "epochs" and "steps" (and, when fit provides
    them, ours: "samples" and "batch_size", for a samples/s figure).  It is
    updated from on_train_batch_end, which fit calls at chunk ends with the
    chunk's last batch index, so the bar advances chunk by chunk and never
    forces fit to stop at every batch.
    """

    batch_hooks_at_chunk_ends = True

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _reset(self):
        self.seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose,
                               unit_name="step", stateless_metrics=())

    def _samples(self):
        p = self.params or {}
        if not p.get("batch_size") or self.seen == 0:
            return None
        done = self.seen * p["batch_size"]
        return min(done, p["samples"]) if p.get("samples") else done

    def _update(self, batch, logs):
        if self.progbar is None:
            self._reset()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()),
                                finalize=False, samples=self._samples())

    def _finalize(self, logs):
        if self.progbar is None:
            self._reset()
        if self.target is None:
            self.target = self.progbar.target = self.seen
        self.progbar.update(self.target, list((logs or {}).items()),
                            finalize=True, samples=self._samples())

    def on_train_begin(self, logs=None):
        # Inside fit, validation runs silently.
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._reset()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)  # predictions are not metrics

    def on_predict_end(self, logs=None):
        self._finalize(None)


class TerminateOnNaN(Callback):
    """Stops training when the loss becomes NaN or infinite.

    Args:
        raise_error: if True, raise RuntimeError at once instead of setting
            `model.stop_training` (which lets on_train_end run).

    The check runs at chunk ends on the running epoch loss, which is NaN or
    infinite as soon as any batch's loss was.
    """

    batch_hooks_at_chunk_ends = True

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                               f"Loss value: {loss}. Terminating training "
                               f"immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
        self.model.stop_training = True


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file.

    Args:
        filename: path of the CSV file (str or os.PathLike).
        separator: the field separator.
        append: append to an existing file (its header is kept) instead of
            overwriting it.

    Columns are "epoch" then the log keys sorted; when the first epoch has
    no `val_` keys, `val_` columns are added for each key and hold "NA"
    until validation runs (Keras semantics).
    """

    batch_hooks_at_chunk_ends = True

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w",
                             newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file,
                                         fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _csv_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _csv_value(v):
    if isinstance(v, str) or np.ndim(v) == 0:
        return v
    return f"[{', '.join(map(str, np.ravel(v)))}]"


class LambdaCallback(Callback):
    """A callback made of plain functions.

    Args:
        on_epoch_begin, on_epoch_end: f(epoch, logs).
        on_train_begin, on_train_end: f(logs).
        on_train_batch_begin, on_train_batch_end: f(batch, logs).
        **kwargs: any other hook by its name, e.g. on_test_end=f.  Batch
            hooks given here are called at every batch (fit slows down to
            one batch per C call to honour them).

    Example:
        >>> log = LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None,
                 on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hooks {unknown}; the "
                            f"hooks are {', '.join(HOOKS)}")
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin,
                     on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got "
                                    f"{type(fn).__name__}")
                setattr(self, name, fn)


