"""ISA selection and the thread count."""
import os
import subprocess
import sys

import pytest

import dropout_engine as de
from dropout_engine._runtime import available_isas


def run_py(code, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=full, timeout=120)


def test_generic_path_is_always_available():
    assert "generic" in available_isas()
    assert de.isa() in available_isas()


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_env_var_forces_each_available_path(isa):
    r = run_py("import dropout_engine as de; print(de.isa())",
               DROPOUT_ENGINE_ISA=isa)
    if isa in available_isas():
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == isa
    else:  # a path this CPU cannot run is a clear error, never a fallback
        assert r.returncode != 0
        assert "cannot run" in r.stderr


def test_unknown_isa_name_is_a_clear_error():
    r = run_py("import dropout_engine", DROPOUT_ENGINE_ISA="sse9")
    assert r.returncode != 0
    assert "generic, avx2, avx512" in r.stderr


def test_omp_num_threads_is_respected():
    r = run_py("import dropout_engine as de; print(de.get_num_threads())",
               OMP_NUM_THREADS="1")
    assert r.stdout.strip() == "1", r.stderr


def test_set_num_threads_round_trips_and_validates():
    before = de.get_num_threads()
    try:
        de.set_num_threads(1)
        assert de.get_num_threads() == 1
    finally:
        de.set_num_threads(before)
    for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError),
                     (True, TypeError), ("2", TypeError)):
        with pytest.raises(exc):
            de.set_num_threads(bad)
