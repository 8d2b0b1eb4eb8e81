"""The peers we measure against, each optional but numpy."""
import contextlib
import importlib


def optional(name):
    """The module, or None when it is not installed (reported as absent)."""
    try:
        return importlib.import_module(name)
    except Exception:  # an absent or broken peer must not crash the run
        return None


def installed(name):
    """Whether a package is installed, without importing it (Keras would
    pick and load a backend in this process)."""
    import importlib.util
    return importlib.util.find_spec(name) is not None


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


def child_main(argv, figure):
    """Entry of a pinned child: JAX's (and Keras-on-JAX's) thread pools are
    fixed at import, so each thread count runs in its own process pinned to
    that many cores; prints figure(net, args) as JSON."""
    import argparse
    import json
    import os
    from .nets import workloads
    p = argparse.ArgumentParser()
    p.add_argument("--net")
    p.add_argument("--threads", type=int)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mode")
    a = p.parse_args(argv)
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: a.threads]))
    net = workloads(a.quick)[a.net]
    net.weights = net.init_weights()
    print(json.dumps(figure(net, a)))


def run_pinned(module, net_key, threads, quick, mode):
    """Run `python -m module` as a pinned child; its figure, or None."""
    import json
    import subprocess
    import sys
    cmd = [sys.executable, "-m", module, "--net", net_key, "--threads",
           str(threads), "--mode", mode] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        print(f"# {module} {mode} {net_key} failed: {r.stderr.strip()[-300:]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])
