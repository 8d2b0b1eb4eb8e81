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
beat); ModelCheckpoint also takes ".safetensors" file names (ours), beside
Keras's ".keras" / ".weights.h5".

One module per concept, all importable from here (as Keras 3's
keras/src/callbacks/):

  base.py               Callback and the table of its hooks
  callback_list.py      CallbackList: the callbacks called as one
  history.py            History
  progbar.py            Progbar (the bar) and ProgbarLogger (its callback)
  monitors.py           MonitorCallback, EarlyStopping, ReduceLROnPlateau
  checkpoint.py         ModelCheckpoint
  backup_and_restore.py BackupAndRestore (resume a killed fit)
  csv_logger.py         CSVLogger
  lambda_callback.py    LambdaCallback
  terminate_on_nan.py   TerminateOnNaN
  tensorboard.py        TensorBoard (event files by _tfevents.py, no TensorFlow)
"""
from .backup_and_restore import BackupAndRestore
from .base import BATCH_HOOKS, BEGIN_END_HOOKS, HOOKS, Callback, overrides  # noqa: F401
from .callback_list import CallbackList
from .checkpoint import ModelCheckpoint
from .csv_logger import CSVLogger
from .history import History
from .lambda_callback import LambdaCallback
from .monitors import EarlyStopping, ReduceLROnPlateau
from .progbar import Progbar, ProgbarLogger  # noqa: F401
from .tensorboard import TensorBoard
from .terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger",
           "TerminateOnNaN", "CSVLogger", "LambdaCallback", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard", "BackupAndRestore"]
