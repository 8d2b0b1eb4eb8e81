"""History: each epoch's logs, what fit returns."""
from .base import Callback

__all__ = ["History"]


class History(Callback):
    """Records each epoch's logs: `history[name]` is a list, `epoch` the
    epoch indices.  fit returns it, and sets `model.history` to it."""

    batch_hooks_at_chunk_ends = True
    _backup_attributes = ("history", "epoch")

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
