"""Callbacks that watch one logged quantity: MonitorCallback, their base,
EarlyStopping and ReduceLROnPlateau (Keras 3 semantics); ModelCheckpoint,
the third, is in checkpoint.py.

They share MonitorCallback: "is this value an improvement on the best so
far", with the direction taken from `mode` or, for mode="auto", from the
quantity's name.  A NaN value is never an improvement.
"""
import math
import warnings

import numpy as np

from .base import Callback

__all__ = ["MonitorCallback", "EarlyStopping", "ReduceLROnPlateau"]

# mode="auto": quantities known to improve downwards / upwards.  Keras asks
# each metric object; ours are named by strings, so the names are listed.
_LOWER_IS_BETTER = {
    "loss", "mse", "mae", "mape", "msle", "mean_squared_error",
    "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "root_mean_squared_error",
    "categorical_crossentropy", "sparse_categorical_crossentropy",
    "binary_crossentropy", "hinge", "squared_hinge", "kl_divergence",
    "poisson", "log_cosh", "logcosh", "huber",
}
_HIGHER_IS_BETTER = {"auc", "precision", "recall", "f1_score", "r2_score"}


def _higher_is_better(monitor, model):
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in _LOWER_IS_BETTER or name.endswith("loss"):
        return False
    if name in _HIGHER_IS_BETTER or "acc" in name:
        return True
    for m in getattr(model, "metrics", None) or ():
        if getattr(m, "name", None) == name and hasattr(m, "_direction"):
            return m._direction == "up"
    raise ValueError(f"cannot tell whether {monitor!r} should be minimised or "
                     f"maximised; pass mode='min' or mode='max'")


class MonitorCallback(Callback):
    """Base of the callbacks that track the best value of `monitor`.

    Args:
        monitor: the logs key to watch.
        mode: "auto", "min" or "max".
        baseline: the initial best value (None: the first value seen).
        min_delta: the smallest change that counts as an improvement.
    """

    batch_hooks_at_chunk_ends = True

    def __init__(self, monitor="val_loss", mode="auto", baseline=None,
                 min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', "
                             f"'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self._higher = None

    def _is_improvement(self, value, reference):
        if self._higher is None:
            self._higher = self.mode == "max" if self.mode != "auto" else \
                _higher_is_better(self.monitor, self.model)
        if value is None or math.isnan(value):
            return False
        if reference is None:
            return True
        if self._higher:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def _monitor_value(self, logs, action):
        value = (logs or {}).get(self.monitor)
        if value is None and self._chief():
            warnings.warn(f"{action} is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs or {})}", stacklevel=3)
        return value


class EarlyStopping(MonitorCallback):
    """Stops training when a monitored quantity has stopped improving.

    Args:
        monitor: the logs key to watch.
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement before training stops.
        verbose: 1 prints when it stops and when it restores weights.
        mode: "auto", "min" or "max".
        baseline: stop unless the model improves on this value.
        restore_best_weights: at the end of training, restore the weights of
            the best epoch (even when training did not stop early).
        start_from_epoch: epochs of warm-up before monitoring starts.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=3)
        >>> # model.fit(x, y, epochs=100, callbacks=[stop])
    """
    _backup_attributes = ("wait", "stopped_epoch", "best", "best_weights",
                          "best_epoch")

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0,
                 mode="auto", baseline=None, restore_best_weights=False,
                 start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # So that some weights are restored even if nothing improves.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            self._say(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                self._say(f"Restoring model weights from the end of the best "
                          f"epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(MonitorCallback):
    """Reduces the learning rate when a monitored quantity stops improving.

    Args:
        monitor: the logs key to watch.
        factor: new_lr = lr * factor; must be < 1.
        patience: epochs without improvement before the rate is reduced.
        verbose: 1 prints each reduction.
        mode: "auto", "min" or "max".
        min_delta: the smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the rate is never reduced below this.

    It also records the current rate in the epoch's logs as "learning_rate"
    (so History and CSVLogger, placed after it, see it), as Keras does.

    Example:
        >>> reduce = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5)
    """
    # The rate itself is the optimizer's: BackupAndRestore saves it.
    _backup_attributes = ("best", "cooldown_counter", "wait")

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0,
                 mode="auto", min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= "
                             f"1.0. Received factor={factor}")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._monitor_value(logs, "Learning rate reduction")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        old_lr = float(optimizer.learning_rate)
        # Compare in float32: an optimiser that stores the rate as float32
        # must not see min_lr as "not reached yet" because of rounding.
        if np.float32(old_lr) > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                self._say(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing "
                          f"learning rate to {new_lr}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0
