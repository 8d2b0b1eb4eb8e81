"""fit's inputs: W2 trained from a generator of batches, from a PyDataset
and from a memmapped .npy file, each against the same fit on the arrays in
memory (the same model, weights and rows, in the same run).

The generator and the PyDataset hand over the batches in order (slices of
the arrays); the in-memory fit and the memmap shuffle.  A ratio near 1
means the prefetch thread fills the next chunk while C trains on this one.
The memmap is small enough to be read through its mapping; the last row
reads the same file as a memmap over the 256 MB threshold is read (one
``os.preadv`` per shuffled row), without writing gigabytes.
"""
import os
import tempfile
import time

import numpy as np

from . import ours
from .nets import workloads


def _best(fn, repeats):
    fn()                                  # warm-up (and, for a memmap, the page cache)
    best = np.inf
    for _ in range(repeats):
        time.sleep(0.2)
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(threads, quick):
    import dropout_engine as de
    from dropout_engine.keras import utils
    from dropout_engine.training import memmap_adapter
    de.set_num_threads(threads)
    net = workloads(quick)["W2"]
    net.rows = net.batch * (2000 if quick else 8000)
    net.weights = net.init_weights()
    x, y = net.data()
    B, n = net.batch, net.rows
    model = ours._model(net)

    def in_memory():
        model.fit(x, y, batch_size=B, epochs=1, verbose=0)

    def batches():
        for i in range(0, n, B):
            yield x[i:i + B], y[i:i + B]

    class Batches(utils.PyDataset):
        def __len__(self):
            return -(-n // B)

        def __getitem__(self, i):
            return x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]

    def generator():
        model.fit(batches(), epochs=1, verbose=0, shuffle=False)

    def py_dataset():
        model.fit(Batches(), epochs=1, verbose=0)

    repeats = 3 if quick else 5
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, x)
        mm = np.load(path, mmap_mode="r")

        def memmap():
            model.fit(mm, y, batch_size=B, epochs=1, verbose=0)

        def memmap_large():
            saved = memmap_adapter.RELEASE_BYTES
            memmap_adapter.RELEASE_BYTES = 0
            try:
                model.fit(mm, y, batch_size=B, epochs=1, verbose=0)
            finally:
                memmap_adapter.RELEASE_BYTES = saved

        base = n / _best(in_memory, repeats)
        for name, fn in (("generator of batches", generator), ("PyDataset", py_dataset),
                         ("memmap .npy", memmap),
                         ("memmap as if > 256 MB", memmap_large)):
            rate = n / _best(fn, repeats)
            rows.append(dict(bench=f"fit W2 from {name}", case=f"batch {B}, {n} rows",
                             threads=threads, ours=rate, peer=base, unit="samples/s",
                             peer_name="ours, arrays in memory", spread=0.0,
                             ratio=rate / base))
        del mm
    return rows
