"""The callbacks inside the real fit (skipped until the model code is merged)."""
import csv

import numpy as np
import pytest

pytest.importorskip("dropout_engine.model",
                    reason="the model code (model.py, _fit.py) is not in this "
                           "tree yet")

from dropout_engine import callbacks as cbs  # noqa: E402
from dropout_engine.layers import Dense, Dropout, Input  # noqa: E402
from dropout_engine.model import Sequential  # noqa: E402
from dropout_engine.optimizers import SGD  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _model(lr=0.05):
    m = Sequential([Input((4,)), Dense(8, activation="relu"), Dropout(0.1),
                    Dense(2, activation="softmax")])
    m.compile(optimizer=SGD(learning_rate=lr),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_history_csv_and_reduce_lr_see_every_epoch(tmp_path):
    x, y = _data()
    model = _model()
    log = tmp_path / "log.csv"
    h = model.fit(x, y, epochs=4, batch_size=16, verbose=0, validation_split=0.25,
                  callbacks=[cbs.ReduceLROnPlateau(monitor="loss", patience=1,
                                                   min_delta=10.0, factor=0.5),
                             cbs.CSVLogger(log)])
    assert h.epoch == [0, 1, 2, 3] and model.history is h
    assert set(h.history) >= {"loss", "val_loss", "learning_rate"}
    # min_delta=10 makes every epoch after the first a non-improvement.
    assert h.history["learning_rate"] == pytest.approx(
        [0.05, 0.05, 0.025, 0.0125])
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert float(rows[3]["loss"]) == pytest.approx(h.history["loss"][3])


def test_early_stopping_restores_weights_inside_fit():
    x, y = _data()
    model = _model()
    stop = cbs.EarlyStopping(monitor="loss", min_delta=10.0, patience=1,
                             restore_best_weights=True)
    seen = []
    grab = cbs.LambdaCallback(
        on_epoch_end=lambda e, logs: seen.append(model.get_weights()))
    h = model.fit(x, y, epochs=10, batch_size=16, verbose=0,
                  callbacks=[grab, stop])
    assert h.epoch == [0, 1]
    for a, b in zip(model.get_weights(), seen[0]):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_stops_a_diverging_fit():
    x, y = _data()
    model = _model(lr=1e30)
    h = model.fit(x * 1e10, y, epochs=5, batch_size=16, verbose=0,
                  callbacks=[cbs.TerminateOnNaN()])
    assert len(h.epoch) == 1 and not np.isfinite(h.history["loss"][0])


def test_progress_bar_prints_one_line_per_epoch_when_not_a_tty(capsys):
    x, y = _data()
    _model().fit(x, y, epochs=2, batch_size=16, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("6/6 [====") and "loss:" in lines[1]


def test_checkpoint_saves_best_model(tmp_path):
    pytest.importorskip("dropout_engine.saving",
                        reason="saving.py is not in this tree yet")
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.25,
              callbacks=[cbs.ModelCheckpoint(tmp_path / "m-{epoch}.safetensors",
                                             save_best_only=True,
                                             monitor="val_loss")])
    assert (tmp_path / "m-1.safetensors").exists()
