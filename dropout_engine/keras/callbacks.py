"""keras.callbacks: Keras 3's callbacks (see dropout_engine.callbacks)."""
from ..callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping,
                         History, LambdaCallback, ModelCheckpoint,
                         ProgbarLogger, ReduceLROnPlateau, TerminateOnNaN)

__all__ = ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History",
           "LambdaCallback", "ModelCheckpoint", "ProgbarLogger",
           "ReduceLROnPlateau", "TerminateOnNaN"]
from ..tensorboard import TensorBoard; __all__.append("TensorBoard")  # noqa: E402,E702
