"""Where the rows of fit, evaluate and predict come from: one adapter
interface, chunks of whole batches.

The C loop trains on a chunk at a time: batch j of a chunk is the rows
``index[j*B : (j+1)*B]`` of its ``x``/``t`` (``_net.Net.train``), gathered
in C.  An adapter turns the user's data into such chunks, converted once
per chunk to float32 (``_validation``), never per batch:

  ArrayAdapter (here)       in-memory arrays: converted once, one chunk per
                            epoch, ``index`` the epoch's shuffle
  RowsAdapter               memmaps / ``.npy`` opened with mmap_mode,
    (memmap_adapter.py)     pandas DataFrame/Series, pyarrow tables: the
                            rows of each chunk gathered and converted in a
                            prefetch thread (frame_rows.py reads frames)
  GeneratorAdapter          Python generators (any iterator) of batches
    (generator_adapter.py)
  PyDatasetAdapter          ``PyDataset`` / ``keras.utils.PyDataset`` /
    (py_dataset.py)         ``Sequence``-style objects, with their workers

``inputs.get_data`` picks the adapter for fit; ``inputs.evaluate`` and
``inputs.predict`` run the same adapters (unshuffled) for evaluate,
predict and validation.  Keras 3's rules, which these follow, are written
in ``inputs``' docstring.
"""
import math
from typing import NamedTuple, Optional

import numpy as np

from .distribution import warn

# About how many bytes of rows a chunk of a read-per-chunk adapter holds
# (a fit keeps three or four alive: trained, ready, being filled).
CHUNK_BYTES = 32 << 20


class Chunk(NamedTuple):
    """Rows for one run of whole batches.

    x: float32 C-contiguous [r, features]; t: float32 C-contiguous
    [r, t_cols] (None for predict); sw: float32 [r] sample weights, or None
    (as the adapter's ``weighted`` says); index: int64 [k], rows of x in
    batch order.  The chunk holds ceil(k / batch_size) batches, all full but
    possibly its last (the loop weighs each batch's stats by its rows).
    batch_size: the chunk's rows per batch when it is not the adapter's
    (a generator whose batches grow); None means ``adapter.batch_size``.
    """
    x: np.ndarray
    t: Optional[np.ndarray]
    sw: Optional[np.ndarray]
    index: np.ndarray
    batch_size: Optional[int] = None


class DataAdapter:
    """The interface the Trainer reads (subclass it for a new kind of data).

    Attributes, fixed for the whole fit (the C loop is set up once):
        num_samples: rows per epoch (None when unknown: generators).
        batch_size: rows per batch, at most num_samples (a generator's
            first batch; its chunks say when later batches are larger).
        t_cols: target columns of every chunk's t.
        weighted: whether chunks carry sample weights.
        steps: ``steps_per_epoch`` when given, else None.
    """
    num_samples = batch_size = t_cols = steps = None
    weighted = False

    @property
    def num_batches(self):
        """Batches per epoch (the progress bar's target; None when unknown)."""
        if self.steps is not None:
            return self.steps
        if self.num_samples is None:
            return None
        return -(-self.num_samples // self.batch_size)

    def more(self):
        """Whether another epoch has data (called before each epoch's
        callbacks).  A generator that ran out says no, after Keras's
        warning, and fit stops."""
        return True

    def epoch(self, rng):
        """The chunks of one epoch, in order (an iterator of Chunk).

        Args:
            rng: the fit's numpy Generator (shuffles draw from it, so that a
                seeded fit is reproducible); None for evaluation.
        """
        raise NotImplementedError


def warn_ran_out():
    """Keras 3's warning, word for word, when the data ends before
    ``steps_per_epoch`` batches."""
    warn("Your input ran out of data; interrupting training. Make sure "
         "that your dataset or generator can generate at least "
         "`steps_per_epoch * epochs` batches. You may need to use the "
         "`.repeat()` function when building your dataset.", stacklevel=4)


class Passes:
    """Keras 3's ``steps_per_epoch`` over data of ``num_batches`` batches.

    Without steps every epoch is one whole pass.  With steps, an epoch
    takes the next ``steps`` batches of the current pass (the next epoch
    goes on where it stopped) and a new pass, newly shuffled, starts when
    one is used up; an epoch never crosses into a new pass: when the pass
    has fewer batches left than ``steps``, the epoch ends early with Keras's
    "ran out of data" warning.
    """

    def __init__(self, num_batches, steps):
        self.num_batches, self.steps = num_batches, steps
        self._pos = num_batches

    def next_epoch(self):
        """(new_pass, first_batch, stop_batch, short) for the next epoch."""
        nb = self.num_batches
        if self.steps is None:
            return True, 0, nb, False
        new = self._pos >= nb
        if new:
            self._pos = 0
        start = self._pos
        self._pos = min(nb, start + self.steps)
        return new, start, self._pos, start + self.steps > nb


def shuffle_mode(shuffle):
    """Keras's ``shuffle``: True, False or "batch" (batches in order, rows
    shuffled within each batch: Keras's mode for HDF5 data)."""
    if isinstance(shuffle, str):
        if shuffle != "batch":
            raise ValueError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
        return "batch"
    return bool(shuffle)


def epoch_order(n, batch_size, shuffle, rng, dtype=np.int64):
    """The rows of one pass in batch order.

    True: ``rng.permutation(n)`` (drawn as a shuffle of an arange of
    ``dtype``: the same permutation, int32 halves a large memmap's);
    "batch": each batch's block of rows in place, shuffled within; False or
    no rng: 0..n-1.
    """
    order = np.arange(n, dtype=dtype)
    if rng is None or not shuffle:
        return order
    if shuffle == "batch":
        full = n // batch_size * batch_size
        if full:
            order[:full] = rng.permuted(order[:full].reshape(-1, batch_size), axis=1).ravel()
        if full < n:
            rng.shuffle(order[full:])
        return order
    rng.shuffle(order)
    return order


class ArrayAdapter(DataAdapter):
    """In-memory arrays (validated float32): one chunk per epoch, the rows
    reshuffled at each pass when ``shuffle``."""

    def __init__(self, x, t, sw, batch_size, shuffle, steps=None):
        self.x, self.t, self.sw = x, t, sw
        self.shuffle = shuffle_mode(shuffle)
        self.num_samples = n = x.shape[0]
        self.batch_size = B = min(batch_size, n)   # the arena never holds more rows than the data
        self.t_cols = None if t is None else t.shape[1]
        self.weighted, self.steps = sw is not None, steps
        self._passes = Passes(-(-n // B), steps)
        self._order = None

    def epoch(self, rng):
        new, first, stop, short = self._passes.next_epoch()
        if new and (self._order is None or (self.shuffle and rng is not None)):
            self._order = epoch_order(self.num_samples, self.batch_size, self.shuffle, rng)
        if short:
            warn_ran_out()
        B = self.batch_size
        yield Chunk(self.x, self.t, self.sw, self._order[first * B:stop * B])


def split_at(n, validation_split):
    """The first validation row of Keras's ``validation_split`` (the last
    rows are held out, before shuffling); None for 0."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split == 0.0:
        return None
    split = int(math.floor(n * (1.0 - validation_split)))
    if split == 0 or split == n:
        raise ValueError(f"validation_split={validation_split} leaves "
                         f"{split} training and {n - split} validation "
                         f"samples of {n}")
    return split


def unpack_validation(validation_data):
    """(x_val, y_val, sw_val) of Keras's ``validation_data``: a tuple of 2
    or 3, or one object (a generator or PyDataset yielding them)."""
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val), or a generator or "
                             f"PyDataset; got a {type(validation_data).__name__} of "
                             f"{len(validation_data)} items")
        return tuple(validation_data) + (None,) * (3 - len(validation_data))
    return validation_data, None, None
