"""Global seeding: one seed drives weight init, dropout masks and shuffling.

``set_random_seed(seed)`` (also ``dropout_engine.utils.set_random_seed``)
seeds Python's ``random``, numpy's legacy global RNG and this package's own
seed stream, as Keras's does.  Every consumer (a layer's initializer, a
Dropout's mask seed, fit's shuffling) takes the next 64-bit seed from that
stream, so building and fitting the same model after the same
``set_random_seed`` reproduces it bit for bit.  Dropout masks are drawn in C
from counter-derived keys (seed, layer, step), never from thread state, so
the result is also independent of the thread count.

``scoped(seed)`` gives the calling thread a stream of its own for a block
(the scikit-learn estimators' fits run in one), so that fits running at
once in threads -- a Dask worker's, joblib's threading backend -- are each
reproducible and leave the global stream alone.
"""
import contextlib
import os
import random
import threading

import numpy as np

from ._validation import is_int

_MASK = (1 << 64) - 1
_state = {"seed": None, "counter": 0}
_local = threading.local()      # .state: the thread's scoped stream, if any


def _stream():
    return getattr(_local, "state", None) or _state


def _splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def set_random_seed(seed):
    """Seed every random draw of the package (and ``random``, ``np.random``).

    Args:
        seed: a non-negative int.
    """
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed = int(seed)
    state = _stream()          # inside scoped(), that block's stream
    state["seed"] = seed
    state["counter"] = 0
    random.seed(seed)
    np.random.seed(seed % (1 << 32))


def next_seed():
    """The next 64-bit seed of the package's stream (fresh entropy when
    ``set_random_seed`` was never called)."""
    state = _stream()
    if state["seed"] is None:
        return int.from_bytes(os.urandom(8), "little")
    state["counter"] += 1
    return _splitmix64(_splitmix64(state["seed"]) ^ state["counter"])


@contextlib.contextmanager
def scoped(seed):
    """Within the block, the calling thread's draws come from a stream of
    its own seeded with ``seed`` (an int >= 0), as after
    ``set_random_seed(seed)`` but for the package's stream only and for
    this thread only; the global stream and other threads' are untouched."""
    saved = getattr(_local, "state", None)
    _local.state = {"seed": int(seed), "counter": 0}
    try:
        yield
    finally:
        _local.state = saved


def numpy_rng(seed=None):
    """A numpy Generator seeded from ``seed`` or else the package's stream."""
    return np.random.Generator(np.random.PCG64(next_seed() if seed is None
                                               else int(seed) & _MASK))
