"""Predict latency, batch 1 and 64, for W1 and W2 against PyTorch
(inference_mode, eval), a jitted JAX forward, and onnxruntime when our
ONNX export is available."""
import numpy as np

from . import jax_peer, onnx_peer, ours, torch_peer
from .nets import workloads
from .timing import measure


def run(threads, quick):
    rows = []
    reps = 5 if quick else 15
    for key in ("W1", "W2"):
        net = workloads(quick)[key]
        net.weights = net.init_weights()
        try:
            mine_f = ours.predictor(net, threads)
        except ImportError as exc:
            print(f"# {key}: dropout_engine model API unavailable ({exc})")
            continue
        torch_f = torch_peer.predictor(net, threads)
        ort_f = onnx_peer.predictor(net, threads)
        for batch in (1, 64):
            xb = np.ascontiguousarray(net.data()[0][:batch])
            mine = measure(lambda: mine_f(xb), repeats=reps).best
            peers = {"torch": (lambda: measure(lambda: torch_f(xb), repeats=reps).best)
                     if torch_f else (lambda: None),
                     "jax-jit": lambda: jax_peer.run_in_child(
                         key, threads, quick, f"predict{batch}"),
                     "onnxruntime": (lambda: measure(lambda: ort_f(xb), repeats=reps).best)
                     if ort_f else (lambda: None)}
            for name, fn in peers.items():
                theirs = fn()
                rows.append(dict(bench=f"predict {net.name}", case=f"batch {batch}",
                                 threads=threads, ours=mine * 1e6,
                                 peer=(theirs or float("nan")) * 1e6, unit="us",
                                 peer_name=name if theirs else f"{name} (absent)",
                                 spread=0.0,
                                 ratio=(theirs / mine) if theirs else float("nan")))
    return rows
