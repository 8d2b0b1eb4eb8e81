"""Dask: batch predict over a dask array, and the engine's threads inside a
Dask worker (``pip install "dask[distributed]"``; dask is imported by the
functions that use it, never by ``import dropout_engine``).

    import dask.array as da
    from dropout_engine import dask as de_dask

    x = da.from_array(big, chunks=(100_000, -1))   # rows in blocks
    y = de_dask.predict(model, x)                   # lazy, [n, units] float32
    y.compute()                                     # == model.predict(big)

The model goes into the graph once (one key), not once per block: a
distributed scheduler ships it to each worker as its model file's bytes,
which is what pickling a model is (``Sequential.__reduce__``), and every
block is one ``model.predict`` call in the worker.  Predictions do not
depend on how the rows are split, so the result equals ``model.predict`` on
the whole array bit for bit.

Threads.  Dask's nanny starts each worker process with
``OMP_NUM_THREADS=1`` (the ``distributed.nanny.pre-spawn-environ``
config), which the engine's OpenMP pool follows: one engine thread per
worker thread, the worker's thread budget, and no oversubscription.  A
worker started without that variable (``processes=False``, where workers
are threads of the client's process, or a worker without nanny) would let
each task use every core; ``worker_threads()`` closes that gap: inside a
Dask worker it limits the engine, in the calling thread only, to the
task's budget (OMP_NUM_THREADS when set, else 1, Dask's rule).  The
scikit-learn estimators' fits and ``predict``'s blocks run inside it.
"""
import contextlib
import os
import sys

import numpy as np

from ._runtime import get_num_threads

__all__ = ["predict", "worker_threads", "task_thread_budget"]


def _in_worker():
    # A worker has imported distributed; a process that has not is no worker
    # (and pays nothing for the check).
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def task_thread_budget():
    """The engine threads a task may use in this thread: None outside a
    Dask worker; inside one, the worker's OMP_NUM_THREADS when set (Dask's
    nanny sets 1), else 1."""
    if not _in_worker():
        return None
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1").split(",")[0]))
    except ValueError:
        return 1


@contextlib.contextmanager
def worker_threads():
    """Inside a Dask worker, run with the engine limited to the task's
    thread budget (``task_thread_budget``) in this thread; elsewhere, or
    when the engine is within the budget already, a no-op.

    The limit is OpenMP's, per thread (threadpoolctl's ``threadpool_limits``
    on the OpenMP pools, which scikit-learn brings): other tasks' threads
    and the client's are not touched.  Without threadpoolctl the engine
    keeps its threads.
    """
    budget = task_thread_budget()
    if budget is None or get_num_threads() <= budget:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=budget, user_api="openmp"):
        yield


def _predict_block(block, model, batch_size, n_out):
    if block.shape[0] == 0:      # dask may make empty blocks (slicing)
        return np.empty((0, n_out), np.float32)
    with worker_threads():
        return model.predict(block, batch_size=batch_size)


def predict(model, x, *, batch_size=None):
    """``model.predict`` over the rows of a dask array, block by block.

    Args:
        model: a built dropout_engine model (``Sequential``).
        x: a 2-d ``dask.array.Array`` of numbers [n, features]; its rows may
            be in any blocks (the columns are joined into one block).
        batch_size: rows per C call inside a block (``model.predict``'s).

    Returns:
        A lazy float32 ``dask.array.Array`` [n, units] with x's row blocks;
        ``.compute()`` equals ``model.predict(x.compute())``.

    Raises:
        TypeError, ValueError: x is not a 2-d dask array of numbers of the
            model's width, or the model is not built.

    Example:
        >>> y = predict(model, da.from_array(x, chunks=(10_000, -1))).compute()
    """
    import dask
    import dask.array as da
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array, got {type(x).__name__} "
                        "(use model.predict for numpy arrays)")
    if not getattr(model, "built", False) or not callable(getattr(model, "predict", None)):
        raise ValueError("model must be a built dropout_engine model (call build, "
                         "fit or predict on it first)")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-d [n, features], got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must hold real numbers, got dtype {x.dtype}")
    n_in = model.layers[0].input_dim
    if x.shape[1] != n_in:
        raise ValueError(f"x has {x.shape[1]} features, the model expects {n_in}")
    n_out = model.predict(np.zeros((1, n_in), np.float32)).shape[1]
    if x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    return x.map_blocks(_predict_block, dask.delayed(model), batch_size,
                        n_out, dtype=np.float32, chunks=(x.chunks[0], (n_out,)),
                        meta=np.empty((0, n_out), np.float32))
