"""Import time: `import dropout_engine` against numpy's, torch's and jax's,
each in a fresh interpreter (best of several)."""
import subprocess
import sys
import time

from .peers import optional


def _import_time(mod, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True)
        if r.returncode != 0:
            return None
        best = min(best, time.perf_counter() - t0)
    return best


def run(threads, quick):
    if threads != 1:  # not a threaded figure: measure once
        return []
    reps = 3 if quick else 7
    base = _import_time("sys", reps)  # interpreter start-up, subtracted
    ours = _import_time("dropout_engine", reps) - base
    rows = []
    for peer in ("numpy", "torch", "jax"):
        t = _import_time(peer, reps) if optional(peer) else None
        t = None if t is None else t - base
        rows.append(dict(bench="import time", case=f"import {peer}", threads=1,
                         ours=ours * 1e3, peer=(t or float("nan")) * 1e3, unit="ms",
                         peer_name=peer if t else f"{peer} (absent)", spread=0.0,
                         ratio=(t / ours) if t else float("nan")))
    return rows
