"""Keras 3's module layout over dropout_engine: `from dropout_engine import
keras` and then keras.Sequential, keras.layers.Dense, keras.callbacks...,
as in code written for Keras.

Every name here is the real dropout_engine object, re-exported (nothing is
wrapped).  Submodules and names load on first use (PEP 562), so importing
this package costs nothing until a name is touched; `import dropout_engine`
does not import it at all.

Example:
    >>> from dropout_engine import keras
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras.layers.Dense(10, activation="softmax")])
"""
import importlib

_SUBMODULES = ("activations", "callbacks", "constraints", "initializers",
               "layers", "losses", "metrics", "mixed_precision", "models", "optimizers",
               "regularizers", "saving", "utils")
# Top-level names, as keras exports them: name -> (module, attribute).
_NAMES = {
    "Sequential": ("dropout_engine.models", "Sequential"),
    "Model": ("dropout_engine.models", "Model"),
    "Input": ("dropout_engine.layers", "Input"),
    "Layer": ("dropout_engine.layers", "Layer"),
    "KerasTensor": ("dropout_engine.layers", "KerasTensor"),
    "Loss": ("dropout_engine.losses", "Loss"),
    "Metric": ("dropout_engine.metrics", "Metric"),
    "Optimizer": ("dropout_engine.optimizers", "Optimizer"),
    "Initializer": ("dropout_engine.initializers", "Initializer"),
    "Regularizer": ("dropout_engine.regularizers", "Regularizer"),
    "__version__": ("dropout_engine", "__version__"),
}
__all__ = sorted(_SUBMODULES) + sorted(_NAMES) + ["version"]


def version():
    """The dropout_engine version (keras.version() gives Keras's)."""
    from dropout_engine import __version__
    return __version__


def __getattr__(name):
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        module, attr = _NAMES[name]
        value = getattr(importlib.import_module(module), attr)
    else:
        from ._reexport import unsupported
        raise unsupported(__name__, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
