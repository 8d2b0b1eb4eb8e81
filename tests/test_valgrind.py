"""valgrind memcheck of a short W2 fit (with validation, evaluate, predict,
save and load): the engine loses no memory and makes no invalid access.

Opt-in (about 20 s, and valgrind is not on every CI machine):
``DROPOUT_ENGINE_VALGRIND=1 python -m pytest tests/test_valgrind.py``.
CPython and numpy lose a few hundred bytes at import by design, so the
fit's "definitely lost" total must equal that of a run that only imports,
and no lost block or memory error may have an engine frame in its stack.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    os.environ.get("DROPOUT_ENGINE_VALGRIND") != "1" or shutil.which("valgrind") is None,
    reason="opt-in: DROPOUT_ENGINE_VALGRIND=1 and valgrind on PATH")

_IMPORTS = """
import numpy as np
import dropout_engine as de
from dropout_engine.layers import Dense, Dropout, Input
de.Sequential, de.load_model
"""

_FIT = _IMPORTS + """
import sys
de.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 100)).astype(np.float32)
y = rng.integers(0, 10, 128)
m = de.Sequential([Input((100,)), Dense(64, activation="relu"), Dropout(0.5),
                   Dense(64, activation="relu"), Dropout(0.5), Dense(10, activation="softmax")])
m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
m.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.25)
m.evaluate(x, y, verbose=0)
m.predict(x)
m.save(sys.argv[1])
de.load_model(sys.argv[1]).predict(x[:3])
"""


def _memcheck(code, tmp_path):
    env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                           "--num-callers=40", sys.executable, "-c", code,
                           str(tmp_path / "m.keras")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stderr
    lost = re.search(r"definitely lost: ([\d,]+) bytes", log)
    return (int(lost.group(1).replace(",", "")) if lost else 0), log


def _engine_frames(log):
    """valgrind records (blank-line separated) with a frame in the engine."""
    records = re.split(r"\n==\d+== \n", log)
    return [r for r in records if re.search(r"_engine\.|/_csrc/|\bde_\w+ \(", r)
            and re.search(r"lost in loss record|Invalid (read|write)|uninitialised|"
                          r"Mismatched free|Invalid free", r)]


def test_a_short_fit_loses_nothing_beyond_the_interpreters_own(tmp_path):
    base, _ = _memcheck(_IMPORTS, tmp_path)
    lost, log = _memcheck(_FIT, tmp_path)
    assert not _engine_frames(log), "\n\n".join(_engine_frames(log))[:5000]
    assert lost <= base, (lost, base)
