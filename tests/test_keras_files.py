"""Keras 3 files both ways, against real Keras (3.15.1 on JAX in CI): a
``.keras`` / ``.weights.h5`` file Keras writes loads here and predicts the
same (to 1e-6), with its compile config and optimizer state; a file we
write loads in ``keras.saving.load_model`` and predicts the same.  Skipped
only where Keras cannot be imported (and under ASan, where its imports
abort)."""
import json
import os
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")

from dropout_engine import callbacks, constraints, initializers, regularizers, seeding  # noqa: E402
from dropout_engine import layers as L  # noqa: E402
from dropout_engine import optimizers  # noqa: E402
from dropout_engine.model import Sequential  # noqa: E402
from dropout_engine.safetensors import ModelFileError  # noqa: E402
from dropout_engine.saving import load_metadata, load_model  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def keras():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def _data(n=64, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]


def _close(a, b, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


# Every supported layer, in orders the engine fuses (Keras's side).
def _keras_models(keras):
    K = keras.layers
    return {
        "dropouts": [keras.Input((5,)), K.Dense(8, activation="relu"), K.Dropout(0.3),
                     K.Dense(6), K.PReLU(), K.GaussianDropout(0.1),
                     K.Dense(4, activation="selu"), K.AlphaDropout(0.1), K.Dense(3),
                     K.Softmax()],
        "activations": [keras.Input((5,)), K.Dense(8), K.LeakyReLU(), K.Dense(6),
                        K.ELU(0.5), K.Dense(4), K.ReLU(max_value=2.0), K.Dense(3),
                        K.Activation("tanh")],
        "options": [K.Dense(7, activation="gelu", input_shape=(5,),
                            kernel_initializer=keras.initializers.HeNormal(seed=1),
                            bias_initializer=keras.initializers.Constant(0.1),
                            kernel_regularizer=keras.regularizers.L2(1e-3),
                            kernel_constraint=keras.constraints.MaxNorm(2.0)),
                    K.Dense(3, activation="softmax", use_bias=False)],
    }


@pytest.mark.parametrize("name", ["dropouts", "activations", "options"])
def test_a_keras_file_loads_and_predicts_as_keras(keras, tmp_path, name):
    km = keras.Sequential(_keras_models(keras)[name])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy",
               metrics=["accuracy"])
    x, y = _data()
    km.fit(x, y, epochs=2, batch_size=16, verbose=0)
    km.save(tmp_path / "k.keras")
    ours = load_model(tmp_path / "k.keras")
    _close(ours.predict(x), km.predict(x, verbose=0))
    assert [l.name for l in ours.layers] == [l.name for l in km.layers]
    assert ours.optimizer.iterations == int(km.optimizer.iterations) == 8
    assert ours.metrics_names == ["loss", "accuracy"]
    assert ours.get_compile_config()["loss"]["class_name"] == "CategoricalCrossentropy"


def _same_step(keras, km, ours, x, y):
    """One more full-batch step in each: equal weights mean equal optimizer
    state (and iterations, for Adam's bias correction) before it."""
    km.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    ours.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        _close(a, b, atol=1e-5)


def _optimizers(keras):
    o = keras.optimizers
    return {
        "adam": o.Adam(0.01), "adamw": o.AdamW(0.01, weight_decay=0.01),
        "sgd-nesterov": o.SGD(0.05, momentum=0.9, nesterov=True), "sgd": o.SGD(0.05),
        "rmsprop-centered": o.RMSprop(0.01, momentum=0.5, centered=True),
        "rmsprop": o.RMSprop(0.01),
        "sgd-schedule": o.SGD(o.schedules.ExponentialDecay(0.1, 3, 0.5), momentum=0.9),
    }


@pytest.mark.parametrize("opt", ["adam", "adamw", "sgd-nesterov", "sgd", "rmsprop-centered",
                                 "rmsprop", "sgd-schedule"])
def test_a_keras_optimizer_state_loads_and_trains_on_as_keras(keras, tmp_path, opt):
    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu"),
                           keras.layers.Dense(3), keras.layers.PReLU()])
    km.compile(optimizer=_optimizers(keras)[opt], loss="mse", metrics=["mae"])
    x, y = _data()
    km.fit(x, y, epochs=3, batch_size=16, verbose=0)
    km.save(tmp_path / "k.keras")
    ours = load_model(tmp_path / "k.keras")
    assert type(ours.optimizer).__name__ == type(km.optimizer).__name__
    assert ours.optimizer.iterations == int(km.optimizer.iterations) == 12
    assert ours.optimizer.learning_rate == pytest.approx(
        float(km.optimizer.learning_rate), rel=1e-6)
    _same_step(keras, km, ours, x, y)


_OURS_OPTIMIZERS = {
    "adam": lambda: optimizers.Adam(0.01),
    "adamw": lambda: optimizers.AdamW(0.01, weight_decay=0.01),
    "rmsprop-centered": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "sgd-nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "sgd-schedule": lambda: optimizers.SGD(
        optimizers.schedules.ExponentialDecay(0.1, 3, 0.5), momentum=0.9),
}


def _ours(dropout_seed=5):
    seeding.set_random_seed(1)
    return Sequential([
        L.Input((5,)), L.Dropout(0.1, seed=dropout_seed),
        L.Dense(8, activation="relu", kernel_regularizer=regularizers.l2(1e-3),
                kernel_constraint=constraints.MaxNorm(3),
                bias_initializer=initializers.Constant(0.05)),
        L.Dropout(0.5, seed=dropout_seed + 1), L.Dense(6), L.PReLU(),
        L.GaussianDropout(0.1, seed=3), L.Dense(4, activation="selu"),
        L.AlphaDropout(0.1, seed=4), L.Dense(3, activation="softmax")])


@pytest.mark.parametrize("opt", ["adam", "rmsprop-centered", "sgd-nesterov"])
def test_our_keras_file_loads_in_keras_with_its_compile_config(keras, tmp_path, opt):
    m = _ours()
    m.compile(_OURS_OPTIMIZERS[opt](), "categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    m.save(tmp_path / "m.keras")
    km = keras.saving.load_model(tmp_path / "m.keras")
    _close(km.predict(x, verbose=0), m.predict(x))
    assert [l.name for l in km.layers] == [l.name for l in m.layers]
    assert type(km.optimizer).__name__ == type(m.optimizer).__name__
    assert int(km.optimizer.iterations) == m.optimizer.iterations == 8
    assert km.get_compile_config()["loss"] == "categorical_crossentropy"
    # Keras computes the same loss (with the regularizer) from the weights.
    assert km.evaluate(x, y, verbose=0)[0] == pytest.approx(m.evaluate(x, y, verbose=0)[0],
                                                            rel=1e-5)


@pytest.mark.parametrize("opt", sorted(_OURS_OPTIMIZERS))
def test_our_optimizer_state_trains_on_in_keras(keras, tmp_path, opt):
    m = Sequential([L.Input((5,)), L.Dense(6, activation="relu"), L.Dense(3), L.PReLU()])
    m.compile(_OURS_OPTIMIZERS[opt](), "mse")
    x, y = _data()
    m.fit(x, y, epochs=3, batch_size=16, verbose=0)
    m.save(tmp_path / "m.keras")
    km = keras.saving.load_model(tmp_path / "m.keras")
    assert int(km.optimizer.iterations) == 12
    _same_step(keras, km, m, x, y)


def test_our_keras_file_round_trips_here_and_trains_on_the_same(tmp_path):
    m = _ours()
    m.compile(optimizers.Adam(0.01), "categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    m.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(back.predict(x), m.predict(x))
    assert back.get_compile_config() == m.get_compile_config()
    assert back.optimizer.iterations == m.optimizer.iterations
    for model in (m, back):      # seeded Dropouts: the same masks on both
        seeding.set_random_seed(11)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    uncompiled = load_model(tmp_path / "m.keras", compile=False)
    assert not uncompiled.compiled


def test_weights_files_both_ways(keras, tmp_path):
    km = keras.Sequential(_keras_models(keras)["dropouts"])
    km.save_weights(tmp_path / "k.weights.h5")
    ours = _ours_like(km)
    ours.load_weights(tmp_path / "k.weights.h5")
    x, _ = _data()
    _close(ours.predict(x), km.predict(x, verbose=0))
    # ours -> Keras: change our weights, save, Keras loads them.
    ours.set_weights([w * 0.5 + 0.01 for w in ours.get_weights()])
    ours.save_weights(tmp_path / "o.weights.h5")
    km.load_weights(tmp_path / "o.weights.h5")
    _close(km.predict(x, verbose=0), ours.predict(x))
    # A .keras file's weights load too, as Keras's load_weights does.
    km.save(tmp_path / "k.keras")
    fresh = _ours_like(km)
    fresh.load_weights(tmp_path / "k.keras")
    _close(fresh.predict(x), km.predict(x, verbose=0))


def _ours_like(km):
    """Our model of the same architecture as Keras's ``km`` (fresh weights)."""
    cfg = km.get_config()
    layers = [L.Input((5,))] + [getattr(L, c["class_name"]).from_config(
        {k: v for k, v in c["config"].items() if k in ("rate", "units", "activation")})
        for c in cfg["layers"][1:]]
    return Sequential(layers)


def test_quantized_models_both_ways(keras, tmp_path):
    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(3, use_bias=False)])
    km.quantize("int8")
    km.save(tmp_path / "k.keras")
    ours = load_model(tmp_path / "k.keras")
    assert ours.quantized
    x, _ = _data()
    _close(ours.predict(x), km.predict(x, verbose=0))
    ours.save(tmp_path / "o.keras")
    again = keras.saving.load_model(tmp_path / "o.keras")
    _close(again.predict(x, verbose=0), ours.predict(x))


def test_unsupported_keras_layers_and_models_are_refused_by_name(keras, tmp_path):
    km = keras.Sequential([keras.Input((8, 2)), keras.layers.Conv1D(3, 2, name="conv1d")])
    km.save(tmp_path / "conv.keras")
    with pytest.raises(ModelFileError, match=r"layer 'conv1d' \(Conv1D\) is not supported"):
        load_model(tmp_path / "conv.keras")
    inp = keras.Input((4,))
    conv = keras.layers.Conv1D(2, 2, name="conv")(keras.layers.Reshape((4, 1))(inp))
    keras.Model(inp, keras.layers.Add()([keras.layers.Dense(2)(inp), keras.layers.Dense(2)(
        keras.layers.Flatten()(conv))])).save(tmp_path / "f.keras")
    with pytest.raises(ModelFileError, match=r"layer 'conv' \(Conv1D\) is not supported"):
        load_model(tmp_path / "f.keras")
    a, b = keras.Input((4,)), keras.Input((3,))
    keras.Model([a, b], keras.layers.Concatenate()([a, b])).save(tmp_path / "two.keras")
    with pytest.raises(ModelFileError, match="2 input_layers .*several inputs"):
        load_model(tmp_path / "two.keras")


def test_a_compile_config_we_cannot_run_is_refused_unless_compile_false(keras, tmp_path):
    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    km.compile(optimizer="adam", loss="huber")
    km.save(tmp_path / "k.keras")
    with pytest.raises(ModelFileError, match="compile config is invalid.*huber"):
        load_model(tmp_path / "k.keras")
    x, _ = _data()
    _close(load_model(tmp_path / "k.keras", compile=False).predict(x),
           km.predict(x, verbose=0))


def test_a_keras_optimizer_saved_unbuilt_is_skipped_as_keras_does(keras, tmp_path):
    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    km.compile(optimizer="rmsprop", loss="mse")         # never fit: 2 variables
    km.save(tmp_path / "k.keras")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        ours = load_model(tmp_path / "k.keras")
    assert ours.compiled and ours.optimizer.iterations == 0


def test_weight_scaled_dropout_has_no_keras_file(tmp_path):
    m = Sequential([L.Input((4,)), L.Dense(3), L.Dropout(0.5, scaling="weight"), L.Dense(2)])
    with pytest.raises(ValueError, match="scaling='weight' has no Keras equivalent.*"
                                         r"\.safetensors"):
        m.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    m.save(tmp_path / "m.safetensors")


def test_metadata_lives_in_metadata_json_and_keras_still_loads(keras, tmp_path):
    m = Sequential([L.Input((4,)), L.Dense(2)])
    m.save(tmp_path / "m.keras", metadata={"app.scaler": '{"mean": [0.5]}'})
    assert load_metadata(tmp_path / "m.keras") == {"app.scaler": '{"mean": [0.5]}'}
    meta = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("metadata.json"))
    assert meta["keras_version"].startswith("3.")
    keras.saving.load_model(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="reserved"):
        m.save(tmp_path / "n.keras", metadata={"format": "x"})


def test_model_checkpoint_writes_keras_files_keras_loads(keras, tmp_path):
    m = Sequential([L.Input((5,)), L.Dense(4, activation="relu"), L.Dense(3)])
    m.compile("adam", "mse")
    x, y = _data()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[
        callbacks.ModelCheckpoint(tmp_path / "m-{epoch}.keras"),
        callbacks.ModelCheckpoint(tmp_path / "w.weights.h5", save_weights_only=True)])
    km = keras.saving.load_model(tmp_path / "m-2.keras")
    _close(km.predict(x, verbose=0), m.predict(x))
    km.set_weights([np.zeros_like(w) for w in km.get_weights()])
    km.load_weights(tmp_path / "w.weights.h5")
    _close(km.predict(x, verbose=0), m.predict(x))
