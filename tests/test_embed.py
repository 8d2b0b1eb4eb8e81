"""The C embedding API (dropout_engine.h, libdropout_engine, examples/c).

The example program is compiled with the system cc against the built
library (python -m dropout_engine.config flags) and must print what
Python's model.predict returns, to 1e-6, for every activation and layer
kind a model file can hold; for int8 and bfloat16 files (model.quantize)
the same bits.  Damaged files go through tests/c/embed_fuzz.c
(every truncation, every header bit flip): no crash, a non-zero code and a
message.  The same fuzzer under AddressSanitizer + UBSan:
``sh tests/c/asan_fuzz.sh MODEL`` (slow; not run here).
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import dropout_engine
from dropout_engine import config
from dropout_engine.layers import Activation, Dense, Dropout, Input
from dropout_engine.model import Sequential

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTS = ["linear", "relu", "tanh", "sigmoid", "elu", "selu", "gelu", "softmax"]

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def _cc(out, *sources, static=False):
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(out), *map(str, sources),
                    *config.cflags(), *config.libs(static=static)],
                   check=True, capture_output=True, text=True)
    return str(out)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if not os.path.exists(os.path.join(config.get_lib_dir(), "libdropout_engine.so")):
        pytest.fail("libdropout_engine.so is missing: build with "
                    "`python setup.py build_ext --inplace` or pip install")
    d = tmp_path_factory.mktemp("embed")
    return d, _cc(d / "predict", os.path.join(ROOT, "examples", "c", "predict.c"))


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


MODELS = {
    **{f"act_{a}": lambda a=a: [Input((7,)), Dense(12, activation=a), Dropout(0.25),
                                Dense(5, activation=a)] for a in ACTS},
    "dropout_weight_scaling": lambda: [
        Input((7,)), Dropout(0.2, scaling="weight"), Dense(9, activation="relu"),
        Dropout(0.5, scaling="weight"), Dense(3, activation="sigmoid"),
        Dropout(0.1, scaling="weight")],
    "stacked_dropout_no_bias": lambda: [
        Dense(8, activation="tanh", use_bias=False, input_shape=(7,)), Dropout(0.3),
        Dropout(0.4), Dense(4, use_bias=False)],
    "fused_activations": lambda: [
        Input((7,)), Dropout(0.1), Dense(10), Activation("gelu"), Dense(6),
        Dropout(0.2), Activation("relu"), Activation("linear"), Dense(3),
        Activation("softmax")],
}


def _save(tmp, name, layers, seed=0, quantize=None):
    """The model saved after model.quantize(quantize) ("int8", "bfloat16",
    or True for "int8"), if given."""
    m = _randomize(Sequential(layers()), seed)
    if quantize:
        m.quantize("int8" if quantize is True else quantize)
    path = os.path.join(str(tmp), f"{name}.safetensors")
    m.save(path)
    return m, path


def _run_predict(exe, model_path, x, tmp, *args, env=None):
    xin = os.path.join(str(tmp), "x.f32")
    x.astype("<f4").tofile(xin)
    r = subprocess.run([exe, *args, model_path, xin], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    return np.loadtxt(r.stdout.splitlines(), delimiter=",", ndmin=2, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_c_predictions_equal_python(build, name):
    tmp, exe = build
    m, path = _save(tmp, name, MODELS[name], seed=len(name))
    x = np.random.default_rng(1).normal(0, 1.5, (9, 7)).astype(np.float32)
    np.testing.assert_allclose(_run_predict(exe, path, x, tmp), m.predict(x),
                               rtol=1e-6, atol=1e-6)


def test_many_rows_two_threads_and_csv(build):
    tmp, exe = build
    m, path = _save(tmp, "w2", lambda: [Input((100,)), Dense(64, activation="relu"),
                                        Dropout(0.5), Dense(64, activation="relu"),
                                        Dense(10, activation="softmax")])
    x = np.random.default_rng(2).normal(size=(2500, 100)).astype(np.float32)
    want = m.predict(x)
    np.testing.assert_allclose(_run_predict(exe, path, x, tmp, "-t", "2"), want,
                               rtol=1e-6, atol=1e-6)
    csv = os.path.join(str(tmp), "x.csv")
    np.savetxt(csv, x[:5], delimiter=",", fmt="%.9g")
    r = subprocess.run([exe, path, csv], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(np.loadtxt(r.stdout.splitlines(), delimiter=","),
                               want[:5], rtol=1e-6, atol=1e-6)


def test_static_library_links(build):
    tmp, _ = build
    exe = _cc(tmp / "predict_static", os.path.join(ROOT, "examples", "c", "predict.c"),
              static=True)
    m, path = _save(tmp, "static", MODELS["act_relu"])
    x = np.random.default_rng(3).normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_allclose(_run_predict(exe, path, x, tmp), m.predict(x),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("quantize", [None, "int8", "bfloat16"],
                         ids=["float32", "int8", "bfloat16"])
def test_damaged_files_fail_cleanly(build, quantize):
    tmp, _ = build
    fuzz = _cc(tmp / "embed_fuzz", os.path.join(ROOT, "tests", "c", "embed_fuzz.c"))
    _, path = _save(tmp, "fuzz", lambda: [Input((3,)), Dropout(0.1), Dense(2, activation="elu"),
                                          Dropout(0.5, scaling="weight"), Dense(2)],
                    quantize=quantize)
    r = subprocess.run([fuzz, path, os.path.join(str(tmp), "damaged")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    counts = r.stdout.split()
    size, truncations_failed = int(counts[1]), int(counts[7])
    assert truncations_failed == size
    assert int(counts[10]) > 1000   # most header flips are refused


def _header_file(tmp, name, header, data=b""):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path = os.path.join(str(tmp), name)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + data)
    return path


def _good_header(tmp):
    _, path = _save(tmp, "good", lambda: [Input((2,)), Dense(1)])
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _f64_kernel(h, d):
    """A valid container whose kernel [2, 1] is float64 (the bias follows)."""
    h = dict(h, **{"weights/0/kernel": {"dtype": "F64", "shape": [2, 1],
                                        "data_offsets": [0, 16]},
                   "weights/0/bias": {"dtype": "F32", "shape": [1],
                                      "data_offsets": [16, 20]}})
    return json.dumps(h).encode(), np.frombuffer(d[:8], "<f4").astype("<f8").tobytes() + d[8:]


def _tanh_then_sigmoid(cfg):
    cfg["layers"][1]["config"]["activation"] = "tanh"
    cfg["layers"].append({"class_name": "Activation", "config": {"activation": "sigmoid"}})


def _config_with(header, mutate):
    h = json.loads(json.dumps(header))
    cfg = json.loads(h["__metadata__"]["model"])
    mutate(cfg)
    h["__metadata__"]["model"] = json.dumps(cfg)
    return h


HOSTILE = {
    "length beyond the file": lambda h, d: (b"{}", None),
    "deep nesting": lambda h, d: (b"[" * 100000 + b"]" * 100000, d),
    "NaN literal": lambda h, d: (json.dumps(h).replace('"F32"', "NaN", 1).encode(), d),
    "repeated key": lambda h, d: (json.dumps(h)[:-1].encode() + b', "__metadata__": {}}', d),
    "lone surrogate": lambda h, d: (json.dumps(h)[:-1].encode() + b', "\\ud800": 1}', d),
    "shape overflow": lambda h, d: (json.dumps(dict(h, **{"weights/0/kernel": dict(
        h["weights/0/kernel"], shape=[2 ** 40, 2 ** 40])})).encode(), d),
    "offsets outside": lambda h, d: (json.dumps(dict(h, **{"weights/0/kernel": dict(
        h["weights/0/kernel"], data_offsets=[0, 2 ** 63])})).encode(), d),
    "F64 weights": lambda h, d: _f64_kernel(h, d),
    "trailing bytes": lambda h, d: (json.dumps(h).encode(), d + bytes(4)),
    "weights file": lambda h, d: (json.dumps(dict(h, __metadata__={
        "format": "dropout_engine.weights", "version": "1"})).encode(), d),
    "unknown layer": lambda h, d: (json.dumps(_config_with(h, lambda c: c["layers"].append(
        {"class_name": "Conv2D", "config": {}}))).encode(), d),
    "kernel shape": lambda h, d: (json.dumps(_config_with(h, lambda c: c["layers"][1][
        "config"].update(units=2))).encode(), d),
    "rate out of range": lambda h, d: (json.dumps(_config_with(h, lambda c: c["layers"].append(
        {"class_name": "Dropout", "config": {"rate": 1.0}}))).encode(), d),
    "unfusable activation": lambda h, d: (json.dumps(_config_with(h, _tanh_then_sigmoid)).encode(), d),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_header_is_refused_with_a_message(build, case):
    tmp, exe = build
    header, data = _good_header(tmp)
    raw, data = HOSTILE[case](header, data)
    path = _header_file(tmp, "hostile", raw, data if data is not None else b"")
    if data is None:   # a length field larger than the file
        with open(path, "r+b") as f:
            f.write((10 ** 6).to_bytes(8, "little"))
    r = subprocess.run([exe, path, "/dev/null"], capture_output=True, text=True)
    assert r.returncode == 1 and "not a valid model file" in r.stderr, r.stderr


def test_portable_kernels_chosen_by_environment_agree(build):
    tmp, exe = build
    m, path = _save(tmp, "generic", MODELS["act_gelu"])
    x = np.random.default_rng(5).normal(size=(4, 7)).astype(np.float32)
    y = _run_predict(exe, path, x, tmp, env=dict(os.environ, DROPOUT_ENGINE_ISA="generic"))
    np.testing.assert_allclose(y, m.predict(x), rtol=1e-5, atol=1e-6)


def test_bad_isa_environment_is_an_error(build):
    tmp, exe = build
    _, path = _save(tmp, "isa", MODELS["act_relu"])
    r = subprocess.run([exe, path, "/dev/null"], capture_output=True, text=True,
                       env=dict(os.environ, DROPOUT_ENGINE_ISA="avx9000"))
    assert r.returncode == 1 and "DROPOUT_ENGINE_ISA" in r.stderr


# ------------------------------------------------------- the API, via ctypes

@pytest.fixture(scope="module")
def lib(build):
    lib = ctypes.CDLL(os.path.join(config.get_lib_dir(), "libdropout_engine.so"))
    lib.de_last_error.restype = lib.de_version.restype = ctypes.c_char_p
    lib.de_model_input_dim.restype = lib.de_model_output_dim.restype = ctypes.c_size_t
    lib.de_model_input_dim.argtypes = lib.de_model_output_dim.argtypes = [ctypes.c_void_p]
    lib.de_model_free.argtypes = [ctypes.c_void_p]
    lib.de_model_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_size_t, ctypes.c_void_p]
    return lib


def _load(lib, path):
    h = ctypes.c_void_p()
    rc = lib.de_model_load(os.fsencode(path), ctypes.byref(h))
    return rc, h


def test_api_dims_version_and_argument_errors(build, lib):
    tmp, _ = build
    m, path = _save(tmp, "api", MODELS["act_tanh"])
    rc, h = _load(lib, path)
    assert rc == 0 and lib.de_version().decode() == dropout_engine.__version__
    assert (lib.de_model_input_dim(h), lib.de_model_output_dim(h)) == (7, 5)
    x, y = np.ones((2, 6), np.float32), np.empty((2, 5), np.float32)
    assert lib.de_model_predict(h, x.ctypes.data, 2, 6, y.ctypes.data) == -2
    assert b"x has 6 features, the model expects 7" in lib.de_last_error()
    lib.de_model_free(h)
    rc, h = _load(lib, os.path.join(str(tmp), "missing.safetensors"))
    assert rc == -3 and h.value is None and b"cannot open" in lib.de_last_error()
    fifo = os.path.join(str(tmp), "fifo")
    os.mkfifo(fifo)   # must be refused, not block waiting for a writer
    for not_a_file in (str(tmp), fifo):
        rc, h = _load(lib, not_a_file)
        assert rc == -3 and b"not a regular file" in lib.de_last_error()


def test_keras_files_are_named_as_such_by_the_c_loader(build, lib):
    pytest.importorskip("h5py")
    tmp, _ = build
    m, _ = _save(tmp, "k", MODELS["act_tanh"])
    for name, what in (("k.keras", b".keras (zip)"), ("k.weights.h5", b"HDF5 (.h5)")):
        path = os.path.join(str(tmp), name)
        m.save_weights(path) if name.endswith(".h5") else m.save(path)
        rc, h = _load(lib, path)
        assert rc != 0 and h.value is None
        assert b"this is a Keras " + what in lib.de_last_error()
        assert b"model.safetensors" in lib.de_last_error()


def test_concurrent_predicts_on_one_model_agree(build, lib):
    tmp, _ = build
    m, path = _save(tmp, "threads", lambda: [Input((64,)), Dense(128, activation="gelu"),
                                             Dense(8, activation="softmax")])
    rc, h = _load(lib, path)
    x = np.random.default_rng(4).normal(size=(33, 64)).astype(np.float32)
    want = m.predict(x)
    bad = []

    def worker():
        y = np.empty((33, 8), np.float32)
        for _ in range(30):   # ctypes releases the GIL: these calls overlap
            if lib.de_model_predict(h, x.ctypes.data, 33, 64, y.ctypes.data) != 0 \
                    or not np.allclose(y, want, rtol=1e-6, atol=1e-6):
                bad.append(1)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lib.de_model_free(h)
    assert not bad


def test_last_error_is_per_thread(build, lib):
    tmp, _ = build
    _load(lib, os.path.join(str(tmp), "missing.safetensors"))
    seen = []
    t = threading.Thread(target=lambda: seen.append(lib.de_last_error()))
    t.start()
    t.join()
    assert seen == [b""] and lib.de_last_error()


def test_config_prints_flags_and_include_matches(tmp_path):
    pkg_parent = os.path.dirname(os.path.dirname(dropout_engine.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [pkg_parent] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    out = subprocess.run([sys.executable, "-m", "dropout_engine.config", "--cflags",
                          "--libs"], capture_output=True, text=True, check=True,
                         cwd=str(tmp_path), env=env).stdout
    assert "-I" + dropout_engine.get_include() in out and "-ldropout_engine" in out
    assert os.path.exists(os.path.join(dropout_engine.get_include(), "dropout_engine.h"))


@pytest.mark.parametrize("quantize", [None, "int8", "bfloat16"],
                         ids=["float32", "int8", "bfloat16"])
@pytest.mark.parametrize("rows", [1, 3, 40, 300])
def test_predict_from_the_applications_own_openmp_threads(build, rows, quantize):
    """An application may call us from inside its own `omp parallel`: our
    kernels must not take its thread numbers for ours (inline, one-thread
    work once skipped rows when the caller was thread 3 of 4)."""
    tmp, _ = build
    exe = str(tmp / "omp_caller")
    try:
        subprocess.run(["cc", "-O2", "-fopenmp", "-o", exe,
                        os.path.join(ROOT, "tests", "c", "omp_caller.c"),
                        *config.cflags(), *config.libs()],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"cannot build with -fopenmp: {e.stderr}")
    _, path = _save(tmp, "w2omp", lambda: [Input((100,)), Dense(64, activation="relu"),
                                           Dropout(0.5), Dense(64, activation="relu"),
                                           Dense(10, activation="softmax")],
                    quantize=quantize)
    r = subprocess.run([exe, path, str(rows)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


# --------------------------------------------- int8 files (model.quantize)
# The C loader packs the int8 kernels itself and runs the engine code Python
# runs, so its predictions must be the same bits: predict prints 9
# significant digits, which give back the exact float32.

QMODELS = {   # name: (input features, layers)
    "relu_sigmoid_ragged": (7, lambda: [
        Input((7,)), Dropout(0.2), Dense(65, activation="relu"), Dropout(0.3),
        Dense(10, activation="sigmoid"), Dense(1)]),
    "softmax_no_bias_weight_scaling": (7, lambda: [
        Input((7,)), Dropout(0.2, scaling="weight"),
        Dense(65, activation="relu", use_bias=False), Dropout(0.5, scaling="weight"),
        Dense(10, activation="softmax", use_bias=False)]),
    "linear_one_unit": (13, lambda: [Dense(1, input_shape=(13,))]),
    "wide_gelu_tanh": (300, lambda: [
        Input((300,)), Dense(129, activation="gelu"), Dropout(0.1),
        Dense(64, activation="tanh"), Activation("linear"), Dense(3, activation="softmax")]),
}


def _exact(printed, want):
    """predict's output, back to float32, equals `want` bit for bit."""
    got = printed.astype(np.float32)
    assert got.shape == want.shape and np.array_equal(got, want), \
        np.abs(got - want).max()


def _isa_predict(model, x, isa):
    """model.predict with the engine's kernels forced to `isa` (an index)."""
    from dropout_engine import _engine
    before = _engine.isa_get()
    try:
        assert _engine.isa_set(isa)
        return model.predict(x, verbose=0)
    finally:
        _engine.isa_set(before)


@pytest.mark.parametrize("name", sorted(QMODELS))
def test_int8_c_predictions_are_python_bits(build, name):
    from dropout_engine.saving import load_model
    tmp, exe = build
    n_in, layers = QMODELS[name]
    m, path = _save(tmp, name, layers, seed=len(name), quantize=True)
    loaded = load_model(path)
    rng = np.random.default_rng(6)
    for rows in (1, 70):
        x = rng.normal(0, 1.5, (rows, n_in)).astype(np.float32)
        want = loaded.predict(x, verbose=0)
        assert np.array_equal(want, m.predict(x, verbose=0))
        _exact(_run_predict(exe, path, x, tmp), want)


def test_int8_two_threads_and_every_isa_are_python_bits(build):
    tmp, exe = build
    from dropout_engine import _engine
    m, path = _save(tmp, "qisa", QMODELS["wide_gelu_tanh"][1], quantize=True)
    x = np.random.default_rng(7).normal(size=(300, 300)).astype(np.float32)
    _exact(_run_predict(exe, path, x, tmp, "-t", "2"), m.predict(x, verbose=0))
    for isa, name in enumerate(["generic", "avx2", "avx512"]):
        if _engine.isa_available(isa):
            y = _run_predict(exe, path, x[:9], tmp,
                             env=dict(os.environ, DROPOUT_ENGINE_ISA=name))
            _exact(y, _isa_predict(m, x[:9], isa))


def test_mixed_float_and_int8_layers(build):
    """A Dense built with dtype "int8_from_float32" next to float ones (what
    load_model makes of such a config); the int8 kernel uses -128 too."""
    from dropout_engine.saving import load_model
    tmp, exe = build
    m = Sequential([Input((9,)), Dense(20, activation="relu"), Dropout(0.4),
                    Dense(70, activation="elu", dtype="int8_from_float32"),
                    Dense(4, activation="softmax")])
    rng = np.random.default_rng(8)
    m.set_weights([rng.integers(-128, 128, w.shape) if w.dtype == np.int8
                   else rng.uniform(0.005, 0.02, w.shape) if w.shape == (70,)
                   and i == 3 else rng.normal(0, 0.6, w.shape)
                   for i, w in enumerate(m.get_weights())])
    path = os.path.join(str(tmp), "mixed.safetensors")
    m.save(path)
    x = rng.normal(size=(33, 9)).astype(np.float32)
    want = load_model(path).predict(x, verbose=0)
    assert np.array_equal(want, m.predict(x, verbose=0))
    _exact(_run_predict(exe, path, x, tmp), want)


def _int8_file(tmp):
    """A quantized model's tensors and metadata (both Dense layers are int8)."""
    from dropout_engine.safetensors import load_tensors
    _, path = _save(tmp, "qdamage", lambda: [Input((5,)), Dense(66, activation="relu"),
                                             Dense(3)], quantize=True)
    return load_tensors(path)


def _config_change(meta, change):
    cfg = json.loads(meta["model"])
    change(cfg["layers"])
    return dict(meta, model=json.dumps(cfg))


def _too_many_inputs(t, meta):
    t = dict(t, **{"weights/0/kernel": np.zeros((65537, 66), np.int8)})
    return t, _config_change(meta, lambda ls: ls[0]["config"].update(shape=[65537]))


DAMAGED_INT8 = {   # name: (change(tensors, metadata), what the message names)
    "float32 kernel": (lambda t, m: (dict(t, **{"weights/0/kernel": t[
        "weights/0/kernel"].astype(np.float32)}), m), "'weights/0/kernel' must be int8 [5, 66]"),
    "uint8 kernel": (lambda t, m: (dict(t, **{"weights/1/kernel": t[
        "weights/1/kernel"].view(np.uint8)}), m), "'weights/1/kernel' must be int8 [66, 3]"),
    "transposed kernel": (lambda t, m: (dict(t, **{"weights/0/kernel": t[
        "weights/0/kernel"].T.copy()}), m), "'weights/0/kernel' must be int8"),
    "kernel_scale shape": (lambda t, m: (dict(t, **{"weights/0/kernel_scale": t[
        "weights/0/kernel_scale"][:-1]}), m), "'weights/0/kernel_scale' must be float32 [66]"),
    "kernel_scale float64": (lambda t, m: (dict(t, **{"weights/1/kernel_scale": t[
        "weights/1/kernel_scale"].astype(np.float64)}), m), "kernel_scale' must be float32"),
    "missing kernel_scale": (lambda t, m: ({k: v for k, v in t.items()
                                           if k != "weights/1/kernel_scale"}, m),
                             "'weights/1/kernel_scale' must be float32 [3] (it is missing)"),
    "extra tensor": (lambda t, m: (dict(t, **{"weights/1/zero_point": np.zeros(3, np.float32)}),
                                   m), "the file holds 7 weight tensors, the model has 6"),
    "config says float32": (lambda t, m: (t, _config_change(
        m, lambda ls: ls[2]["config"].pop("dtype"))), "'weights/1/kernel' must be float32"),
    "unknown dtype policy": (lambda t, m: (t, _config_change(
        m, lambda ls: ls[2]["config"].update(dtype="int4"))), "Dense dtype must be"),
    "too many inputs": (_too_many_inputs, "at most 65536 inputs, the layer has 65537"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_INT8))
def test_damaged_int8_file_is_refused_as_python_refuses(build, case):
    from dropout_engine.safetensors import save_tensors
    from dropout_engine.saving import load_model
    tmp, exe = build
    change, message = DAMAGED_INT8[case]
    tensors, meta = change(*_int8_file(tmp))
    path = os.path.join(str(tmp), "qdamaged.safetensors")
    save_tensors(path, tensors, meta)
    with pytest.raises(ValueError):
        load_model(path)
    r = subprocess.run([exe, path, "/dev/null"], capture_output=True, text=True)
    assert r.returncode == 1 and "not a valid model file" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_truncated_int8_data_is_refused(build):
    tmp, exe = build
    _, path = _save(tmp, "qtrunc", QMODELS["relu_sigmoid_ragged"][1], quantize=True)
    raw = open(path, "rb").read()
    for cut in (1, 7, 300):
        with open(path, "wb") as f:
            f.write(raw[:-cut])
        r = subprocess.run([exe, path, "/dev/null"], capture_output=True, text=True)
        assert r.returncode == 1 and "not a valid model file" in r.stderr, r.stderr


# ----------------------------------------------------------- normalization
def _norm_layers(name):
    from dropout_engine.layers import BatchNormalization, LayerNormalization
    return {
        # BN between bias and activation, BN after one (no beta), LN after
        # one (no gamma), LN on the softmax's logits (a built Keras axis).
        "pre_post_and_layer": [
            Input((7,)), Dense(12), BatchNormalization(), Activation("relu"),
            Dropout(0.3), Dense(9, activation="tanh"),
            BatchNormalization(center=False, epsilon=0.01), Dense(6, activation="relu"),
            LayerNormalization(scale=False), Dense(4), LayerNormalization(axis=[-1]),
            Activation("softmax")],
        # more than one 256-column block; weight-scaled dropout after the norm
        "wide_plain": [
            Input((7,)), Dense(300, activation="elu"),
            BatchNormalization(scale=False, center=False), Dropout(0.5, scaling="weight"),
            Dense(3)],
    }[name]


def _save_normalized(tmp, name, quantize=False):
    m = Sequential(_norm_layers(name))
    rng = np.random.default_rng(len(name))
    names = [n for layer in m.layers for n in getattr(layer, "weight_names", ())]
    m.set_weights([np.abs(w) + 0.2 if n == "moving_variance" else w for n, w in zip(
        names, (rng.normal(0, 0.6, w.shape).astype(np.float32) for w in m.get_weights()))])
    if quantize:
        m.quantize(quantize)
    path = os.path.join(str(tmp), f"norm_{name}_{quantize}.safetensors")
    m.save(path)
    return m, path


@pytest.mark.parametrize("quantize", [None, "int8", "bfloat16"],
                         ids=["float32", "int8", "bfloat16"])
@pytest.mark.parametrize("name", ["pre_post_and_layer", "wide_plain"])
def test_normalized_models_are_python_bits(build, name, quantize):
    """BN folded once at load gives the bits Python's predict computes (the
    same fold at each call); LN per row; the int8 or bf16 kernels around
    them."""
    tmp, exe = build
    m, path = _save_normalized(tmp, name, quantize)
    rng = np.random.default_rng(9)
    for rows in (1, 70):
        x = rng.normal(0, 1.5, (rows, 7)).astype(np.float32)
        _exact(_run_predict(exe, path, x, tmp), m.predict(x, verbose=0))
    _exact(_run_predict(exe, path, x, tmp, "-t", "2"), m.predict(x, verbose=0))


def _norm_config(cfg, i, **change):
    cfg["layers"][i]["config"].update(change)


DAMAGED_NORM = {   # name: (change(tensors, model config), what C's message names)
    "after a Dropout": (lambda t, c: c["layers"].insert(4, c["layers"].pop(2)),
                        "after a Dropout"),
    "two on one Dense": (lambda t, c: c["layers"].insert(2, json.loads(json.dumps(
        c["layers"][2]))), "a second normalization"),
    "activation after post": (lambda t, c: c["layers"].insert(
        7, {"class_name": "Activation", "config": {"activation": "relu"}}),
        "an activation after a normalization"),
    "epsilon": (lambda t, c: _norm_config(c, 2, epsilon=-1.0), "epsilon must be"),
    "axis": (lambda t, c: _norm_config(c, 2, axis=0), "axis must be -1"),
    "renorm": (lambda t, c: _norm_config(c, 2, renorm=True), "renorm must be false"),
    "scale not a bool": (lambda t, c: _norm_config(c, 10, scale=1), "center and scale"),
    "missing moving_variance": (lambda t, c: t.pop("weights/1/moving_variance"),
                                "'weights/1/moving_variance' must be float32 [12]"),
    "gamma shape": (lambda t, c: t.update({"weights/1/gamma": np.ones(11, np.float32)}),
                    "'weights/1/gamma' must be float32 [12]"),
    "beta of a center=False": (lambda t, c: t.update(
        {"weights/5/beta": np.zeros(9, np.float32)}), "the file holds"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_NORM))
def test_damaged_normalized_file_is_refused_as_python_refuses(build, case):
    from dropout_engine.safetensors import load_tensors, save_tensors
    from dropout_engine.saving import load_model
    tmp, exe = build
    _, path = _save_normalized(tmp, "pre_post_and_layer")
    tensors, meta = load_tensors(path)
    cfg = json.loads(meta["model"])
    change, message = DAMAGED_NORM[case]
    change(tensors, cfg)
    path = os.path.join(str(tmp), "norm_damaged.safetensors")
    save_tensors(path, tensors, dict(meta, model=json.dumps(cfg)))
    with pytest.raises(ValueError):
        load_model(path)
    r = subprocess.run([exe, path, "/dev/null"], capture_output=True, text=True)
    assert r.returncode == 1 and "not a valid model file" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_a_functional_chain_loads_and_a_dag_is_refused_with_a_message(build):
    from dropout_engine import keras as dk
    tmp, exe = build
    x_in = dk.Input((7,))
    h = dk.layers.Dropout(0.2)(dk.layers.Dense(9, activation="relu")(x_in))
    chain = _randomize(dk.Model(x_in, dk.layers.Dense(3, activation="softmax")(h)), 4)
    path = os.path.join(str(tmp), "chain.safetensors")
    chain.save(path)
    x = np.random.default_rng(5).normal(0, 1.5, (9, 7)).astype(np.float32)
    np.testing.assert_allclose(_run_predict(exe, path, x, tmp), chain.predict(x),
                               rtol=1e-6, atol=1e-6)
    y_in = dk.Input((7,))
    dag = dk.Model(y_in, dk.layers.Add()([dk.layers.Dense(3)(y_in),
                                          dk.layers.Dense(3)(y_in)]))
    path = os.path.join(str(tmp), "dag.safetensors")
    dag.save(path)
    xin = os.path.join(str(tmp), "x.f32")
    x.astype("<f4").tofile(xin)
    r = subprocess.run([exe, path, xin], capture_output=True, text=True)
    assert r.returncode != 0 and "merged branches" in r.stderr
