"""Data-parallel training of W1 over MPI (dropout_engine.distribute):
2 ranks x 1 thread against one process, measured in the same run.

Per thread count t of the bench:
  t = 1: 2 ranks x 1 thread against 1 process x 1 thread (the speed-up of
         adding a process; the issue's goal: >= 1.7x on 2 cores);
  t = 2: 2 ranks x 1 thread against 1 process x 2 threads (MPI against
         OpenMP on the same two cores).
Also, once: what a sharded (ZeRO-1) update would trade, timed in the
same processes: its collectives (MPI_Reduce_scatter of the gradients, an
MPI_Allgatherv of each weight) against the all-reduce, and the optimizer
update over all of W1's weights in one process, the work it would halve;
the gradient buckets ("layer", "overlap") against "step"; Open
MPI's segmented-ring all-reduce (``OMPI_MCA_coll_tuned_allreduce_algorithm=5``)
against its default choice (README "Scaling out": faster only on a loaded
machine); and
the sums' share of a step, as the C loop clocks them in the step
(``_net.Net.comm_seconds``), and the time of the step's two MPI_Allreduce
calls alone (the gradients, 4 bytes a weight, and the batch's loss/metric
sums), timed in the same processes, over the time of a 2-rank step.  Needs
mpirun and mpi4py; without them the section reports nothing.  Two
processes need both cores idle: on a shared machine a third runnable
process stalls one rank and the other waits for it at every all-reduce.

The child (``python -m bench.distributed --child ...``) runs under mpirun
or alone, trains W1 from the same initial weights, and prints its figures
as JSON from rank 0.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from .nets import workloads

RANKS = 2


def _child(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--buckets", default="step")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch", type=int, default=0, help="global batch (default: W1's)")
    p.add_argument("--no-shm", action="store_true", help="MPI_Allreduce alone")
    a = p.parse_args(argv)
    import numpy as np
    import dropout_engine as de
    from . import ours
    dist = de.distribute.DataParallel(buckets=a.buckets, shared_memory=not a.no_shm)
    de.distribute.set_distribution(dist)
    de.set_num_threads(a.threads)
    net = workloads(a.quick)["W1"]
    net.weights = net.init_weights()
    x, y = net.data()
    model = ours._model(net)
    batch = a.batch or net.batch
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)      # warm-up
    best, comm = float("inf"), 0.0
    for _ in range(3 if a.quick else 6):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        t = time.perf_counter() - t0
        if t < best:     # the loop's own clock of its sums in that fit
            best, comm = t, model._net.comm_seconds()
    steps = -(-len(x) // batch)
    grads = sum(w.size for w in model.get_weights())
    out = {"samples_per_s": len(x) / best, "step_ms": best / steps * 1e3,
           "comm_ms": comm / steps * 1e3,
           "world": dist.world_size, "grad_bytes": 4 * grads}
    if dist.allreduce is not None:
        from mpi4py import MPI
        comm, g, s = dist.allreduce.comm, np.ones(grads, np.float32), np.ones(2)
        times = []
        for _ in range(30):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, g)
            comm.Allreduce(MPI.IN_PLACE, s)
            times.append(time.perf_counter() - t0)
        out["allreduce_ms"] = sorted(times)[len(times) // 2] * 1e3
        out["sharded_comm_ms"] = _sharded_comm_ms(MPI, comm, model.get_weights())
    out["update_ms"] = _update_ms(model)
    if dist.rank == 0:
        print(json.dumps(out), flush=True)


def _sharded_comm_ms(MPI, comm, weights):
    """The median time of a sharded update's collectives alone: the
    gradients' MPI_Reduce_scatter, then an in-place MPI_Allgatherv per
    weight of each rank's slice (16-float-aligned slices of the weights
    laid end to end)."""
    import numpy as np
    size = comm.Get_size()
    n = sum(w.size for w in weights)
    lo = [n * r // size // 16 * 16 for r in range(size)] + [n]
    counts = [lo[r + 1] - lo[r] for r in range(size)]
    g, ws = np.ones(n, np.float32), [w.ravel().copy() for w in weights]
    starts = np.cumsum([0] + [w.size for w in ws])[:-1]
    parts = []
    for start, length in zip(map(int, starts), (w.size for w in ws)):
        c = [max(0, min(lo[r + 1], start + length) - max(lo[r], start)) for r in range(size)]
        d = [max(lo[r], start) - start if c[r] else 0 for r in range(size)]
        parts.append((c, d))
    times = []
    for _ in range(30):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Reduce_scatter(MPI.IN_PLACE, [g, MPI.FLOAT], counts)
        for w, (c, d) in zip(ws, parts):
            comm.Allgatherv(MPI.IN_PLACE, [w, (c, d), MPI.FLOAT])
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def _update_ms(model):
    """The median time of W1's optimizer update over all its weights in
    this process (the C loop's de_param_update, on copies)."""
    import numpy as np
    from dropout_engine import _engine
    opt = model.optimizer
    cfg = opt._c_config()
    params = [({"w": w.copy(), "slots": [np.zeros_like(w) for _ in range(opt._n_slots)]},
               np.zeros(w.size, np.float32)) for w in model.get_weights()]
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        for p, g in params:
            _engine.param_update(cfg, 0, p, g)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


SEGMENTED_RING = {"OMPI_MCA_coll_tuned_use_dynamic_rules": "1",
                  "OMPI_MCA_coll_tuned_allreduce_algorithm": "5"}


def _launch(ranks, threads, quick, buckets="step", mca=None, extra=()):
    cmd = [sys.executable, "-m", "bench.distributed", "--child", "--threads",
           str(threads), "--buckets", buckets] + (["--quick"] if quick else []) + list(extra)
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--bind-to", "core", "--allow-run-as-root"] + cmd
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **(mca or {}))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if r.returncode != 0:
        print(f"# distributed: {' '.join(cmd[:4])} ... failed: {r.stderr.strip()[-400:]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _row(case, threads, ours, peer, unit, peer_name, ratio=None):
    return dict(bench="train W1 data-parallel", case=case, threads=threads, ours=ours,
                peer=peer, unit=unit, peer_name=peer_name, spread=0.0,
                ratio=ratio if ratio is not None else ours / peer)


def run(threads, quick):
    import importlib.util
    if shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None:
        print("# distributed: needs mpirun and mpi4py (pip install "
              "\"dropout_engine[mpi]\"); skipped")
        return []
    if threads > RANKS:
        return []
    two = _launch(RANKS, 1, quick)
    one = _launch(1, threads, quick)
    if two is None or one is None:
        return []
    rows = [_row(f"{RANKS} ranks x 1 thr", threads, two["samples_per_s"],
                 one["samples_per_s"], "samples/s", f"1 process x {threads} thr")]
    if threads == 1:
        # The share of a step in the sums, as the C loop clocks them
        # inside the step (the shared window's barriers and slice sums,
        # waits for the other rank included), and MPI_Allreduce of the
        # same bytes timed alone in the same processes.
        rows.append(_row("sum share (in the loop)", 1, two["comm_ms"], two["step_ms"],
                         "ms", f"of a {two['step_ms']:.2f} ms step",
                         ratio=two["comm_ms"] / two["step_ms"]))
        share = two["allreduce_ms"] / two["step_ms"]
        rows.append(_row("all-reduce share", 1, two["allreduce_ms"], two["step_ms"], "ms",
                         f"of a {two['step_ms']:.2f} ms step, "
                         f"{two['grad_bytes'] / 1e6:.2f} MB", ratio=share))
        # What a sharded (ZeRO-1) update would trade (README "Scaling
        # out": tried, it did not pay): its collectives against the
        # all-reduce, and the optimizer work it would halve.
        rows.append(_row("sharded comm", 1, two["sharded_comm_ms"],
                         two["allreduce_ms"], "ms", "the all-reduce, ms"))
        rows.append(_row("optimizer update", 1, one["update_ms"], one["step_ms"], "ms",
                         f"of a 1-process {one['step_ms']:.2f} ms step"))
        # Weak scaling (Horovod's and DDP's way of reporting): each rank
        # keeps W1's 128 rows, the global batch doubles.
        weak = _launch(RANKS, 1, quick, extra=["--batch", str(2 * workloads(quick)["W1"].batch)])
        if weak:
            rows.append(_row(f"{RANKS} ranks x 1 thr, 128 rows each", 1,
                             weak["samples_per_s"], one["samples_per_s"], "samples/s",
                             "1 process x 1 thr, 128 rows"))
        mpi_only = _launch(RANKS, 1, quick, extra=["--no-shm"])
        if mpi_only:
            rows.append(_row("shared window", 1, two["samples_per_s"],
                             mpi_only["samples_per_s"], "samples/s", "MPI_Allreduce alone"))
        for buckets in ("layer", "overlap"):
            other = _launch(RANKS, 1, quick, buckets)
            if other:
                rows.append(_row(f"buckets={buckets}", 1, other["samples_per_s"],
                                 two["samples_per_s"], "samples/s", "buckets=step"))
        ring = _launch(RANKS, 1, quick, mca=SEGMENTED_RING)
        if ring:
            rows.append(_row("segmented ring", 1, ring["samples_per_s"], two["samples_per_s"],
                             "samples/s", "Open MPI's default all-reduce"))
            rows.append(_row("ring all-reduce", 1, ring["allreduce_ms"], two["allreduce_ms"],
                             "ms", "default all-reduce, ms", ratio=two["allreduce_ms"]
                             / ring["allreduce_ms"]))
    return rows


if __name__ == "__main__":
    _child(sys.argv[1:])
