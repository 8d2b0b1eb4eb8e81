"""fit / evaluate / predict on Python generators (training/generator_adapter.py,
batch_stream.py, prefetch.py), with Keras 3's rules.

The reference for every fit is the same model trained on the same batches
as arrays (shuffle=False): dropout masks are keyed by (seed, layer, step),
so the two must agree bit for bit.
"""
import threading
import warnings

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import SGD, Adam
from dropout_engine.training import data_adapters

RAN_OUT = "Your input ran out of data"


def _data(n=200, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, rng.integers(0, k, n)


def _model(seed=1, dropout=0.3, opt=None):
    de.set_random_seed(seed)
    m = Sequential([Input((6,)), Dense(8, activation="relu"), Dropout(dropout),
                    Dense(3, activation="softmax")])
    m.compile(optimizer=opt or Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _batches(x, y, B, sw=None, stop=None):
    for i in range(0, len(x) if stop is None else stop, B):
        if sw is None:
            yield x[i:i + B], y[i:i + B]
        else:
            yield x[i:i + B], y[i:i + B], sw[i:i + B]


def _same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few batches, so that an epoch spans several."""
    monkeypatch.setattr(data_adapters, "CHUNK_BYTES", 2048)


@pytest.mark.parametrize("chunked", [False, True])
def test_generator_fit_equals_array_fit_on_the_same_batches(chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(data_adapters, "CHUNK_BYTES", 2048)
    x, y = _data()
    ref = _model()
    href = ref.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    m = _model()
    h = m.fit(_batches(x, y, 16), epochs=1, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    assert h.history["loss"] == pytest.approx(href.history["loss"], rel=1e-6)
    assert h.history["accuracy"] == pytest.approx(href.history["accuracy"], rel=1e-6)


def test_sample_weights_from_the_generator(small_chunks):
    x, y = _data()
    sw = np.random.default_rng(3).uniform(0, 2, len(x)).astype(np.float32)
    ref = _model()
    ref.fit(x, y, batch_size=20, sample_weight=sw, shuffle=False, verbose=0)
    m = _model()
    m.fit(_batches(x, y, 20, sw), shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_shuffle_is_ignored_for_generators_with_keras_warning():
    x, y = _data()
    m = _model()
    with pytest.warns(UserWarning, match="shuffle=True` was passed, but will be ignored"):
        m.fit(_batches(x, y, 16), verbose=0)        # fit's default shuffle=True
    ref = _model()
    ref.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model().fit(_batches(x, y, 16), shuffle=False, verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=np.zeros(10)), "`y` should not be passed"),
    (dict(sample_weight=np.ones(10)), "`sample_weight` should not be passed"),
    (dict(class_weight={0: 2.0}), "class_weight` is not supported for Python generator"),
    (dict(validation_split=0.2), "validation_split` is only supported"),
])
def test_generator_refuses_what_must_come_in_its_batches(kwargs, match):
    x, y = _data()
    m = _model()
    before = m.get_weights()
    with pytest.raises(ValueError, match=match):
        m.fit(_batches(x, y, 16), shuffle=False, verbose=0, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def test_steps_per_epoch_goes_on_through_the_generator_across_epochs():
    x, y = _data(n=240)
    read = []

    def forever():
        i = 0
        while True:
            read.append(i)
            yield x[i % 240:i % 240 + 20], y[i % 240:i % 240 + 20]
            i += 20

    m = _model()
    h = m.fit(forever(), steps_per_epoch=4, epochs=3, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 3
    assert len(read) == 12            # nothing read beyond what was trained
    ref = _model()
    ref.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_generator_ending_before_steps_per_epoch_warns_and_stops():
    x, y = _data(n=100)
    m = _model()
    with pytest.warns(UserWarning, match=RAN_OUT) as rec:
        h = m.fit(_batches(x, y, 20), steps_per_epoch=3, epochs=4, shuffle=False,
                  verbose=0)
    assert len(h.history["loss"]) == 2        # 3 batches, then the last 2
    assert sum(RAN_OUT in str(w.message) for w in rec) == 1
    ref = _model()
    ref.fit(x, y, batch_size=20, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_generator_used_up_by_steps_per_epoch_stops_before_the_next_epoch():
    x, y = _data(n=120)
    m = _model()
    with pytest.warns(UserWarning, match=RAN_OUT):
        h = m.fit(_batches(x, y, 20), steps_per_epoch=3, epochs=5, shuffle=False,
                  verbose=0)
    assert len(h.history["loss"]) == 2


def test_finite_generator_without_steps_is_one_epoch():
    x, y = _data()
    m = _model()
    with pytest.warns(UserWarning, match=RAN_OUT):
        h = m.fit(_batches(x, y, 16), epochs=3, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # a one-epoch fit uses it up silently
        _model().fit(_batches(x, y, 16), epochs=1, shuffle=False, verbose=0)


def test_empty_generator_is_refused():
    m = _model()
    with pytest.raises(ValueError, match="must yield at least one batch"):
        m.fit(iter([]), verbose=0, shuffle=False)


def test_first_batch_must_be_a_tuple_with_targets():
    x, y = _data()
    with pytest.raises(TypeError, match="must yield tuples"):
        _model().fit(iter([x[:10]]), verbose=0, shuffle=False)
    with pytest.raises(ValueError, match="has no y"):
        _model().fit(iter([(x[:10],)]), verbose=0, shuffle=False)


def _failing(x, y, B, bad_at, bad):
    """The batches of x, y; batch ``bad_at`` replaced by bad() (or bad()
    raises)."""
    for j, i in enumerate(range(0, len(x), B)):
        if j == bad_at:
            yield bad()
        else:
            yield x[i:i + B], y[i:i + B]


@pytest.mark.parametrize("bad, exc, match", [
    (lambda x, y: (x[:16, :5], y[:16]), ValueError, r"x has shape \(16, 5\)"),
    (lambda x, y: (x[:16].astype(str), y[:16]), TypeError, "must hold numbers"),
    (lambda x, y: (x[:16], y[:12]), ValueError, r"y has shape \(12,\)"),
    (lambda x, y: (np.full((16, 6), np.nan, np.float32), y[:16]), ValueError,
     "NaN or Inf"),
    (lambda x, y: (x[:16], np.full(16, 7)), ValueError, "holds class 7"),
    (lambda x, y: (x[:16], y[:16], np.ones(16)), ValueError, "sample weights"),
])
def test_bad_batch_names_epoch_and_batch_and_keeps_the_weights(small_chunks, bad,
                                                               exc, match):
    x, y = _data(n=320)
    bad_at = 13       # epoch 1 (10 batches an epoch), its batch 3
    m = _model()
    with pytest.raises(exc, match=match) as info:
        m.fit(_failing(x, y, 16, bad_at, lambda: bad(x, y)), steps_per_epoch=10,
              epochs=2, shuffle=False, verbose=0)
    assert "fit: epoch 1, batch 3 of the generator" in str(info.value)
    assert "keeps the weights" in str(info.value)
    ref = _model()
    ref.fit(x[:bad_at * 16], y[:bad_at * 16], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_exception_in_the_generator_keeps_its_type_and_the_weights(small_chunks):
    x, y = _data()

    def broken():
        for j, i in enumerate(range(0, 200, 16)):
            if j == 7:
                raise KeyError("disk gone")
            yield x[i:i + 16], y[i:i + 16]

    m = _model()
    with pytest.raises(KeyError, match="disk gone") as info:
        m.fit(broken(), shuffle=False, verbose=0)
    notes = "".join(getattr(info.value, "__notes__", []))
    assert "fit: epoch 0, batch 7 of the generator" in notes
    ref = _model()
    ref.fit(x[:7 * 16], y[:7 * 16], batch_size=16, shuffle=False, verbose=0)
    assert _same_weights(m, ref)


def test_batches_growing_and_shrinking_train_as_given():
    x, y = _data(n=120)
    sizes = [16, 16, 32, 40, 8, 8]
    cuts = np.cumsum([0] + sizes)

    def gen():
        for a, b in zip(cuts[:-1], cuts[1:]):
            yield x[a:b], y[a:b]

    m = _model(dropout=0.0, opt=SGD(0.1))
    m.fit(gen(), shuffle=False, verbose=0)
    ref = _model(dropout=0.0, opt=SGD(0.1))
    for a, b in zip(cuts[:-1], cuts[1:]):
        ref.fit(x[a:b], y[a:b], batch_size=b - a, shuffle=False, verbose=0)
    for p, q in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


def test_generator_is_read_by_the_prefetch_thread():
    x, y = _data()
    threads = []

    def gen():
        for i in range(0, 200, 16):
            threads.append(threading.current_thread())
            yield x[i:i + 16], y[i:i + 16]

    _model().fit(gen(), shuffle=False, verbose=0)
    assert threads[0] is threading.main_thread()      # peeked when fit starts
    assert all(t is not threading.main_thread() for t in threads[1:])


def test_validation_generator_with_validation_steps_and_freq():
    x, y = _data(n=300)
    xv, yv = x[200:], y[200:]

    def val_forever():
        while True:
            yield from _batches(xv, yv, 25)

    m = _model()
    h = m.fit(_batches(x[:200], y[:200], 20), epochs=1, shuffle=False, verbose=0,
              validation_data=val_forever(), validation_steps=4)
    ref = _model()
    href = ref.fit(x[:200], y[:200], batch_size=20, shuffle=False, verbose=0,
                   validation_data=(xv, yv))
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)

    m = _model()
    h = m.fit(x[:200], y[:200], epochs=4, verbose=0, validation_data=val_forever(),
              validation_steps=4, validation_freq=2)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    h = _model().fit(x[:200], y[:200], epochs=3, verbose=0, validation_data=(xv, yv),
                     validation_freq=[1, 3])
    assert len(h.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="validation_freq"):
        _model().fit(x, y, verbose=0, validation_data=(xv, yv), validation_freq="2")


def test_validation_generator_that_ran_dry_gives_no_val_logs():
    x, y = _data(n=300)
    m = _model()
    with pytest.warns(UserWarning, match=RAN_OUT):
        h = m.fit(x[:200], y[:200], epochs=2, verbose=0,
                  validation_data=_batches(x[200:], y[200:], 25))
    assert len(h.history["loss"]) == 2 and len(h.history["val_loss"]) == 1


def test_evaluate_and_predict_on_generators(small_chunks):
    x, y = _data()
    m = _model()
    m.fit(x, y, verbose=0)
    want = m.evaluate(x, y, verbose=0)
    got = m.evaluate(_batches(x, y, 16), verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    part = m.evaluate(_batches(x, y, 16), steps=3, verbose=0)
    np.testing.assert_allclose(part, m.evaluate(x[:48], y[:48], verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(m.predict(_batches(x, y, 16)), m.predict(x))
    np.testing.assert_array_equal(m.predict(((x[i:i + 16],) for i in range(0, 200, 16))),
                                  m.predict(x))
    np.testing.assert_array_equal(m.predict(_batches(x, y, 16), steps=2), m.predict(x[:32]))
    with pytest.raises(ValueError, match="`y` should not be passed"):
        m.evaluate(_batches(x, y, 16), y, verbose=0)


def test_evaluate_names_the_bad_batch():
    x, y = _data()
    m = _model()
    with pytest.raises(ValueError, match=r"evaluate, batch 2 of the generator: .*NaN"):
        m.evaluate(_failing(x, y, 16, 2, lambda: (x[:16] * np.nan, y[:16])), verbose=0)


def test_fit_on_an_unbuilt_model_builds_it_from_the_first_batch():
    x, y = _data()
    de.set_random_seed(1)
    m = Sequential([Dense(8, activation="relu"), Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(_batches(x, y, 16), shuffle=False, verbose=0)
    assert m.built and m.predict(x).shape == (200, 3)
