"""python -m bench [--quick] [--only kernels,data,...] [--json PATH] [--threads 1,2]

Prints a table of ratios against peers measured in the same run and writes
every figure, with the machine's details, as JSON.

Honesty: numpy's OpenBLAS is measured at its best settings.  Some machines
set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (older OpenBLAS builds needed them);
they slow a current one, so this command re-executes itself once without
them (in this process only — never in tests or CI) and reports which
OpenBLAS kernel then runs.
"""
import argparse
import json
import os
import platform
import sys

_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BLAS_ENV) and "numpy" not in sys.modules:
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_ENV}
    os.execve(sys.executable, [sys.executable, "-m", "bench"] + sys.argv[1:], env)

SECTIONS = ("kernels", "training", "data", "predict", "embed", "imports", "distributed")


def _machine():
    import numpy as np
    import dropout_engine as de
    from .peers import blas_info, torch_or_none
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    torch = torch_or_none()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "dropout_engine": de.__version__, "isa": de.isa(), "numpy": np.__version__,
            "blas": blas_info(), "torch": getattr(torch, "__version__", None)}


def _table(rows):
    # ratio > 1 means we are better (faster, or more samples/s)
    head = f"{'bench':34} {'case':18} {'thr':>3} {'ours':>10} {'peer':>10} {'unit':8} {'ratio':>7}  peer"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['bench'][:34]:34} {r['case'][:18]:18} {r['threads']:>3} "
                     f"{r['ours']:>10.2f} {r['peer']:>10.2f} {r['unit']:8} "
                     f"{r['ratio']:>6.2f}x  {r['peer_name']}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, same workloads")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    p.add_argument("--threads", default="1,2", help="thread counts to run, e.g. 1,2")
    p.add_argument("--json", metavar="PATH", help="write every figure here")
    p.add_argument("--plot", metavar="PATH", help="bar chart of the ratios (matplotlib)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    threads = [int(t) for t in args.threads.split(",")]

    machine = _machine()
    print(f"# {machine['cpu']}, {machine['cores']} cores, isa={machine['isa']}, "
          f"numpy {machine['numpy']}, torch {machine['torch'] or 'absent'}")
    for b in machine["blas"]:
        print(f"# numpy BLAS: {b}")
    rows = []
    for section in only:
        mod = __import__(f"bench.{section}", fromlist=["run"])
        for t in threads:
            rows += mod.run(t, args.quick)
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": rows}, f, indent=1)
        print(f"# wrote {args.json}")
    if args.plot:
        _plot(rows, args.plot)


def _plot(rows, path):
    """Ratios as horizontal bars; 1.0 (parity) marked.  Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# --plot needs matplotlib (pip install matplotlib); no plot written")
        return
    good = [r for r in rows if r["ratio"] == r["ratio"]]  # drop NaN (absent peers)
    labels = [f"{r['bench']} {r['case']} t{r['threads']} vs {r['peer_name']}" for r in good]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(good) + 1))
    ax.barh(range(len(good)), [r["ratio"] for r in good],
            color=["tab:green" if r["ratio"] >= 1 else "tab:red" for r in good])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(range(len(good)), labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("ratio (>1: dropout_engine better)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"# wrote {path}")


if __name__ == "__main__":
    main()
