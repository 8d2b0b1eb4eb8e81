"""ModelCheckpoint: save the model (or its weights) during training."""
import os
import warnings

from .monitors import MonitorCallback

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(MonitorCallback):
    """Saves the model (or only its weights) during training.

    Args:
        filepath: where to save (str or os.PathLike).  It may hold format
            fields filled from `epoch` (1-based), `batch` (with an integer
            save_freq) and the logs, e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.keras".
            Missing directories are created.  Its suffix names the format,
            as for model.save: ".keras" (".weights.h5" with
            save_weights_only) for Keras 3's files, ".safetensors" for
            ours; others are refused here, as Keras refuses them.
        monitor: the logs key that decides which save is best.
        verbose: 1 prints a line per save decision.
        save_best_only: save only when `monitor` improves.
        save_weights_only: call model.save_weights instead of model.save.
        mode: "auto", "min" or "max".
        save_freq: "epoch", or an integer number of batches.  With fit's
            chunks, a batch-count save happens at the first chunk end at or
            after that many batches.
        initial_value_threshold: the best value to beat at the start.

    Example:
        >>> ckpt = ModelCheckpoint("best.safetensors", save_best_only=True)
    """
    _backup_attributes = ("best", "_batches_since_save", "_last_batch_seen",
                          "_current_epoch")
    # One process writes for all under data parallelism (training.distribution).
    _chief_only = True

    def __init__(self, filepath, monitor="val_loss", verbose=0,
                 save_best_only=False, save_weights_only=False, mode="auto",
                 save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and not (
                isinstance(save_freq, int) and not isinstance(save_freq, bool)
                and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive number "
                             f"of batches, got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        from .._model_file import file_format
        file_format(self.filepath, weights=save_weights_only)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_since_save = 0
        self._last_batch_seen = None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # Batch indices jump by a chunk at a time and restart each epoch.
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            self._batches_since_save += batch + 1
        else:
            self._batches_since_save += batch - self._last_batch_seen
        self._last_batch_seen = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _file_path(self, epoch, batch, logs):
        fields = dict(logs or {}, epoch=epoch + 1)
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise KeyError(f"Failed to format this callback filepath: "
                           f"{self.filepath!r}. Reason: {e!r}; available "
                           f"fields: {', '.join(fields)}") from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                self._say(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = (logs or {}).get(self.monitor)
        if current is None and self._chief():
            warnings.warn(f"Can save best model only with {self.monitor} "
                          f"available.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                self._say(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} "
                          f"to {current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            self._say(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                      f"{best}")
        return False

    def _save(self, epoch, batch, logs):
        filepath = self._file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IsADirectoryError(f"ModelCheckpoint needs a file path, but "
                                    f"{filepath!r} is an existing directory")
        if not self._should_save(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
