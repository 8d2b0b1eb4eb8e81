"""NaN and +-Inf through every activation on every ISA path (issue 17).

A relu layer used to turn NaN into 0 (max(x, 0) in the epilogue), so a NaN
input came out of predict as plausible numbers.  Here each activation, as a
Dense's activation= or as an activation layer, gets the pre-activations
z = x * w (one input: exactly one float32 product per element, no sum that
would mix NaN into other columns) for x holding NaN, +-Inf, 0, -0, huge and
tiny values, and every path must give the numpy reference's value: NaN
where it has NaN, the same infinities, the same numbers.  Paths: the
activations functions (C element-wise pass), ops.dense_forward (the fused
GEMM epilogue), model.predict, the C embedding library's de_model_predict,
int8 predict (a row holding NaN or Inf is NaN), and fit's forward (a NaN
weight must make the loss NaN, so fit raises).  Each ISA runs in its own
process (DROPOUT_ENGINE_ISA), as the ISA is chosen once per process, and
all ISAs must give the same bits.

Dropout keeps Keras's rule for a dropped unit: it is 0 even when its value
is NaN (Keras 3 selects, keras.random.dropout: jax.lax.select / np.where /
torch.where; PyTorch's own F.dropout multiplies by the mask, 0 * NaN = NaN).
"""
import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from dropout_engine import activations as A
from dropout_engine import config, ops
from dropout_engine._runtime import available_isas

import reference as ref

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 2.5,
           -2.5, 3.0, -3.0, 6.0, 7.5, -7.5, 30.0, -30.0, 100.0, -100.0, 800.0,
           -800.0]
N = 37           # 2 * 16 + 5: full AVX-512 / AVX2 vectors and a tail
X = np.array(SPECIAL, np.float32).reshape(-1, 1)
W = np.array([(-1) ** j * (0.25 + 0.1 * j) for j in range(N)], np.float32).reshape(1, N)
Z = X * W        # the exact float32 pre-activations
PRELU_ALPHA = np.array([(-1) ** (j // 2) * 0.05 * j for j in range(N)], np.float32)

# case -> (Keras-style layers after Input, reference of z, activations call)
CASES = {f"dense_{n}": (lambda n=n: [_dense(n)], lambda z, n=n: ref.activation(n, z),
                        lambda z, n=n: getattr(A, n)(z)) for n in A.NAMES}
CASES.update({
    "LeakyReLU(0.1)": (lambda: [_dense(), _layer("LeakyReLU", 0.1)],
                       lambda z: ref.relu_general(z, 0.1),
                       lambda z: A.leaky_relu(z, 0.1)),
    "ReLU(6, 0.1, 0.5)": (lambda: [_dense(), _layer("ReLU", max_value=6, negative_slope=0.1,
                                                    threshold=0.5)],
                          lambda z: ref.relu_general(z, 0.1, 6.0, 0.5),
                          lambda z: A.relu(z, negative_slope=0.1, max_value=6, threshold=0.5)),
    "ReLU(threshold=1)": (lambda: [_dense(), _layer("ReLU", threshold=1.0)],
                          lambda z: ref.relu_general(z, 0.0, None, 1.0),
                          lambda z: A.relu(z, threshold=1.0)),
    "ELU(0.5)": (lambda: [_dense(), _layer("ELU", 0.5)],
                 lambda z: ref.activation("elu", z, alpha=0.5), lambda z: A.elu(z, 0.5)),
    "ELU(-0.5)": (lambda: [_dense(), _layer("ELU", -0.5)],
                  lambda z: ref.activation("elu", z, alpha=-0.5), lambda z: A.elu(z, -0.5)),
    "PReLU": (lambda: [_dense(), _layer("PReLU")],
              lambda z: ref.activation("prelu", z, alpha=PRELU_ALPHA.astype(np.float64)),
              None),
    "Softmax": (lambda: [_dense(), _layer("Softmax")], lambda z: ref.activation("softmax", z),
                lambda z: A.softmax(z)),
})


def _dense(act=None):
    from dropout_engine.layers import Dense
    return Dense(N, activation=act, use_bias=False)


def _layer(cls, *args, **kwargs):
    from dropout_engine import layers
    return getattr(layers, cls)(*args, **kwargs)


def _model(case):
    from dropout_engine.layers import Input, PReLU
    from dropout_engine.model import Sequential
    m = Sequential([Input((1,))] + CASES[case][0]())
    m.layers[0].set_weights([W] + m.layers[0].weights[1:])
    for layer in m.layers:
        if isinstance(layer, PReLU):
            layer.alpha[...] = PRELU_ALPHA
    return m


def _c_predict(path, x):
    lib = ctypes.CDLL(os.path.join(config.get_lib_dir(), "libdropout_engine.so"))
    lib.de_last_error.restype = ctypes.c_char_p
    lib.de_model_free.argtypes = [ctypes.c_void_p]
    lib.de_model_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_size_t, ctypes.c_void_p]
    h = ctypes.c_void_p()
    assert lib.de_model_load(os.fsencode(path), ctypes.byref(h)) == 0, lib.de_last_error()
    y = np.empty((x.shape[0], N), np.float32)
    rc = lib.de_model_predict(h, x.ctypes.data, x.shape[0], 1, y.ctypes.data)
    lib.de_model_free(h)
    assert rc == 0, lib.de_last_error()
    return y


def _fit_raises(case):
    """fit on finite data with one NaN weight: the NaN must reach the loss."""
    from dropout_engine.layers import Dense
    m = _model(case)
    m.add(Dense(1))
    k = m.layers[0].kernel.copy()
    k[0, 3] = np.nan
    m.layers[0].set_weights([k] + m.layers[0].weights[1:])
    m.compile("sgd", "mse")
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(-1, 1)
    try:
        m.fit(x, np.zeros(16, np.float32), batch_size=8, epochs=1, verbose=0)
    except FloatingPointError:
        return 1
    return 0


def compute(out, tmp):
    """Every path of every case on this process's ISA, into the npz `out`."""
    res = {}
    for case, (_, _, fn) in CASES.items():
        if fn is not None:
            res[f"{case}|activations"] = fn(Z)
        if case.startswith("dense_"):
            res[f"{case}|ops"] = ops.dense_forward(X, W, None,
                                                   activation=case[len("dense_"):])[0]
        m = _model(case)
        res[f"{case}|predict"] = m.predict(X, verbose=0)
        path = os.path.join(tmp, "model.safetensors")
        m.save(path)
        res[f"{case}|c"] = _c_predict(path, X)
        m.quantize("int8")
        res[f"{case}|int8"] = m.predict(X, verbose=0)
        res[f"{case}|fit_raises"] = np.array(_fit_raises(case))
    np.savez(out, **res)


# ------------------------------------------------------------------ tests
ISAS = available_isas()
SCRIPT = "import sys; sys.path.insert(0, sys.argv[1]); import test_nan_propagation as t; " \
         "t.compute(sys.argv[2], sys.argv[3])"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not os.path.exists(os.path.join(config.get_lib_dir(), "libdropout_engine.so")):
        pytest.fail("libdropout_engine.so is missing: build with "
                    "`python setup.py build_ext --inplace`")
    out = {}
    for isa in ISAS:
        d = tmp_path_factory.mktemp(isa)
        r = subprocess.run([sys.executable, "-c", SCRIPT, os.path.dirname(__file__),
                            str(d / "out.npz"), str(d)], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, DROPOUT_ENGINE_ISA=isa))
        assert r.returncode == 0, r.stderr[-3000:]
        with np.load(d / "out.npz") as f:
            out[isa] = dict(f)
    return out


def _want(case, path):
    want = CASES[case][1](Z.astype(np.float64))
    if path == "int8":     # a row holding NaN or Inf is quantised to NaN
        want = np.where(np.isfinite(X), want, np.nan)
    return want


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_nan_and_inf_give_the_reference_values(results, isa, case):
    got = results[isa]
    paths = [k.split("|")[1] for k in got if k.startswith(case + "|") and "fit" not in k]
    assert {"predict", "c", "int8"} <= set(paths)
    for path in paths:
        y, want = got[f"{case}|{path}"], _want(case, path)
        # int8 quantises the (finite) inputs: Keras's arithmetic, close to x * w
        rtol, atol = (2e-5, 1e-6) if path == "int8" else (1e-6, 1e-37)
        np.testing.assert_allclose(y, want, rtol=rtol, atol=atol,
                                   err_msg=f"{case} via {path} on {isa}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_nan_weight_makes_fit_raise(results, isa, case):
    assert results[isa][f"{case}|fit_raises"] == 1, f"{case} on {isa}: the NaN was lost"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_isa_gives_the_same_bits(results, case):
    first = results[ISAS[0]]
    for isa in ISAS[1:]:
        for k, v in first.items():
            if k.startswith(case + "|"):
                np.testing.assert_array_equal(results[isa][k].view(np.uint32) if v.ndim
                                              else results[isa][k],
                                              v.view(np.uint32) if v.ndim else v,
                                              err_msg=f"{k}: {isa} differs from {ISAS[0]}")


@pytest.mark.parametrize("name", A.NAMES)
def test_a_dropped_unit_is_zero_even_when_nan(name):
    """Kept units keep their NaN; dropped ones are +0, Keras's rule."""
    y, mask = ops.dense_forward(X, W, None, activation=name, dropout_rate=0.5, seed=3)
    keep = ref.unpack_mask(mask, y.shape)
    want = _want(f"dense_{name}", "ops")
    assert np.all(y[~keep] == 0) and not np.signbit(y[~keep]).any()
    np.testing.assert_allclose(y[keep], (want * float(ref.dropout_params(0.5)[1]))[keep],
                               rtol=1e-6, atol=1e-37)
    assert np.isnan(y[keep]).any()


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="Keras's imports (C++ exceptions) abort under ASan")
def test_keras_dropout_also_zeroes_a_dropped_nan():
    """The rule above is Keras 3's (not PyTorch's 0 * NaN = NaN)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    y = np.asarray(keras.random.dropout(np.full(2000, np.nan, np.float32), 0.5, seed=1))
    assert 800 < (y == 0).sum() < 1200 and np.isnan(y[y != 0]).all()
