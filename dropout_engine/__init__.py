"""dropout_engine: a CPU engine for multilayer perceptrons with dropout.

Hot loops (packed SIMD GEMM with a fused bias/activation/dropout epilogue,
a vectorised xoroshiro128++ mask generator) are C; this package validates
and plans in Python.  Runtime dependency: numpy.
"""
__version__ = "0.1.0"

from ._runtime import get_num_threads, isa, set_num_threads  # noqa: E402
from . import ops  # noqa: E402

__all__ = ["ops", "isa", "set_num_threads", "get_num_threads", "__version__"]

# The model API loads on first use (PEP 562), so `import dropout_engine`
# stays as cheap as the kernels alone.
_LAZY = {
    "Sequential": ("models", "Sequential"),
    "Model": ("models", "Model"),
    "load_model": ("saving", "load_model"),
    "set_random_seed": ("seeding", "set_random_seed"),
    "show_config": ("_sysinfo", "show_config"),
}
_LAZY_MODULES = ("activations", "layers", "model", "models", "losses", "metrics",
                 "optimizers", "regularizers", "constraints", "initializers",
                 "saving", "seeding", "utils", "callbacks", "datasets", "keras",
                 "distribute")


def __getattr__(name):
    import importlib
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ += list(_LAZY)


def get_include():
    """The directory holding ``dropout_engine.h``, the C embedding API.

    ``python -m dropout_engine.config --cflags --libs`` prints the flags to
    compile and link a C program against the library.
    """
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_csrc")


__all__.append("get_include")
