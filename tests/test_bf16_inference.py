"""model.quantize("bfloat16"): weight-only bfloat16 inference.

What is promised (quantization.py): each Dense kernel is rounded once by
frame/bf16.h (reference.bf16_round is its numpy reference) and kept as 16
bits; predict widens the bits to float32 in registers and runs the float32
kernels' own operations in their order.  So a prediction equals, bit for
bit, the float32 predict of a model whose kernels were set to the rounded
values -- on every ISA, thread count and batch size -- and is within float32
GEMM error of numpy on the rounded weights and within 1e-2 relative of the
unrounded model.  Across ISAs the bf16 outputs differ exactly where the
float32 ones do: AVX2 and AVX-512 fuse multiply-adds, the portable path
(baseline x86-64 flags) does not, so generic agrees with them to float32
rounding and with its own float32 path bit for bit.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
import dropout_engine as de
from dropout_engine import _engine, quantization, safetensors
from dropout_engine.layers import BatchNormalization, Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.saving import load_model

HERE = os.path.dirname(os.path.abspath(__file__))


def _layers(sizes, acts, use_bias=True, drop=None, bn=False):
    out = [Input((sizes[0],))]
    if drop:
        out.append(Dropout(drop, scaling="weight", seed=1))
    for i, (n, act) in enumerate(zip(sizes[1:], acts)):
        out.append(Dense(n, activation=act, use_bias=use_bias))
        if bn and i == 0:
            out.append(BatchNormalization())
        if drop and i < len(acts) - 1:
            out.append(Dropout(drop, seed=i + 2))     # the same masks in each copy
    return out


def _pair(seed, sizes, acts, **kw):
    """(a model after quantize("bfloat16"), a float32 model whose weights
    are set to its rounded ones)."""
    rng = np.random.default_rng(seed)
    q = Sequential(_layers(sizes, acts, **kw))
    q.set_weights([np.abs(w) + 0.5 if w.ndim == 1 and i and "moving_variance" in n
                   else rng.normal(0, 0.6, w.shape).astype(np.float32)
                   for i, (n, w) in enumerate(zip(_names(q), q.get_weights()))])
    f = Sequential(_layers(sizes, acts, **kw))
    f.set_weights(q.get_weights())
    q.quantize("bfloat16")
    f.set_weights([ref.bf16_round(w) if n.endswith("kernel") else w
                   for n, w in zip(_names(f), f.get_weights())])
    return q, f


def _names(model):
    return [n for layer in model.layers for n in getattr(layer, "weight_names", ())]


def _bits(model):
    return [layer._bf16.bits for layer in model.layers if getattr(layer, "_bf16", None)]


W1 = ((784, 1024, 1024, 10), ("relu", "relu", "softmax"))


# ------------------------------------------------------------ the rounding
def test_kernels_are_rounded_by_frame_bf16_and_kept_as_16_bits():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(37, 70)).astype(np.float32)
    # ties both ways, the extremes, signed zero, subnormals, infinities
    w.reshape(-1)[:10] = np.array([0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x00000001,
                                   0x80000000, 0x007FFFFF, 0x7F800000, 0xFF800000,
                                   0x3F80FFFF, 0xBF807FFF], np.uint32).view(np.float32)
    b = rng.normal(size=70).astype(np.float32)
    model = Sequential([Input((37,)), Dense(70)])
    model.set_weights([w, b])
    model.quantize("bfloat16")
    d = model.layers[0]
    assert d.quantization_mode == "bfloat16" and model.quantized
    assert d._bf16.bits.dtype == np.uint16
    want = ref.bf16_round(w)
    assert np.array_equal(d._bf16.bits, (want.view(np.uint32) >> 16).astype(np.uint16))
    got_w, got_b = model.get_weights()
    assert got_w.dtype == np.float32 and np.array_equal(got_w.view(np.uint32),
                                                        want.view(np.uint32))
    assert np.array_equal(got_b, b)           # biases stay float32, untouched
    assert d.get_config()["dtype"] == "bfloat16_from_float32"


def test_the_binding_rounds_nan_as_the_reference():
    x = np.array([np.nan, -np.nan, 1.0], np.float32)
    x[0:1].view(np.uint32)[0] = 0x7F800001    # a signalling NaN stays a NaN
    bits = np.empty(3, np.uint16)
    _engine.bf16_round(x, bits)
    assert np.array_equal(bits, (ref.bf16_round(x).view(np.uint32) >> 16).astype(np.uint16))


# ------------------------------------------------------------------- GEMM
SHAPES = [(1, 1024, 784), (2, 37, 5), (3, 300, 257), (4, 65, 1), (5, 10, 1024),
          (9, 16, 300), (13, 31, 7), (64, 1024, 784), (70, 130, 600), (130, 257, 513)]


def _gemm_outputs(m, n, k, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(m, k)).astype(np.float32)
    w = rng.normal(size=(k, n)).astype(np.float32)
    bits = np.empty((k, n), np.uint16)
    _engine.bf16_round(w.reshape(-1), bits.reshape(-1))
    wr = quantization.widen_bf16(bits)
    want = np.empty((m, n), np.float32)
    _engine.gemm(False, False, a, wr, want)
    got = [np.empty((m, n), np.float32) for _ in range(3)]
    _engine.gemm_wbf16(a, bits, None, got[0])                      # packed per call
    _engine.gemm_wbf16(a, bits, _engine.PackedB(bits), got[1])     # bf16 panels
    _engine.gemm_wbf16(a, bits, _engine.PackedB(wr), got[2])       # float panels: unused
    return a, wr, want, got


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_bf16_is_the_float_gemm_on_the_widened_values(m, n, k):
    a, wr, want, got = _gemm_outputs(m, n, k, m * n + k)
    for g in got:
        assert np.array_equal(g, want)
    exact = a.astype(np.float64) @ wr.astype(np.float64)
    bound = 2 * k * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(wr)) + 1e-30
    assert np.all(np.abs(want - exact) <= bound)


def test_bf16_panels_take_half_the_float_panels_bytes():
    bits = np.zeros((784, 1024), np.uint16)
    assert 2 * _engine.PackedB(bits).nbytes == _engine.PackedB(
        quantization.widen_bf16(bits)).nbytes


# ---------------------------------------------------------------- predict
@pytest.mark.parametrize("acts", [("relu", "softmax"), ("sigmoid", None), ("gelu", "tanh")])
@pytest.mark.parametrize("kw", [{}, {"use_bias": False, "drop": 0.3}, {"bn": True}],
                         ids=["plain", "no_bias_weight_dropout", "batchnorm"])
def test_predict_equals_float32_predict_on_the_rounded_kernels(acts, kw):
    q, f = _pair(1, (67, 130, 9), acts, **kw)
    rng = np.random.default_rng(2)
    for rows in (1, 2, 4, 5, 64, 300):
        x = rng.normal(size=(rows, 67)).astype(np.float32)
        assert np.array_equal(q.predict(x, verbose=0), f.predict(x, verbose=0)), rows


def test_predict_is_within_float32_error_of_numpy_and_1e_2_of_float32():
    q, _ = _pair(3, (100, 64, 64, 10), ("relu", "relu", None))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 100)).astype(np.float32)
    w32 = Sequential(_layers((100, 64, 64, 10), ("relu", "relu", None)))
    w32.set_weights(q.get_weights())           # the rounded ones...
    kernels = [k for k in q.get_weights() if k.ndim == 2]
    h = x.astype(np.float64)
    for i, (kern, bias) in enumerate(zip(kernels, [b for b in q.get_weights()
                                                   if b.ndim == 1])):
        h = h @ kern.astype(np.float64) + bias
        if i < 2:
            h = np.maximum(h, 0)
    y = q.predict(x, verbose=0)
    np.testing.assert_allclose(y, h, rtol=1e-4, atol=1e-4 * np.abs(h).max())
    # ... and the unrounded model: within 1e-2 relative of its outputs
    rng = np.random.default_rng(3)
    orig = Sequential(_layers((100, 64, 64, 10), ("relu", "relu", None)))
    orig.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32)
                      for w in orig.get_weights()])
    y32 = orig.predict(x, verbose=0)
    orig.quantize("bfloat16")
    assert np.abs(orig.predict(x, verbose=0) - y32).max() <= 1e-2 * np.abs(y32).max()


def test_w1_batch_1_and_64_stay_within_1e_2_of_float32():
    rng = np.random.default_rng(4)
    model = Sequential(_layers(*W1))
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    x = rng.normal(size=(64, 784)).astype(np.float32)
    y32 = model.predict(x, verbose=0)
    model.quantize("bfloat16")
    for rows in (1, 64):
        y = model.predict(x[:rows], verbose=0)
        assert np.abs(y - y32[:rows]).max() <= 1e-2 * np.abs(y32[:rows]).max()


def test_one_and_two_threads_are_identical():
    q, _ = _pair(5, (300, 520, 70, 3), ("relu", "elu", "softmax"))
    x = np.random.default_rng(5).normal(size=(300, 300)).astype(np.float32)
    before = de.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            de.set_num_threads(t)
            out.append([q.predict(x[:r], verbose=0) for r in (1, 3, 300)])
    finally:
        de.set_num_threads(before)
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def check_isa_outputs():
    """Run in a subprocess per ISA: prints the bf16 and the float-on-rounded
    outputs (as hex) of a fixed model at a few batch sizes."""
    q, f = _pair(6, (300, 257, 33, 4), ("relu", "tanh", "softmax"))
    x = np.random.default_rng(6).normal(size=(70, 300)).astype(np.float32)
    out = {}
    for rows in (1, 3, 70):
        out[rows] = [q.predict(x[:rows], verbose=0).tobytes().hex(),
                     f.predict(x[:rows], verbose=0).tobytes().hex()]
    print(json.dumps(out))


def _isa_outputs(isa):
    code = (f"import sys; sys.path.insert(0, {HERE!r})\n"
            "import test_bf16_inference as t; t.check_isa_outputs()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, DROPOUT_ENGINE_ISA=isa), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return {int(k): [np.frombuffer(bytes.fromhex(h), np.float32) for h in v]
            for k, v in json.loads(r.stdout).items()}


def test_every_isa_runs_float32_math_on_the_rounded_kernels():
    names = [n for i, n in enumerate(("generic", "avx2", "avx512"))
             if _engine.isa_available(i)]
    outs = {n: _isa_outputs(n) for n in names}
    for n in names:            # on each ISA: the float32 path's bits
        for bf16, f32 in outs[n].values():
            assert np.array_equal(bf16, f32), n
    simd = [n for n in names if n != "generic"]
    for n in simd[1:]:         # the FMA paths agree with each other bit for bit
        for rows in outs[n]:
            assert np.array_equal(outs[n][rows][0], outs[simd[0]][rows][0])
    for n in simd:             # and with the unfused portable path to rounding
        for rows in outs[n]:
            np.testing.assert_allclose(outs[n][rows][0], outs["generic"][rows][0],
                                       rtol=1e-5, atol=1e-6)


def test_mc_dropout_runs_and_equals_the_float_models():
    q, f = _pair(7, (20, 64, 5), ("relu", None), drop=0.4)
    x = np.random.default_rng(7).normal(size=(3, 20)).astype(np.float32)
    with de.seeding.scoped(11):
        mq, sq = q.predict(x, mc_samples=50, verbose=0)
    with de.seeding.scoped(11):
        mf, sf = f.predict(x, mc_samples=50, verbose=0)
    assert np.array_equal(mq, mf) and np.array_equal(sq, sf) and sq.max() > 0


def test_evaluate_runs_the_bf16_path():
    q, f = _pair(8, (20, 16, 3), ("relu", "softmax"))
    for m in (q, f):
        m.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 20)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    assert q.evaluate(x, y, verbose=0) == f.evaluate(x, y, verbose=0)


def test_set_weights_rounds_again_and_refreshes_the_packed_panels():
    q, _ = _pair(9, (40, 300, 5), ("relu", None))
    x = np.random.default_rng(9).normal(size=(64, 40)).astype(np.float32)
    q.predict(x, verbose=0)                     # packs the bf16 panels
    new = [w * 1.37 for w in q.get_weights()]
    q.set_weights(new)
    f = Sequential(_layers((40, 300, 5), ("relu", None)))
    f.set_weights([ref.bf16_round(w) if w.ndim == 2 else w for w in new])
    assert np.array_equal(q.get_weights()[0], ref.bf16_round(new[0]))
    assert np.array_equal(q.predict(x, verbose=0), f.predict(x, verbose=0))
    q.layers[0].set_weights([new[0] * 2, new[1]])   # the layer's own set_weights
    assert np.array_equal(q.layers[0]._bf16.bits,
                          (ref.bf16_round(new[0] * 2).view(np.uint32) >> 16))


def test_quantizing_one_layer_of_a_built_model_switches_its_predict():
    q, f = _pair(10, (30, 50, 4), ("relu", None))
    g = Sequential(_layers((30, 50, 4), ("relu", None)))
    g.set_weights(f.get_weights())
    x = np.random.default_rng(10).normal(size=(7, 30)).astype(np.float32)
    g.layers[0].quantize("bfloat16")
    assert g.layers[0].quantization_mode == "bfloat16" and g.layers[1].quantization_mode is None
    assert np.array_equal(g.predict(x, verbose=0), f.predict(x, verbose=0))
    with pytest.raises(NotImplementedError, match="quantized"):
        g.compile(loss="mse")
        g.fit(x, np.zeros((7, 4), np.float32), verbose=0)


def test_summary_shows_bfloat16():
    q, _ = _pair(11, (5, 3, 2), ("relu", None))
    lines = []
    q.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # Keras's table (no dtype column); the kernels count 2 bytes a weight.
    assert " Total params: 26 (62.00 B)" in text
    assert " Trainable params: 5 (20.00 B)" in text
    assert " Non-trainable params: 21 (42.00 B)" in text


# ------------------------------------------------------------------ files
def test_safetensors_file_holds_bf16_kernels_and_loads_bit_exact(tmp_path):
    q, f = _pair(12, (67, 130, 9), ("relu", "softmax"), bn=True)
    path = str(tmp_path / "m.safetensors")
    q.save(path)
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    assert header["weights/0/kernel"]["dtype"] == "BF16"
    assert header["weights/0/bias"]["dtype"] == "F32"
    assert header["weights/1/gamma"]["dtype"] == "F32"
    assert json.loads(header["__metadata__"]["model"])["layers"][1]["config"]["dtype"] \
        == "bfloat16_from_float32"
    assert not any(k.startswith("optimizer/") for k in header)
    back = load_model(path)
    assert back.layers[0].quantization_mode == "bfloat16"
    for a, b in zip(_bits(back), _bits(q)):
        assert np.array_equal(a, b)
    x = np.random.default_rng(12).normal(size=(70, 67)).astype(np.float32)
    assert np.array_equal(back.predict(x, verbose=0), q.predict(x, verbose=0))
    fpath = str(tmp_path / "f.safetensors")
    f.save(fpath)
    assert os.path.getsize(path) < 0.6 * os.path.getsize(fpath)
    # the widened values load into a float32 model too
    g = Sequential(_layers((67, 130, 9), ("relu", "softmax"), bn=True))
    g.load_weights(path)
    assert np.array_equal(g.predict(x, verbose=0), f.predict(x, verbose=0))


def test_the_safetensors_package_reads_our_bf16_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    q, _ = _pair(13, (10, 6, 2), ("relu", None))
    path = str(tmp_path / "m.safetensors")
    q.save(path)
    t = st_torch.load_file(path)["weights/0/kernel"]
    assert t.dtype == torch.bfloat16
    assert np.array_equal(t.float().numpy(), q.get_weights()[0])


def test_the_container_round_trips_bfloat16_and_refuses_wrong_bits(tmp_path):
    bits = np.array([[0x3F80, 0xFF80, 0x7FC0]], np.uint16)
    path = str(tmp_path / "t.safetensors")
    safetensors.save_tensors(path, {"b": safetensors.Bfloat16(bits),
                                    "u": bits.copy()})
    t, _ = safetensors.load_tensors(path)
    assert t["u"].dtype == np.uint16            # U16 stays U16
    assert t["b"].dtype == np.float32
    assert np.array_equal(t["b"].view(np.uint32), bits.astype(np.uint32) << 16)
    with pytest.raises(TypeError, match="uint16"):
        safetensors.Bfloat16(bits.astype(np.int16))


def _saved(tmp_path, **models):
    """{name: (tensors, metadata)} of each model's saved file."""
    out = {}
    for name, m in models.items():
        path = str(tmp_path / f"{name}.safetensors")
        m.save(path)
        out[name] = safetensors.load_tensors(path)
    return out


def test_a_file_whose_config_and_tensors_disagree_on_bf16_is_refused(tmp_path):
    q, f = _pair(14, (6, 4, 2), ("relu", None))
    files = _saved(tmp_path, q=q, f=f)
    (qt, qm), (ft, _) = files["q"], files["f"]
    # a bf16 config over F32 tensors loads (the values are rounded as at
    # quantize); an unknown dtype name is refused
    mixed = str(tmp_path / "mixed.safetensors")
    safetensors.save_tensors(mixed, ft, qm)
    assert load_model(mixed).layers[0].quantization_mode == "bfloat16"
    bad = dict(qm, model=qm["model"].replace("bfloat16_from_float32", "bfloat8"))
    safetensors.save_tensors(mixed, qt, bad)
    with pytest.raises(de.safetensors.ModelFileError, match="dtype"):
        load_model(mixed)


def test_onnx_export_runs_the_rounded_kernels_as_float32(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dropout_engine import onnx as de_onnx
    q, _ = _pair(15, (20, 33, 4), ("relu", "softmax"), drop=0.2)
    path = str(tmp_path / "m.onnx")
    de_onnx.export(q, path)
    x = np.random.default_rng(15).normal(size=(16, 20)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(y, q.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_keras_file_holds_the_rounded_kernels_as_float32(tmp_path):
    pytest.importorskip("h5py")
    q, f = _pair(16, (20, 33, 4), ("relu", "softmax"))
    path = str(tmp_path / "m.keras")
    q.save(path)
    back = load_model(path)
    assert back.layers[0].quantization_mode is None     # a float32 model
    x = np.random.default_rng(16).normal(size=(8, 20)).astype(np.float32)
    assert np.array_equal(back.predict(x, verbose=0), f.predict(x, verbose=0))


# ----------------------------------------------------------------- errors
def test_quantize_errors_are_kerass():
    m = Sequential([Dense(3)])
    with pytest.raises(ValueError, match="isn't yet built"):
        m.quantize("bfloat16")
    q, _ = _pair(17, (5, 3, 2), ("relu", None))
    with pytest.raises(ValueError, match="already quantized with "
                                         "dtype_policy='bfloat16_from_float32'"):
        q.quantize("bfloat16")
    with pytest.raises(ValueError, match="already quantized"):
        q.quantize("int8")
    i8 = Sequential(_layers((5, 3, 2), ("relu", None)))
    i8.quantize("int8")
    with pytest.raises(ValueError, match="dtype_policy='int8_from_float32'"):
        i8.quantize("bfloat16")
    with pytest.raises(ValueError, match="bfloat16"):
        Sequential(_layers((5, 3), ("relu",))).quantize("bf16")


def test_a_bf16_model_is_inference_only():
    q, _ = _pair(18, (5, 3, 2), ("relu", None))
    q.compile(loss="mse")
    x, y = np.ones((4, 5), np.float32), np.zeros((4, 2), np.float32)
    before = [w.copy() for w in q.get_weights()]
    for call in (lambda: q.fit(x, y, verbose=0), lambda: q.train_on_batch(x, y),
                 lambda: q(x, training=True)):
        with pytest.raises(NotImplementedError, match=r"quantized \(bfloat16\).*inference-only"):
            call()
    assert all(np.array_equal(a, b) for a, b in zip(before, q.get_weights()))


# -------------------------------------------------------- the C library
# The C loader reads the BF16 kernel's bits and runs the engine code Python
# runs (de_gemm_wbf16), so its predictions are Python's bits (predict prints
# 9 significant digits: the exact float32).
@pytest.fixture(scope="module")
def c_predict(tmp_path_factory):
    import shutil
    import test_embed as te
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("bf16_embed")
    return d, te._cc(d / "predict", os.path.join(os.path.dirname(HERE), "examples",
                                                 "c", "predict.c"))


def _c_rows(c_predict, model, name, x, *args, env=None):
    import test_embed as te
    tmp, exe = c_predict
    path = os.path.join(str(tmp), f"{name}.safetensors")
    model.save(path)
    return te._run_predict(exe, path, x, tmp, *args, env=env).astype(np.float32)


@pytest.mark.parametrize("kw", [{}, {"use_bias": False, "drop": 0.3}, {"bn": True}],
                         ids=["plain", "no_bias_weight_dropout", "batchnorm"])
def test_c_library_predicts_python_bits(c_predict, kw):
    q, _ = _pair(20, (67, 300, 9), ("gelu", "softmax"), **kw)
    rng = np.random.default_rng(20)
    for rows in (1, 3, 70):
        x = rng.normal(size=(rows, 67)).astype(np.float32)
        assert np.array_equal(_c_rows(c_predict, q, "plain", x), q.predict(x, verbose=0))


def test_c_library_two_threads_and_every_isa_are_python_bits(c_predict):
    q, _ = _pair(21, (300, 257, 33, 4), ("relu", "tanh", "softmax"))
    x = np.random.default_rng(21).normal(size=(70, 300)).astype(np.float32)
    assert np.array_equal(_c_rows(c_predict, q, "t2", x, "-t", "2"), q.predict(x, verbose=0))
    before = _engine.isa_get()
    for isa, name in enumerate(["generic", "avx2", "avx512"]):
        if not _engine.isa_available(isa):
            continue
        try:
            _engine.isa_set(isa)
            want = [q.predict(x[:r], verbose=0) for r in (1, 9)]
        finally:
            _engine.isa_set(before)
        for w, r in zip(want, (1, 9)):
            got = _c_rows(c_predict, q, "isa", x[:r],
                          env=dict(os.environ, DROPOUT_ENGINE_ISA=name))
            assert np.array_equal(got, w), name


def test_c_library_loads_bf16_next_to_float_and_int8_layers(c_predict):
    """Dense layers of each dtype in one model (what load_model makes of a
    config naming them)."""
    m = Sequential([Input((9,)), Dense(20, activation="relu", dtype="bfloat16_from_float32"),
                    Dense(70, activation="elu", dtype="int8_from_float32"),
                    Dense(4, activation="softmax")])
    rng = np.random.default_rng(22)
    m.set_weights([rng.integers(-127, 128, w.shape) if w.dtype == np.int8
                   else rng.uniform(0.005, 0.02, w.shape) if w.shape == (70,) and i == 3
                   else rng.normal(0, 0.6, w.shape) for i, w in enumerate(m.get_weights())])
    assert [getattr(layer, "quantization_mode", None) for layer in m.layers] == \
        ["bfloat16", "int8", None]
    x = rng.normal(size=(33, 9)).astype(np.float32)
    assert np.array_equal(_c_rows(c_predict, m, "mixed", x), m.predict(x, verbose=0))


def test_c_library_refuses_a_bf16_config_over_an_int8_kernel(c_predict, tmp_path):
    import test_embed as te
    tmp, exe = c_predict
    q, _ = _pair(23, (6, 4, 2), ("relu", None))
    i8 = Sequential(_layers((6, 4, 2), ("relu", None)))
    i8.quantize("int8")
    files = _saved(tmp_path, q=q, i=i8)
    (_, qm), (it, _) = files["q"], files["i"]
    bad = str(tmp_path / "bad.safetensors")
    safetensors.save_tensors(bad, {k: v for k, v in it.items() if "kernel_scale" not in k},
                             qm)
    x = np.ones((1, 6), np.float32)
    xin = str(tmp_path / "x.f32")
    x.tofile(xin)
    r = subprocess.run([exe, bad, xin], capture_output=True, text=True)
    assert r.returncode != 0 and "must be bfloat16 [6, 4]" in r.stderr
