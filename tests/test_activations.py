"""activations.py, the activation layers (ReLU, LeakyReLU, PReLU, ELU,
Softmax) and the parameterised C activations (issues 16 and 17): Keras's
values and defaults, gradients against finite differences, fusion rules,
save/load, the C library, ONNX.  The named activations' kernels (forward to
an ulp, backward, finite differences, every ISA) are checked per name in
test_dense.py and test_dropout.py, which run over ops.ACTIVATIONS."""
import ctypes
import json
import math
import os

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import _engine, activations, config, ops
from dropout_engine import keras as dk
from dropout_engine import _validation as chk
from dropout_engine.layers import (ELU, Activation, Dense, Dropout, Input, LeakyReLU,
                                   PReLU, ReLU, Softmax)
from dropout_engine.model import Sequential

import reference as ref

RNG = np.random.default_rng(16)
# (C activation tuple, reference name, reference parameters)
PARAMETERISED = {
    "relu(0.1, 1.5, 0.3)": ((activations.RELU_X, 0.1, 1.5, 0.3), "relu",
                            dict(negative_slope=0.1, max_value=1.5, threshold=0.3)),
    "relu(threshold=0.4)": ((activations.RELU_X, 0.0, math.inf, 0.4), "relu",
                            dict(threshold=0.4)),
    "relu(max_value=0.8)": ((activations.RELU_X, 0.0, 0.8, 0.0), "relu",
                            dict(max_value=0.8)),
    "leaky_relu(0.3)": ((activations.LEAKY_RELU, 0.3, math.inf, 0.0), "leaky_relu",
                        dict(negative_slope=0.3)),
    "elu(0.5)": ((activations.ELU, 0.5, math.inf, 0.0), "elu", dict(alpha=0.5)),
    "elu(-0.5)": ((activations.ELU, -0.5, math.inf, 0.0), "elu", dict(alpha=-0.5)),
}


def _keras():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("Keras's imports (C++ exceptions) abort under ASan")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def data(m, k, n, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((m, k)).astype(np.float32),
            (r.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32),
            r.standard_normal(n).astype(np.float32) * 0.5)


# --------------------------------------------------- the functions
@pytest.mark.parametrize("name", sorted(activations.NAMES + ("swish",)))
def test_functions_match_keras(name):
    keras = _keras()
    x = np.concatenate([RNG.standard_normal(500) * 4, [0.0, -3.0, 3.0, 6.0, 20, -20]])
    x = x.astype(np.float32).reshape(2, -1)
    got = getattr(activations, name)(x)
    want = np.asarray(keras.activations.get(name)(x))
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("call", [
    lambda a, x: a.relu(x, negative_slope=0.1, max_value=2.0, threshold=0.5),
    lambda a, x: a.relu(x, max_value=6.0),
    lambda a, x: a.relu(x, threshold=1.0),
    lambda a, x: a.leaky_relu(x, negative_slope=0.35),
    lambda a, x: a.elu(x, alpha=0.3),
    lambda a, x: a.softmax(x, axis=0),
    lambda a, x: a.gelu(x, approximate=True)])
def test_parameterised_functions_match_keras(call):
    keras = _keras()
    x = (RNG.standard_normal((7, 33)) * 3).astype(np.float32)
    np.testing.assert_allclose(call(activations, x),   # Keras rounds more (float32)
                               np.asarray(call(keras.activations, x)),
                               rtol=2e-6, atol=1e-6)


def test_functions_take_any_shape_and_leave_the_input_alone():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    before = x.copy()
    y = activations.relu(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert activations.tanh(2.0).shape == () and activations.sigmoid([]).shape == (0,)
    assert activations.linear([1, 2]).dtype == np.float32


def test_get_serialize_deserialize_as_keras():
    a = activations
    assert a.get(None) is a.linear and a.get("relu") is a.relu and a.get(a.elu) is a.elu
    assert a.get("swish") is a.silu and a.serialize(a.swish) == "silu"
    assert a.deserialize({"class_name": "function", "config": "gelu"}) is a.gelu
    assert a.deserialize("mine", custom_objects={"mine": abs}) is abs
    with pytest.raises(ValueError, match="'rleu'; expected one of .*'relu'"):
        a.get("rleu")
    with pytest.raises(ValueError, match="cannot be serialized"):
        a.serialize(lambda x: x)
    with pytest.raises(ValueError, match="Could not interpret"):
        a.get(3)


def test_bad_arguments_raise_clearly():
    a, x = activations, np.ones(3)
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        a.relu(x, negative_slope=-1)
    with pytest.raises(TypeError, match="max_value must be a finite number"):
        a.relu(x, max_value="6")
    with pytest.raises(TypeError, match="alpha must be a finite number"):
        a.elu(x, alpha=float("nan"))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        a.softmax(x, axis=2)
    with pytest.raises(TypeError, match="relu: x must hold real numbers"):
        a.relu(["a"])


def test_the_keras_namespace_reexports_the_module():
    for name in dk.activations.__all__:
        assert getattr(dk.activations, name) is getattr(activations, name)
    assert dk.layers.PReLU is PReLU and dk.layers.LeakyReLU is LeakyReLU


# ------------------------------------------- kernels with parameters
def _forward(x, w, b, act, rate, seed=5):
    m, n = x.shape[0], w.shape[1]
    y, words = np.empty((m, n), np.float32), chk.mask_words(m * n)
    _engine.dense_forward(x, w, b, act, rate, True, _engine.rng_key(seed, 0, 0), y,
                          words if rate else None)
    keep = ref.unpack_mask(words.view(np.uint8), y.shape) if rate else None
    return y, words, keep


def _backward(dy, x, w, b, y, words, act, rate):
    z = ops.matmul(x, w) + b if _engine.act_needs_pre(act, rate > 0) else None
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(w.shape[1], np.float32)
    _engine.dense_backward(dy, x, w, y, z, words if rate else None, act, rate, True,
                           np.empty_like(y), dx, dw, db)
    return dx, dw, db


@pytest.mark.parametrize("rate", [0.0, 0.4])
@pytest.mark.parametrize("case", sorted(PARAMETERISED))
def test_parameterised_forward_matches_numpy(case, rate):
    act, name, p = PARAMETERISED[case]
    x, w, b = data(19, 11, 290, seed=1)
    y, _, keep = _forward(x, w, b, act, rate)
    want, _ = ref.dense_forward(x, w, b, name, keep, float(ref.dropout_params(rate)[1]), **p)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("rate", [0.0, 0.5])
@pytest.mark.parametrize("case", sorted(PARAMETERISED))
def test_parameterised_backward_matches_finite_differences(case, rate):
    act, name, p = PARAMETERISED[case]
    x, w, b = data(6, 5, 7, seed=8)
    y, words, keep = _forward(x, w, b, act, rate, seed=1)
    scale = float(ref.dropout_params(rate)[1])
    r = RNG.standard_normal(y.shape)
    got = _backward(r.astype(np.float32), x, w, b, y, words, act, rate)
    params = [x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)]

    def loss():
        return (ref.dense_forward(*params, name, keep, scale, **p)[0] * r).sum()

    for q, g in zip(params, got):
        np.testing.assert_allclose(g, ref.finite_differences(loss, q), rtol=1e-3,
                                   atol=1e-3)


def test_a_clipped_unit_has_zero_gradient_also_under_dropout():
    """relu6's derivative from the stored output: y == 6 * scale exactly."""
    x = np.array([[10.0, 3.0, -2.0] * 40], np.float32)
    w = np.eye(120, dtype=np.float32)
    y, words, keep = _forward(x, w, np.zeros(120, np.float32), activations.RELU6, 0.3)
    _, _, db = _backward(np.ones_like(y), x, w, None, y, words, activations.RELU6, 0.3)
    scale = np.float32(ref.dropout_params(0.3)[1])
    want = np.where(keep[0], np.tile([0.0, 1.0, 0.0], 40) * scale, 0.0)
    np.testing.assert_array_equal(db, want.astype(np.float32))


def test_prelu_slope_gradient_is_the_sum_of_g_times_negative_part():
    z = RNG.standard_normal((300, 70)).astype(np.float32)
    dy = RNG.standard_normal(z.shape).astype(np.float32)
    words = chk.mask_words(z.size)
    _, mask = ops.dropout(np.ones_like(z), 0.3, seed=4)
    words.view(np.uint8)[:mask.size] = mask
    keep = ref.unpack_mask(mask, z.shape)
    ds = np.empty(70, np.float32)
    _engine.prelu_slope_grad(z, dy, words, 0.3, True, ds)
    g = np.where(keep, dy * np.float64(ref.dropout_params(0.3)[1]), 0.0)
    np.testing.assert_allclose(ds, (g * np.minimum(z, 0)).sum(0), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------- layers
def _keras_style(k):
    """The same code builds a Keras model and ours (only the import differs)."""
    L = k.layers
    return k.Sequential([
        k.Input((6,)), L.Dense(8), L.LeakyReLU(), L.Dense(8), L.PReLU(),
        L.Dense(8), L.ELU(0.7), L.Dense(8),
        L.ReLU(max_value=3.0, negative_slope=0.05, threshold=0.2),
        L.Dense(8, activation="silu"), L.Dense(8, activation="hard_sigmoid"),
        L.Dense(8, activation="softplus"), L.Dense(8, activation="relu6"),
        L.Dense(8, activation="leaky_relu"), L.Dense(8, activation="swish"),
        L.Dense(5), L.Softmax()])


def _random_weights(model, seed=0):
    r = np.random.default_rng(seed)
    model.set_weights([r.normal(0, 0.7, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def test_activation_layers_predict_as_keras():
    keras = _keras()
    ours = _random_weights(_keras_style(dk))
    theirs = _keras_style(keras)
    theirs.set_weights(ours.get_weights())
    x = RNG.normal(0, 1.5, (50, 6)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0),
                               np.asarray(theirs.predict(x, verbose=0)),
                               rtol=1e-5, atol=1e-6)


def test_layer_defaults_and_names_are_keras():
    assert LeakyReLU().negative_slope == 0.3 and ELU().alpha == 1.0
    assert (ReLU().max_value, ReLU().negative_slope, ReLU().threshold) == (None, 0.0, 0.0)
    assert Softmax().axis == -1
    names = [type(l).__name__ for l in (ReLU(), LeakyReLU(), PReLU(), ELU(), Softmax())]
    assert names == ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]
    assert ReLU().name.startswith("re_lu") and PReLU().name.startswith("p_re_lu")
    with pytest.warns(UserWarning, match="alpha.*deprecated"):
        assert LeakyReLU(alpha=0.1).negative_slope == 0.1


def test_layer_arguments_are_validated():
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="max_value must be >= 0"):
        ReLU(max_value=-1)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        ReLU(threshold=-1)
    with pytest.raises(ValueError, match="only axis=-1"):
        Softmax(axis=0)
    with pytest.raises(NotImplementedError, match="shared_axes"):
        PReLU(shared_axes=[1])
    with pytest.raises(TypeError, match="arbitrary callable"):
        Dense(3, activation=lambda x: x)


def test_a_function_fuses_exactly_as_its_name():
    x = RNG.standard_normal((9, 4)).astype(np.float32)
    for fn in (activations.relu, activations.swish, activations.leaky_relu):
        de.set_random_seed(3)
        a = Sequential([Input((4,)), Dense(6, activation=fn)])
        de.set_random_seed(3)
        b = Sequential([Input((4,)), Dense(6, activation=activations.serialize(fn))])
        assert a.layers[0].activation == activations.serialize(fn)
        assert a.layers[0].get_config()["activation"] == activations.serialize(fn)
        np.testing.assert_array_equal(a.predict(x), b.predict(x))
        assert Activation(fn).activation == activations.serialize(fn)


@pytest.mark.parametrize("layers, ok", [
    ([Dense(4), Dropout(0.5), LeakyReLU(0.1)], True),
    ([Dense(4), Dropout(0.5), PReLU()], True),
    ([Dense(4), Dropout(0.5), ReLU(negative_slope=0.2)], True),
    ([Dense(4, activation="relu"), Dropout(0.5), LeakyReLU()], True),
    ([Dense(4), Dropout(0.5), ReLU(max_value=6)], False),
    ([Dense(4), Dropout(0.5), ELU()], False),
    ([Dense(4), Dropout(0.5), Softmax()], False),
    ([Dense(4, activation="relu"), Dropout(0.5), PReLU()], False),
    ([Dense(4, activation="tanh"), LeakyReLU()], False),
    ([PReLU(), Dense(4)], False),
])
def test_which_activation_layers_fuse(layers, ok):
    """After a Dropout only activations that commute with it fuse."""
    if ok:
        Sequential([Input((3,))] + layers)
    else:
        with pytest.raises(ValueError, match="cannot be fused|identity|before the first"):
            Sequential([Input((3,))] + layers)


def test_a_commuting_activation_after_dropout_equals_keras_order():
    """Dense, Dropout, LeakyReLU trains as leaky(dropout(z)) = dropout(leaky(z))."""
    x, w, b = data(8, 5, 300, seed=2)
    y, _, keep = _forward(x, w, b, (activations.LEAKY_RELU, 0.1, math.inf, 0.0), 0.5)
    z = ref.dense_forward(x, w, b, "linear")[0]
    scale = float(ref.dropout_params(0.5)[1])
    want = ref.activation("leaky_relu", np.where(keep, z * scale, 0.0), negative_slope=0.1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def _model_and_data(seed=0):
    de.set_random_seed(seed)
    m = Sequential([Input((4,)), Dense(6), PReLU(alpha_initializer="random_normal"),
                    Dense(5), ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2),
                    Dense(5), ELU(-0.5), Dense(4, activation="silu"), Dense(3),
                    LeakyReLU(0.2), Dense(2, activation="softplus")])
    _random_weights(m, seed)
    r = np.random.default_rng(seed + 1)
    return m, r.standard_normal((12, 4)).astype(np.float32), \
        r.standard_normal((12, 2)).astype(np.float32)


def _reference_loss(weights, x, t):
    w = list(weights)
    h = np.asarray(x, np.float64)

    def dense(act="linear", **p):
        nonlocal h
        h = ref.activation(act, h @ w.pop(0) + w.pop(0), **p)

    dense()
    h = ref.activation("prelu", h, alpha=w.pop(0))
    dense("relu", negative_slope=0.1, max_value=1.5, threshold=0.2)
    dense("elu", alpha=-0.5)
    dense("silu")
    dense("leaky_relu", negative_slope=0.2)
    dense("softplus")
    return ((h - t) ** 2).mean()


def test_fit_gradients_match_finite_differences():
    """One SGD step (lr 1, one batch): w_before - w_after is the gradient of
    the float64 loss, for every weight, PReLU's alpha included."""
    m, x, t = _model_and_data()
    before = [w.astype(np.float64) for w in m.get_weights()]
    m.compile(de.optimizers.SGD(learning_rate=1.0), "mse")
    m.fit(x, t, batch_size=12, epochs=1, shuffle=False, verbose=0)
    got = [b - a for b, a in zip(before, m.get_weights())]
    for i, p in enumerate(before):
        fd = ref.finite_differences(lambda: _reference_loss(before, x, t), p)
        np.testing.assert_allclose(got[i], fd, rtol=2e-3, atol=2e-5, err_msg=f"weight {i}")


def test_prelu_alpha_is_regularized_and_constrained():
    de.set_random_seed(1)
    m = Sequential([Input((3,)), Dense(4), PReLU(alpha_initializer="ones",
                                                 alpha_regularizer=de.regularizers.l2(0.5),
                                                 alpha_constraint="non_neg")])
    m.compile("sgd", "mse")
    x = RNG.standard_normal((16, 3)).astype(np.float32)
    assert m.evaluate(x, np.zeros((16, 4)), verbose=0) >= 0.5 * 4 - 1e-6  # 0.5 * sum(1^2)
    m.layers[1].alpha[...] = -1.0
    m.fit(x, np.zeros((16, 4)), epochs=1, verbose=0)
    assert (m.layers[1].alpha >= 0).all()


def test_seeded_fit_is_bit_identical_for_1_and_2_threads():
    out = []
    for threads in (1, 2):
        before = de.get_num_threads()
        de.set_num_threads(threads)
        try:
            m, x, t = _model_and_data(seed=4)
            m.add(Dropout(0.3))
            m.compile("adam", "mse")
            m.fit(np.repeat(x, 40, 0), np.repeat(t, 40, 0), epochs=2, verbose=0)
            out.append(m.get_weights())
        finally:
            de.set_num_threads(before)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- files, C, ONNX
def test_save_load_predicts_the_same_and_keeps_alpha(tmp_path):
    m = _random_weights(_keras_style(dk), 3)
    m.compile("adam", "categorical_crossentropy")
    x = RNG.standard_normal((20, 6)).astype(np.float32)
    m.fit(x, np.eye(5, dtype=np.float32)[RNG.integers(0, 5, 20)], epochs=1, verbose=0)
    m.save(tmp_path / "m.safetensors")
    back = de.load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.predict(x), m.predict(x))
    prelu = [l for l in back.layers if isinstance(l, PReLU)][0]
    np.testing.assert_array_equal(prelu.alpha, [l for l in m.layers
                                                if isinstance(l, PReLU)][0].alpha)
    for layer in m.layers:
        again = type(layer).from_config(layer.get_config())
        assert again.get_config() == layer.get_config()


@pytest.fixture(scope="module")
def lib():
    path = os.path.join(config.get_lib_dir(), "libdropout_engine.so")
    if not os.path.exists(path):
        pytest.fail("libdropout_engine.so is missing: build it (setup.py build_ext)")
    lib = ctypes.CDLL(path)
    lib.de_last_error.restype = ctypes.c_char_p
    lib.de_model_free.argtypes = [ctypes.c_void_p]
    lib.de_model_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_size_t, ctypes.c_void_p]
    return lib


def _c_predict(lib, file, x, n_out):
    """de_model_predict's y for x, or the load error message (bytes)."""
    h = ctypes.c_void_p()
    if lib.de_model_load(os.fsencode(str(file)), ctypes.byref(h)) != 0:
        return lib.de_last_error()
    y = np.empty((x.shape[0], n_out), np.float32)
    rc = lib.de_model_predict(h, x.ctypes.data, x.shape[0], x.shape[1], y.ctypes.data)
    lib.de_model_free(h)
    assert rc == 0, lib.de_last_error()
    return y


def test_the_c_library_predicts_the_same_bits(lib, tmp_path):
    for i, model in enumerate([_random_weights(_keras_style(dk), 5), _model_and_data()[0]]):
        file = tmp_path / f"m{i}.safetensors"
        model.save(file)
        x = RNG.standard_normal((33, model._n_in)).astype(np.float32)
        np.testing.assert_array_equal(_c_predict(lib, file, x, model._n_out),
                                      model.predict(x))


def _rewrite(src, dst, layer, class_name, cfg):
    """The model file src with layers[layer] (Input first) replaced."""
    raw = open(src, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    model = json.loads(header["__metadata__"]["model"])
    model["layers"][layer] = {"class_name": class_name, "config": cfg}
    header["__metadata__"]["model"] = json.dumps(model)
    text = json.dumps(header).encode()
    open(dst, "wb").write(len(text).to_bytes(8, "little") + text + raw[8 + n:])


@pytest.mark.parametrize("base, layer, cls, cfg, same_as", [
    (LeakyReLU, 2, "LeakyReLU", {"alpha": 0.1}, lambda: LeakyReLU(0.1)),   # Keras 2
    (LeakyReLU, 2, "ELU", {}, lambda: ELU()),                             # Keras's config
    (LeakyReLU, 2, "ReLU", {"max_value": None, "threshold": 0.5}, lambda: ReLU(threshold=0.5)),
    (LeakyReLU, 2, "Activation", {"activation": "swish"}, lambda: Activation("silu")),
    (LeakyReLU, 2, "ReLU", {"negative_slope": -1}, "must be numbers >= 0"),
    (LeakyReLU, 2, "Softmax", {"axis": 0}, "axis must be -1"),
    (PReLU, 2, "PReLU", {"shared_axes": [1]}, "shared_axes must be null"),
    (Dropout, 3, "ELU", {"alpha": 1.0}, "cannot be fused"),
    (Dropout, 3, "ReLU", {"max_value": 6}, "cannot be fused"),
])
def test_the_c_loader_reads_activation_layers_as_python(lib, tmp_path, base, layer, cls, cfg,
                                                       same_as):
    """Configs Keras writes (or that Python refuses) in a file for C."""
    mid = [Dropout(0.5), LeakyReLU(0.1)] if base is Dropout else [base()]
    m = _random_weights(Sequential([Input((3,)), Dense(4)] + mid + [Dense(2)]), 1)
    m.save(tmp_path / "a.safetensors")
    _rewrite(tmp_path / "a.safetensors", tmp_path / "b.safetensors", layer, cls, cfg)
    x = RNG.standard_normal((9, 3)).astype(np.float32)
    got = _c_predict(lib, tmp_path / "b.safetensors", x, 2)
    if isinstance(same_as, str):
        assert isinstance(got, bytes) and same_as.encode() in got, got
        return
    want = Sequential([Input((3,)), Dense(4), same_as(), Dense(2)])
    want.set_weights(m.get_weights())
    np.testing.assert_array_equal(got, want.predict(x))


@pytest.mark.parametrize("build", [
    lambda: _keras_style(dk), lambda: _model_and_data()[0],
    lambda: Sequential([Input((5,)), Dense(7), ReLU(max_value=6), Dense(4),
                        ReLU(threshold=0.3), Dense(3), ReLU(max_value=1, threshold=0.1,
                                                            negative_slope=0.2)])])
def test_onnxruntime_matches_predict(build, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dropout_engine import onnx as de_onnx
    m = _random_weights(build(), 7)
    de_onnx.export(m, tmp_path / "m.onnx")
    x = RNG.normal(0, 1.5, (40, m._n_in)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], m.predict(x), rtol=1e-5,
                               atol=1e-5)
