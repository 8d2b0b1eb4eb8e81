"""onnxruntime running our ONNX export of the same model (same weights)."""
from . import ours


def predictor(net, threads):
    """A function x -> y for latency measurement, or None without onnx /
    onnxruntime."""
    try:
        import onnxruntime as ort
        from dropout_engine import onnx as de_onnx
        proto = de_onnx.to_onnx(ours._model(net))
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads     # matched to ours
    opts.inter_op_num_threads = 1
    # Idle ORT workers otherwise spin after each run and take the cores the
    # other contenders' threads (OpenMP, torch) need in the same process.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    run = sess.run

    def predict(x):
        return run(None, {"x": x})[0]
    return predict
