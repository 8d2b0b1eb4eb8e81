"""Raw rows to a Chunk: one conversion per chunk, errors named by batch.

An adapter gathers the raw rows of a run of batches (a generator's
batches copied end to end, the rows of a memmap or a DataFrame) and
converts them once, here, with the fit's (or evaluate's, or predict's)
converter: float32, the model's width, finite, labels in range.  When the
chunk is refused, the first batch that is refused alone is found (the slow
path, only on error): the batches before it still make a chunk, so fit
trains every batch before the bad one, and then the error is raised naming
that batch.  The epoch is named by the loop that knows it
(``BatchFailure.throw``).
"""
import collections

import numpy as np

from .data_adapters import Chunk
from .prefetch import Prefetch


class BatchFailure(Exception):
    """Internal: an error of the data at batch ``step``, carried from the
    adapter (maybe in the prefetch thread) to the loop that names the epoch.

    Args:
        exc: the error.
        step: index of the bad batch in the epoch (or the evaluation), from 0.
        source: what gave the batch, for the message ("the generator").
        user: the user's code raised ``exc`` (the generator, ``__getitem__``):
            it is re-raised as is, with a note; otherwise ``exc`` is our
            validation error and is re-raised with the batch in its message.
        rows: the batch's row numbers in the source (row sources), or None.
    """

    def __init__(self, exc, step, source, *, user=False, rows=None):
        super().__init__(exc, step)
        self.exc, self.step, self.source, self.user, self.rows = exc, step, source, user, rows

    def throw(self, where, keeps_weights=False):
        """Raise the error the user sees; ``where``: "fit: epoch 2"."""
        exc = self.exc
        place = f"{where}, batch {self.step} of {self.source}"
        if self.rows is not None:
            shown = ", ".join(str(int(r)) for r in self.rows[:6])
            place += f" (rows {shown}{', ...' if len(self.rows) > 6 else ''})"
        tail = ("; the model keeps the weights of the batches before it"
                if keeps_weights else "")
        if self.user:
            note = f"dropout_engine: raised by {self.source} at {place}{tail}"
            if hasattr(exc, "add_note"):
                exc.add_note(note)
                raise exc
            raise RuntimeError(f"{note}: {exc!r}") from exc
        raise type(exc)(f"{place}: {exc}{tail}") from None


def _take(a, rows):
    return None if a is None else a[rows]


def convert(conv, x, y, sw, index, batch_size, first_step, source, rows=None):
    """(chunk or None, BatchFailure or None) for the raw rows x, y, sw.

    Args:
        conv: the converter, ``(x, y, sw) -> (x, t, sw)`` validated.
        x, y, sw: raw rows (numpy; y and sw may be None).
        index: int64 rows of x in batch order (the chunk's index).
        batch_size, first_step: the chunk's batches and the index of its
            first in the epoch.
        source: the source's name for messages.
        rows: the source row of each row of x (row sources), for messages.
    """
    try:
        xc, tc, swc = conv(x, y, sw)
        return Chunk(xc, tc, swc, index, batch_size), None
    except (ValueError, TypeError) as exc:
        whole = exc
    B, k = batch_size, index.shape[0]
    bad, err = 0, whole
    for j in range(-(-k // B)):
        part = index[j * B:(j + 1) * B]
        try:
            conv(_take(x, part), _take(y, part), _take(sw, part))
        except (ValueError, TypeError) as exc:
            bad, err = j, exc
            break
    failure = BatchFailure(err, first_step + bad, source,
                           rows=None if rows is None else rows[index[bad * B:(bad + 1) * B]])
    if bad == 0:
        return None, failure
    good = index[:bad * B]
    xc, tc, swc = conv(_take(x, good), _take(y, good), _take(sw, good))
    return Chunk(xc, tc, swc, np.arange(good.shape[0], dtype=np.int64), B), failure


class Recycler:
    """The buffers of chunks in flight, reused once the consumer is done.

    A fresh 32 MB buffer per chunk costs its page faults and zeroing (a
    third of a generator's per-batch work at W2's speed).  The consumer
    (the Trainer, evaluate, predict) is done with a chunk when it asks for
    the next one, so ``done`` is called then; chunks are consumed in the
    order they were made, so the oldest buffer in flight is the free one.
    """

    def __init__(self):
        self._inflight = collections.deque()
        self._free = collections.deque()

    def get(self, shape, dtype):
        """A free buffer of this shape and dtype, or a new one."""
        while self._free:
            buf = self._free.popleft()
            if buf.shape == shape and buf.dtype == dtype:
                return buf
        return np.empty(shape, dtype)

    def sent(self, *bufs):
        """These buffers back the chunk about to be handed over."""
        self._inflight.append(bufs)

    def done(self):
        """The consumer finished the oldest chunk in flight."""
        if self._inflight:
            self._free.extend(b for b in self._inflight.popleft() if b is not None)

    def run(self, produce):
        """The chunks of ``produce(hungry)`` (see ``Prefetch``), made in a
        prefetch thread, ``done`` called as the consumer moves on; the
        thread is closed at the end.  The buffers in flight of an epoch that
        ended early are forgotten first (before the thread starts: it
        registers its first chunk at once)."""
        self._inflight.clear()
        return self._chunks(Prefetch(produce))

    def _chunks(self, items):
        try:
            for chunk in items:
                yield chunk
                self.done()
        finally:
            items.close()
