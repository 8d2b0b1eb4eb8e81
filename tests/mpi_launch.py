"""Launching small MPI jobs from the tests (test_mpi.py, test_mpi_fit.py):
``mpirun -np 2`` on scripts written by the test, with a timeout each (a hang
fails, it never blocks the suite); the tests skip without mpirun or mpi4py."""
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HAVE_MPI = shutil.which("mpirun") is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpirun and mpi4py "
                               "(apt-get install openmpi-bin; pip install mpi4py)")


def env(**extra):
    """The children's environment: this checkout's package, one engine
    thread each, no launcher variables of an outer MPI job."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    return env


def mpirun(script, *args, np_=2):
    return ["mpirun", "-np", str(np_), "--oversubscribe", "--allow-run-as-root",
            sys.executable, str(script), *map(str, args)]


def run(cmd, timeout, **extra_env):
    """Run cmd in its own session; on timeout kill the whole group and fail."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env(**extra_env), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"{cmd} did not finish in {timeout} s")
    return p.returncode, out, err


def write_script(path, body):
    """A 2-rank script: DataParallel, `rank`, then `body`; argv[1] a folder."""
    path.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import dropout_engine as de
        from dropout_engine.keras import layers, models, optimizers
        de.distribute.set_distribution(de.distribute.DataParallel(timeout=20))
        rank = de.distribute.distribution().rank
        """) + textwrap.dedent(body))
    return path
