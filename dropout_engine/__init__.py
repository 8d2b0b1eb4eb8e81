"""dropout_engine: a CPU engine for multilayer perceptrons with dropout.

Hot loops (packed SIMD GEMM with a fused bias/activation/dropout epilogue,
a vectorised xoroshiro128++ mask generator) are C; this package validates
and plans in Python.  Runtime dependency: numpy.
"""
__version__ = "0.1.0"

from ._runtime import get_num_threads, isa, set_num_threads  # noqa: E402
from . import ops  # noqa: E402



def get_include():
    """The directory holding ``dropout_engine.h``, the C embedding API.

    ``python -m dropout_engine.config --cflags --libs`` prints the flags to
    compile and link a C program against the library.
    """
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_csrc")


__all__ = ["ops", "isa", "set_num_threads", "get_num_threads", "get_include",
           "__version__"]
