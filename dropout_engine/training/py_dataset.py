"""PyDataset (Keras 3's ``keras.utils.PyDataset``, alias ``Sequence``) and
its adapter.

A PyDataset is indexed by batch: ``__len__`` batches, ``ds[i]`` the batch
i as ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``;
``on_epoch_begin`` / ``on_epoch_end`` run around each epoch.  Ours and
Keras's own (and any object with ``__getitem__``, ``__len__`` and
``on_epoch_end``, such as tf.keras's Sequence) are taken alike.

Keras 3's rules, which fit follows here:
  - ``shuffle=True`` (fit's default) visits the batches in a new random
    order at each pass (drawn from the fit's seeded generator, where Keras
    uses Python's ``random``); False in index order; evaluate and predict
    never shuffle.  A PyDataset whose ``num_batches`` is None is infinite:
    it needs ``steps_per_epoch`` and is never shuffled.
  - ``steps_per_epoch`` smaller than the length goes on through the
    dataset across epochs; larger, the epoch ends at the dataset's end
    with the "ran out of data" warning and the next starts a new pass.
  - ``y`` and ``sample_weight`` must come from the dataset; ``class_weight``
    is applied to its targets.
  - ``workers``, ``use_multiprocessing``, ``max_queue_size`` (the
    constructor's): batches are read by ``workers`` threads (or processes,
    with use_multiprocessing; the dataset must then pickle unless the
    start method is fork; the default one is used, as by Keras), at most
    ``max_queue_size`` ahead, in order.
    With the default single worker, batches are read by the prefetch
    thread while C trains.  Pools live for one epoch, as Keras's do, so
    workers see what ``on_epoch_end`` changed.
"""
import itertools
from collections import deque

import numpy as np

from .batch_stream import BatchStreamAdapter
from .data_adapters import Passes, epoch_order, shuffle_mode, warn_ran_out
from .distribution import warn

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for a dataset of batches computed in Python (Keras 3's).

    Implement ``__len__`` (the number of batches) and ``__getitem__(i)``
    (batch i: ``x``, ``(x, y)`` or ``(x, y, sample_weight)``); optionally
    ``on_epoch_begin`` / ``on_epoch_end``.

    Args:
        workers: threads (or processes) reading batches during fit.
        use_multiprocessing: read batches in processes (the dataset must
            pickle unless the start method is fork).
        max_queue_size: batches read ahead at most.

    Example:
        >>> class Batches(PyDataset):
        ...     def __init__(self, x, y, batch_size, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.x, self.y, self.batch_size = x, y, batch_size
        ...     def __len__(self):
        ...         return -(-len(self.x) // self.batch_size)
        ...     def __getitem__(self, i):
        ...         s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        ...         return self.x[s], self.y[s]
        >>> model.fit(Batches(x, y, 32, workers=2), epochs=3)  # doctest: +SKIP
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        if not all(hasattr(self, a) for a in ("_workers", "_use_multiprocessing",
                                              "_max_queue_size")):
            self.__dict__.setdefault("_workers", 1)
            self.__dict__.setdefault("_use_multiprocessing", False)
            self.__dict__.setdefault("_max_queue_size", 10)
            warn("Your `PyDataset` class should call `super().__init__(**kwargs)` "
                 "in its constructor. `**kwargs` can include `workers`, "
                 "`use_multiprocessing`, `max_queue_size`. Do not pass these "
                 "arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError

    @property
    def num_batches(self):
        """The number of batches (``len``), or None for an infinite dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property "
                                  "or `__len__`")

    def __iter__(self):
        n = self.num_batches
        for i in range(n) if n is not None else itertools.count():
            yield self[i]

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset


def is_py_dataset(x):
    """Ours, Keras's, or duck-typed: __getitem__, __len__ (or num_batches)
    and on_epoch_end, and not an array, list or table."""
    if isinstance(x, PyDataset):
        return True
    if isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    cls = type(x)
    return (hasattr(cls, "__getitem__") and hasattr(x, "on_epoch_end")
            and (hasattr(cls, "__len__") or hasattr(x, "num_batches")))


def _num_batches(ds):
    """Keras's ``num_batches`` (None: infinite), else ``len`` (tf.keras's
    Sequence has only that)."""
    return ds.num_batches if hasattr(ds, "num_batches") else len(ds)


_WORKER_DATASET = None


def _init_worker(ds):
    global _WORKER_DATASET
    _WORKER_DATASET = ds


def _worker_getitem(i):
    return _WORKER_DATASET[i]


def _read(ds, order, workers, use_mp, max_queue):
    """The batches ``ds[i]`` for i in ``order``, in order: here (the
    prefetch thread) for one thread, else from a pool of ``workers``
    threads or processes with at most ``max_queue`` batches in flight."""
    if workers <= 1 and not use_mp:
        for i in order:
            yield ds[int(i)]
        return
    # multiprocessing costs a quarter of the model API's import: loaded here.
    import multiprocessing.pool
    workers = max(1, int(workers))
    if use_mp:
        pool = multiprocessing.get_context().Pool(workers, initializer=_init_worker,
                                                  initargs=(ds,))
        fn = _worker_getitem
    else:
        pool = multiprocessing.pool.ThreadPool(workers)
        fn = ds.__getitem__
    try:
        it = iter(order)
        pending = deque(pool.apply_async(fn, (int(i),))
                        for i in itertools.islice(it, max(1, int(max_queue))))
        while pending:
            batch = pending.popleft().get()
            for i in itertools.islice(it, 1):
                pending.append(pool.apply_async(fn, (int(i),)))
            yield batch
    finally:
        pool.terminate()
        pool.join()


class PyDatasetAdapter(BatchStreamAdapter):
    """Args: ``ds`` the dataset; ``conv``, ``needs_y``, ``source`` as
    BatchStreamAdapter's; ``shuffle``: fit's (False for evaluation);
    ``steps``: batches per epoch or None for the length."""

    def __init__(self, ds, conv, needs_y, shuffle, steps, source="the PyDataset"):
        self.ds, self.source, self.steps = ds, source, steps
        n = _num_batches(ds)
        if n is None:
            if steps is None:
                raise ValueError(f"{source} is infinite (num_batches is None): pass "
                                 "steps_per_epoch (or steps) to say how many batches "
                                 "make an epoch")
            if shuffle:
                warn("`shuffle=True` was passed, but will be ignored since the "
                     "data `x` was provided as an infinite PyDataset. The "
                     "PyDataset is expected to already be shuffled.", stacklevel=5)
            shuffle = False
        elif n < 1:
            raise ValueError(f"{source} has no batches (len {n})")
        self.length, self.shuffle = n, shuffle_mode(shuffle)
        self._passes = Passes(n, steps) if n is not None else None
        self._infinite = itertools.count() if n is None else None
        self._order = None
        self.workers = getattr(ds, "workers", 1)
        self.use_mp = bool(getattr(ds, "use_multiprocessing", False))
        self.max_queue = getattr(ds, "max_queue_size", 10)
        super().__init__(conv, self.unpack(ds[0]), needs_y, source)

    @property
    def num_batches(self):
        return self.steps if self.steps is not None else self.length

    def unpack(self, batch):
        if isinstance(batch, np.ndarray):     # Keras takes a bare x
            batch = (batch,)
        return super().unpack(batch)

    def epoch(self, rng):
        if self._infinite is not None:
            order, first, short = itertools.islice(self._infinite, self.steps), 0, False
        else:
            new, first, stop, short = self._passes.next_epoch()
            if new:
                self._order = epoch_order(self.length, 1, bool(self.shuffle), rng)
            order = self._order[first:stop]
        if short:
            warn_ran_out()
        begin = getattr(self.ds, "on_epoch_begin", None)
        if begin is not None:
            begin()
        yield from self.chunks(_read(self.ds, order, self.workers, self.use_mp,
                                     self.max_queue))
        end = getattr(self.ds, "on_epoch_end", None)
        if end is not None:
            end()
