"""Hostile whole-model files through load_model (the container itself is
tested in test_safetensors.py): every truncation of a real saved model with
optimizer state, hundreds of single-bit flips across header and data, and a
save killed (SIGKILL) at arbitrary points, which must leave a loadable file.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dropout_engine import seeding
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.safetensors import ModelFileError
from dropout_engine.saving import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trained(seed=0):
    seeding.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    m = Sequential([Input((6,)), Dense(5, activation="relu"), Dropout(0.5),
                    Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return m, x, y


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m, x, y = _trained()
    path = tmp_path_factory.mktemp("hostile") / "m.safetensors"
    m.save(path)
    return m, path.read_bytes(), x, y


def test_every_truncation_of_a_saved_model_is_refused(saved, tmp_path):
    _, raw, _, _ = saved
    bad = tmp_path / "cut.safetensors"
    for n in range(len(raw)):
        bad.write_bytes(raw[:n])
        with pytest.raises(ModelFileError, match="cut.safetensors"):
            load_model(bad)


def test_bit_flips_in_a_saved_model_load_intact_or_are_refused(saved, tmp_path):
    m, raw, x, y = saved
    n = int.from_bytes(raw[:8], "little")
    rng = np.random.default_rng(7)
    # Every bit of the length field, 300 in the JSON header, 200 in the data.
    bits = np.concatenate([np.arange(64), rng.integers(64, 8 * (8 + n), 300),
                           rng.integers(8 * (8 + n), 8 * len(raw), 200)])
    shapes = [w.shape for w in m.get_weights()]
    bad = tmp_path / "flip.safetensors"
    refused = loaded = 0
    for bit in map(int, bits):
        flipped = np.frombuffer(raw, np.uint8).copy()
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(flipped.tobytes())
        try:
            got = load_model(bad)
        except ModelFileError as e:
            assert "flip.safetensors" in str(e)
            refused += 1
            continue
        loaded += 1
        # A flip that still parses changed a value or a name's case, never
        # the structure: the model is whole and usable.
        assert [w.shape for w in got.get_weights()] == shapes, bit
        got.predict(x[:4])
    assert refused >= 100 and loaded >= 100 and refused + loaded == len(bits)


_SAVER = """
import sys
import numpy as np
from dropout_engine.layers import Dense, Input
from dropout_engine.model import Sequential
ms = []
for k in range(2):
    m = Sequential([Input((64,)), Dense(256), Dense(256), Dense(8)])
    m.set_weights([np.full(w.shape, k, np.float32) for w in m.get_weights()])
    ms.append(m)
print("ready", flush=True)
i = 0
while True:
    ms[i % 2].save(sys.argv[1])
    i += 1
"""


def test_a_save_killed_at_any_point_leaves_a_whole_model_file(tmp_path):
    path = tmp_path / "m.safetensors"
    first = Sequential([Input((64,)), Dense(256), Dense(256), Dense(8)])
    first.set_weights([np.zeros(w.shape, np.float32) for w in first.get_weights()])
    first.save(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    rng = np.random.default_rng(3)
    kinds = set()
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.05)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        m = load_model(path)         # never partial: old or new, whole
        values = {float(w.flat[0]) for w in m.get_weights()}
        assert len(values) == 1
        kinds |= values
    assert kinds <= {0.0, 1.0}
    # Temporary files of killed saves may remain, but never under the name.
    assert all(p.name == "m.safetensors" or (p.name.startswith(".m.safetensors.") and p.name.endswith(".tmp"))
               for p in tmp_path.iterdir())
