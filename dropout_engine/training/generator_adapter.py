"""Python generators (any iterator) of batches, as Keras 3 takes them.

Each item is a tuple ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
(a list is taken as a tuple).  The iterator goes on across epochs: with
``steps_per_epoch`` each epoch takes the next that many batches; without,
an epoch is everything the generator yields.  The first batch is read when
fit starts (it builds the model and fixes the shapes); batches are then
read by the prefetch thread while C trains, so the generator runs in that
thread (one thread at a time, never two: each epoch's thread is joined
before the next starts), and at most one chunk is read ahead of training.

Running out: when the generator ends before ``steps_per_epoch`` batches,
the epoch ends there with Keras's "Your input ran out of data" warning
(its callbacks and validation run), and fit stops: there is nothing to
train the next epoch on.  Without ``steps_per_epoch`` the first epoch uses
the generator up and a later epoch finds it empty: fit warns and stops
before that epoch begins.  (Keras 3 warns after the first epoch even when
it is the only one, and then replays the two batches it peeked at for
each later epoch; we do neither.)
"""
import collections

from .batch_stream import BatchStreamAdapter, limited
from .data_adapters import warn_ran_out


class _Raised:
    """An exception the generator raised while fit peeked at it, kept to be
    raised in its place in the epoch (so it names its epoch and batch)."""

    def __init__(self, exc):
        self.exc = exc


class GeneratorAdapter(BatchStreamAdapter):
    """Args: ``it`` the iterator; ``conv``, ``needs_y``, ``source`` as
    BatchStreamAdapter's; ``steps``: batches per epoch (or evaluation),
    None for all."""

    def __init__(self, it, conv, needs_y, steps, source="the generator"):
        self._it, self.source, self.steps = it, source, steps
        self._pending = collections.deque()
        self.exhausted = self._ran_out = self._warned = False
        self._taken = 0
        try:
            first = next(it)
        except StopIteration:
            raise ValueError(f"{source} must yield at least one batch; it yielded "
                             "none (an empty or already used generator?)") from None
        self._pending.append(first)
        super().__init__(conv, self.unpack(first), needs_y, source)

    def _stream(self):
        """The batches, the peeked ones first; notes when the generator ends."""
        while True:
            if self._pending:
                batch = self._pending.popleft()
                if isinstance(batch, _Raised):
                    raise batch.exc
            else:
                try:
                    batch = next(self._it)
                except StopIteration:
                    self._ran_out = True
                    return
            self._taken += 1
            yield batch

    def more(self):
        if not self.exhausted and not self._pending and self.steps is not None:
            try:
                self._pending.append(next(self._it))
            except StopIteration:
                self.exhausted = True
            except Exception as exc:    # raised in the epoch, where it is named
                self._pending.append(_Raised(exc))
        if self.exhausted:
            if not self._warned:
                self._warned = True
                warn_ran_out()
            return False
        return True

    def epoch(self, rng):
        self._taken = 0
        yield from self.chunks(limited(self._stream(), self.steps))
        if self._ran_out:
            self.exhausted = True
            if self.steps is not None and self._taken < self.steps:
                self._warned = True
                warn_ran_out()
