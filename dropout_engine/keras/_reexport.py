"""The one helper of the keras namespace modules: names the engine may or may
not offer yet (e.g. GaussianDropout) are re-exported when they exist, so a
keras module never lists something that is not there."""
import importlib


def optional(module, *names):
    """{name: object} for those `names` that `module` defines."""
    mod = importlib.import_module(module)
    return {n: getattr(mod, n) for n in names if hasattr(mod, n)}
