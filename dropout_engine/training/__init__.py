"""Training: the Trainer (fit's epoch loop) and its plug points.

  trainer.py         Trainer: the epoch loop, chunks of batches handed to C
  inputs.py          which adapter reads fit's / evaluate's / predict's x
                     (Keras 3's rules written there)
  data_adapters.py   DataAdapter: where the rows come from (arrays); the
                     other kinds in generator_adapter.py, py_dataset.py,
                     memmap_adapter.py (+ frame_rows.py for pandas,
                     pyarrow), on batch_stream.py, chunks.py, prefetch.py
  distribution.py    Distribution: how a fit is spread over processes (the
                     base class is one; distribute.DataParallel is MPI),
                     the distribution in force and is_chief()
  on_batch.py        train_on_batch / test_on_batch / predict_on_batch and
                     model(x, training=...): one batch, one C call
  fit_state.py       FitState: where a running fit stands, and the seam to
                     resume one (callbacks.BackupAndRestore)

Each model owns a Trainer (``model._trainer``); ``model.fit`` checks the
model can train and hands it the arguments.  The Trainer reaches the model
through a few named attributes and methods only, listed in trainer.py's
docstring, and C through the ``_net.Net`` the model gives it.
"""
from .data_adapters import ArrayAdapter, Chunk, DataAdapter
from .inputs import get_data
from .py_dataset import PyDataset
from .distribution import Distribution
from .fit_state import FitState
from .trainer import Trainer

__all__ = ["Trainer", "DataAdapter", "ArrayAdapter", "Chunk", "get_data",
           "Distribution", "FitState", "PyDataset"]
