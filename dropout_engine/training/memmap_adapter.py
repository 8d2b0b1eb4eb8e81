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

Memory: a fit holds a few chunks (``data_adapters.CHUNK_BYTES`` each) and
the epoch's order (4 bytes a row), not the data.  A read-only or shared
memmap larger than ``RELEASE_BYTES`` is read with pread (Linux, in C) or
through its mapping in blocks whose pages are handed back
(``MemmapRows``), so the process's resident size stays flat however large
the file; a copy-on-write memmap (``mode="c"``) keeps its pages, which may
hold the user's changes.  With a full shuffle over a file larger than
memory every row is a random read: ``shuffle="batch"`` reads whole batches in place.
"""
import mmap
import os

import numpy as np

from .. import _engine
from . import chunks, data_adapters
from .data_adapters import DataAdapter, Passes, epoch_order, shuffle_mode, warn_ran_out

RELEASE_BYTES = 256 << 20
# A large memmap is read in blocks mapping at most about this much.
_MAPPED_BYTES = 64 << 20


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

    def take(self, rows, out=None):
        """The rows ``rows`` (sorted int64, in range), into ``out`` when
        given (a buffer of the right shape and dtype)."""
        return np.take(self.a, rows, axis=0, out=out, mode="clip")

    def slice(self, lo, hi, out=None):
        """The rows lo..hi-1, a copy (into ``out`` when given)."""
        if out is None:
            return np.array(self.a[lo:hi])
        np.copyto(out, self.a[lo:hi])
        return out

    def sub(self, lo, hi):
        """The rows lo..hi-1 as a source of their own (validation_split)."""
        return type(self)(self.a[lo:hi])


def _mapped_file(addr):
    """(path, file offset of ``addr``) of the file mapping holding address
    ``addr`` in this process, checked against the file now at that path
    (same device and inode); None off Linux or when it cannot be told."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                lo, hi = (int(v, 16) for v in parts[0].split("-"))
                if lo <= addr < hi and len(parts) == 6:
                    major, minor = (int(v, 16) for v in parts[3].split(":"))
                    path = parts[5].rstrip("\n")
                    st = os.stat(path)
                    if (st.st_ino, os.major(st.st_dev), os.minor(st.st_dev)) != (
                            int(parts[4]), major, minor):
                        return None
                    return path, int(parts[2], 16) + addr - lo
    except (OSError, ValueError, IndexError):
        pass
    return None


class MemmapRows(ArrayRows):
    """Rows of a memmap.

    A large shared memmap (read-only or shared-writable, over
    ``RELEASE_BYTES``) is not read through its mapping: for every page a
    read touches the kernel maps up to 64 KB around it, so a chunk of
    random rows would map gigabytes, and unmapping them again costs a TLB
    shootdown on the core that trains.  On Linux its rows are read with
    pread (in C, ``_engine.read_rows``) from the file the mapping shows in /proc/self/maps (the
    same page cache, so unflushed writes to a shared mapping are seen):
    nothing is mapped, and runs of consecutive rows are one read each.
    Elsewhere, blocks of rows are read through the mapping and their pages
    handed back after each (``madvise(MADV_DONTNEED)``).  A copy-on-write
    memmap (``mode="c"``), whose pages may hold the user's changes, and
    small memmaps are read through the mapping as they are.
    """

    def __init__(self, a):
        super().__init__(a)
        mm = memmap_of(a)
        self._map, self._file = getattr(mm, "_mmap", None), None
        if (self._map is None or mm.mode not in ("r", "r+", "w+")
                or len(self._map) <= RELEASE_BYTES or self.n == 0):
            self._map = None
            return
        a0 = self.a
        self._addr, self._stride = a0.ctypes.data, a0.strides[0]
        self._extent = a0.itemsize + sum((d - 1) * abs(s) for d, s in
                                         zip(a0.shape[1:], a0.strides[1:]))
        if self._stride > 0 and a0[0].flags.c_contiguous and hasattr(os, "pread"):
            self._file = _mapped_file(self._addr)
        if self._file is None and not hasattr(mmap, "MADV_DONTNEED"):
            self._map = None
            return
        view = np.frombuffer(self._map, np.uint8)
        self._map_addr = view.ctypes.data
        del view
        self._block_rows = max(1, _MAPPED_BYTES // max(self._extent, 1))
        self._block_picks = max(1, _MAPPED_BYTES // max(self._extent, 64 << 10))

    def _out(self, k, out):
        return np.empty((k,) + self.a.shape[1:], self.a.dtype) if out is None else out

    def take(self, rows, out=None):
        if self._map is None:
            return super().take(rows, out)
        out = self._out(rows.shape[0], out)
        if self._file is not None:
            return self._pread(rows, out)
        step = self._block_picks
        for i in range(0, rows.shape[0], step):
            part = rows[i:i + step]
            np.take(self.a, part, axis=0, out=out[i:i + step], mode="clip")
            self._release(int(part[0]), int(part[-1]) + 1)
        return out

    def slice(self, lo, hi, out=None):
        if self._map is None:
            return super().slice(lo, hi, out)
        out = self._out(hi - lo, out)
        if self._file is not None:
            return self._pread(np.arange(lo, hi, dtype=np.int64), out)
        step = self._block_rows
        for i in range(lo, hi, step):
            j = min(hi, i + step)
            np.copyto(out[i - lo:j - lo], self.a[i:j])
            self._release(i, j)
        return out

    def _pread(self, rows, out):
        """Rows (sorted) into ``out`` (C-contiguous), read in C with the GIL
        released (io/rows.c): one read per run of consecutive rows."""
        path, pos0 = self._file
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        fd = os.open(path, os.O_RDONLY)
        try:
            if hasattr(os, "posix_fadvise") and _mostly_lone(rows):
                # No read-ahead: around each 400-byte row it would read
                # 128 KB, for a file larger than memory from disk.
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            got, err = _engine.read_rows(fd, pos0, self._stride, self._extent, rows,
                                         out.reshape(-1).view(np.uint8))
        finally:
            os.close(fd)
        if got < rows.shape[0]:
            pos = pos0 + int(rows[got]) * self._stride
            if err:
                raise OSError(err, f"reading row {int(rows[got])} of {path} (byte {pos}): "
                              f"{os.strerror(err)}")
            raise OSError(f"{path} ends inside row {int(rows[got])} of the memmap, "
                          f"which starts at byte {pos} (was the file truncated?)")
        return out

    def _release(self, lo, hi):
        """Hand back the pages of rows lo..hi-1 (read through the mapping)."""
        ends = (self._addr + lo * self._stride, self._addr + (hi - 1) * self._stride)
        start = min(ends) - self._map_addr
        stop = max(ends) + self._extent - self._map_addr
        page = mmap.PAGESIZE
        start = max(0, start // page * page)
        stop = min(len(self._map), -(-stop // page) * page)
        if stop > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _mostly_lone(rows):
    """More than two thirds of the sorted rows start a run of their own."""
    return np.count_nonzero(np.diff(rows) != 1) + 1 > 2 * rows.shape[0] // 3


def _argsort(sel):
    """np.argsort of distinct row numbers; for int32, two stable 16-bit
    radix passes (numpy sorts 16-bit keys by radix), twice as fast."""
    if sel.dtype != np.int32:
        return np.argsort(sel)
    low = np.argsort((sel & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((sel[low] >> 16).astype(np.uint16), kind="stable")]


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
        self._rows = max(1, data_adapters.CHUNK_BYTES // per_row // B) * B
        self._passes = Passes(-(-n // B), steps)
        self._order = None
        self._recycler = chunks.Recycler()
        # x is gathered into reused buffers when it is a numpy array.
        self._buffered = isinstance(x, ArrayRows)

    def epoch(self, rng):
        new, first, stop, short = self._passes.next_epoch()
        n, B = self.num_samples, self.batch_size
        if new and (self._order is None or (self.shuffle and rng is not None)):
            self._order = epoch_order(n, B, self.shuffle, rng,
                                      np.int32 if n < 2 ** 31 else np.int64)
        if short:
            warn_ran_out()
        yield from self._recycler.run(
            lambda hungry: self._produce(first * B, min(stop * B, n), first))

    def _produce(self, a, b, first_step):
        B, R = self.batch_size, self._rows
        x = self.x
        for c in range(a, b, R):
            sel = self._order[c:min(c + R, b)]
            k = sel.shape[0]
            lo, hi = int(sel.min()), int(sel.max()) + 1
            if hi - lo == k:     # consecutive rows: read the block
                rows = np.arange(lo, hi, dtype=np.int64)
                local = (sel - lo).astype(np.int64)
                read = (lambda s, out=None: s.slice(lo, hi, out))
            else:                # read forward through the file, then unsort
                perm = _argsort(sel)
                rows = sel[perm].astype(np.int64)
                local = np.empty(k, np.int64)
                local[perm] = np.arange(k, dtype=np.int64)
                read = (lambda s, out=None: s.take(rows, out))
            buf = (self._recycler.get((R,) + x.a.shape[1:], x.a.dtype)
                   if self._buffered else None)
            raw = [read(x, None if buf is None else buf[:k])]
            raw += [None if s is None else read(s) for s in (self.y, self.sw)]
            chunk, failure = chunks.convert(self.conv, *raw, local, B,
                                            first_step + (c - a) // B, self.source, rows)
            if chunk is not None:
                self._recycler.sent(buf)
                yield chunk
            if failure is not None:
                raise failure
