"""PyDataset (training/py_dataset.py): ours, Keras's, duck-typed Sequences;
batch order, workers, steps_per_epoch and epoch hooks as Keras 3's."""
import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

from dropout_engine.keras import utils as kutils
from dropout_engine.training import data_adapters
from dropout_engine.utils import PyDataset, Sequence

from test_fit_generators import RAN_OUT, _data, _model, _same_weights


class Batches(PyDataset):
    """The batches of (x, y) in order; records the indices asked for."""

    def __init__(self, x, y, B, sw=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.B, self.sw = x, y, B, sw
        self.asked, self.epoch_ends, self.epoch_begins = [], 0, 0
        self._lock = threading.Lock()

    def __len__(self):
        return -(-len(self.x) // self.B)

    def __getitem__(self, i):
        with self._lock:
            self.asked.append(i)
        s = slice(i * self.B, (i + 1) * self.B)
        if self.sw is not None:
            return self.x[s], self.y[s], self.sw[s]
        return self.x[s], self.y[s]

    def on_epoch_begin(self):
        self.epoch_begins += 1

    def on_epoch_end(self):
        self.epoch_ends += 1


def test_public_names():
    assert kutils.PyDataset is PyDataset and Sequence is PyDataset
    ds = PyDataset(workers=3, use_multiprocessing=True, max_queue_size=4)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (3, True, 4)


@pytest.mark.parametrize("chunk_bytes", [None, 2048])
def test_unshuffled_fit_equals_the_array_fit(monkeypatch, chunk_bytes):
    if chunk_bytes:
        monkeypatch.setattr(data_adapters, "CHUNK_BYTES", chunk_bytes)
    x, y = _data()
    ref = _model()
    href = ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ds = Batches(x, y, 16)
    m = _model()
    h = m.fit(ds, epochs=2, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    assert h.history["loss"] == pytest.approx(href.history["loss"], rel=1e-6)
    assert (ds.epoch_begins, ds.epoch_ends) == (2, 2)
    assert ds.asked[1:] == list(range(13)) * 2     # [0] built the model


def test_callbacks_are_told_the_datasets_batches():
    from dropout_engine.callbacks import Callback
    x, y = _data()
    seen = []

    class Steps(Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.params["steps"])

    _model().fit(Batches(x, y, 16), verbose=0, callbacks=[Steps()])
    _model().fit(Batches(x, y, 16), steps_per_epoch=5, verbose=0, callbacks=[Steps()])
    assert seen == [13, 5]


def test_shuffle_visits_every_batch_once_in_a_new_seeded_order():
    x, y = _data()
    ds = Batches(x, y, 16)
    _model().fit(ds, epochs=3, verbose=0)           # fit's default shuffle=True
    epochs = [ds.asked[1 + 13 * e:1 + 13 * (e + 1)] for e in range(3)]
    assert all(sorted(e) == list(range(13)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    again = Batches(x, y, 16)
    _model().fit(again, epochs=3, verbose=0)
    assert again.asked == ds.asked                  # seeded by set_random_seed


def test_thread_workers_give_the_batches_in_order(monkeypatch):
    monkeypatch.setattr(data_adapters, "CHUNK_BYTES", 4096)
    x, y = _data()
    ref = _model()
    ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    m = _model()
    m.fit(Batches(x, y, 16, workers=3, max_queue_size=3), epochs=2, shuffle=False,
          verbose=0)
    assert _same_weights(m, ref)


_PROCESSES_CHILD = textwrap.dedent("""
    import json, os
    import numpy as np
    from dropout_engine.training import data_adapters
    from dropout_engine.training.py_dataset import _read
    from test_py_dataset import Batches, _data, _model, _same_weights

    class Pids(Batches):
        def __getitem__(self, i):
            return super().__getitem__(i) + (os.getpid(),)

    data_adapters.CHUNK_BYTES = 4096
    x, y = _data()
    m = _model()
    m.fit(Batches(x, y, 16, workers=2, use_multiprocessing=True, max_queue_size=3),
          epochs=2, shuffle=False, verbose=0)
    ref = _model()
    ref.fit(Batches(x, y, 16), epochs=2, shuffle=False, verbose=0)
    got = list(_read(Pids(x, y, 16), [3, 0, 7, 5], 2, True, 3))
    print(json.dumps({"same": _same_weights(m, ref),
                      "order": all(np.array_equal(b[0], x[i * 16:(i + 1) * 16])
                                   for b, i in zip(got, [3, 0, 7, 5])),
                      "pids": sorted({b[2] for b in got}), "me": os.getpid()}))
""")


def test_process_workers_give_the_batches_in_order():
    """In a fresh interpreter: forking one that has run JAX (other tests)
    may deadlock."""
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), tests]))
    out = subprocess.run([sys.executable, "-c", _PROCESSES_CHILD], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["same"] and r["order"]
    assert r["pids"] and r["me"] not in r["pids"]      # read by other processes


def test_thread_workers_run_getitem_concurrently():
    x, y = _data()
    inside, most = [0], [0]
    lock = threading.Lock()

    class Slow(Batches):
        def __getitem__(self, i):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            threading.Event().wait(0.01)
            with lock:
                inside[0] -= 1
            return super().__getitem__(i)

    _model().fit(Slow(x, y, 16, workers=4), shuffle=False, verbose=0)
    assert most[0] > 1


def test_steps_per_epoch_goes_on_through_the_dataset():
    x, y = _data(n=160)                            # 10 batches
    ds = Batches(x, y, 16)
    m = _model()
    m.fit(ds, steps_per_epoch=4, epochs=2, shuffle=False, verbose=0)
    assert ds.asked[1:] == list(range(8))
    assert ds.epoch_ends == 2
    ref = _model()
    ref.fit(x[:128], y[:128], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    ds = Batches(x, y, 16)
    with pytest.warns(UserWarning, match=RAN_OUT):
        h = _model().fit(ds, steps_per_epoch=6, epochs=2, shuffle=False, verbose=0)
    # Epoch 0: batches 0-5; epoch 1: the 4 left, then a new pass next time.
    assert ds.asked[1:] == list(range(10)) and len(h.history["loss"]) == 2


def test_class_weight_applies_to_the_datasets_targets():
    x, y = _data()
    cw = {0: 0.5, 1: 2.0, 2: 1.0}
    ref = _model()
    ref.fit(x, y, batch_size=16, class_weight=cw, shuffle=False, verbose=0)
    m = _model()
    m.fit(Batches(x, y, 16), class_weight=cw, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_sample_weights_from_the_dataset():
    x, y = _data()
    sw = np.random.default_rng(2).uniform(0, 2, len(x)).astype(np.float32)
    ref = _model()
    ref.fit(x, y, batch_size=16, sample_weight=sw, shuffle=False, verbose=0)
    m = _model()
    m.fit(Batches(x, y, 16, sw=sw), shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_refuses_y_and_sample_weight_and_split():
    x, y = _data()
    for kwargs, match in ((dict(y=y), "`y` should not be passed"),
                          (dict(sample_weight=np.ones(len(x))), "`sample_weight`"),
                          (dict(validation_split=0.1), "validation_split")):
        with pytest.raises(ValueError, match=match):
            _model().fit(Batches(x, y, 16), verbose=0, **kwargs)


def test_infinite_dataset_needs_steps_and_is_not_shuffled():
    x, y = _data()

    class Forever(PyDataset):
        num_batches = None

        def __getitem__(self, i):
            j = i % 12
            return x[j * 16:(j + 1) * 16], y[j * 16:(j + 1) * 16]

    with pytest.raises(ValueError, match="infinite"):
        _model().fit(Forever(), verbose=0)
    m = _model()
    with pytest.warns(UserWarning, match="infinite PyDataset"):
        m.fit(Forever(), steps_per_epoch=6, epochs=2, verbose=0)
    ref = _model()
    ref.fit(x[:192], y[:192], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_a_dataset_that_skipped_super_init_warns_as_keras():
    x, y = _data()

    class NoInit(PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 12

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]

    with pytest.warns(UserWarning, match="should call `super"):
        _model().fit(NoInit(), verbose=0)


def test_duck_typed_sequence_is_a_dataset():
    x, y = _data()

    class Seq:                                   # tf.keras-style Sequence
        def __len__(self):
            return 13

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]

        def on_epoch_end(self):
            pass

    ref = _model()
    ref.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    m = _model()
    m.fit(Seq(), shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_real_keras_pydataset_is_taken():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x, y = _data()

    class KerasBatches(keras.utils.PyDataset):
        def __init__(self, **kw):
            super().__init__(**kw)

        def __len__(self):
            return 13

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]

    ref = _model()
    ref.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    for kw in ({}, {"workers": 2}):
        m = _model()
        m.fit(KerasBatches(**kw), shuffle=False, verbose=0)
        assert _same_weights(m, ref)


def test_evaluate_and_predict_read_in_order():
    x, y = _data()
    m = _model()
    m.fit(x, y, verbose=0)
    ds = Batches(x, y, 16)
    np.testing.assert_allclose(m.evaluate(ds, verbose=0), m.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    np.testing.assert_array_equal(m.predict(ds), m.predict(x))

    class OnlyX(PyDataset):                       # a bare array per batch, as Keras takes
        def __len__(self):
            return 13

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16]

    np.testing.assert_array_equal(m.predict(OnlyX()), m.predict(x))


def test_getitem_raising_names_the_batch_and_keeps_the_weights():
    x, y = _data()

    class Broken(Batches):
        def __getitem__(self, i):
            if i == 5:
                raise OSError("bad file")
            return super().__getitem__(i)

    for workers in (1, 2):
        m = _model()
        with pytest.raises(OSError, match="bad file") as info:
            m.fit(Broken(x, y, 16, workers=workers), shuffle=False, verbose=0)
        assert "fit: epoch 0, batch 5 of the PyDataset" in "".join(info.value.__notes__)
        ref = _model()
        ref.fit(x[:80], y[:80], batch_size=16, shuffle=False, verbose=0)
        assert _same_weights(m, ref)


def test_validation_dataset():
    x, y = _data(n=300)
    ref = _model()
    href = ref.fit(x[:200], y[:200], epochs=2, verbose=0, validation_data=(x[200:], y[200:]))
    m = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = m.fit(x[:200], y[:200], epochs=2, verbose=0,
                  validation_data=Batches(x[200:], y[200:], 25))
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)
