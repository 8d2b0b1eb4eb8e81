"""model.quantize("int8"): the kernel quantization and the int8 forward
against Keras's arithmetic written out in numpy (reference.py), bit for bit;
every ISA path and thread count identical; the errors; accuracy kept.

Exactness: the engine reproduces Keras's operations in Keras's order (int32
sums are exact, then three float32 operations), so the pre-activations are
compared with ``array_equal``.  Through sigmoid/softmax the reference
applies the engine's own activation (tested against float64 in
test_dense.py), so the int8 arithmetic of later layers is still compared
exactly."""
import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
import dropout_engine as de
from dropout_engine import _engine, quantization
from dropout_engine.datasets import load_digits
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential

ACT = {"linear": 0, "relu": 1, "sigmoid": 3, "softmax": 7}


def engine_act(name, z):
    z = np.ascontiguousarray(z, np.float32).copy()
    _engine.bias_act(z, None, ACT[name])
    return z


def _net(rng, sizes, acts, use_bias=True, drops=None, in_drop=None):
    layers = [Input((sizes[0],))]
    if in_drop:
        layers.append(Dropout(in_drop, scaling="weight"))
    for i, (n, act) in enumerate(zip(sizes[1:], acts)):
        layers.append(Dense(n, activation=act, use_bias=use_bias))
        if drops and drops[i]:
            layers.append(Dropout(drops[i][0], scaling=drops[i][1]))
    model = Sequential(layers)
    for d in model.layers:
        if isinstance(d, Dense):
            d.set_weights([rng.normal(size=w.shape).astype(np.float32)
                           for w in d.weights])
    return model


def _reference(model, x, activate=engine_act):
    """qnet_forward over the quantized model's own int8 weights."""
    layers, in_keep = [], None
    dense = [l for l in model.layers if isinstance(l, Dense)]
    for layer in model.layers:
        if isinstance(layer, Dropout):
            keep = 1.0 - layer.rate if layer.scaling == "weight" else None
            if not layers:
                in_keep = keep
            else:
                layers[-1][4] = keep
        else:
            layers.append([layer.kernel, layer.kernel_scale, layer.bias,
                           layer.activation, None])
    assert len(layers) == len(dense)
    return ref.qnet_forward(x, layers, in_keep=in_keep, activate=activate)


def test_kernel_quantization_is_kerass_abs_max_per_column():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(37, 70)).astype(np.float32)
    w[:, 3] = 0.0                       # an all-zero column: scale 127 / eps
    model = Sequential([Input((37,)), Dense(70)])
    model.layers[0].set_weights([w, model.layers[0].bias])
    model.quantize("int8")
    q, scale = ref.abs_max_quantize(w, axis=0)
    d = model.layers[0]
    assert d.quantization_mode == "int8"
    assert d.kernel.dtype == np.int8 and np.array_equal(d.kernel, q)
    assert d.kernel_scale.dtype == np.float32
    assert np.array_equal(d.kernel_scale, scale[0])


def test_get_weights_is_kerass_bias_kernel_scale_order():
    model = _net(np.random.default_rng(1), (5, 3, 2), ("relu", None))
    model.quantize("int8")
    ws = model.get_weights()
    assert [(w.shape, w.dtype) for w in ws] == [
        ((3,), np.float32), ((5, 3), np.int8), ((3,), np.float32),
        ((2,), np.float32), ((3, 2), np.int8), ((2,), np.float32)]
    nobias = _net(np.random.default_rng(1), (5, 3), ("relu",), use_bias=False)
    nobias.quantize("int8")
    assert [w.dtype for w in nobias.get_weights()] == [np.int8, np.float32]


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_qdense_equals_the_reference_bit_for_bit(act, use_bias):
    rng = np.random.default_rng(2)
    for k in (1, 3, 5, 67):
        for n in (1, 63, 65, 130):
            w = rng.normal(size=(k, n)).astype(np.float32)
            b = rng.normal(size=n).astype(np.float32) if use_bias else None
            q = quantization.Int8Kernel.from_float(w)
            for m in (1, 2, 3, 4, 5, 9, 70):
                x = (rng.normal(size=(m, k)) * rng.uniform(0.01, 100)).astype(np.float32)
                y = np.empty((m, n), np.float32)
                _engine.qdense_forward(x, q, b, ACT[act], y)
                want = engine_act(act, ref.qdense_pre(x, q.kernel, q.kernel_scale, b))
                assert np.array_equal(y, want), (k, n, m)


def test_rounding_is_half_to_even_and_clipped():
    """Inputs landing exactly on .5 after scaling (scale 127 / (127 + eps)
    rounds to 1 in float32 when max|x| is 127)."""
    x = np.array([[127.0, -0.5, 0.5, 1.5, 2.5, -2.5, 126.5, -127.0]], np.float32)
    q, s = ref.abs_max_quantize(x, axis=-1)
    assert s[0, 0] == 1.0 and list(q[0]) == [127, 0, 0, 2, 2, -2, 126, -127]
    w = np.eye(8, dtype=np.float32)
    kern = quantization.Int8Kernel.from_float(w)
    y = np.empty((1, 8), np.float32)
    _engine.qdense_forward(x, kern, None, 0, y)
    assert np.array_equal(y, ref.qdense_pre(x, kern.kernel, kern.kernel_scale, None))


def test_products_that_round_to_a_tie_are_rounded_after_the_product():
    """x * s rounded to float32 first, then half-to-even (Keras): picked so
    that the exact product is just off a .5 tie that its float32 rounding
    lands on, where a fused multiply-add would round the other way."""
    s = np.float32(127) / (np.float32(3.0) + ref.Q_EPS)
    ties = (np.arange(-126, 126) + 0.5) / np.float64(s)
    v = np.concatenate([np.nextafter(ties.astype(np.float32), np.float32(d))
                        for d in (-10, 10)] + [ties.astype(np.float32)])
    exact = v.astype(np.float64) * np.float64(s)
    f = (v * s).astype(np.float64)
    v = v[(f - np.floor(f) == 0.5) & (exact != f)][:63]
    assert len(v) >= 16
    x = np.concatenate([[3.0], v]).astype(np.float32)[None, :]
    kern = quantization.Int8Kernel.from_float(np.eye(x.shape[1], dtype=np.float32))
    before = _engine.isa_get()
    try:
        for isa in range(3):
            if _engine.isa_available(isa):
                _engine.isa_set(isa)
                y = np.empty_like(x)
                _engine.qdense_forward(x, kern, None, 0, y)
                want = ref.qdense_pre(x, kern.kernel, kern.kernel_scale, None)
                assert np.array_equal(y, want), _engine.qdense_kernel()
    finally:
        _engine.isa_set(before)


@pytest.mark.parametrize("seed", range(4))
def test_model_predict_equals_the_reference(seed):
    """Random nets: ragged widths, dropout of both scalings (inverted is the
    identity at inference, "weight" multiplies by 1 - rate), with and
    without bias, batch 1..70."""
    rng = np.random.default_rng(10 + seed)
    sizes = [int(rng.integers(1, 140)) for _ in range(4)]
    acts = ["relu", "sigmoid", ("softmax", "linear")[seed % 2]]
    drops = [(0.3, "weight"), (0.2, "inverted"), None]
    model = _net(rng, sizes, acts, use_bias=seed % 3 != 2, drops=drops,
                 in_drop=0.1 if seed % 2 else None)
    model.quantize("int8")
    for m in (1, 2, 5, 33, 70):
        x = rng.normal(size=(m, sizes[0])).astype(np.float32)
        assert np.array_equal(model.predict(x, verbose=0), _reference(model, x)), m
    # and against the reference with float64 activations: to float rounding
    x = rng.normal(size=(20, sizes[0])).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), _reference(model, x, activate=None),
                               rtol=1e-4, atol=1e-5)


def _isa_outputs():
    """Predictions of fixed quantized nets (shapes that hit every tile edge
    and both thread splits)."""
    rng = np.random.default_rng(7)
    outs = []
    for sizes, m in (((784, 1024, 130, 10), 1), ((67, 65, 63, 3), 70),
                     ((300, 64, 5), 40), ((5, 1), 3)):
        model = _net(rng, sizes, ["relu"] * (len(sizes) - 2) + ["softmax"])
        model.quantize("int8")
        outs.append(model.predict(rng.normal(size=(m, sizes[0])).astype(np.float32)))
    return outs


def test_every_isa_path_is_bit_identical():
    before = _engine.isa_get()
    results, kernels = [], set()
    try:
        for isa in range(3):
            if _engine.isa_available(isa):
                _engine.isa_set(isa)
                kernels.add(_engine.qdense_kernel())
                results.append(_isa_outputs())
    finally:
        _engine.isa_set(before)
    assert "generic" in kernels
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_dropout_engine_isa_generic_runs_the_portable_kernel(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    out = tmp_path / "generic.npz"
    code = (f"import sys; sys.path.insert(0, {here!r})\n"
            "import numpy as np, test_quantize\n"
            "from dropout_engine import _engine\n"
            "assert _engine.qdense_kernel() == 'generic'\n"
            f"np.savez({str(out)!r}, *test_quantize._isa_outputs())\n")
    env = dict(os.environ, DROPOUT_ENGINE_ISA="generic")
    res = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    with np.load(out) as f:
        theirs = [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]
    for a, b in zip(_isa_outputs(), theirs):
        assert np.array_equal(a, b)


def test_one_and_two_threads_are_identical():
    before = de.get_num_threads()
    try:
        de.set_num_threads(1)
        one = _isa_outputs()
        de.set_num_threads(2)
        two = _isa_outputs()
    finally:
        de.set_num_threads(before)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_a_row_with_nan_or_inf_gives_nan_and_leaves_the_others():
    model = _net(np.random.default_rng(3), (6, 5, 4), (None, "sigmoid"))
    model.quantize("int8")
    x = np.random.default_rng(4).normal(size=(3, 6)).astype(np.float32)
    clean = model.predict(x)
    x[0, 2], x[2, 5] = np.nan, np.inf
    y = model.predict(x)
    assert np.isnan(y[0]).all() and np.isnan(y[2]).all()
    assert np.array_equal(y[1], clean[1])


def test_evaluate_runs_the_int8_path():
    rng = np.random.default_rng(5)
    model = _net(rng, (8, 16, 3), ("relu", "softmax"))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.quantize("int8")
    x = rng.normal(size=(50, 8)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    p = _reference(model, x).astype(np.float64)
    loss, acc = model.evaluate(x, y, verbose=0)
    want = -np.log(np.clip(p[np.arange(50), y], 1e-7, 1 - 1e-7)).mean()
    assert loss == pytest.approx(want, rel=1e-5)
    assert acc == pytest.approx((p.argmax(1) == y).mean())


def test_set_weights_repacks_the_int8_kernels():
    rng = np.random.default_rng(6)
    model = _net(rng, (9, 70, 4), ("relu", None))
    model.quantize("int8")
    ws = model.get_weights()
    ws[1] = rng.integers(-128, 128, size=ws[1].shape).astype(np.int8)
    ws[2] = rng.uniform(1, 50, size=ws[2].shape).astype(np.float32)
    model.set_weights(ws)
    assert np.array_equal(model.layers[0].kernel, ws[1])
    x = rng.normal(size=(7, 9)).astype(np.float32)
    assert np.array_equal(model.predict(x), _reference(model, x))
    ws[1] = ws[1].astype(np.float32) + 0.5
    with pytest.raises(ValueError, match="int8"):
        model.set_weights(ws)


def test_mode_errors_name_what_is_supported():
    model = _net(np.random.default_rng(0), (4, 3), ("relu",))
    for mode in ("int4", "float8", "gptq"):
        with pytest.raises(ValueError, match="not supported.*'int8'"):
            model.quantize(mode)
    for mode in ("int5", None, 8):
        with pytest.raises(ValueError, match="Invalid quantization mode"):
            model.quantize(mode)
    assert not model.quantized and model.layers[0].kernel.dtype == np.float32


def test_a_layer_too_wide_for_exact_int32_sums_is_refused_before_any_change():
    model = Sequential([Input((2,)), Dense(quantization.MAX_INPUTS + 1), Dense(1)])
    with pytest.raises(ValueError, match="at most 65536 inputs"):
        model.quantize("int8")
    assert not model.quantized
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_unbuilt_and_twice_raise_as_keras():
    with pytest.raises(ValueError, match="isn't yet built"):
        Sequential([Dense(3)]).quantize("int8")
    model = _net(np.random.default_rng(0), (4, 3, 2), ("relu", None))
    model.quantize("int8")
    with pytest.raises(ValueError, match="already quantized"):
        model.quantize("int8")


def test_quantized_models_are_inference_only():
    rng = np.random.default_rng(0)
    model = _net(rng, (4, 3, 2), ("relu", "softmax"), drops=[(0.5, "inverted"), None])
    model.compile(loss="sparse_categorical_crossentropy")
    model.quantize("int8")
    x, y = rng.normal(size=(8, 4)).astype(np.float32), rng.integers(0, 2, 8)
    with pytest.raises(NotImplementedError, match="inference-only"):
        model.fit(x, y, verbose=0)
    with pytest.raises(NotImplementedError, match="inference-only"):
        model.predict(x, mc_samples=4)


def test_save_and_load_model_keep_the_int8_model(tmp_path):
    rng = np.random.default_rng(9)
    model = _net(rng, (30, 70, 5), ("relu", "softmax"),
                 drops=[(0.25, "weight"), None])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.quantize("int8")
    path = str(tmp_path / "q.safetensors")
    model.save(path)
    tensors, meta = de.safetensors.load_tensors(path)
    assert tensors["weights/0/kernel"].dtype == np.int8
    assert tensors["weights/0/kernel_scale"].dtype == np.float32
    assert not any(n.startswith("optimizer/") for n in tensors)
    assert '"dtype": "int8_from_float32"' in meta["model"]
    loaded = de.saving.load_model(path)
    assert loaded.quantized and loaded.compiled
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    x, y = rng.normal(size=(9, 30)).astype(np.float32), rng.integers(0, 5, 9)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # weights files too; a float model does not take int8 weights
    model.save_weights(str(tmp_path / "q.weights.safetensors"))
    other = _net(rng, (30, 70, 5), ("relu", "softmax"), drops=[(0.25, "weight"), None])
    with pytest.raises(ValueError, match="do not match"):
        other.load_weights(str(tmp_path / "q.weights.safetensors"))
    other.quantize("int8")
    other.load_weights(str(tmp_path / "q.weights.safetensors"))
    assert np.array_equal(other.predict(x), model.predict(x))


def test_a_file_whose_config_and_tensors_disagree_on_int8_is_refused(tmp_path):
    """A float model's tensors under a config claiming int8 (and the
    reverse): a clear ModelFileError, never int8 values read as floats."""
    import json
    from dropout_engine.safetensors import ModelFileError, load_tensors, save_tensors
    model = _net(np.random.default_rng(0), (6, 5), ("relu",))
    path = str(tmp_path / "f.safetensors")
    model.save(path)
    tensors, meta = load_tensors(path)
    cfg = json.loads(meta["model"])
    cfg["layers"][1]["config"]["dtype"] = "int8_from_float32"
    save_tensors(path, tensors, dict(meta, model=json.dumps(cfg)))
    with pytest.raises(ModelFileError, match="do not match|must be int8"):
        de.saving.load_model(path)
    model.quantize("int8")
    model.save(path)
    tensors, meta = load_tensors(path)
    tensors["weights/0/kernel"] = tensors["weights/0/kernel"].astype(np.float32)
    save_tensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match="must be int8"):
        de.saving.load_model(path)


def test_summary_counts_int8_kernels_as_non_trainable_with_their_size():
    # Keras's summary of the same quantized model (kernel int8, scale and
    # bias float32); test_model_inspection compares whole tables.
    model = _net(np.random.default_rng(0), (4, 3), ("relu",))
    model.quantize("int8")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert " Total params: 18 (36.00 B)" in text
    assert " Trainable params: 3 (12.00 B)" in text
    assert " Non-trainable params: 15 (24.00 B)" in text


def test_accuracy_on_digits_stays_within_a_point_of_float():
    (xt, yt), (xv, yv) = load_digits()
    xt, xv = xt.astype(np.float32) / 16, xv.astype(np.float32) / 16
    de.set_random_seed(0)
    model = Sequential([Input((64,)), Dense(512, activation="relu"), Dropout(0.2),
                        Dense(512, activation="relu"), Dropout(0.5),
                        Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xt, yt, batch_size=64, epochs=5, verbose=0)
    float_acc = model.evaluate(xv, yv, verbose=0)[1]
    model.quantize("int8")
    int8_acc = model.evaluate(xv, yv, verbose=0)[1]
    assert float_acc > 0.9
    assert abs(int8_acc - float_acc) <= 0.01 + 1e-9


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="Keras's imports (C++ exceptions) abort under ASan")
def test_a_keras_model_quantized_by_keras_predicts_the_same():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(8)
    ours = _net(rng, (20, 33, 65, 4), ("relu", "sigmoid", "softmax"))
    theirs = keras.Sequential([keras.Input((20,)),
                               keras.layers.Dense(33, activation="relu"),
                               keras.layers.Dense(65, activation="sigmoid"),
                               keras.layers.Dense(4, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    ours.quantize("int8")
    theirs.quantize("int8")
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    x = rng.normal(size=(16, 20)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0),
                               rtol=0, atol=1e-5)


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="Keras's imports (C++ exceptions) abort under ASan")
def test_through_relu_and_linear_layers_keras_agrees_bit_for_bit():
    """Without transcendental activations every operation is the same IEEE
    float32 operation in the same order as Keras's (JAX backend)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(11)
    ours = _net(rng, (20, 33, 65, 4), ("relu", None, None))
    theirs = keras.Sequential([keras.Input((20,)), keras.layers.Dense(33, activation="relu"),
                               keras.layers.Dense(65), keras.layers.Dense(4)])
    theirs.set_weights(ours.get_weights())
    ours.quantize("int8")
    theirs.quantize("int8")
    x = rng.normal(size=(64, 20)).astype(np.float32)
    assert np.array_equal(ours.predict(x), np.asarray(theirs.predict(x, verbose=0)))


def test_show_config_names_the_int8_kernel():
    kernel = de.show_config(mode="dicts")["cpu"]["int8_kernel"]
    assert kernel == _engine.qdense_kernel()
    assert kernel == {"generic": "generic", "avx2": "avx2"}.get(
        de.isa(), kernel if kernel in ("avx2", "avx512-vnni") else None)


def test_concurrent_predicts_on_one_quantized_model_agree():
    import threading
    rng = np.random.default_rng(13)
    model = _net(rng, (300, 200, 10), ("relu", "softmax"))
    model.quantize("int8")
    xs = [rng.normal(size=(m, 300)).astype(np.float32) for m in (1, 7, 64, 130)]
    want = [model.predict(x) for x in xs]
    bad = []

    def run(i):
        for _ in range(30):
            if not np.array_equal(model.predict(xs[i % 4]), want[i % 4]):
                bad.append(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_quantizing_one_layer_of_a_built_model_switches_its_predict():
    # Keras allows layer.quantize("int8") on a built model's layer: the
    # model's predict must then run that layer in int8, as the layer says.
    rng = np.random.default_rng(21)
    model = _net(rng, (12, 9, 5), ("relu", "softmax"))
    x = rng.normal(size=(7, 12)).astype(np.float32)
    before = model.predict(x)
    first, last = model.layers
    last.quantize("int8")
    h, _ = de.ops.dense_forward(x, first.kernel, first.bias, activation="relu")
    want = engine_act("softmax", ref.qdense_pre(h, last.kernel, last.kernel_scale,
                                                last.bias))
    got = model.predict(x)
    assert np.array_equal(got, want) and not np.array_equal(got, before)
    assert model.quantized
    with pytest.raises(NotImplementedError, match="quantized"):
        model.fit(x, np.zeros(7, np.int64), verbose=0)
