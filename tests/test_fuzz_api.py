"""Generated bad calls at every public entry, each in a child process.

Each case is one call (ops.*, layer constructors, compile, fit, predict,
evaluate, the *_on_batch methods, model and layer calls, initializers,
set_weights, load_model) with one argument made bad: a wrong
shape, dtype, value, layout, rate, batch size, label or file.  The oracle
knows the documented conversions (any real dtype to float32 once, bool x
for the model, strided views read or copied, NaN passed through by predict
and the ops), so a case either must succeed -- giving the same result as
the clean float32 input -- or must raise ValueError/TypeError with a
message; after a rejected call the model's weights and optimizer step are
unchanged.  Cases run in batches in child processes (``python THIS_FILE
START STOP``), so a crash shows up as a signal and names its case instead
of killing pytest.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

N, D, K = 8, 5, 3          # rows, features, classes of the fuzzed model
BATCH = 120                # cases per child process

# Variants of a valid float32 array; the tag says what kind of bad it is.
SHAPE = ("last+1", "extra_axis", "scalar", "empty_rows", "empty_cols")
CONVERTED = ("float16", "int64", "uint8", "float64", "list", "noncontig",
             "negstride", "fortran")
REFUSED = ("object", "complex", "str", "None", "ragged")
VARIANTS = SHAPE + CONVERTED + REFUSED + ("bool", "nan", "inf")


def variant(good, tag):
    g = np.asarray(good, np.float32)
    if tag == "last+1":
        return np.zeros(g.shape[:-1] + (g.shape[-1] + 1,), np.float32)
    if tag == "extra_axis":
        return g[..., None]
    if tag == "scalar":
        return np.float32(1.0)
    if tag == "empty_rows":
        return np.zeros((0,) + g.shape[1:], np.float32)
    if tag == "empty_cols":
        return np.zeros(g.shape[:-1] + (0,), np.float32)
    if tag in ("float16", "int64", "uint8", "float64", "complex"):
        return (g * 3).astype(tag)
    if tag == "list":
        return g.tolist()
    if tag == "noncontig":     # every other column of a wider array
        wide = np.repeat(g, 2, axis=-1).copy()
        wide[..., 1::2] = -7
        return wide[..., ::2]
    if tag == "negstride":
        return g[::-1].copy()[::-1]
    if tag == "fortran":
        return np.asfortranarray(g)
    if tag == "object":
        return g.astype(object)
    if tag == "str":
        return g.astype(str)
    if tag == "None":
        return None
    if tag == "ragged":
        return [[1.0, 2.0], [3.0]]
    if tag == "bool":
        return g > 0
    if tag == "nan":
        h = g.copy()
        h.flat[h.size // 2] = np.nan
        return h
    if tag == "inf":
        h = g.copy()
        h.flat[0] = -np.inf
        return h
    raise KeyError(tag)


def _ok_tags(*extra, bool_ok=False, finite=False):
    ok = set(CONVERTED) | set(extra)
    if bool_ok:
        ok.add("bool")
    if not finite:
        ok |= {"nan", "inf"}
    return ok


# ----------------------------------------------------------- the context
class Ctx:
    """One model and valid arrays, rebuilt per child process."""

    def __init__(self, tmp):
        import dropout_engine as de
        from dropout_engine import layers as L, seeding
        seeding.set_random_seed(3)
        rng = np.random.default_rng(0)
        self.de, self.L, self.tmp = de, L, tmp
        self.x = rng.normal(size=(N, D)).astype(np.float32)
        self.y = (np.arange(N) % K).astype(np.int64)
        self.w = rng.normal(size=(D, 4)).astype(np.float32)
        self.b = rng.normal(size=4).astype(np.float32)
        self.model = de.Sequential([L.Input((D,)), L.Dense(6, activation="relu"),
                                    L.Dropout(0.5), L.Dense(K, activation="softmax")])
        self.model.compile("adam", "sparse_categorical_crossentropy",
                           metrics=["accuracy"])
        self.model.fit(self.x, self.y, epochs=1, verbose=0)
        self.dense = L.Dense(4, activation="relu")
        self.dense(self.x)                 # built by its first call
        self.y_fwd, self.mask = de.ops.dense_forward(
            self.x, self.w, self.b, activation="relu", dropout_rate=0.5, seed=1)
        self.snapshot()

    def snapshot(self):
        self.before = (self.model.get_weights(), self.model.optimizer.iterations)

    def unchanged(self):
        ws, it = self.before
        return it == self.model.optimizer.iterations and all(
            np.array_equal(a, b, equal_nan=True)
            for a, b in zip(ws, self.model.get_weights()))


# ------------------------------------------------------------- the cases
def _array_cases():
    """(label, call(ctx, value), which argument is varied, ok tags, compare)."""
    ops_ok = _ok_tags()
    return [
        ("fit.x", lambda c, v: c.model.fit(v, c.y, verbose=0), "x",
         _ok_tags(bool_ok=True, finite=True), False),
        ("evaluate.x", lambda c, v: c.model.evaluate(v, c.y, verbose=0), "x",
         _ok_tags(bool_ok=True, finite=True), True),
        ("predict.x", lambda c, v: c.model.predict(v), "x",
         _ok_tags(bool_ok=True), True),
        ("fit.validation_x", lambda c, v: c.model.fit(c.x, c.y, verbose=0,
                                                      validation_data=(v, c.y)), "x",
         _ok_tags(bool_ok=True, finite=True), False),
        ("train_on_batch.x", lambda c, v: c.model.train_on_batch(v, c.y), "x",
         _ok_tags(bool_ok=True, finite=True), False),
        ("test_on_batch.x", lambda c, v: c.model.test_on_batch(v, c.y), "x",
         _ok_tags(bool_ok=True, finite=True), True),
        ("predict_on_batch.x", lambda c, v: c.model.predict_on_batch(v), "x",
         _ok_tags(bool_ok=True), True),
        ("model_call.x", lambda c, v: c.model(v), "x", _ok_tags(bool_ok=True), True),
        ("model_call_training.x", lambda c, v: c.model(v, training=True), "x",
         _ok_tags(bool_ok=True), False),
        ("Dense_call.x", lambda c, v: c.dense(v), "x",
         _ok_tags("empty_rows", bool_ok=True), True),
        ("Dropout_call.x", lambda c, v: c.L.Dropout(0.5)(v), "x",
         _ok_tags(*SHAPE, bool_ok=True), True),
        ("Dropout_call_training.x", lambda c, v: c.L.Dropout(0.5)(v, training=True), "x",
         _ok_tags(*SHAPE, bool_ok=True), False),
        ("GaussianDropout_call_training.x", lambda c, v: c.L.GaussianDropout(0.3)(
            v, training=True), "x", _ok_tags(*SHAPE, bool_ok=True), False),
        ("Activation_call.x", lambda c, v: c.L.Activation("gelu")(v), "x",
         _ok_tags(*SHAPE, bool_ok=True), True),
        ("matmul.a", lambda c, v: c.de.ops.matmul(v, c.w), "x", ops_ok | {"empty_rows"}, True),
        ("matmul.b", lambda c, v: c.de.ops.matmul(c.x, v), "w",
         ops_ok | {"last+1", "empty_cols"}, True),
        ("dense_forward.x", lambda c, v: c.de.ops.dense_forward(
            v, c.w, c.b, activation="tanh", dropout_rate=0.3, seed=2)[0], "x",
         ops_ok | {"empty_rows"}, True),
        ("dense_forward.w", lambda c, v: c.de.ops.dense_forward(c.x, v, None)[0], "w",
         ops_ok | {"last+1"}, True),
        ("dense_forward.b", lambda c, v: c.de.ops.dense_forward(c.x, c.w, v)[0], "b",
         ops_ok | {"None"}, True),       # b=None: no bias
        ("dense_backward.dy", lambda c, v: c.de.ops.dense_backward(
            v, c.x, c.w, c.y_fwd, c.mask, activation="relu", dropout_rate=0.5), "y_fwd",
         ops_ok, True),
        ("dense_backward.y", lambda c, v: c.de.ops.dense_backward(
            c.y_fwd, c.x, c.w, v, c.mask, activation="relu", dropout_rate=0.5), "y_fwd",
         ops_ok, True),
        ("dropout.x", lambda c, v: c.de.ops.dropout(v, 0.25, seed=4)[0], "x",
         ops_ok | set(SHAPE), True),
    ]


def _label_cases():
    y = (np.arange(N) % K)
    bad = {"class_3": (np.where(y == 0, K, y), False), "class_-1": (y - 1, False),
           "half": (y + 0.5, False), "nan": (np.where(y == 0, np.nan, y), False),
           "inf": (np.where(y == 0, np.inf, y), False), "short": (y[:-1], False),
           "2d": (np.eye(K)[y], False), "str": (y.astype(str), False),
           "None": (None, False), "object": (y.astype(object), False),
           "bool": (y == 1, True), "float32": (y.astype(np.float32), True),
           "uint8": (y.astype(np.uint8), True), "column": (y[:, None], True),
           "huge": (np.where(y == 0, 2 ** 40, y), False)}
    calls = {"fit": lambda c, v: c.model.fit(c.x, v, verbose=0),
             "evaluate": lambda c, v: c.model.evaluate(c.x, v, verbose=0),
             "train_on_batch": lambda c, v: c.model.train_on_batch(c.x, v),
             "test_on_batch": lambda c, v: c.model.test_on_batch(c.x, v),
             "validation": lambda c, v: c.model.fit(c.x, c.y, verbose=0,
                                                    validation_data=(c.x, v))}
    return [(f"{name}.y={k}", (lambda call, v: lambda c: call(c, v))(call, v), ok)
            for name, call in calls.items() for k, (v, ok) in bad.items()]


# (value, documented to work?) pairs; lists, not dicts: 1 == 1.0 == True.
BATCHES = [(0, False), (-1, False), (2 ** 40, True), (2 ** 70, True), (1, True),
           (1.5, False), ("32", False), (True, False), (np.int32(4), True),
           (None, True)]
RATES = [(-0.5, False), (1.0, False), (1.5, False), (float("nan"), False),
         (float("inf"), False), ("0.5", False), (None, False), (True, False),
         (0.0, True), (0.999, True), (np.float32(0.25), True), (1, False)]
SEEDS = [(-1, False), (2 ** 64, False), (1.5, False), ("a", False), (None, False),
         (True, False), (2 ** 64 - 1, True), (np.uint64(7), True)]


def _scalar_cases():
    out = []
    for bs, ok in BATCHES:
        out += [(f"fit.batch_size={bs!r}", lambda c, bs=bs: c.model.fit(
                    c.x, c.y, batch_size=bs, verbose=0), ok),
                (f"predict.batch_size={bs!r}", lambda c, bs=bs: c.model.predict(
                    c.x, batch_size=bs), ok),
                (f"evaluate.batch_size={bs!r}", lambda c, bs=bs: c.model.evaluate(
                    c.x, c.y, batch_size=bs, verbose=0), ok),
                (f"fit.validation_batch_size={bs!r}", lambda c, bs=bs: c.model.fit(
                    c.x, c.y, validation_data=(c.x, c.y), validation_batch_size=bs,
                    verbose=0), ok)]
    for r, ok in RATES:
        out += [(f"Dropout(rate={r!r})", lambda c, r=r: c.L.Dropout(r), ok),
                (f"ops.dropout(rate={r!r})", lambda c, r=r: c.de.ops.dropout(c.x, r), ok),
                (f"dense_forward(rate={r!r})", lambda c, r=r: c.de.ops.dense_forward(
                    c.x, c.w, c.b, dropout_rate=r), ok),
                (f"dense_backward(rate={r!r})", lambda c, r=r: c.de.ops.dense_backward(
                    c.y_fwd, c.x, c.w, c.y_fwd, c.mask, activation="relu",
                    dropout_rate=r), ok)]
    for s, ok in SEEDS:
        out += [(f"ops.dropout(seed={s!r})", lambda c, s=s: c.de.ops.dropout(
                    c.x, 0.5, seed=s), ok),
                (f"dense_forward(step={s!r})", lambda c, s=s: c.de.ops.dense_forward(
                    c.x, c.w, c.b, dropout_rate=0.5, step=s), ok),
                (f"random_bits(seed={s!r})", lambda c, s=s: c.de.ops.random_bits(s, 4), ok),
                (f"Dropout(seed={s!r})", lambda c, s=s: c.L.Dropout(0.5, seed=s),
                 ok or s is None)]
    for n, ok in [(-1, False), (1.5, False), (None, False), ("3", False), (0, True),
                  (5, True)]:
        out.append((f"random_bits(n={n!r})", lambda c, n=n: c.de.ops.random_bits(1, n), ok))
    for u, ok in [(0, False), (-1, False), (1.5, False), ("8", False), (None, False),
                  (True, False), (np.int64(3), True)]:
        out.append((f"Dense(units={u!r})", lambda c, u=u: c.L.Dense(u), ok))
    # The ops accept any case ("RELU"); layers take Keras's lower-case names.
    for a, ok in [("rleu", False), ("", False), (3, False), ("RELU", True), (None, True),
                  (("relu",), False), ("softmax", True)]:
        lower = ok and a != "RELU"
        out += [(f"Dense(activation={a!r})", lambda c, a=a: c.L.Dense(2, activation=a), lower),
                (f"Activation({a!r})", lambda c, a=a: c.L.Activation(a), lower),
                (f"ops.dense_forward(activation={a!r})", lambda c, a=a: c.de.ops.dense_forward(
                    c.x, c.w, c.b, activation=a), ok)]
    # (5, 2) is a sample of 5 steps of 2 features; a None axis is refused.
    for shp, ok in [((0,), False), ((-3,), False), (("5",), False), (None, False),
                    ((5, 0), False), ((None, 2), False), ((), False), ((5, 2), True),
                    ((5,), True), (5, True)]:
        out.append((f"Input(shape={shp!r})", lambda c, s=shp: c.L.Input(s), ok))
    for flag, ok in [(1, False), ("yes", False), (None, False), (np.bool_(True), True)]:
        out += [(f"matmul(trans_a={flag!r})", lambda c, f=flag: c.de.ops.matmul(
                    c.x, c.x, trans_a=f), ok),
                (f"dense_forward(training={flag!r})", lambda c, f=flag: c.de.ops.dense_forward(
                    c.x, c.w, c.b, training=f), ok)]
    return out


def _compile_cases():
    out = []
    bad = {"optimizer": ["nope", 3, None, ["adam"]], "loss": ["nope", None, 5, "mse "],
           "metrics": ["nope", [3], ["accuracy"] * 9, [None]]}
    for arg, values in bad.items():
        for v in values:
            def call(c, arg=arg, v=v):
                kw = dict(optimizer="sgd", loss="mse", metrics=None)
                kw[arg] = v
                m = c.de.Sequential([c.L.Input((D,)), c.L.Dense(2)])
                m.compile(**kw)
            out.append((f"compile({arg}={v!r})", call, False))
    fit_bad = {"epochs": [-1, 1.5, "2", None], "validation_split": [1.0, -0.1, float("nan"), 0.99],
               "initial_epoch": [-2, 0.5], "validation_data": [(1,), "xy", 3, (None, None)],
               "sample_weight": [np.ones(N - 1), "w", np.full(N, np.nan), -np.ones(N),
                                 np.ones((N, 2)), [None] * N, np.full(N, np.inf)],
               "class_weight": [[1.0], {"a": 1.0}, {0: -1.0}, {0: float("nan")},
                                {0: "2"}, {1.5: 1.0}]}
    for arg, values in fit_bad.items():
        for v in values:
            out.append((f"fit({arg}={v!r})", lambda c, arg=arg, v=v: c.model.fit(
                c.x, c.y, verbose=0, **{arg: v}), False))
    for arg in ("sample_weight", "class_weight"):
        for v in fit_bad[arg]:
            out.append((f"train_on_batch({arg}={v!r})", lambda c, arg=arg, v=v:
                        c.model.train_on_batch(c.x, c.y, **{arg: v}), False))
    for v in fit_bad["sample_weight"]:
        out.append((f"test_on_batch(sample_weight={v!r})", lambda c, v=v:
                    c.model.test_on_batch(c.x, c.y, sample_weight=v), False))
    return out


def _unbuilt(c, loss="sparse_categorical_crossentropy", out=K):
    m = c.de.Sequential([c.L.Dense(6, activation="relu"), c.L.Dropout(0.5),
                         c.L.Dense(out, activation="softmax")])
    m.compile("adam", loss)
    return m


def _issue_17_cases():
    """Silent wrong answers and unclear errors a new user hits (issue 17):
    an unbuilt model builds from its first data (and says how to build it
    where there is none); a 1-D sample, 0/1 labels for a 2-unit softmax
    with binary_crossentropy and bad training flags are refused."""
    one = lambda c: c.x[0]
    out = [(f"unbuilt.{k}", lambda c, f=f: f(_unbuilt(c), c), True) for k, f in {
        "predict": lambda m, c: m.predict(c.x), "evaluate": lambda m, c: m.evaluate(
            c.x, c.y, verbose=0), "fit": lambda m, c: m.fit(c.x, c.y, verbose=0),
        "call": lambda m, c: m(c.x), "call_training": lambda m, c: m(c.x, training=True),
        "train_on_batch": lambda m, c: m.train_on_batch(c.x, c.y),
        "test_on_batch": lambda m, c: m.test_on_batch(c.x, c.y),
        "predict_on_batch": lambda m, c: m.predict_on_batch(c.x),
        "build": lambda m, c: m.build((None, D))}.items()]
    out += [("unbuilt.get_weights", lambda c: _unbuilt(c).get_weights(), False),
            ("unbuilt.set_weights", lambda c: _unbuilt(c).set_weights(
                c.model.get_weights()), False),
            ("unbuilt.build()", lambda c: _unbuilt(c).build(), False)]
    for k, f in {"predict": lambda m, c: m.predict(one(c)),
                 "evaluate": lambda m, c: m.evaluate(one(c), c.y[:1], verbose=0),
                 "fit": lambda m, c: m.fit(one(c), c.y[:1], verbose=0),
                 "train_on_batch": lambda m, c: m.train_on_batch(one(c), c.y[:1]),
                 "test_on_batch": lambda m, c: m.test_on_batch(one(c), c.y[:1]),
                 "predict_on_batch": lambda m, c: m.predict_on_batch(one(c)),
                 "call": lambda m, c: m(one(c)),
                 "call_training": lambda m, c: m(one(c), training=True)}.items():
        out += [(f"1d_sample.{k}", lambda c, f=f: f(c.model, c), False),
                (f"1d_sample.unbuilt.{k}", lambda c, f=f: f(_unbuilt(c), c), False)]
    out.append(("1d_sample.Dense_call", lambda c: c.dense(one(c)), False))
    y01 = lambda c: (c.y % 2).astype(np.float32)
    for k, f in {"fit": lambda m, c: m.fit(c.x, y01(c), verbose=0),
                 "evaluate": lambda m, c: m.evaluate(c.x, y01(c), verbose=0),
                 "train_on_batch": lambda m, c: m.train_on_batch(c.x, y01(c)),
                 "test_on_batch": lambda m, c: m.test_on_batch(c.x, y01(c))}.items():
        out.append((f"bce_softmax2.{k}", lambda c, f=f: f(
            _unbuilt(c, "binary_crossentropy", 2), c), False))
    for flag, ok in [("yes", False), (1, False), (None, True), (np.bool_(True), True),
                     (False, True)]:
        out += [(f"model_call(training={flag!r})", lambda c, f=flag: c.model(
                    c.x, training=f), ok),
                (f"Dropout_call(training={flag!r})", lambda c, f=flag: c.L.Dropout(0.5)(
                    c.x, training=f), ok)]
    return out


def _initializer_cases():
    I = lambda c: c.de.initializers
    out = []
    for v, ok in [(-1.0, False), (float("nan"), False), ("1", False), (None, False),
                  (True, False), (0.0, True), (np.float32(2.0), True)]:
        out += [(f"RandomNormal(stddev={v!r})", lambda c, v=v: I(c).RandomNormal(
                    stddev=v)((3, 4)), ok),
                (f"Orthogonal(gain={v!r})", lambda c, v=v: I(c).Orthogonal(gain=v)((4, 4)),
                 ok or v == -1.0),
                (f"VarianceScaling(scale={v!r})", lambda c, v=v: I(c).VarianceScaling(
                    scale=v)((3, 4)), ok and v != 0.0)]
    for shape, ok in [((3, -1), False), ((2.5,), False), ("ab", False), (None, False),
                      (5, True), ((2, 0), True), ((2, 3, 4), True)]:
        out += [(f"GlorotUniform()(shape={shape!r})", lambda c, s=shape:
                 I(c).GlorotUniform(seed=1)(s), ok),
                (f"Orthogonal()(shape={shape!r})", lambda c, s=shape: I(c).Orthogonal(
                    seed=1)(s), ok and shape != 5)]
    for seed, ok in [(1.5, False), ("1", False), (None, True), (3, True)]:
        out.append((f"TruncatedNormal(seed={seed!r})", lambda c, s=seed:
                    I(c).TruncatedNormal(seed=s)((3,)), ok))
    for name, ok in [("normal", True), ("uniform", True), ("zero", True), ("one", True),
                     ("orthogonal", True), ("glorot", False), (3, False), ("", False)]:
        out.append((f"Dense(kernel_initializer={name!r})", lambda c, n=name: c.L.Dense(
            2, kernel_initializer=n), ok))
    return out


def _set_weights_cases():
    out = []
    for i in range(4):
        for tag in VARIANTS:
            def call(c, i=i, tag=tag):
                ws = c.model.get_weights()
                ws[i] = variant(ws[i] + 0.5, tag)
                c.model.set_weights(ws)
            ok = tag in CONVERTED or tag in ("bool", "nan", "inf") or (
                tag == "negstride")
            if tag in ("empty_rows", "empty_cols", "extra_axis", "last+1", "scalar"):
                ok = False
            out.append((f"set_weights[{i}]={tag}", call, ok))
    out.append(("set_weights(too few)", lambda c: c.model.set_weights(c.model.get_weights()[:3]), False))
    out.append(("set_weights(too many)", lambda c: c.model.set_weights(
        c.model.get_weights() + [np.zeros(2)]), False))
    out.append(("set_weights(None)", lambda c: c.model.set_weights(None), False))
    return out


def _load_cases():
    import struct
    files = {
        "empty": b"", "seven": b"\x00" * 7, "garbage": bytes(range(64)),
        "len_2^62": struct.pack("<Q", 2 ** 62) + b"{}",
        "len_past_end": struct.pack("<Q", 1000) + b'{"__metadata__": {}}',
        "not_json": struct.pack("<Q", 8) + b"{{{{{{{{",
        "json_list": struct.pack("<Q", 8) + b"[1,2,3] ",
        "no_metadata": struct.pack("<Q", 8) + b"{}      ",
        "offsets_outside": _header_file({"w": {"dtype": "F32", "shape": [4],
                                               "data_offsets": [0, 1 << 40]}}),
        "shape_overflow": _header_file({"w": {"dtype": "F32", "shape": [2 ** 62, 4],
                                              "data_offsets": [0, 16]}}),
        "pickle_dtype": _header_file({"w": {"dtype": "O", "shape": [2],
                                            "data_offsets": [0, 16]}}),
        "unknown_layer": _header_file({}, {"format": "dropout_engine.model", "version": "1",
                                           "model": json.dumps({"layers": [
                                               {"class_name": "os.system",
                                                "config": {"command": "touch PWNED"}}]})}),
        "dropout_seed_2^64": _header_file({}, {"format": "dropout_engine.model", "version": "1",
                                               "model": json.dumps({"layers": [
                                                   {"class_name": "Dropout",
                                                    "config": {"rate": 0.5, "seed": 2 ** 64}}]})}),
    }
    out = [(f"load_model({k})", lambda c, raw=raw, k=k: _load_bytes(c, k, raw), False)
           for k, raw in files.items()]
    out += [(f"load_model(path={p!r})", lambda c, p=p: c.de.load_model(p), False)
            for p in (None, 3.5, ["a"])]
    return out


def _header_file(header, meta=None):
    import struct
    if meta is not None:
        header = dict(header, __metadata__=meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    data = sum(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
    return struct.pack("<Q", len(text)) + text + b"\x00" * min(data, 16)


def _load_bytes(c, name, raw):
    path = os.path.join(c.tmp, name + ".keras")
    with open(path, "wb") as f:
        f.write(raw)
    return c.de.load_model(path)


def _converted(call, arg, tag):
    """The call on the clean float32 C-contiguous copy of the variant: what a
    documented conversion must reproduce exactly."""
    return lambda c: call(c, np.ascontiguousarray(variant(getattr(c, arg), tag), np.float32))


def _input_layer_cases():
    """The input and noise layers' arguments, and token ids for an Embedding."""
    out = []
    for args, ok in [((0, 2), False), ((5, -1), False), ((2 ** 24 + 1, 2), False),
                     ((5.0, 2), False), ((True, 2), False), ((5, 2), True)]:
        out.append((f"Embedding{args!r}", lambda c, a=args: c.L.Embedding(*a), ok))
    for t, ok in [("ab", False), ((0,), False), ((-2, -1), False), ((2.5,), False),
                  (None, False), ((2, -1), True)]:
        out.append((f"Reshape({t!r})", lambda c, t=t: c.L.Reshape(t), ok))
    for v, ok in [(-0.1, False), (1.5, False), ("0.1", False), (float("nan"), False),
                  (0.5, True)]:
        out.append((f"GaussianNoise({v!r})", lambda c, v=v: c.L.GaussianNoise(v), ok))
    for ns, ok in [("ab", False), ((None, 0), False), ((1.5, 3), False), (3, False),
                   ((None, 1), True)]:
        out.append((f"Dropout(noise_shape={ns!r})",
                    lambda c, ns=ns: c.L.Dropout(0.1, noise_shape=ns), ok))
    out += [("Flatten(data_format='x')", lambda c: c.L.Flatten(data_format="x"), False),
            ("GlobalAveragePooling1D(keepdims=1)",
             lambda c: c.L.GlobalAveragePooling1D(keepdims=1), False),
            ("SpatialDropout1D(1.0)", lambda c: c.L.SpatialDropout1D(1.0), False)]

    def predict_ids(c, ids):
        m = c.de.Sequential([c.L.Input((3,)), c.L.Embedding(7, 2),
                             c.L.GlobalAveragePooling1D(), c.L.Dense(1)])
        return m.predict(ids)
    for ids, ok in [(np.array([[1, 2, 7]]), False), (np.array([[-1, 2, 3]]), False),
                    (np.array([[1.0, 2.0, 3.0]]), False), (np.ones((1, 3), bool), False),
                    (np.array([[1, 2]]), False), (np.array([["a", "b", "c"]]), False),
                    (np.zeros((0, 3), np.int32), False), (np.array([[2 ** 40, 1, 1]]), False),
                    (np.array([[6, 0, 1]], np.uint16), True)]:
        out.append((f"Embedding predict({ids.dtype} {ids.tolist()!r:.30})",
                    lambda c, ids=ids: predict_ids(c, ids), ok))
    return out


def cases():
    out = []
    for label, call, arg, ok_tags, compare in _array_cases():
        for tag in VARIANTS:
            check = compare and tag in ok_tags and tag in CONVERTED + ("bool",)
            out.append((f"{label}={tag}",
                        (lambda call, arg, tag: lambda c: call(c, variant(getattr(c, arg), tag)))(
                            call, arg, tag),
                        tag in ok_tags,
                        _converted(call, arg, tag) if check else None))
    for label, call, ok in (_label_cases() + _scalar_cases() + _compile_cases()
                            + _issue_17_cases() + _initializer_cases()
                            + _set_weights_cases() + _load_cases()
                            + _input_layer_cases()):
        out.append((label, call, ok, None))
    return out


# ---------------------------------------------------- the child process
def _same(got, want):
    if isinstance(want, tuple):
        return len(got) == len(want) and all(map(_same, got, want))
    return bool(np.array_equal(got, want, equal_nan=True))


def run_batch(start, stop, tmp):
    """Run cases[start:stop]; one JSON line per case on stdout."""
    ctx = Ctx(tmp)
    for i, (label, call, ok, reference) in enumerate(cases()[start:stop], start):
        print(json.dumps({"start": i, "label": label}), flush=True)
        ctx.snapshot()
        rec = {"i": i, "label": label, "expect": "ok" if ok else "error"}
        try:
            got = call(ctx)
        except Exception as e:  # the test reports all but ValueError/TypeError
            kind = next((k.__name__ for k in (ValueError, TypeError) if isinstance(e, k)),
                        type(e).__name__)
            rec.update(outcome=kind, error=type(e).__name__, msg=str(e)[:200],
                       unchanged=ctx.unchanged())
        else:
            rec["outcome"] = "ok"
            if reference is not None:
                want = reference(ctx)
                rec["same"] = _same(got, want)
        if rec["outcome"] == "ok" and ctx.model.get_weights()[0].size:
            ctx.model.set_weights(ctx.before[0])
        print(json.dumps(rec), flush=True)
    assert not os.path.exists("PWNED")


# ------------------------------------------------------------ the tests
def test_there_are_at_least_500_cases_across_the_public_api():
    labels = [c[0] for c in cases()]
    assert len(labels) >= 500 and len(set(labels)) == len(labels)
    for entry in ("matmul", "dense_forward", "dense_backward", "dropout", "random_bits",
                  "Dense(", "Dropout(", "Activation(", "Input(", "compile(", "fit",
                  "predict", "evaluate", "set_weights", "load_model", "train_on_batch",
                  "test_on_batch", "predict_on_batch", "model_call", "Dense_call",
                  "unbuilt.", "1d_sample.", "bce_softmax2.", "Orthogonal("):
        assert any(entry in label for label in labels), entry


@pytest.mark.parametrize("start", range(0, len(cases()), BATCH))
def test_bad_calls_raise_clear_errors_in_a_child_process(start, tmp_path):
    total = len(cases())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(start),
                           str(min(total, start + BATCH)), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    started = [l for l in lines if "start" in l]
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} during case "
        f"{started[-1] if started else None}\n{proc.stderr[-3000:]}")
    assert not (tmp_path / "PWNED").exists()
    failures = []
    for r in (l for l in lines if "outcome" in l):
        if r["expect"] == "ok":
            if r["outcome"] != "ok" or not r.get("same", True):
                failures.append(r)
        elif r["outcome"] not in ("ValueError", "TypeError") or not r["msg"] \
                or not r["unchanged"]:
            failures.append(r)
    assert sum("outcome" in l for l in lines) == min(total, start + BATCH) - start
    assert not failures, "\n".join(map(json.dumps, failures))


if __name__ == "__main__":
    run_batch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
