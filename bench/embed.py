"""Batch-1 predict latency from C (the embedding library, bench/c_predict.c)
for W1 and W2, against Python's model.predict on the same model and row
measured in the same run.  The issue's goals: <= 40 us (W1), <= 2 us (W2).
Then the same model after model.quantize("int8"), against C float32.

Each row also carries floor_us: the time one thread takes to read the
weights once (measured by c_predict in the same run).  A batch-1 forward
reads every weight, so when they do not fit in the caches (W1: 7.4 MB of
float32) this floor, not the arithmetic, bounds the latency."""
import os
import subprocess
import tempfile

import numpy as np

from .nets import workloads
from .timing import measure

GOAL_US = {"W1": 40.0, "W2": 2.0}
_HERE = os.path.dirname(os.path.abspath(__file__))


def _model(net):
    """The workload's network with its initial weights (dropout as trained)."""
    from dropout_engine.layers import Dense, Dropout, Input
    from dropout_engine.model import Sequential
    seq = [Input((net.sizes[0],))] + ([Dropout(net.input_drop)] if net.input_drop else [])
    for i, units in enumerate(net.sizes[1:]):
        last = i == len(net.sizes) - 2
        seq.append(Dense(units, activation=net.out_act if last else "relu"))
        if not last and net.hidden_drop:
            seq.append(Dropout(net.hidden_drop))
    model = Sequential(seq)
    model.set_weights(net.init_weights())
    return model


def _compile(tmp):
    from dropout_engine import config
    exe = os.path.join(tmp, "c_predict")
    subprocess.run(["cc", "-O3", "-o", exe, os.path.join(_HERE, "c_predict.c"),
                    *config.cflags(), *config.libs(), "-lm"],
                   check=True, capture_output=True, text=True)
    return exe


def _c_predict(exe, path, threads, reps, nbytes):
    """(best_us, spread, floor_us) of c_predict on the model file `path`."""
    out = subprocess.run([exe, path, str(threads), str(reps), str(nbytes)],
                         check=True, capture_output=True, text=True).stdout.split()
    best_us, median_us, floor_us = map(float, out[:3])
    return best_us, (median_us - best_us) / median_us if median_us else 0.0, floor_us


def run(threads, quick):
    """Per workload: C float32 against Python's predict, then the same model
    after model.quantize("int8"), and after model.quantize("bfloat16"), in C
    against C float32."""
    import dropout_engine as de
    rows = []
    reps = 5 if quick else 15
    with tempfile.TemporaryDirectory() as tmp:
        exe = _compile(tmp)
        for key in ("W1", "W2"):
            net = workloads(quick)[key]
            model = _model(net)
            path = os.path.join(tmp, f"{key}.safetensors")
            model.save(path)
            best_us, spread, floor_us = _c_predict(exe, path, threads, reps,
                                                   4 * model.count_params())
            de.set_num_threads(threads)
            x = np.sin(np.arange(net.sizes[0], dtype=np.float64)).astype(np.float32)[None]
            py = measure(lambda: model.predict(x), repeats=reps)
            rows.append(dict(bench=f"C predict {net.name}", case="batch 1",
                             threads=threads, ours=best_us, peer=py.best * 1e6,
                             unit="us", peer_name="Python model.predict",
                             spread=spread, ratio=py.best * 1e6 / best_us,
                             goal_us=GOAL_US[key], floor_us=floor_us,
                             meets_goal=best_us <= GOAL_US[key]))
            bf16 = _model(net)
            bf16.quantize("bfloat16")        # kernels read as 2 bytes each
            model.quantize("int8")
            for mode, m, nbytes in (
                    ("int8", model, sum(w.nbytes for w in model.weights)),
                    ("bf16", bf16, sum(w.nbytes // (2 if w.ndim == 2 else 1)
                                       for w in bf16.weights))):
                qpath = os.path.join(tmp, f"{key}_{mode}.safetensors")
                m.save(qpath)
                q_us, q_spread, q_floor = _c_predict(exe, qpath, threads, reps, nbytes)
                rows.append(dict(bench=f"C predict {mode} {net.name}", case="batch 1",
                                 threads=threads, ours=q_us, peer=best_us, unit="us",
                                 peer_name="C predict float32", spread=q_spread,
                                 ratio=best_us / q_us, goal_us=GOAL_US[key],
                                 floor_us=q_floor, meets_goal=q_us <= GOAL_US[key]))
    return rows


if __name__ == "__main__":
    for t in (1, 2):
        for r in run(t, quick=True):
            print(f"{r['bench']:34} t{t} C {r['ours']:8.2f} us  Python {r['peer']:8.2f} us  "
                  f"read-weights floor {r['floor_us']:8.2f} us  goal {r['goal_us']} us  "
                  f"{'ok' if r['meets_goal'] else 'MISSED'}")
