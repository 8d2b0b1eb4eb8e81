"""The keras drop-in namespaces re-export the real objects, lazily."""
import importlib
import os
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


# ------------------------------------------------- names we do not offer
NAMESPACES = ["layers", "models", "optimizers", "optimizers.schedules", "losses",
              "metrics", "callbacks", "initializers", "regularizers", "constraints",
              "activations", "saving", "utils"]
# Common Keras names across the namespaces: each is either offered (another
# branch may add it) or refused with NotSupportedError, never a bare
# AttributeError.
COMMON = {
    "": ["ops", "backend", "applications", "mixed_precision", "KerasTensor",
         "Variable", "datasets", "wrappers", "preprocessing"],
    "layers": ["Conv1D", "Conv2D", "MaxPooling2D", "GlobalAveragePooling1D", "LSTM",
               "GRU", "SimpleRNN", "Bidirectional", "Embedding", "Flatten", "Reshape",
               "BatchNormalization", "LayerNormalization", "Lambda", "Concatenate",
               "Add", "MultiHeadAttention", "TimeDistributed", "GaussianNoise",
               "SpatialDropout1D", "Normalization", "Rescaling", "Identity"],
    "models": ["clone_model", "model_from_json"],
    "optimizers": ["Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
                   "LossScaleOptimizer"],
    "losses": ["Huber", "LogCosh", "Hinge", "KLDivergence", "Poisson",
               "BinaryFocalCrossentropy", "huber", "CosineSimilarity"],
    "metrics": ["AUC", "Precision", "Recall", "F1Score", "TopKCategoricalAccuracy",
                "RootMeanSquaredError", "R2Score"],
    "callbacks": ["LearningRateScheduler", "BackupAndRestore", "RemoteMonitor"],
    "initializers": ["STFT"],
    "regularizers": ["OrthogonalRegularizer"],
    "constraints": ["UnitNorm", "MinMaxNorm"],
    "activations": ["mish", "softsign", "exponential", "log_softmax", "hard_tanh"],
    "saving": ["register_keras_serializable", "get_custom_objects"],
    "utils": ["PyDataset", "Sequence", "plot_model", "pad_sequences", "normalize",
              "clear_session", "get_file"],
}


def _module(ns):
    return importlib.import_module("dropout_engine.keras" + ("." + ns if ns else ""))


def _offered_or_refused(ns, name):
    from dropout_engine.keras._reexport import NotSupportedError
    mod = _module(ns)
    try:
        getattr(mod, name)
    except NotSupportedError as e:
        msg = str(e)
        public = "keras" + ("." + ns if ns else "")
        assert msg.startswith(f"{public}.{name} is not supported by dropout_engine")
        # The message lists what the namespace offers.
        for offered in [n for n in mod.__all__ if not n.startswith("_")][:3]:
            assert offered in msg
        return msg
    return None


@pytest.mark.parametrize("ns,name", [(ns, n) for ns, names in COMMON.items()
                                     for n in names])
def test_common_keras_names_are_offered_or_refused_clearly(ns, name):
    _offered_or_refused(ns, name)


def test_every_keras_3_name_is_offered_or_refused_clearly():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    refused = 0
    for ns in [""] + NAMESPACES:
        theirs = keras
        for part in ns.split(".") if ns else []:
            theirs = getattr(theirs, part)
        for name in (n for n in dir(theirs) if not n.startswith("_") and n != "src"):
            refused += _offered_or_refused(ns, name) is not None
    assert refused > 300         # most of Keras is not an MLP engine's


def test_advice_names_what_to_use():
    from dropout_engine import keras
    from dropout_engine.keras._reexport import NotSupportedError
    for expr, advice in [("keras.layers.Conv2D", "x.reshape(len(x), -1)"),
                         ("keras.layers.LSTM", "recurrent layers are not supported"),
                         ("keras.optimizers.Nadam", "use SGD, Adam, AdamW or RMSprop"),
                         ("keras.metrics.AUC", "sklearn.metrics"),
                         ("keras.callbacks.LearningRateScheduler", "optimizers.schedules"),
                         ("keras.models.clone_model", "copy.deepcopy(model)"),
                         ("keras.ops", "dropout_engine.ops")]:
        with pytest.raises(NotSupportedError, match=advice.replace("(", r"\(")
                           .replace(")", r"\)").replace(".", r"\.")):
            eval(expr, {"keras": keras})


def test_from_import_of_a_keras_name_shows_the_message():
    from dropout_engine.keras._reexport import NotSupportedError
    with pytest.raises(ImportError, match="Conv2D is not supported by dropout_engine"):
        exec("from dropout_engine.keras.layers import Conv2D", {})
    with pytest.raises(NotImplementedError, match="Nadam is not supported"):
        exec("from dropout_engine.keras.optimizers import Nadam", {})
    assert issubclass(NotSupportedError, ImportError)
    assert issubclass(NotSupportedError, NotImplementedError)


def test_other_names_stay_attribute_errors_with_close_matches():
    from dropout_engine import keras
    with pytest.raises(AttributeError, match="did you mean Dense"):
        keras.layers.Dens
    with pytest.raises(AttributeError, match="did you mean Adam"):
        keras.optimizers.Adma
    for ns in [""] + NAMESPACES:
        mod = _module(ns)
        assert not hasattr(mod, "__wrapped__") and not hasattr(mod, "no_such_thing")
