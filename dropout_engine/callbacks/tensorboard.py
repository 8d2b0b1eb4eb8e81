"""The TensorBoard callback (Keras 3's), writing event files without TensorFlow.

    model.fit(x, y, epochs=10, validation_split=0.2,
              callbacks=[TensorBoard(log_dir="logs")])
    # then: tensorboard --logdir logs

What lands where, as Keras 3 writes it:
  - ``<log_dir>/train``: ``epoch_<name>`` for each training log entry at
    step = epoch (``epoch_loss``, ``epoch_accuracy``, ...), plus
    ``epoch_learning_rate`` and, with ``write_steps_per_second``,
    ``epoch_steps_per_second``; with an integer ``update_freq``,
    ``batch_<name>`` (the running epoch means fit logs at that batch) every
    ``update_freq`` batches at step = the global batch count (from 1), and
    ``batch_steps_per_second``; with ``histogram_freq``, a histogram of
    every weight, tagged ``<model>/<layer>/<weight>/histogram``, every
    ``histogram_freq`` epochs; with ``write_graph`` (the default), the
    model config under tag ``keras``, which TensorBoard's graph tab draws.
  - ``<log_dir>/validation``: ``epoch_<name>`` for each ``val_`` entry
    (prefix removed) and ``evaluation_<name>_vs_iterations`` at step =
    the optimizer's iteration count.

The files are written by ``_tfevents`` (standard library and numpy): no
TensorFlow, tensorboard or tensorboardX is needed to write them, only to
look at them.

Speed: with ``update_freq="epoch"`` (the default) the callback works at
epoch ends only and fit keeps running whole chunks of batches per C call;
an integer ``update_freq`` makes fit return to Python after every batch, as
Keras's batch-level logging does.

Not implemented, refused when asked for: ``write_images=True``, profiling
(``profile_batch`` other than 0), embeddings (``embeddings_freq`` other
than 0, ``embeddings_metadata``): the engine has no profiler hooks and no
Embedding layer.
"""
import json
import numbers
import os
import time

import numpy as np

from ._tfevents import EventFileWriter
from .base import Callback

__all__ = ["TensorBoard"]


def _flag(name, value):
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return bool(value)
    raise TypeError(f"TensorBoard: {name} must be a bool, got {value!r}")


def _count(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 0:
        raise ValueError(f"TensorBoard: {name} must be an int >= 0, got {value!r}")
    return int(value)


def _profile_range(profile_batch):
    """(start, stop) as Keras parses profile_batch: an int, "a,b" or (a, b)."""
    message = ("TensorBoard: profile_batch must be a non-negative integer or a "
               "2-tuple of positive integers (a range of batches to profile), "
               f"got {profile_batch!r}")
    value = profile_batch
    if isinstance(value, str):
        try:
            value = tuple(int(p) for p in value.split(","))
        except ValueError:
            raise ValueError(message) from None
        if len(value) == 1:
            value = value[0]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        start = stop = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        start, stop = int(value[0]), int(value[1])
    else:
        raise ValueError(message)
    if start < 0 or stop < start:
        raise ValueError(message)
    return start, stop


def _scalars(logs):
    """The entries of ``logs`` that are real numbers (TensorBoard scalars)."""
    out = {}
    for k, v in (logs or {}).items():
        if isinstance(v, (numbers.Real, np.number)) and not isinstance(v, bool) \
                or isinstance(v, np.ndarray) and v.size == 1 \
                and np.issubdtype(v.dtype, np.number):
            out[k] = float(v)
    return out


class TensorBoard(Callback):
    """Writes training logs for TensorBoard (Keras 3's TensorBoard callback).

    Args:
        log_dir: directory to write to (str or os.PathLike); runs go to its
            ``train`` and ``validation`` subdirectories.
        histogram_freq: every how many epochs to write weight histograms
            (0: never).
        write_graph: write the model config for TensorBoard's graph tab.
        write_images: not supported (True raises NotImplementedError).
        write_steps_per_second: also log training steps per second, per
            epoch and (with an integer ``update_freq``) per logged batch.
        update_freq: "epoch", "batch" (= 1) or an int n >= 1: write the
            batch logs every n batches as well.
        profile_batch: only 0 (no profiling) is supported; other valid
            values raise NotImplementedError.
        embeddings_freq, embeddings_metadata: only 0 / None are supported.

    See the module docstring for the tags written.

    Example:
        >>> tb = TensorBoard(log_dir="logs", histogram_freq=1)
        >>> model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[tb])
    """
    _backup_attributes = ("_global_train_batch",)   # a resumed run's batch steps go on
    # One process writes for all under data parallelism (training.distribution).
    _chief_only = True

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True,
                 write_images=False, write_steps_per_second=False,
                 update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"TensorBoard: log_dir must be a str or os.PathLike, "
                            f"got {type(log_dir).__name__}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = _count("histogram_freq", histogram_freq)
        self.write_graph = _flag("write_graph", write_graph)
        self.write_images = _flag("write_images", write_images)
        self.write_steps_per_second = _flag("write_steps_per_second",
                                            write_steps_per_second)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
                isinstance(update_freq, (bool, str)) or
                not isinstance(update_freq, numbers.Integral) or update_freq < 1):
            raise ValueError("TensorBoard: update_freq must be 'epoch', 'batch' "
                             f"or an int >= 1, got {update_freq!r}")
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq = _count("embeddings_freq", embeddings_freq)
        self.embeddings_metadata = embeddings_metadata
        self._start_batch, self._stop_batch = _profile_range(profile_batch)
        if self.write_images:
            raise NotImplementedError(
                "TensorBoard(write_images=True) is not supported: weight images "
                "are not written (histogram_freq gives weight histograms)")
        if (self._start_batch, self._stop_batch) != (0, 0):
            raise NotImplementedError(
                f"TensorBoard(profile_batch={profile_batch!r}) is not supported: "
                "dropout_engine has no profiler trace to write; use 0")
        if self.embeddings_freq or embeddings_metadata is not None:
            raise NotImplementedError(
                "TensorBoard embeddings (embeddings_freq, embeddings_metadata) "
                "are not supported: dropout_engine has no Embedding layer")
        # Batch hooks only matter with batch-level logging; otherwise fit
        # keeps its chunks (see dropout_engine.callbacks).
        self.batch_hooks_at_chunk_ends = self.update_freq == "epoch"
        self._writers = {}
        self._global_train_batch = 0
        self._batch_start_time = 0.0
        self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0
        self._tested_this_epoch = False

    # -------------------------------------------------------------- writers
    @property
    def _train_dir(self):
        return os.path.join(self.log_dir, "train")

    @property
    def _val_dir(self):
        return os.path.join(self.log_dir, "validation")

    def _writer(self, kind):
        w = self._writers.get(kind)
        if w is None or w.closed:
            w = self._writers[kind] = EventFileWriter(
                self._train_dir if kind == "train" else self._val_dir)
        return w

    def _close_writers(self):
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def _iterations(self):
        opt = getattr(self.model, "optimizer", None)
        return int(getattr(opt, "iterations", 0)) if opt is not None else 0

    # ---------------------------------------------------------------- hooks
    def set_model(self, model):
        """Sets the model; each fit writes new event files (as Keras)."""
        super().set_model(model)
        self._close_writers()

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph and self.model is not None:
            self._write_model_config()

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_train_batch_begin(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        step = self._global_train_batch
        if step % self.update_freq:
            return
        w = self._writer("train")
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._batch_start_time
            w.add_scalar("batch_steps_per_second", 1.0 / max(elapsed, 1e-9), step)
        for name, value in _scalars(logs).items():
            w.add_scalar(f"batch_{name}", value, step)

    def on_epoch_begin(self, epoch, logs=None):
        self._tested_this_epoch = False
        if self.write_steps_per_second:
            self._epoch_start_iterations = self._iterations()
            self._epoch_start_time = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        scalars = _scalars(logs)
        train = {k: v for k, v in scalars.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in scalars.items() if k.startswith("val_")}
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and getattr(opt, "learning_rate", None) is not None:
            train["learning_rate"] = float(opt.learning_rate)
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._epoch_start_time
            steps = self._iterations() - self._epoch_start_iterations
            train["steps_per_second"] = steps / max(elapsed, 1e-9)
        if train:
            w = self._writer("train")
            for name, value in train.items():
                w.add_scalar(f"epoch_{name}", value, epoch)
        if val:
            w = self._writer("validation")
            for name, value in val.items():
                w.add_scalar(f"epoch_{name}", value, epoch)
            # Keras writes these from on_test_end of fit's validation pass;
            # our fit validates without the test hooks, so they come from
            # the val_ logs unless on_test_end already ran this epoch.
            if not self._tested_this_epoch:
                self._write_evaluation(val)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        for w in self._writers.values():
            w.flush()

    def on_test_end(self, logs=None):
        self._tested_this_epoch = True
        scalars = _scalars(logs)
        if scalars:
            self._write_evaluation(scalars)
            self._writer("validation").flush()

    # ------------------------------------------------------------- summaries
    def _write_evaluation(self, logs):
        if getattr(self.model, "optimizer", None) is None:
            return
        w, step = self._writer("validation"), self._iterations()
        for name, value in logs.items():
            w.add_scalar(f"evaluation_{name}_vs_iterations", value, step)

    def _write_histograms(self, epoch):
        w = self._writer("train")
        for layer in self.model.layers:
            weights = layer.weights
            names = getattr(layer, "weight_names", None) or [
                f"weight_{i}" for i in range(len(weights))]
            for wname, array in zip(names, weights):
                w.add_histogram(f"{self.model.name}/{layer.name}/{wname}/histogram",
                                array, epoch)

    def _write_model_config(self):
        """The model as Keras's to_json() shapes it ({"class_name",
        "config": {"name", "layers": [...]}}), at step 0 under tag
        "keras", as Keras's TensorBoard writes it."""
        config = {"class_name": type(self.model).__name__,
                  "config": self.model.get_config()}
        self._writer("train").add_keras_model(
            "keras", json.dumps(config, default=_json_default), step=0)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
