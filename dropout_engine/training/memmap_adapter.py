"""Data read a chunk at a time: numpy memmaps (``np.load(path,
mmap_mode="r")``, ``np.memmap``) and tables (pandas, pyarrow:
``frame_rows``), never loaded whole.

Each chunk of an epoch is a run of whole batches of the epoch's order (the
same shuffle as in-memory arrays, so a seeded fit on a memmap equals the
fit on the loaded array bit for bit).  The prefetch thread gathers the
chunk's rows **in sorted order** (one pass forward through the file, for
locality), converts them once to float32 and validates them, while C
trains on the chunk before; the chunk's index then puts the rows back in
the shuffle's batch order, so every batch holds exactly the rows it would
hold in memory.  Unshuffled data and ``shuffle="batch"`` read blocks of
consecutive rows.

Memory: a fit holds a few chunks (``CHUNK_BYTES`` each) and the epoch's
order (4 bytes a row), not the data.  The pages of a read-only or shared
memmap larger than ``RELEASE_BYTES`` are handed back to the page cache
after each chunk (``madvise(MADV_DONTNEED)``), so the process's resident
size stays flat however large the file; a copy-on-write memmap
(``mode="c"``) keeps its pages, which may hold the user's changes.  With a
full shuffle over a file larger than memory every row is a random read:
``shuffle="batch"`` reads whole batches in place.
"""
import mmap

import numpy as np

from . import chunks
from .batch_stream import CHUNK_BYTES
from .data_adapters import DataAdapter, Passes, epoch_order, shuffle_mode, warn_ran_out
from .prefetch import Prefetch

RELEASE_BYTES = 256 << 20


def memmap_of(a):
    """The np.memmap ``a`` is (or is a view of), else None."""
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return a
        a = a.base
    return None


class ArrayRows:
    """Rows of an ndarray; ``take`` and ``slice`` return copies."""

    def __init__(self, a):
        self.a = np.asarray(a)
        self.n = self.a.shape[0]
        self.row_bytes = self.a.itemsize * int(np.prod(self.a.shape[1:]))

    def take(self, rows):
        """The rows ``rows`` (sorted int64), a new array."""
        return np.take(self.a, rows, axis=0)

    def slice(self, lo, hi):
        return np.array(self.a[lo:hi])

    def sub(self, lo, hi):
        """The rows lo..hi-1 as a source of their own (validation_split)."""
        return type(self)(self.a[lo:hi])

    def release(self, lo, hi):
        """Rows lo..hi-1 were read (a memmap hands their pages back)."""


class MemmapRows(ArrayRows):
    """Rows of a memmap; pages released after each read when large."""

    def __init__(self, a):
        super().__init__(a)
        mm = memmap_of(a)
        self._map = getattr(mm, "_mmap", None)
        if (self._map is None or mm.mode not in ("r", "r+", "w+")
                or len(self._map) <= RELEASE_BYTES or not hasattr(mmap, "MADV_DONTNEED")
                or self.n == 0):
            self._map = None
            return
        view = np.frombuffer(self._map, np.uint8)
        self._map_addr = view.ctypes.data
        del view
        a0 = self.a
        self._addr, self._stride = a0.ctypes.data, a0.strides[0]
        self._extent = a0.itemsize + sum((d - 1) * abs(s) for d, s in
                                         zip(a0.shape[1:], a0.strides[1:]))

    def release(self, lo, hi):
        if self._map is None or hi <= lo:
            return
        ends = (self._addr + lo * self._stride, self._addr + (hi - 1) * self._stride)
        start = min(ends) - self._map_addr
        stop = max(ends) + self._extent - self._map_addr
        page = mmap.PAGESIZE
        start = max(0, start // page * page)
        stop = min(len(self._map), -(-stop // page) * page)
        if stop > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, stop - start)


def rows_of(a):
    """The row source for an array-like that is not a table."""
    if memmap_of(a) is not None:
        return MemmapRows(a)
    return ArrayRows(a if isinstance(a, np.ndarray) else np.asarray(a))


class RowsAdapter(DataAdapter):
    """Args:
        conv: the converter ``(x, y, sw) -> (x, t, sw)`` (``inputs``).
        x, y, sw: row sources (y, sw may be None).
        batch_size, shuffle, steps: fit's (shuffle False for evaluation).
        source: the name in messages.
    """

    def __init__(self, conv, x, y, sw, batch_size, shuffle, steps, source="x"):
        n = x.n
        for name, s in (("y", y), ("sample_weight", sw)):
            if s is not None and s.n != n:
                raise ValueError(f"{source} has {n} rows, its {name} {s.n}")
        if n == 0:
            raise ValueError(f"{source} is empty (0 rows)")
        self.conv, self.x, self.y, self.sw, self.source = conv, x, y, sw, source
        self.num_samples, self.steps = n, steps
        self.batch_size = B = min(batch_size, n)
        self.shuffle = shuffle_mode(shuffle)
        # The first rows, converted now: they build the model, fix the
        # targets' columns, and a bad file fails before training starts.
        k = min(n, B)
        _, t, sw0 = conv(x.slice(0, k), None if y is None else y.slice(0, k),
                         None if sw is None else sw.slice(0, k))
        self.t_cols = None if t is None else t.shape[1]
        self.weighted = sw0 is not None
        per_row = max(1, x.row_bytes + 4 * (self.t_cols or 0) + 4 * self.weighted)
        self._rows = max(1, CHUNK_BYTES // per_row // B) * B
        self._passes = Passes(-(-n // B), steps)
        self._order = None

    def epoch(self, rng):
        new, first, stop, short = self._passes.next_epoch()
        n, B = self.num_samples, self.batch_size
        if new:
            self._order = epoch_order(n, B, self.shuffle, rng,
                                      np.int32 if n < 2 ** 31 else np.int64)
        if short:
            warn_ran_out()
        pre = Prefetch(lambda hungry: self._produce(first * B, min(stop * B, n), first))
        try:
            yield from pre
        finally:
            pre.close()

    def _produce(self, a, b, first_step):
        B, R = self.batch_size, self._rows
        sources = (self.x, self.y, self.sw)
        for c in range(a, b, R):
            sel = self._order[c:min(c + R, b)]
            k = sel.shape[0]
            lo, hi = int(sel.min()), int(sel.max()) + 1
            if hi - lo == k:     # consecutive rows: read the block
                rows = np.arange(lo, hi, dtype=np.int64)
                local = (sel - lo).astype(np.int64)
                raw = [None if s is None else s.slice(lo, hi) for s in sources]
            else:                # read forward through the file, then unsort
                perm = np.argsort(sel, kind="stable")
                rows = sel[perm].astype(np.int64)
                local = np.empty(k, np.int64)
                local[perm] = np.arange(k, dtype=np.int64)
                raw = [None if s is None else s.take(rows) for s in sources]
            for s in sources:
                if s is not None:
                    s.release(lo, hi)
            chunk, failure = chunks.convert(self.conv, *raw, local, B,
                                            first_step + (c - a) // B, self.source, rows)
            if chunk is not None:
                yield chunk
            if failure is not None:
                raise failure
