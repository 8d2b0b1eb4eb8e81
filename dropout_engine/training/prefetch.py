"""A prefetch thread: Python fills the next chunk while C trains on this one.

The C training call releases the GIL, so a second thread can run the
user's generator or ``__getitem__``, gather memmap rows and convert them
to float32 at the same time.  One thread per epoch (or per evaluation);
the consumer (the Trainer's loop) takes the items in order.

Look-ahead is bounded: at most ``depth`` finished items wait, plus the one
the producer is building, so memory stays a few chunks.  An exception in
the producer reaches the consumer after the items made before it (a
partial chunk, then its error), so fit trains every batch that came before
the failure.  ``close`` stops the producer at its next item and joins it:
the next epoch never runs the user's generator concurrently with this one.
"""
import collections
import threading


class Prefetch:
    """Run ``make(hungry)`` (an iterator factory) in a thread; iterate it here.

    Args:
        make: called once in the thread with ``hungry``, a function saying
            whether the consumer is waiting (a producer that builds chunks
            from many small batches hands over what it has instead of
            filling the chunk); returns the iterator of items.
        depth: finished items that may wait for the consumer.
    """

    def __init__(self, make, depth=1):
        self._cond = threading.Condition()
        self._ready = collections.deque()
        self._depth = depth
        self._done = self._stop = self._waiting = False
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(make,),
                                        name="dropout_engine-prefetch", daemon=True)
        self._thread.start()

    def hungry(self):
        """The consumer waits and nothing is ready for it (read by the
        producer; an item handed over but not yet taken does not count)."""
        return self._waiting and not self._ready

    def _run(self, make):
        try:
            for item in make(self.hungry):
                with self._cond:
                    while len(self._ready) >= self._depth and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    self._ready.append(item)
                    self._cond.notify_all()
        except BaseException as exc:   # handed to the consumer, re-raised there
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self):
        return self

    def __next__(self):
        with self._cond:
            self._waiting = True
            try:
                while not self._ready and not self._done:
                    self._cond.wait()
            finally:
                self._waiting = False
            if self._ready:
                item = self._ready.popleft()
                self._cond.notify_all()
                return item
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc
        raise StopIteration

    def close(self):
        """Stop the producer at its next item and wait for it."""
        with self._cond:
            self._stop = True
            self._ready.clear()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
