"""show_config(): what a bug report needs, in one call.

    >>> import dropout_engine
    >>> dropout_engine.show_config()           # prints
    >>> dropout_engine.show_config(mode="dicts")   # returns a dict

Names follow ``numpy.show_config``.  The thread pool: the engine's kernels
run on the OpenMP runtime it is linked with (libgomp with gcc); threadpoolctl
lists that pool with ``user_api == "openmp"`` and its limits apply, since the
engine uses ``min(set_num_threads, omp_get_max_threads())`` threads.
"""
import os
import platform
import sys

import numpy as np

from . import __version__, _runtime


def _openmp():
    compiler, version = _runtime.build_info()
    return {"enabled": _runtime.openmp_enabled(),
            "version": version or None}     # _OPENMP, yyyymm (201511 = 4.5)


def _threadpools():
    """The OpenMP pools threadpoolctl sees (None without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [{k: p.get(k) for k in ("internal_api", "prefix", "filepath",
                                   "version", "num_threads")}
            for p in threadpoolctl.threadpool_info() if p.get("user_api") == "openmp"]


def config_dict():
    compiler, _ = _runtime.build_info()
    return {
        "dropout_engine": {"version": __version__,
                           "path": os.path.dirname(os.path.abspath(__file__))},
        "build": {"compiler": compiler, "openmp": _openmp()},
        "cpu": {"machine": platform.machine(), "isa": _runtime.isa(),
                "available_isas": _runtime.available_isas(),
                "int8_kernel": _runtime.int8_kernel()},
        "threads": {"num_threads": _runtime.get_num_threads(),
                    "cpu_count": os.cpu_count(),
                    "openmp_pools": _threadpools()},
        "environment": {k: os.environ.get(k) for k in
                        ("DROPOUT_ENGINE_ISA", "OMP_NUM_THREADS")},
        "python": {"version": sys.version.split()[0],
                   "implementation": platform.python_implementation(),
                   "platform": platform.platform()},
        "numpy": {"version": np.__version__},
    }


def _lines(d, indent=0):
    for k, v in d.items():
        if isinstance(v, dict):
            yield " " * indent + f"{k}:"
            yield from _lines(v, indent + 2)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            yield " " * indent + f"{k}:"
            for item in v:
                yield from _lines(item, indent + 2)
        else:
            yield " " * indent + f"{k}: {v}"


def show_config(mode="stdout"):
    """Print (mode="stdout") or return (mode="dicts") the version, build
    (compiler, OpenMP), CPU path (the ISA that runs, those available, the
    kernel of quantized models),
    thread count and OpenMP pools, relevant environment variables, Python
    and numpy versions."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    d = config_dict()
    if mode == "dicts":
        return d
    print("\n".join(_lines(d)))
    return None
