"""Process-wide engine settings and facts: the ISA path, the thread count,
the build.

The ISA is chosen once, at import: the best one the CPU supports, or the one
named by DROPOUT_ENGINE_ISA (generic | avx2 | avx512), which tests and
benchmarks use to force a path.  Asking for a path this CPU (or this build)
cannot run is an error at import, not a silent fallback: a benchmark that
believes it measures AVX-512 must not be measuring generic C.
"""
import os

from . import _engine
from ._validation import positive_int

ISA_NAMES = ("generic", "avx2", "avx512")


def _choose_isa():
    wanted = os.environ.get("DROPOUT_ENGINE_ISA", "").strip().lower()
    if not wanted:
        _engine.isa_set(_engine.isa_best())
        return
    if wanted not in ISA_NAMES:
        raise ValueError(
            f"DROPOUT_ENGINE_ISA must be one of {', '.join(ISA_NAMES)}, "
            f"got {wanted!r}")
    if not _engine.isa_set(ISA_NAMES.index(wanted)):
        available = [n for i, n in enumerate(ISA_NAMES) if _engine.isa_available(i)]
        raise RuntimeError(
            f"DROPOUT_ENGINE_ISA={wanted}: this CPU or build cannot run the "
            f"{wanted} kernels; available: {', '.join(available)}")


_choose_isa()


def _choose_bf16():
    """DROPOUT_ENGINE_BF16=emulated makes the AVX-512 path emulate
    VDPBF16PS even where the CPU has it (the same bits, for tests and
    benchmarks); unset or "native", the instruction runs where it can."""
    wanted = os.environ.get("DROPOUT_ENGINE_BF16", "").strip().lower()
    if wanted not in ("", "native", "emulated"):
        raise ValueError(
            f"DROPOUT_ENGINE_BF16 must be native or emulated, got {wanted!r}")
    _engine.bf16_set_native(wanted != "emulated")


_choose_bf16()


def isa():
    """The kernel path that runs: "avx512", "avx2" or "generic"."""
    return ISA_NAMES[_engine.isa_get()]


def available_isas():
    """The kernel paths this CPU and build can run, fastest last."""
    return [n for i, n in enumerate(ISA_NAMES) if _engine.isa_available(i)]


def set_num_threads(n):
    """Use at most `n` threads in the engine's kernels (n >= 1).

    By default the engine follows OpenMP (OMP_NUM_THREADS, else the core
    count), and a threadpoolctl limit on the OpenMP pool also applies.
    Results do not depend on the thread count: the engine's reductions and
    dropout masks are fixed by its blocking, not by threads.
    """
    n = positive_int("set_num_threads(n)", n)
    _engine.set_num_threads(min(n, 1 << 16))


def get_num_threads():
    """The number of threads the engine's kernels use."""
    return _engine.get_num_threads()


def build_info():
    """(compiler, OpenMP version yyyymm or 0) the C library was built with."""
    return _engine.build_info()


def openmp_enabled():
    """Whether the C library was built with OpenMP (else one thread)."""
    return _engine.openmp_enabled()


def int8_kernel():
    """The name of the kernel that runs quantized (int8) Dense layers."""
    return _engine.qdense_kernel()


def bf16_kernel():
    """The kernel that runs bfloat16 GEMMs (mixed_bfloat16 training):
    "avx512-bf16" (VDPBF16PS) or "<isa>-emulated" (bit-identical)."""
    return _engine.bf16_kernel()
