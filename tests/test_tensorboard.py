"""The TensorBoard callback and its event-file writer, read back with the
real tensorboard package's readers (EventAccumulator; the plugin
accumulator the TensorBoard server loads runs with; the graph plugin's Keras
parser)."""
import glob
import json
import os
import struct

import numpy as np
import pytest

tensorboard = pytest.importorskip(
    "tensorboard", reason="the tensorboard package reads the event files back: "
                          "pip install tensorboard")

from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_accumulator  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (  # noqa: E402
    masked_crc32c as tb_masked_crc32c)
from tensorboard.plugins.graph import keras_util  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from dropout_engine import callbacks  # noqa: E402
from dropout_engine.callbacks import _tfevents  # noqa: E402
from dropout_engine.keras import callbacks as keras_callbacks  # noqa: E402
from dropout_engine.layers import Dense, Dropout, Input  # noqa: E402
from dropout_engine.model import Sequential  # noqa: E402
from dropout_engine.optimizers import SGD  # noqa: E402
from dropout_engine.callbacks import TensorBoard  # noqa: E402
from dropout_engine.utils import set_random_seed  # noqa: E402

N, BATCH = 128, 16          # 6 training batches per epoch with a 0.25 split


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _model():
    m = Sequential([Input((4,)), Dense(8, activation="relu"), Dropout(0.1),
                    Dense(2, activation="softmax")], name="net")
    m.compile(optimizer=SGD(learning_rate=0.05),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _fit(tmp_path, epochs=3, validation_split=0.25, **tb):
    set_random_seed(0)
    x, y = _data()
    model = _model()
    hist = model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0,
                     validation_split=validation_split,
                     callbacks=[TensorBoard(log_dir=tmp_path / "logs", **tb)])
    return model, hist


def _read(tmp_path, run):
    # size_guidance 0 keeps every event (by default only one histogram is).
    acc = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / run), size_guidance={event_accumulator.SCALARS: 0,
                                                    event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


# ------------------------------------------------------------------ writer
def test_crc32c_is_castagnoli_and_masked_as_tensorflow_does():
    assert _tfevents.crc32c(b"123456789") == 0xE3069283     # the standard check value
    for data in (b"", b"\x00" * 8, bytes(range(256)) * 5):
        assert _tfevents.masked_crc32c(data) == tb_masked_crc32c(data)


def test_event_records_parse_as_tensorflow_events(tmp_path):
    w = _tfevents.EventFileWriter(tmp_path)
    w.add_scalar("a/b", 0.5, step=-7, wall_time=12.25)
    w.add_histogram("h", np.arange(12.0).reshape(3, 4), step=2 ** 40, bins=4)
    w.close()
    raw = open(w.path, "rb").read()
    events, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack_from("<Q", raw, pos)
        (head_crc,) = struct.unpack_from("<I", raw, pos + 8)
        assert head_crc == tb_masked_crc32c(raw[pos:pos + 8])
        payload = raw[pos + 12:pos + 12 + n]
        (crc,) = struct.unpack_from("<I", raw, pos + 12 + n)
        assert crc == tb_masked_crc32c(payload)
        events.append(event_pb2.Event.FromString(payload))
        pos += 16 + n
    assert events[0].file_version == "brain.Event:2"
    scalar, hist = events[1], events[2]
    assert (scalar.step, scalar.wall_time) == (-7, 12.25)
    assert scalar.summary.value[0].tag == "a/b"
    assert scalar.summary.value[0].simple_value == 0.5
    h = hist.summary.value[0].histo
    assert hist.step == 2 ** 40
    assert (h.min, h.max, h.num, h.sum) == (0.0, 11.0, 12.0, 66.0)
    assert h.sum_squares == float(np.sum(np.arange(12.0) ** 2))
    assert list(h.bucket) == [3.0, 3.0, 3.0, 3.0]
    assert list(h.bucket_limit) == pytest.approx([2.75, 5.5, 8.25, 11.0])


def test_constant_values_make_one_bucket(tmp_path):
    w = _tfevents.EventFileWriter(tmp_path)
    w.add_histogram("zeros", np.zeros(5), step=0)
    w.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    h = acc.Histograms("zeros")[0].histogram_value
    assert (h.min, h.max, h.num, list(h.bucket)) == (0.0, 0.0, 5.0, [5.0])


# ------------------------------------------------------------ epoch scalars
def test_epoch_scalars_match_the_history_in_train_and_validation(tmp_path):
    model, hist = _fit(tmp_path)
    assert sorted(os.listdir(tmp_path / "logs")) == ["train", "validation"]
    train, val = _read(tmp_path, "train"), _read(tmp_path, "validation")
    for name in ("loss", "accuracy"):
        steps, values = zip(*_scalars(train, f"epoch_{name}"))
        assert steps == (0, 1, 2)
        np.testing.assert_allclose(values, hist.history[name], rtol=1e-6)
        steps, values = zip(*_scalars(val, f"epoch_{name}"))
        assert steps == (0, 1, 2)
        np.testing.assert_allclose(values, hist.history[f"val_{name}"], rtol=1e-6)
    assert [v for _, v in _scalars(train, "epoch_learning_rate")] == \
        pytest.approx([0.05] * 3)
    # Keras's evaluation_<name>_vs_iterations: one point per validation, at
    # the optimizer's iteration count (6 batches per epoch).
    assert _scalars(val, "evaluation_loss_vs_iterations") == [
        (6 * (e + 1), pytest.approx(v, rel=1e-6))
        for e, v in enumerate(hist.history["val_loss"])]
    assert not any(t.startswith("batch_") for t in train.Tags()["scalars"])


def test_without_validation_no_validation_run(tmp_path):
    _fit(tmp_path, epochs=2, validation_split=0.0)
    assert os.listdir(tmp_path / "logs") == ["train"]


def test_the_server_side_loader_sees_scalar_summaries(tmp_path):
    # TensorBoard's server loads runs through the plugin accumulator, which
    # migrates legacy simple_value scalars to its tensor form.
    _, hist = _fit(tmp_path, epochs=2)
    acc = plugin_event_accumulator.EventAccumulator(str(tmp_path / "logs" / "train"))
    acc.Reload()
    assert acc.SummaryMetadata("epoch_loss").plugin_data.plugin_name == "scalars"
    values = [tensor_util.make_ndarray(e.tensor_proto).item()
              for e in acc.Tensors("epoch_loss")]
    np.testing.assert_allclose(values, hist.history["loss"], rtol=1e-6)


def test_each_fit_writes_new_event_files(tmp_path):
    x, y = _data()
    model, tb = _model(), TensorBoard(tmp_path / "logs")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[tb])
    model.fit(x, y, epochs=3, initial_epoch=1, verbose=0, callbacks=[tb])
    files = glob.glob(str(tmp_path / "logs" / "train" / "events.out.tfevents.*"))
    assert len(files) == 2
    assert [s for s, _ in _scalars(_read(tmp_path, "train"), "epoch_loss")] == [0, 1, 2]


# ------------------------------------------------------------ batch scalars
def test_update_freq_int_writes_batch_logs_every_n_batches(tmp_path):
    model, hist = _fit(tmp_path, update_freq=3, write_steps_per_second=True)
    train = _read(tmp_path, "train")
    batch_loss = _scalars(train, "batch_loss")
    assert [s for s, _ in batch_loss] == [3, 6, 9, 12, 15, 18]
    # At an epoch's last batch (6, 12, 18) the running mean is the epoch's loss.
    logged = dict(batch_loss)
    np.testing.assert_allclose([logged[6], logged[12], logged[18]],
                               hist.history["loss"], rtol=1e-6)
    assert [s for s, _ in _scalars(train, "batch_steps_per_second")] == \
        [3, 6, 9, 12, 15, 18]
    assert all(v > 0 for _, v in _scalars(train, "batch_steps_per_second"))
    assert all(v > 0 for _, v in _scalars(train, "epoch_steps_per_second"))


def test_update_freq_batch_is_one(tmp_path):
    assert TensorBoard(update_freq="batch").update_freq == 1
    _fit(tmp_path, epochs=1, update_freq="batch")
    assert [s for s, _ in _scalars(_read(tmp_path, "train"), "batch_loss")] == \
        [1, 2, 3, 4, 5, 6]


def test_only_batch_logging_makes_fit_stop_at_every_batch():
    epoch = callbacks.CallbackList([TensorBoard(histogram_freq=1)])
    batch = callbacks.CallbackList([TensorBoard(update_freq=10)])
    assert not epoch.wants_batch_hooks("train")
    assert batch.wants_batch_hooks("train")


@pytest.mark.parametrize("update_freq", ["epoch", 2])
def test_logging_does_not_change_a_seeded_fit(tmp_path, update_freq):
    model, _ = _fit(tmp_path, update_freq=update_freq, histogram_freq=1)
    set_random_seed(0)
    x, y = _data()
    plain = _model()
    plain.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, validation_split=0.25)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------- histograms and graph
def test_histograms_every_histogram_freq_epochs(tmp_path):
    model, _ = _fit(tmp_path, epochs=3, histogram_freq=2)
    train = _read(tmp_path, "train")
    assert sorted(train.Tags()["histograms"]) == sorted(
        f"net/{layer.name}/{w}/histogram" for layer in model.layers
        for w in getattr(layer, "weight_names", ()))
    kernel = model.layers[0]
    tag = f"net/{kernel.name}/kernel/histogram"
    events = train.Histograms(tag)
    assert [e.step for e in events] == [0, 2]
    h = events[-1].histogram_value          # epoch 2 is the last: final weights
    w = kernel.kernel.astype(np.float64)
    assert (h.min, h.max, h.num) == (w.min(), w.max(), w.size)
    assert h.sum == pytest.approx(w.sum(), rel=1e-9, abs=1e-9)
    assert h.sum_squares == pytest.approx((w ** 2).sum(), rel=1e-9)
    counts, _ = np.histogram(w, bins=30)
    np.testing.assert_array_equal(h.bucket, counts)


def test_write_graph_gives_the_graph_plugin_the_model(tmp_path):
    model, _ = _fit(tmp_path, epochs=1)
    acc = plugin_event_accumulator.EventAccumulator(str(tmp_path / "logs" / "train"))
    acc.Reload()
    assert acc.SummaryMetadata("keras").plugin_data.plugin_name == "graph_keras_model"
    (event,) = acc.Tensors("keras")
    config = json.loads(tensor_util.make_ndarray(event.tensor_proto).item())
    graph = keras_util.keras_model_to_graph_def(config)
    names = [n.name for n in graph.node]
    assert names[1:] == [f"net/{layer.name}" for layer in model.layers]
    assert [n.input[0] for n in graph.node[1:]] == names[:-1]


def test_write_graph_false_writes_no_graph(tmp_path):
    _fit(tmp_path, epochs=1, write_graph=False)
    assert "keras" not in _read(tmp_path, "train").Tags()["tensors"]


# --------------------------------------------------------------- arguments
def test_keras_signature_and_defaults():
    tb = TensorBoard("logs", 0, True, False, False, "epoch", 0, 0, None)
    assert (tb.log_dir, tb.histogram_freq, tb.write_graph, tb.write_images,
            tb.write_steps_per_second, tb.update_freq, tb.embeddings_freq,
            tb.embeddings_metadata) == ("logs", 0, True, False, False, "epoch", 0, None)
    assert TensorBoard().log_dir == "logs"
    TensorBoard(profile_batch="0,0")      # Keras's string form of "no profiling"


@pytest.mark.parametrize("kwargs, match", [
    ({"write_images": True}, "write_images"),
    ({"profile_batch": 5}, "profile_batch"),
    ({"profile_batch": (2, 4)}, "profile_batch"),
    ({"profile_batch": "2,4"}, "profile_batch"),
    ({"embeddings_freq": 1}, "embeddings"),
    ({"embeddings_metadata": "meta.tsv"}, "embeddings"),
])
def test_unimplemented_features_are_refused_when_asked_for(kwargs, match):
    with pytest.raises(NotImplementedError, match=match):
        TensorBoard(**kwargs)


@pytest.mark.parametrize("kwargs, error", [
    ({"log_dir": 3}, TypeError),
    ({"histogram_freq": -1}, ValueError),
    ({"histogram_freq": 1.5}, ValueError),
    ({"update_freq": 0}, ValueError),
    ({"update_freq": "often"}, ValueError),
    ({"update_freq": True}, ValueError),
    ({"profile_batch": -1}, ValueError),
    ({"profile_batch": (4, 2)}, ValueError),
    ({"profile_batch": "a,b"}, ValueError),
    ({"write_graph": "yes"}, TypeError),
])
def test_bad_arguments_raise_clear_errors(kwargs, error):
    with pytest.raises(error, match="TensorBoard"):
        TensorBoard(**kwargs)


def test_importable_from_both_callbacks_namespaces():
    assert callbacks.TensorBoard is TensorBoard
    assert keras_callbacks.TensorBoard is TensorBoard
    assert "TensorBoard" in callbacks.__all__
    assert "TensorBoard" in keras_callbacks.__all__
