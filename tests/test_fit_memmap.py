"""Memmaps and .npy files read a chunk at a time (training/memmap_adapter.py);
steps_per_epoch and shuffle="batch" over arrays (data_adapters.py).

A fit on a memmap draws the same shuffle as the fit on the loaded array
and puts the sorted-gathered rows back in batch order, so the two agree
bit for bit, for any chunk size.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dropout_engine.training import data_adapters, memmap_adapter

from test_fit_generators import RAN_OUT, _data, _model, _same_weights


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(data_adapters, "CHUNK_BYTES", 3000)


def _npy(tmp_path, a, name="x.npy"):
    path = tmp_path / name
    np.save(path, a)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("shuffle", [True, False, "batch"])
def test_memmap_fit_equals_the_in_memory_fit(tmp_path, small_chunks, shuffle):
    x, y = _data(n=300)
    mm = _npy(tmp_path, x)
    ref = _model()
    href = ref.fit(x, y, batch_size=16, epochs=3, shuffle=shuffle, verbose=0,
                   validation_split=0.2)
    m = _model()
    h = m.fit(mm, y, batch_size=16, epochs=3, shuffle=shuffle, verbose=0,
              validation_split=0.2)
    assert _same_weights(m, ref)
    assert h.history["loss"] == pytest.approx(href.history["loss"], rel=1e-6)
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)


def test_float64_memmap_with_weights_and_memmapped_targets(tmp_path, small_chunks):
    x, y = _data(n=300)
    x64 = x.astype(np.float64)
    sw = np.random.default_rng(4).uniform(0, 2, 300)
    ref = _model()
    ref.fit(x64, y, batch_size=32, epochs=2, sample_weight=sw, verbose=0)
    m = _model()
    m.fit(_npy(tmp_path, x64), _npy(tmp_path, y, "y.npy"), batch_size=32, epochs=2,
          sample_weight=_npy(tmp_path, sw, "w.npy"), verbose=0)
    assert _same_weights(m, ref)
    cw = {0: 2.0, 2: 0.5}
    ref = _model()
    ref.fit(x, y, batch_size=32, class_weight=cw, verbose=0)
    m = _model()
    m.fit(_npy(tmp_path, x, "x2.npy"), y, batch_size=32, class_weight=cw, verbose=0)
    assert _same_weights(m, ref)


def test_rows_are_read_in_sorted_order_chunk_by_chunk(tmp_path, small_chunks, monkeypatch):
    x, y = _data(n=300)
    mm = _npy(tmp_path, x)
    reads = []
    take = memmap_adapter.ArrayRows.take

    def spy(self, rows, out=None):
        if self.a.shape == x.shape:
            reads.append(np.array(rows))
        return take(self, rows, out)

    monkeypatch.setattr(memmap_adapter.ArrayRows, "take", spy)
    _model().fit(mm, y, batch_size=16, epochs=1, verbose=0)
    assert len(reads) > 3                                  # several chunks
    assert all((np.diff(r) > 0).all() for r in reads)      # each read forward
    assert sorted(np.concatenate(reads).tolist()) == list(range(300))


@pytest.mark.parametrize("shuffle", [True, False])
def test_large_memmaps_are_read_without_keeping_their_pages(tmp_path, small_chunks,
                                                            monkeypatch, shuffle):
    """Over RELEASE_BYTES: read with pread in C (Linux), else through the mapping
    with the pages handed back; copy-on-write ones as they are.  Every way
    trains the same weights."""
    x, y = _data(n=300)
    monkeypatch.setattr(memmap_adapter, "RELEASE_BYTES", 0)
    calls = {"_pread": 0, "_release": 0}
    for name in calls:
        def spy(self, *a, _f=getattr(memmap_adapter.MemmapRows, name), _n=name):
            calls[_n] += 1
            return _f(self, *a)
        monkeypatch.setattr(memmap_adapter.MemmapRows, name, spy)
    ref = _model()
    ref.fit(x, y, batch_size=16, shuffle=shuffle, verbose=0)
    paths = {"r": tmp_path / "r.npy", "c": tmp_path / "c.npy"}
    for p in paths.values():
        np.save(p, x)
    ways = [("r", "_pread" if sys.platform.startswith("linux") else "_release"),
            ("c", None)]
    for mode, used in ways + [("r", "_release")]:
        if (mode, used) == ("r", "_release"):
            monkeypatch.setattr(memmap_adapter, "_mapped_file", lambda addr: None)
        calls.update(_pread=0, _release=0)
        m = _model()
        m.fit(np.load(paths[mode], mmap_mode=mode), y, batch_size=16, shuffle=shuffle,
              verbose=0)
        assert _same_weights(m, ref), (mode, used)
        assert {k for k, v in calls.items() if v} == ({used} if used else set())


def test_preadv_reads_the_file_the_mapping_shows(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/maps (Linux)")
    x, _ = _data(n=300)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    path, pos = memmap_adapter._mapped_file(mm.ctypes.data)
    assert os.path.samefile(path, tmp_path / "x.npy") and pos == mm.offset
    (tmp_path / "x.npy").rename(tmp_path / "old.npy")
    np.save(tmp_path / "x.npy", x + 1)          # another file now has the name
    assert memmap_adapter._mapped_file(mm.ctypes.data)[0].endswith("old.npy")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_large_memmap_rows_are_read_in_c_runs_strides_and_a_truncated_file(tmp_path,
                                                                         monkeypatch):
    """The pread gather (io/rows.c) against numpy's fancy indexing: lone
    rows, runs of consecutive rows, a memmap whose rows are strided (every
    other column block), and a file cut short under the mapping."""
    monkeypatch.setattr(memmap_adapter, "RELEASE_BYTES", 0)
    a = np.random.default_rng(0).standard_normal((500, 37)).astype(np.float32)
    mm = _npy(tmp_path, a)
    rows = np.array([0, 3, 4, 5, 6, 90, 91, 250, 499], np.int64)
    for view in (mm, mm[:, 5:21], mm[1::3]):
        src = memmap_adapter.MemmapRows(view)
        assert src._file is not None
        want = np.asarray(view)[rows[rows < view.shape[0]]]
        assert np.array_equal(src.take(rows[rows < view.shape[0]]), want)
        assert np.array_equal(src.slice(7, 60), np.asarray(view)[7:60])
    src = memmap_adapter.MemmapRows(mm)
    with open(tmp_path / "x.npy", "r+b") as f:
        f.truncate(mm.offset + 100 * a.strides[0] + 10)
    for rows in ([5, 100, 101], [97, 98, 100, 101], [99, 100]):   # lone, in a span, a run
        with pytest.raises(OSError, match=f"ends inside row 100 of the memmap, which "
                                          f"starts at byte {mm.offset + 100 * a.strides[0]} "):
            src.take(np.array(rows, np.int64))
    assert np.array_equal(src.take(np.array([5, 99], np.int64)), a[[5, 99]])


def test_nan_row_names_the_batch_and_row_and_keeps_the_weights(tmp_path, small_chunks):
    x, y = _data(n=300)
    bad = x.copy()
    bad[171, 2] = np.nan                      # batch 10 of 16-row batches
    m = _model()
    with pytest.raises(ValueError, match="NaN") as info:
        m.fit(_npy(tmp_path, bad), y, batch_size=16, shuffle=False, verbose=0)
    assert "fit: epoch 0, batch 10 of x (rows 160, 161," in str(info.value)
    ref = _model()
    ref.fit(x[:160], y[:160], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_evaluate_and_predict_read_the_memmap_in_chunks(tmp_path, small_chunks):
    x, y = _data(n=300)
    mm = _npy(tmp_path, x)
    m = _model()
    m.fit(x, y, verbose=0)
    np.testing.assert_array_equal(m.predict(mm), m.predict(x))
    np.testing.assert_allclose(m.evaluate(mm, y, verbose=0), m.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    h = _model().fit(x, y, epochs=2, verbose=0, validation_data=(mm, y))
    href = _model().fit(x, y, epochs=2, verbose=0, validation_data=(x, y))
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)


def test_memmap_and_target_rows_must_agree(tmp_path):
    x, y = _data(n=300)
    with pytest.raises(ValueError, match="x has 300 rows, its y 299"):
        _model().fit(_npy(tmp_path, x), y[:299], verbose=0)


# ----------------------------------------------- steps_per_epoch over arrays
@pytest.mark.parametrize("memmapped", [False, True])
def test_steps_per_epoch_goes_on_through_the_arrays(tmp_path, memmapped):
    x, y = _data(n=160)                        # 10 batches of 16
    data = _npy(tmp_path, x) if memmapped else x
    m = _model()
    h = m.fit(data, y, batch_size=16, steps_per_epoch=3, epochs=3, shuffle=False,
              verbose=0)
    assert len(h.history["loss"]) == 3
    ref = _model()
    ref.fit(x[:144], y[:144], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    with pytest.warns(UserWarning, match=RAN_OUT):
        h = _model().fit(data, y, batch_size=16, steps_per_epoch=12, epochs=2,
                         verbose=0)
    assert len(h.history["loss"]) == 2        # each epoch is the whole pass


def test_steps_per_epoch_without_batch_size_sets_it_as_keras():
    x, y = _data(n=160)
    m = _model()
    m.fit(x, y, steps_per_epoch=4, shuffle=False, verbose=0)
    ref = _model()
    ref.fit(x, y, batch_size=40, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive int"):
        _model().fit(x, y, steps_per_epoch=0, verbose=0)


def test_shuffle_batch_shuffles_inside_batches_only():
    rng = np.random.default_rng(0)
    order = data_adapters.epoch_order(70, 16, "batch", rng)
    for i in range(0, 70, 16):
        assert sorted(order[i:i + 16]) == list(range(i, min(i + 16, 70)))
    assert not np.array_equal(order, np.arange(70))
    with pytest.raises(ValueError, match="shuffle must be True, False or 'batch'"):
        data_adapters.shuffle_mode("rows")


# ------------------------------------------- a file larger than the budget
_RSS_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import dropout_engine as de
    from dropout_engine.layers import Dense, Input
    from dropout_engine.model import Sequential

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key)) * 1024

    path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = np.load(path, mmap_mode="r")
    y = np.zeros(n, np.int8)
    y[::3] = 1
    de.set_random_seed(0)
    de.set_num_threads(1)           # no OpenMP barriers on a busy machine
    m = Sequential([Input((d,)), Dense(64, activation="relu"), Dense(64, activation="relu"),
                    Dense(10, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    w0 = m.get_weights()[0].copy()
    m.fit(x[:4096], y[:4096], batch_size=1024, verbose=0)   # warm every code path
    w0 = m.get_weights()[0].copy()
    try:
        with open("/proc/self/clear_refs", "w") as f:        # VmHWM := VmRSS
            f.write("5")
    except OSError:
        pass
    before = status("VmRSS:")
    m.fit(x, y, batch_size=1024, steps_per_epoch=int(sys.argv[4]), verbose=0)
    moved = np.abs(m.get_weights()[0] - w0).sum(axis=1)
    print(json.dumps({"before": before, "peak": status("VmHWM:"),
                      "after": status("VmRSS:"), "moved": moved.tolist()}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_fit_over_a_6_gb_memmap_keeps_resident_memory_flat(tmp_path):
    """6 GB of W2-shaped rows (float32, 100 features), shuffled: 300 batches
    of 1024 random rows from the whole file; resident memory may grow by
    less than 500 MB.  The file is sparse (writing 6 GB takes half a
    minute here); the rows that hold data mark the first and the last
    tenth of the file in different features, so the first layer's kernel
    moves for both only if rows from both ends were read."""
    free = shutil.disk_usage(tmp_path).free
    if free < 10 << 30:
        pytest.skip(f"needs 10 GB free disk for the 6 GB file, {free >> 30} GB free")
    d = 100
    n = (6 << 30) // (4 * d)
    path = tmp_path / "big.npy"
    try:
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        tenth = n // 10
        rng = np.random.default_rng(1)
        for lo, col in ((0, 0), (n - tenth, d - 1)):
            rows = np.arange(lo, lo + tenth, 256)
            mm[rows, col] = rng.uniform(1, 2, rows.size).astype(np.float32)
        mm.flush()
        del mm
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.getcwd()] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), str(n), str(d),
                              "300"], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        path.unlink(missing_ok=True)
    growth = max(r["peak"], r["after"]) - r["before"]
    assert growth < 500 << 20, f"resident memory grew by {growth >> 20} MB"
    moved = np.array(r["moved"])
    assert moved[0] > 0 and moved[-1] > 0          # rows from both ends were trained on
    assert (moved[1:-1] == 0).all()                # the all-zero features never moved
