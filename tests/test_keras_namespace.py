"""The keras drop-in namespaces re-export the real objects, lazily."""
import importlib
import subprocess
import sys

import pytest

pytest.importorskip("dropout_engine.model",
                    reason="the model code (model.py, layers.py, ...) is not "
                           "in this tree yet")

# keras module -> (engine module, names it must re-export)
EXPECTED = {
    "layers": ("layers", ["Dense", "Dropout", "Activation", "Input",
                          "InputLayer", "Layer"]),
    "models": ("models", ["Sequential", "Model"]),
    "optimizers": ("optimizers", ["SGD", "Adam", "AdamW", "RMSprop",
                                  "Optimizer", "get"]),
    "optimizers.schedules": ("schedules", ["ExponentialDecay", "InverseTimeDecay",
                                           "PolynomialDecay", "PiecewiseConstantDecay",
                                           "CosineDecay", "CosineDecayRestarts",
                                           "LearningRateSchedule", "serialize",
                                           "deserialize"]),
    "losses": ("losses", ["Loss", "MeanSquaredError",
                          "SparseCategoricalCrossentropy",
                          "sparse_categorical_crossentropy", "mse", "get"]),
    "metrics": ("metrics", ["Metric", "SparseCategoricalAccuracy", "get"]),
    "callbacks": ("callbacks", ["Callback", "CallbackList", "History",
                                "ProgbarLogger", "EarlyStopping",
                                "ModelCheckpoint", "ReduceLROnPlateau",
                                "TerminateOnNaN", "CSVLogger",
                                "LambdaCallback"]),
    "regularizers": ("regularizers", ["l1", "l2", "l1_l2", "L1", "L2", "L1L2"]),
    "constraints": ("constraints", ["MaxNorm", "NonNeg", "max_norm"]),
    "initializers": ("initializers", ["GlorotUniform", "HeNormal", "Zeros"]),
    "utils": ("utils", ["to_categorical", "set_random_seed"]),
}


@pytest.mark.parametrize("kmod", sorted(EXPECTED))
def test_names_are_the_engine_objects(kmod):
    engine_mod, names = EXPECTED[kmod]
    k = importlib.import_module(f"dropout_engine.keras.{kmod}")
    real = importlib.import_module(f"dropout_engine.{engine_mod}")
    for name in names:
        assert getattr(k, name) is getattr(real, name), f"keras.{kmod}.{name}"
    for name in getattr(k, "__all__", ()):
        assert getattr(k, name) is not None


def test_star_imports_work():
    for kmod in EXPECTED:
        exec(f"from dropout_engine.keras.{kmod} import *", {})


def test_top_level_names_and_submodules():
    from dropout_engine import keras
    from dropout_engine import layers, model
    assert keras.Sequential is model.Sequential
    assert keras.Input is layers.Input
    assert keras.layers.Dense is layers.Dense
    assert keras.optimizers.schedules.ExponentialDecay.__name__ == "ExponentialDecay"
    assert keras.version() == keras.__version__
    with pytest.raises(AttributeError, match="Nope"):
        keras.Nope


def test_keras_style_script_trains():
    import numpy as np
    from dropout_engine import keras
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.1),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[keras.callbacks.History()])
    assert len(h.history["loss"]) == 3


def test_importing_the_package_does_not_import_keras():
    code = ("import sys, dropout_engine; "
            "print(any(m.startswith('dropout_engine.keras') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def test_submodules_are_attributes_of_the_package():
    # As `import keras; keras.utils.set_random_seed(0)` works without
    # importing keras.utils first.
    code = ("import dropout_engine as de; de.utils.set_random_seed(0); "
            "print(de.callbacks.EarlyStopping.__name__, de.keras.layers.Dense.__name__, "
            "de.datasets.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["EarlyStopping", "Dense", "dropout_engine.datasets"]
