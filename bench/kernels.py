"""Kernel benchmarks: GEMM vs numpy's OpenBLAS, the cost of fused dropout,
standalone dropout vs memcpy (and vs torch's dropout when installed)."""
import numpy as np

import dropout_engine as de
from dropout_engine import ops

from .peers import blas_threads, torch_or_none
from .timing import measure

GEMM_SHAPES = [(128, 1024, 1024), (128, 784, 1024), (1024, 1024, 1024),
               (1, 784, 1024)]


def gemm(threads, quick):
    rows = []
    rng = np.random.default_rng(0)
    for m, k, n in GEMM_SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        flops = 2.0 * m * n * k
        reps = 3 if quick else 7
        ours = measure(lambda: ops.matmul(a, b, out=c), repeats=reps)
        with blas_threads(threads):
            peer = measure(lambda: np.matmul(a, b, out=c), repeats=reps)
        rows.append(dict(
            bench="gemm", case=f"{m}x{k}x{n}", threads=threads,
            ours=ours.rate(flops) / 1e9, peer=peer.rate(flops) / 1e9,
            unit="GFLOP/s", peer_name="OpenBLAS", spread=ours.spread,
            ratio=ours.rate(flops) / peer.rate(flops)))
    return rows


def fused_dropout(threads, quick):
    """dense + relu + dropout(0.5) vs dense + relu, 128x1024 -> 1024."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 1024), dtype=np.float32)
    w = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal(1024, dtype=np.float32)
    reps = 5 if quick else 11
    plain = measure(lambda: ops.dense_forward(x, w, b, activation="relu"),
                    repeats=reps)
    fused = measure(lambda: ops.dense_forward(x, w, b, activation="relu",
                                              dropout_rate=0.5), repeats=reps)
    return [dict(bench="fused dense+relu+dropout(0.5)", case="128x1024->1024",
                 threads=threads, ours=fused.best * 1e6, peer=plain.best * 1e6,
                 unit="us", peer_name="dense+relu, no dropout",
                 spread=fused.spread, ratio=plain.best / fused.best,
                 overhead_pct=100.0 * (fused.best / plain.best - 1.0))]


def dropout_bandwidth(threads, quick):
    rows = []
    torch = torch_or_none()
    for mb in (4, 64):
        n = mb * 2 ** 20 // 4
        x = np.random.default_rng(2).standard_normal(n, dtype=np.float32)
        y = np.empty_like(x)
        moved = 2.0 * x.nbytes  # read x, write y (the mask adds 1/32)
        reps = 5 if quick else 11
        ours = measure(lambda: ops.dropout(x, 0.5, out=y), repeats=reps)
        copy = measure(lambda: np.copyto(y, x), repeats=reps)
        rows.append(dict(
            bench="dropout(x, 0.5, out=y)", case=f"{mb} MB", threads=threads,
            ours=ours.rate(moved) / 1e9, peer=copy.rate(moved) / 1e9,
            unit="GB/s", peer_name="np.copyto", spread=ours.spread,
            ratio=ours.rate(moved) / copy.rate(moved)))
        # As a user calls it: a fresh output (and mask) every call, whose
        # pages the kernel faults in; the peer copies into a fresh array.
        cold = measure(lambda: ops.dropout(x, 0.5), repeats=reps)
        cold_copy = measure(lambda: np.copyto(np.empty_like(x), x), repeats=reps)
        rows.append(dict(
            bench="dropout(x, 0.5), fresh output", case=f"{mb} MB",
            threads=threads, ours=cold.rate(moved) / 1e9,
            peer=cold_copy.rate(moved) / 1e9, unit="GB/s",
            peer_name="np.copyto into np.empty_like", spread=cold.spread,
            ratio=cold.rate(moved) / cold_copy.rate(moved)))
        if torch is not None:
            tx = torch.from_numpy(x)
            tdrop = measure(lambda: torch.nn.functional.dropout(tx, 0.5, True),
                            repeats=reps)
            rows.append(dict(
                bench="torch dropout vs ours", case=f"{mb} MB", threads=threads,
                ours=ours.rate(moved) / 1e9, peer=tdrop.rate(moved) / 1e9,
                unit="GB/s", peer_name="torch.nn.functional.dropout",
                spread=ours.spread, ratio=ours.rate(moved) / tdrop.rate(moved)))
    return rows


def run(threads, quick):
    de.set_num_threads(threads)
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(threads)
    return gemm(threads, quick) + fused_dropout(threads, quick) + \
        dropout_bandwidth(threads, quick)
