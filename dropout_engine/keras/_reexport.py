"""The helpers of the keras namespace modules: names the engine may or may
not offer yet (e.g. GaussianDropout) are re-exported when they exist, so a
keras module never lists something that is not there; and a Keras name that
is missing raises an error saying so and what to use instead."""
import difflib
import importlib
import sys


def optional(module, *names):
    """{name: object} for those `names` that `module` defines."""
    mod = importlib.import_module(module)
    return {n: getattr(mod, n) for n in names if hasattr(mod, n)}


class NotSupportedError(NotImplementedError, ImportError):
    """A Keras name that dropout_engine does not offer (yet).

    Also an ImportError, so that ``from dropout_engine.keras.layers import
    Conv2D`` shows this message (Python replaces an AttributeError there by
    a bare "cannot import name") and ``try: ... except ImportError`` feature
    checks work as for a missing optional module."""


_KINDS = {"keras": "names", "layers": "layers", "models": "names",
          "optimizers": "optimizers", "optimizers.schedules": "schedules",
          "losses": "losses", "metrics": "metrics", "callbacks": "callbacks",
          "initializers": "initializers", "regularizers": "regularizers",
          "constraints": "constraints", "activations": "activations",
          "saving": "functions", "utils": "utilities"}


def unsupported(module, name):
    """The exception for ``module.name`` missing (a PEP 562 ``__getattr__``
    raises it): NotSupportedError when Keras 3 has the name, naming what
    the namespace offers and, where there is one, what to use instead; an
    AttributeError (with close matches) for any other name."""
    if name.startswith("__"):       # introspection (__path__, __wrapped__ ...)
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    from ._keras_names import HINTS, KERAS_NAMES
    ns = module[len("dropout_engine.keras"):].lstrip(".") or "keras"
    offered = sorted(n for n in getattr(sys.modules[module], "__all__", ())
                     if not n.startswith("_"))
    public = "keras" + ("" if ns == "keras" else "." + ns)
    if name not in KERAS_NAMES.get(ns, "").split():
        close = difflib.get_close_matches(name, offered, n=3)
        return AttributeError(f"module {module!r} has no attribute {name!r}"
                              + (f"; did you mean {' or '.join(close)}?" if close else ""))
    hint = next((h for space, names, h in HINTS
                 if space == ns and name.startswith(names)), None)
    return NotSupportedError(
        f"{public}.{name} is not supported by dropout_engine, a CPU engine for "
        "multilayer perceptrons (Dense layers and dropout on [batch, features] "
        f"arrays){': ' + hint if hint else ''}. Supported {_KINDS.get(ns, 'names')} "
        f"in {public}: {', '.join(offered)}")
