"""Coverage-guided fuzzing of load_model with atheris (by hand, not in CI).

    pip install atheris
    python tests/fuzz_model_file.py -atheris_runs=200000

Starts from a real saved model (with Adam state) and mutates its bytes;
any exception other than ModelFileError -- or a crash -- is a finding that
atheris reports with the input that caused it.  Only the Python reader is
covered here; the C reader has tests/c/embed_fuzz.c.
"""
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import numpy as np
    from dropout_engine import safetensors, saving
    from dropout_engine.layers import Dense, Dropout, Input
    from dropout_engine.model import Sequential

WORK = tempfile.mkdtemp(prefix="fuzz_model_file_")
PATH = os.path.join(WORK, "m.safetensors")


def _seed_corpus():
    corpus = os.path.join(WORK, "corpus")
    os.makedirs(corpus)
    m = Sequential([Input((4,)), Dense(3, activation="relu"), Dropout(0.5),
                    Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(np.ones((8, 4), np.float32), np.arange(8) % 2, epochs=1, verbose=0)
    m.save(os.path.join(corpus, "model.safetensors"))
    m.save_weights(os.path.join(corpus, "weights.safetensors"))
    return corpus


def one_input(data):
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        saving.load_model(PATH)
    except safetensors.ModelFileError:
        pass


if __name__ == "__main__":
    args = sys.argv + ([] if any(not a.startswith("-") for a in sys.argv[1:])
                       else [_seed_corpus()])
    atheris.Setup(args, one_input)
    atheris.Fuzz()
