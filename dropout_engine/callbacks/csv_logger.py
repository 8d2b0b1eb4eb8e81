"""CSVLogger: stream each epoch's logs to a CSV file."""
import csv
import os

import numpy as np

from .base import Callback

__all__ = ["CSVLogger"]


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
    # One process writes for all under data parallelism (training.distribution).
    _chief_only = True

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
