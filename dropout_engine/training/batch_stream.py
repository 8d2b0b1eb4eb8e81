"""Chunks from a stream of batches (generators, PyDataset).

The producer (in the prefetch thread) takes the user's batches in order,
checks each against the first one (same columns, same target shape, same
tuple arity: cheap attribute checks), copies it end to end into the
chunk's float32 buffers, and converts and validates the whole chunk once
(``chunks.convert``).  A chunk is handed over when it is full (about
``data_adapters.CHUNK_BYTES``), when a short batch ends it, or as soon as the trainer
waits for it, so a fast source makes long C calls and a slow one never
holds training back for more than a batch.

Batch sizes: the first batch's rows are the batch size; a short batch
(a last partial batch) ends its chunk; a larger batch makes it the new
batch size (the Trainer sets the C arena up again, once per growth).
"""
import itertools

import numpy as np

from .. import _validation
from . import chunks
from . import data_adapters
from .data_adapters import DataAdapter


def _array(a, name):
    """``a`` as an ndarray of numbers (one np.asarray for lists)."""
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as exc:   # ragged lists and the like: say what came
            raise TypeError(f"{name} must be an array of numbers, got "
                            f"{_validation.describe(a)} ({exc})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name} must have a batch axis, got a scalar")
    return a


class BatchStreamAdapter(DataAdapter):
    """Shared by GeneratorAdapter and PyDatasetAdapter.

    Args:
        conv: the converter ``(x, y, sw) -> (x, t, sw)`` (``inputs``; it
            applies fit's class_weight).
        first: the first batch, (x, y, sw) unpacked (its conversion builds
            the model and fixes the shapes).
        needs_y: fit/evaluate (y required) or predict (y ignored).
        source: the name in messages ("the generator").
    """

    def __init__(self, conv, first, needs_y, source):
        self.conv, self.needs_y, self.source = conv, needs_y, source
        x, y, sw = self._check_first(first)
        try:
            xc, tc, swc = conv(x, y, sw)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"the first batch of {source}: {exc}") from None
        self.x_shape = x.shape[1:]
        self.y_shape = y.shape[1:] if needs_y else None
        self.t_cols = tc.shape[1] if tc is not None else None
        self.weighted = swc is not None
        self.has_sw = sw is not None
        self.batch_size = x.shape[0]
        self._recycler = chunks.Recycler()
        per_row = 4 * (int(np.prod(self.x_shape)) + (self.t_cols or 0) + self.weighted)
        self._rows_per_chunk = max(1, data_adapters.CHUNK_BYTES // max(per_row, 1))

    def _check_first(self, first):
        x, y, sw = first
        x = _array(x, "x")
        if x.shape[0] == 0:
            raise ValueError(f"the first batch of {self.source} has no rows")
        if self.needs_y:
            if y is None:
                raise ValueError(f"{self.source} must yield (x, y) or (x, y, "
                                 "sample_weight) to train or evaluate; its first "
                                 "batch has no y")
            y = _array(y, "y")
        if sw is not None:
            sw = _array(sw, "sample_weight")
        return x, (y if self.needs_y else None), sw

    # ------------------------------------------------------- each batch
    def _check(self, batch):
        """One batch's (x, y, sw) checked against the first: the same
        columns, target shape and arity."""
        if type(batch) is tuple and len(batch) == 2 and not self.has_sw:
            # The usual batch, in one test (a few us a batch matter at W2's speed).
            x, y = batch
            if (type(x) is np.ndarray and x.shape[1:] == self.x_shape and x.shape[0]
                    and x.dtype.kind in "biuf"):
                if not self.needs_y:
                    return x, None, None
                if (type(y) is np.ndarray and y.shape[1:] == self.y_shape
                        and y.shape[0] == x.shape[0] and y.dtype.kind in "biuf"):
                    return x, y, None
        x, y, sw = self.unpack(batch)
        x = _array(x, "x")
        b = x.shape[0]
        if x.shape[1:] != self.x_shape or b == 0:
            raise ValueError(f"x has shape {x.shape}; the first batch's rows are "
                             f"{self.x_shape} (every batch needs the same columns "
                             "and at least one row)")
        if self.needs_y:
            if y is None:
                raise ValueError("the batch has no y")
            y = _array(y, "y")
            if y.shape[:1] != (b,) or y.shape[1:] != self.y_shape:
                raise ValueError(f"y has shape {y.shape}, x {x.shape}; the first "
                                 f"batch's targets are {self.y_shape} per row")
        if (sw is not None) != self.has_sw:
            raise ValueError("the batch " + ("has" if sw is not None else "lacks")
                             + " sample weights; the first batch "
                             + ("had" if self.has_sw else "had none"))
        if sw is not None:
            sw = _array(sw, "sample_weight")
            if sw.shape not in ((b,), (b, 1)):
                raise ValueError(f"sample_weight has shape {sw.shape}; expected ({b},)")
        return x, (y if self.needs_y else None), sw

    def unpack(self, batch):
        """(x, y, sw) of one batch (a tuple (x,), (x, y) or (x, y, sw))."""
        if isinstance(batch, list):
            batch = tuple(batch)
        if not isinstance(batch, tuple) or not 1 <= len(batch) <= 3:
            raise TypeError(f"{self.source} must yield tuples (x,), (x, y) or "
                            "(x, y, sample_weight), got "
                            f"{_validation.describe(batch)}")
        return batch + (None,) * (3 - len(batch))

    # ----------------------------------------------------------- chunks
    def chunks(self, batches, first_step=0):
        """The chunks made from ``batches`` (an iterator of raw batches; its
        errors are the user's) in the prefetch thread."""
        return self._recycler.run(lambda hungry: self._assemble(batches, hungry,
                                                                first_step))

    def _assemble(self, batches, hungry, step):
        buf = None
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:
                if buf is not None:
                    yield from self._finish(buf)
                raise chunks.BatchFailure(exc, step, self.source, user=True) from None
            try:
                x, y, sw = self._check(batch)
            except (ValueError, TypeError) as exc:
                if buf is not None:
                    yield from self._finish(buf)
                raise chunks.BatchFailure(exc, step, self.source) from None
            b = x.shape[0]
            if b > self.batch_size:          # larger batches from now on
                if buf is not None:
                    yield from self._finish(buf)
                    buf = None
                self.batch_size = b
            if buf is None:
                buf = _Buffer(self, step)
            r = buf.rows
            buf.x[r:r + b] = x
            if buf.y is not None:
                buf.y[r:r + b] = y
            if buf.sw is not None:
                buf.sw[r:r + b] = sw.reshape(b)
            buf.rows = r = r + b
            step += 1
            if b < self.batch_size or r + b > buf.cap or hungry():
                yield from self._finish(buf)
                buf = None
        if buf is not None:
            yield from self._finish(buf)

    def _finish(self, buf):
        n = buf.rows
        chunk, failure = chunks.convert(
            self.conv, buf.x[:n], None if buf.y is None else buf.y[:n],
            None if buf.sw is None else buf.sw[:n], np.arange(n, dtype=np.int64),
            buf.batch_size, buf.first_step, self.source)
        if chunk is not None:
            self._recycler.sent(buf.x, buf.y, buf.sw)
            yield chunk
        if failure is not None:
            raise failure


class _Buffer:
    """One chunk being filled (by ``_assemble``): whole batches of
    ``batch_size`` rows, copied end to end (the copy converts to float32)."""

    def __init__(self, stream, first_step):
        B = self.batch_size = stream.batch_size
        cap = max(1, stream._rows_per_chunk // B) * B
        get = stream._recycler.get
        self.x = get((cap,) + stream.x_shape, np.float32)
        self.y = get((cap,) + stream.y_shape, np.float32) if stream.needs_y else None
        self.sw = get((cap,), np.float32) if stream.has_sw else None
        self.rows, self.cap, self.first_step = 0, cap, first_step


def limited(iterator, steps):
    """The first ``steps`` items (all when steps is None)."""
    return iterator if steps is None else itertools.islice(iterator, steps)
