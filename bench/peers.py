"""The peers we measure against, each optional but numpy."""
import contextlib
import importlib


def optional(name):
    """The module, or None when it is not installed (reported as absent)."""
    try:
        return importlib.import_module(name)
    except Exception:  # an absent or broken peer must not crash the run
        return None


def torch_or_none():
    return optional("torch")


@contextlib.contextmanager
def blas_threads(n):
    """Limit numpy's BLAS to n threads (needs threadpoolctl)."""
    tpc = optional("threadpoolctl")
    if tpc is None:
        yield
        return
    with tpc.threadpool_limits(limits=n, user_api="blas"):
        yield


def blas_info():
    """Which BLAS numpy runs, and which kernel (OpenBLAS 'architecture')."""
    tpc = optional("threadpoolctl")
    if tpc is None:
        return [{"note": "threadpoolctl not installed"}]
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl sees it)
    return [{k: d.get(k) for k in ("internal_api", "version", "architecture",
                                   "num_threads", "filepath")}
            for d in tpc.threadpool_info() if d.get("user_api") == "blas"]
