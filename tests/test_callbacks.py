"""Callbacks against a tiny fake model that implements the callback contract."""
import csv
import math

import numpy as np
import pytest

from dropout_engine import callbacks as cbs
from dropout_engine.safetensors import load_tensors, save_tensors


class FakeOptimizer:
    def __init__(self, learning_rate):
        self._lr = float(learning_rate)

    @property
    def learning_rate(self):
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._lr = float(value)


class FakeModel:
    """The contract: stop_training, get/set_weights, save, save_weights,
    optimizer.learning_rate.  Its weights are [epoch number]."""

    def __init__(self, lr=0.1):
        self.stop_training = False
        self.weights = [np.zeros(2, np.float32)]
        self.optimizer = FakeOptimizer(lr)
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        self.saved.append(("model", path))
        save_tensors(path, {"w": self.weights[0]})

    def save_weights(self, path):
        self.saved.append(("weights", path))
        save_tensors(path, {"w": self.weights[0]})


def fit(callbacks, model, epoch_logs, chunk_ends=(3, 7)):
    """What fit does, minus the training: each epoch's 'training' sets the
    weights to the epoch index, batch hooks run at chunk ends."""
    cl = cbs.CallbackList(callbacks, add_history=True, model=model, verbose=0,
                          epochs=len(epoch_logs), steps=chunk_ends[-1] + 1)
    model.stop_training = False
    cl.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        cl.on_epoch_begin(epoch)
        model.weights = [np.full(2, epoch, np.float32)]
        for batch in chunk_ends:
            cl.on_train_batch_end(batch, {"loss": logs.get("loss", 1.0)})
        cl.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    cl.on_train_end()
    return model.history


def val_losses(*values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# ----------------------------------------------------------------- History

def test_history_records_logs_per_epoch_and_sets_model_history():
    model = FakeModel()
    h = fit([], model, [{"loss": 0.5, "acc": 0.1}, {"loss": 0.25, "acc": 0.2}])
    assert isinstance(h, cbs.History)
    assert h.history == {"loss": [0.5, 0.25], "acc": [0.1, 0.2]}
    assert h.epoch == [0, 1]


# ------------------------------------------------------------ EarlyStopping

def test_early_stopping_waits_patience_epochs_after_the_best():
    model = FakeModel()
    h = fit([cbs.EarlyStopping(patience=2)], model,
            val_losses(1.0, 0.9, 0.95, 0.96, 0.5, 0.4))
    assert h.epoch == [0, 1, 2, 3]       # best at 1, two bad epochs, stop


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    stop = cbs.EarlyStopping(monitor="loss", patience=0, verbose=1)
    h = fit([stop], FakeModel(), [{"loss": v} for v in (3, 2, 2, 1)])
    assert h.epoch == [0, 1, 2] and stop.stopped_epoch == 2


def test_early_stopping_restores_best_weights_at_train_end():
    model = FakeModel()
    fit([cbs.EarlyStopping(patience=2, restore_best_weights=True)], model,
        val_losses(1.0, 0.5, 0.7, 0.8, 0.9))
    np.testing.assert_array_equal(model.weights[0], [1, 1])


def test_early_stopping_without_restore_keeps_last_weights():
    model = FakeModel()
    fit([cbs.EarlyStopping(patience=1)], model, val_losses(1.0, 0.5, 0.7, 0.8))
    np.testing.assert_array_equal(model.weights[0], [2, 2])


def test_early_stopping_min_delta_and_max_mode():
    # Accuracy rises by less than min_delta: no improvement counts.
    logs = [{"val_accuracy": a} for a in (0.50, 0.505, 0.509, 0.6)]
    h = fit([cbs.EarlyStopping(monitor="val_accuracy", min_delta=0.01,
                               patience=2)], FakeModel(), logs)
    assert h.epoch == [0, 1, 2]


def test_early_stopping_baseline_must_be_beaten_to_reset_patience():
    worse = val_losses(0.5, 0.6, 0.7, 0.8, 0.9)
    assert fit([cbs.EarlyStopping(patience=2)], FakeModel(), worse).epoch \
        == [0, 1, 2]
    # The first epoch is the best but misses the baseline: the wait counts.
    assert fit([cbs.EarlyStopping(patience=2, baseline=0.1)], FakeModel(),
               worse).epoch == [0, 1]
    assert fit([cbs.EarlyStopping(patience=2, baseline=0.55)], FakeModel(),
               worse).epoch == [0, 1, 2]


def test_early_stopping_start_from_epoch_ignores_warm_up():
    h = fit([cbs.EarlyStopping(patience=0, start_from_epoch=3)], FakeModel(),
            val_losses(0.1, 0.5, 0.6, 0.7, 0.8, 0.9))
    assert h.epoch == [0, 1, 2, 3, 4]


def test_nan_is_never_an_improvement():
    model = FakeModel()
    fit([cbs.EarlyStopping(patience=1, restore_best_weights=True)], model,
        val_losses(float("nan"), 0.5, float("nan"), 0.7))
    np.testing.assert_array_equal(model.weights[0], [1, 1])


def test_missing_monitor_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="val_loss.*not available"):
        h = fit([cbs.EarlyStopping(patience=0)], FakeModel(),
                [{"loss": 1.0}, {"loss": 2.0}])
    assert h.epoch == [0, 1]


def test_auto_mode_refuses_an_unknown_direction():
    with pytest.raises(ValueError, match="mode='min'"):
        fit([cbs.EarlyStopping(monitor="gizmo")], FakeModel(),
            [{"gizmo": 1.0}, {"gizmo": 2.0}])


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="'auto', 'min' or 'max'"):
        cbs.EarlyStopping(mode="minimum")


# -------------------------------------------------------- ReduceLROnPlateau

def test_reduce_lr_after_patience_with_cooldown_and_floor(capsys):
    model = FakeModel(lr=0.1)
    cb = cbs.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.03,
                               verbose=1)
    h = fit([cb], model, val_losses(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0))
    # The rate logged is the one the epoch ran with.  As in Keras, the epoch
    # that ends a cooldown already counts towards the next wait.
    # Epoch:    0     1    2     3     4     5     6        7
    # wait:     best  1    2->R  1     2->R  1     2->floor 1
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03]
    assert h.history["learning_rate"] == pytest.approx(expected)
    assert model.optimizer.learning_rate == pytest.approx(0.03)
    assert capsys.readouterr().out.count("reducing learning rate") == 2


def test_reduce_lr_resets_wait_on_improvement():
    model = FakeModel(lr=1.0)
    fit([cbs.ReduceLROnPlateau(patience=2, factor=0.1)], model,
        val_losses(1.0, 1.0, 0.5, 0.5, 0.2, 0.2))
    assert model.optimizer.learning_rate == 1.0


def test_reduce_lr_refuses_factor_at_least_one():
    with pytest.raises(ValueError, match="factor"):
        cbs.ReduceLROnPlateau(factor=1.0)


# ---------------------------------------------------------- ModelCheckpoint

def test_checkpoint_best_only_fills_format_fields(tmp_path):
    model = FakeModel()
    path = tmp_path / "sub" / "ckpt-{epoch:02d}-{val_loss:.2f}.safetensors"
    fit([cbs.ModelCheckpoint(path, save_best_only=True, verbose=1)], model,
        val_losses(0.5, 0.4, 0.45, 0.3))
    names = sorted(p.name for p in (tmp_path / "sub").iterdir())
    assert names == ["ckpt-01-0.50.safetensors", "ckpt-02-0.40.safetensors",
                     "ckpt-04-0.30.safetensors"]
    w = load_tensors(tmp_path / "sub" / "ckpt-04-0.30.safetensors")[0]["w"]
    np.testing.assert_array_equal(w, [3, 3])


def test_checkpoint_every_epoch_overwrites_one_file_with_weights_only(tmp_path):
    model = FakeModel()
    path = tmp_path / "last.safetensors"
    fit([cbs.ModelCheckpoint(path, save_weights_only=True)], model,
        val_losses(0.5, 0.6, 0.7))
    assert [kind for kind, _ in model.saved] == ["weights"] * 3
    np.testing.assert_array_equal(load_tensors(path)[0]["w"], [2, 2])


def test_checkpoint_initial_value_threshold(tmp_path):
    model = FakeModel()
    fit([cbs.ModelCheckpoint(tmp_path / "m.safetensors", save_best_only=True,
                             initial_value_threshold=0.35)], model,
        val_losses(0.5, 0.4, 0.3, 0.45))
    assert len(model.saved) == 1


def test_checkpoint_integer_save_freq_counts_batches_across_chunks(tmp_path):
    model = FakeModel()
    # Chunks end at batches 3 and 7 (8 batches an epoch): with save_freq=6
    # saves happen at the chunk ends where 6 batches have accumulated.
    fit([cbs.ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.keras", save_freq=6)],
        model, val_losses(0.5, 0.4))
    assert [p.rsplit("/", 1)[-1] for _, p in model.saved] == [
        "e1-b8.keras", "e2-b8.keras"]


def test_checkpoint_missing_format_field_says_which(tmp_path):
    with pytest.raises(KeyError, match="val_acc"):
        fit([cbs.ModelCheckpoint(tmp_path / "{val_acc:.2f}.keras")], FakeModel(),
            val_losses(0.5))


def test_checkpoint_bad_save_freq():
    with pytest.raises(ValueError, match="save_freq"):
        cbs.ModelCheckpoint("m.keras", save_freq="batch")


# --------------------------------------------------------------- CSVLogger

def test_csv_logger_contents_and_append(tmp_path):
    path = tmp_path / "log.csv"
    fit([cbs.CSVLogger(path)], FakeModel(),
        [{"loss": 0.5, "val_loss": 0.7}, {"loss": 0.25, "val_loss": 0.6}])
    fit([cbs.CSVLogger(path, append=True)], FakeModel(),
        [{"loss": 0.125, "val_loss": 0.5}])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "loss", "val_loss"], ["0", "0.5", "0.7"],
                    ["1", "0.25", "0.6"], ["0", "0.125", "0.5"]]


def test_csv_logger_separator_and_na_for_missing_validation(tmp_path):
    path = tmp_path / "log.csv"
    fit([cbs.CSVLogger(path, separator=";")], FakeModel(),
        [{"loss": 0.5}, {"loss": 0.25, "val_loss": 0.6}])
    assert path.read_text().splitlines() == [
        "epoch;loss;val_loss", "0;0.5;NA", "1;0.25;0.6"]


# ---------------------------------------------------------- TerminateOnNaN

def test_terminate_on_nan_stops_training_at_a_chunk_end():
    model = FakeModel()
    cl = cbs.CallbackList([cbs.TerminateOnNaN()], model=model)
    cl.on_train_batch_end(3, {"loss": 0.5})
    assert not model.stop_training
    cl.on_train_batch_end(7, {"loss": np.float32("nan")})
    assert model.stop_training


def test_terminate_on_nan_raise_error():
    cl = cbs.CallbackList([cbs.TerminateOnNaN(raise_error=True)], model=FakeModel())
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        cl.on_train_batch_end(0, {"loss": math.inf})


# ---------------------------------------------------------- LambdaCallback

def test_lambda_callback_calls_given_functions():
    seen = []
    cb = cbs.LambdaCallback(
        on_train_begin=lambda logs: seen.append("begin"),
        on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])),
        on_test_end=lambda logs: seen.append("test_end"))
    cl = cbs.CallbackList([cb], model=FakeModel())
    cl.on_train_begin()
    cl.on_epoch_end(0, {"loss": 0.5})
    cl.on_test_end()
    cl.on_train_end()
    assert seen == ["begin", (0, 0.5), "test_end"]


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="on_epoch_ends"):
        cbs.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match="callable"):
        cbs.LambdaCallback(on_epoch_end=3)


# ------------------------------------------------------------ CallbackList

class Recorder(cbs.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name,) + args)
        return object.__getattribute__(self, name)


def test_callback_list_dispatches_every_hook_in_order():
    a, b = Recorder(), Recorder()
    cl = cbs.CallbackList([a, b])
    for hook in cbs.HOOKS:
        args = () if hook in cbs.BEGIN_END_HOOKS else (5,)
        getattr(cl, hook)(*args, {"x": 1})
    expected = [(h,) + (() if h in cbs.BEGIN_END_HOOKS else (5,)) + ({"x": 1},)
                for h in cbs.HOOKS]
    assert a.calls == expected and b.calls == expected
    assert len(cbs.HOOKS) == 16


def test_callback_list_passes_fresh_python_logs():
    seen = []
    cb = cbs.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))
    logs = {"loss": np.float32(0.5), "name": "x"}
    cbs.CallbackList([cb]).on_epoch_end(0, logs)
    assert seen[0] == {"loss": 0.5, "name": "x"} and seen[0] is not logs
    assert type(seen[0]["loss"]) is float


def test_callback_list_sets_model_params_and_default_callbacks():
    model, h = FakeModel(), cbs.History()
    cl = cbs.CallbackList([h], add_history=True, add_progbar=True, model=model,
                          verbose=1, epochs=3, steps=10)
    assert [type(c) for c in cl.callbacks] == [cbs.History, cbs.ProgbarLogger]
    assert model.history is h and h.model is model
    assert cl.callbacks[1].params == {"verbose": 1, "epochs": 3, "steps": 10}


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match="Callback instances"):
        cbs.CallbackList([object()])


def test_builtin_callbacks_do_not_need_every_batch(tmp_path):
    builtins = [cbs.History(), cbs.ProgbarLogger(), cbs.EarlyStopping(),
                cbs.ModelCheckpoint(tmp_path / "m.keras", save_freq=5),
                cbs.ReduceLROnPlateau(), cbs.TerminateOnNaN(),
                cbs.CSVLogger(tmp_path / "l.csv"), cbs.LambdaCallback(
                    on_epoch_end=print)]
    cl = cbs.CallbackList(builtins)
    assert not any(cl.wants_batch_hooks(m) for m in ("train", "test", "predict"))


def test_user_batch_hooks_are_detected_per_mode():
    class OnBatch(cbs.Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    class OnTest(cbs.Callback):
        def on_test_batch_begin(self, batch, logs=None):
            pass

    assert cbs.CallbackList([OnBatch()]).wants_batch_hooks("train")
    assert not cbs.CallbackList([OnBatch()]).wants_batch_hooks("test")
    assert cbs.CallbackList([OnTest()]).wants_batch_hooks("test")
    lam = cbs.LambdaCallback(on_train_batch_end=lambda b, logs: None)
    assert cbs.CallbackList([lam]).wants_batch_hooks()
    with pytest.raises(ValueError, match="mode"):
        cbs.CallbackList([]).wants_batch_hooks("eval")


# ----------------------------------------------------------- ProgbarLogger

def test_progbar_logger_prints_epochs_and_final_metrics(capsys):
    fit([cbs.ProgbarLogger()], FakeModel(), [{"loss": 0.5}, {"loss": 0.25}])
    out = capsys.readouterr().out
    # Params say verbose=0 in fit() above; a logger added by hand with
    # verbose=1 params is what fit(verbose=1) builds.
    assert out == ""
    cl = cbs.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1,
                          epochs=2, steps=8, samples=250, batch_size=32)
    cl.on_train_begin()
    for epoch in range(2):
        cl.on_epoch_begin(epoch)
        cl.on_train_batch_end(3, {"loss": 0.75})
        cl.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.625})
    cl.on_train_end()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("8/8 [==============================] - ")
    assert "loss: 0.5000 - val_loss: 0.6250" in lines[1]
    assert lines[1].endswith("samples/s")
