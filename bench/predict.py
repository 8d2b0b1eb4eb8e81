"""Predict latency, batch 1 and 64, for W1 and W2 against PyTorch
(inference_mode, eval), a jitted JAX forward, and onnxruntime when our
ONNX export is available.  Then the same nets after model.quantize("int8")
against the same float32 peers and against our own float32 predict (the
peers stay float32: the rows say what int8 buys a user of each), and after
model.quantize("bfloat16") against our float32 predict and torch's bf16
autocast on the same weights."""
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
        mine_q = ours.predictor(net, threads, quantize="int8")
        mine_b = ours.predictor(net, threads, quantize="bfloat16")
        torch_b = torch_peer.predictor(net, threads, bf16=True)
        for batch in (1, 64):
            xb = np.ascontiguousarray(net.data()[0][:batch])

            def timed(f):
                return (lambda: measure(lambda: f(xb), repeats=reps).best) if f \
                    else (lambda: None)
            mine = measure(lambda: mine_f(xb), repeats=reps).best
            peers = {"torch": timed(torch_f),
                     "jax-jit": lambda: jax_peer.run_in_child(
                         key, threads, quick, f"predict{batch}"),
                     "onnxruntime": timed(ort_f)}
            times = {name: fn() for name, fn in peers.items()}
            rows += _rows(f"predict {net.name}", batch, threads, mine, times)
            times = {"dropout_engine float32": mine, "torch": times["torch"],
                     "onnxruntime": times["onnxruntime"]}
            rows += _rows(f"predict int8 {net.name}", batch, threads,
                          measure(lambda: mine_q(xb), repeats=reps).best, times)
            times = {"dropout_engine float32": mine,
                     "torch bf16 autocast": timed(torch_b)()}
            rows += _rows(f"predict bf16 {net.name}", batch, threads,
                          measure(lambda: mine_b(xb), repeats=reps).best, times)
    return rows


def _rows(bench, batch, threads, mine, times):
    """One row per peer: ratio = their time / ours (> 1: we are faster)."""
    return [dict(bench=bench, case=f"batch {batch}", threads=threads, ours=mine * 1e6,
                 peer=(theirs or float("nan")) * 1e6, unit="us",
                 peer_name=name if theirs else f"{name} (absent)", spread=0.0,
                 ratio=(theirs / mine) if theirs else float("nan"))
            for name, theirs in times.items()]
