"""TerminateOnNaN: stop training when the loss becomes NaN or infinite."""
import numpy as np

from .base import Callback

__all__ = ["TerminateOnNaN"]


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
        self._say(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
