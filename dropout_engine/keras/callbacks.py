"""keras.callbacks: Keras 3's callbacks (see dropout_engine.callbacks)."""
from ..callbacks import (BackupAndRestore, Callback, CallbackList, CSVLogger, EarlyStopping,
                         History, LambdaCallback, ModelCheckpoint,
                         ProgbarLogger, ReduceLROnPlateau, TensorBoard,
                         TerminateOnNaN)
from ._reexport import unsupported

__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History",
           "LambdaCallback", "ModelCheckpoint", "ProgbarLogger",
           "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]


def __getattr__(name):
    raise unsupported(__name__, name)
