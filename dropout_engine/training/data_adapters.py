"""Where fit's training rows come from: one adapter interface, chunks of
whole batches.

The C loop trains on a chunk at a time: batch j of a chunk is the rows
``index[j*B : (j+1)*B]`` of its ``x``/``t`` (``_net.Net.train``), gathered
in C.  An adapter turns the user's data into such chunks, converted once to
float32 (``_validation``) and never per batch.  Arrays are one chunk per
epoch (the whole data, ``index`` the epoch's shuffle).  Generators,
PyDataset, memmaps and pandas frames are the adapters to come: each yields
its blocks of rows as chunks of whole batches, through the same interface,
and ``get_data`` picks the adapter for ``x``.
"""
import math
from typing import NamedTuple, Optional

import numpy as np

from .. import _validation


class Chunk(NamedTuple):
    """Rows for one run of whole batches.

    x: float32 C-contiguous [r, features]; t: float32 C-contiguous
    [r, t_cols]; sw: float32 [r] sample weights, or None (as the adapter's
    ``weighted`` says); index: int64 [k], rows of x in batch order.  The
    chunk holds ceil(k / batch_size) batches, all full but possibly its
    last (the loop weighs each batch's stats by its rows).
    """
    x: np.ndarray
    t: np.ndarray
    sw: Optional[np.ndarray]
    index: np.ndarray


class DataAdapter:
    """The interface the Trainer reads (subclass it for a new kind of data).

    Attributes, fixed for the whole fit (the C loop is set up once):
        num_samples: rows per epoch.
        batch_size: rows per batch, at most num_samples.
        t_cols: target columns of every chunk's t.
        weighted: whether chunks carry sample weights.
    """
    num_samples = batch_size = t_cols = None
    weighted = False

    @property
    def num_batches(self):
        """Batches per epoch (the progress bar's target; an adapter whose
        chunks end in short batches says how many it makes)."""
        return -(-self.num_samples // self.batch_size)

    def epoch(self, rng):
        """The chunks of one epoch, in order (an iterator of Chunk).

        Args:
            rng: the fit's numpy Generator; shuffles draw from it, so that
                a seeded fit is reproducible.
        """
        raise NotImplementedError


class ArrayAdapter(DataAdapter):
    """In-memory arrays (validated float32): one chunk per epoch, the rows
    reshuffled each epoch when ``shuffle``."""

    def __init__(self, x, t, sw, batch_size, shuffle):
        self.x, self.t, self.sw, self.shuffle = x, t, sw, shuffle
        self.num_samples = n = x.shape[0]
        self.batch_size = min(batch_size, n)   # the arena never holds more rows than the data
        self.t_cols, self.weighted = t.shape[1], sw is not None

    def epoch(self, rng):
        n = self.num_samples
        index = (rng.permutation(n) if self.shuffle else np.arange(n)).astype(np.int64)
        yield Chunk(self.x, self.t, self.sw, index)


def get_data(convert, x, y, sample_weight, class_weight, validation_split,
             validation_data, batch_size, shuffle):
    """fit's data: (the training DataAdapter, the validation arrays (x, t,
    sw) or None).

    Args:
        convert: the model's ``_xy(x, y, what)``: validated float32 (x,
            targets), building the model from x's width.
        the others: fit's arguments (batch_size already validated).
    """
    # The plug point for other kinds of x (generators, PyDataset, pandas):
    # their adapters will be chosen here; today x is array-like.
    x, t = convert(x, y)
    sw = _validation.sample_weights(sample_weight, class_weight, t)
    x, t, sw, val = train_validation_split(convert, x, t, sw, validation_split,
                                           validation_data)
    return ArrayAdapter(x, t, sw, batch_size, shuffle), val


def train_validation_split(convert, x, t, sw, validation_split, validation_data):
    """(x, t, sw) to train on and (x_val, t_val, sw_val) or None; the held-out
    rows keep their sample weights, as Keras's split does."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        xv, tv = convert(validation_data[0], validation_data[1], what="x_val")
        swv = _validation.sample_weights(validation_data[2] if len(validation_data) == 3
                                         else None, None, tv,
                                         what="validation sample_weight")
        return x, t, sw, (xv, tv, swv)
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split == 0.0:
        return x, t, sw, None
    split = int(math.floor(x.shape[0] * (1.0 - validation_split)))
    if split == 0 or split == x.shape[0]:
        raise ValueError(f"validation_split={validation_split} leaves "
                         f"{split} training and {x.shape[0] - split} validation "
                         f"samples of {x.shape[0]}")
    part = (lambda a, s: None if a is None else a[s])
    return (x[:split], t[:split], part(sw, slice(None, split)),
            (x[split:], t[split:], part(sw, slice(split, None))))
