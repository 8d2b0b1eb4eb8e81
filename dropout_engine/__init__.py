"""dropout_engine: a CPU engine for multilayer perceptrons with dropout.

Hot loops (packed SIMD GEMM with a fused bias/activation/dropout epilogue,
a vectorised xoroshiro128++ mask generator) are C; this package validates
and plans in Python.  Runtime dependency: numpy.
"""
__version__ = "0.1.0"

from ._runtime import get_num_threads, isa, set_num_threads  # noqa: E402
from . import ops  # noqa: E402

__all__ = ["ops", "isa", "set_num_threads", "get_num_threads", "__version__"]
