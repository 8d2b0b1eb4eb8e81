"""keras.callbacks: Keras 3's callbacks (see dropout_engine.callbacks)."""
from ..callbacks import (BackupAndRestore, Callback, CallbackList, CSVLogger, EarlyStopping,
                         History, LambdaCallback, ModelCheckpoint,
                         ProgbarLogger, ReduceLROnPlateau, TensorBoard,
                         TerminateOnNaN)

__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History",
           "LambdaCallback", "ModelCheckpoint", "ProgbarLogger",
           "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]
