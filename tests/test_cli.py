"""The command line (dropout_engine/cli): train, predict, info, demo.

Each test runs ``python -m dropout_engine`` as a subprocess with the repo
root as cwd (so the in-place build runs), on tables written to tmp_path.
The csv-module path runs with a stand-in ``pandas`` on PYTHONPATH that
refuses to import, so it is proven not to need pandas; the pandas path must
give the same bytes (model file and predictions).
"""
import csv
import ctypes
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from dropout_engine import config
from dropout_engine.layers import Dense, Input
from dropout_engine.model import Sequential
from dropout_engine.safetensors import load_tensors
from dropout_engine.saving import load_metadata, load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "dropout_engine.cli"


@pytest.fixture(scope="module")
def no_pandas(tmp_path_factory):
    """A PYTHONPATH entry on which `import pandas` and `import pyarrow` fail."""
    d = tmp_path_factory.mktemp("blocked")
    for name in ("pandas", "pyarrow"):
        (d / name).mkdir()
        (d / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked for this test')\n")
    return str(d)


def _cli(*args, engine="builtin", blocked=None):
    """Run the command line; the csv module by default (importing pandas
    costs each run more than reading these small tables), engine=None for
    the default choice, "pandas" to require pandas."""
    env = dict(os.environ)
    env.pop("DROPOUT_ENGINE_CSV", None)
    if engine:
        env["DROPOUT_ENGINE_CSV"] = engine
    if blocked:
        env["PYTHONPATH"] = os.pathsep.join([blocked] + [p for p in [
            os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-m", "dropout_engine", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _fails(r, *fragments):
    """Exit code 2, one line on stderr naming every fragment, no traceback."""
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read(text_or_path):
    text = (open(text_or_path).read() if os.path.exists(str(text_or_path))
            else text_or_path)
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def _blobs(n=400, seed=0):
    """Three well separated classes in 4 features, labelled by strings."""
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 3]], float) * 1.5
    k = rng.integers(0, 3, n)
    x = centers[k] + rng.normal(size=(n, 4))
    x[:, 3] = 50 + 10 * x[:, 3]              # a feature on another scale
    return x, np.array(["setosa", "versicolor", "virginica"])[k]


def _classification_csv(tmp_path, name="iris.csv", n=400, seed=0):
    x, labels = _blobs(n, seed)
    return _write(tmp_path / name, ["a", "b", "c", "d", "species"],
                  [[repr(v) for v in row] + [lab] for row, lab in zip(x.tolist(), labels)]), x, labels


def _regression_csv(tmp_path, n=500):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3))
    y = 1000 + 200 * x[:, 0] - 100 * x[:, 1] + 50 * np.tanh(x[:, 2])
    return _write(tmp_path / "houses.csv", ["rooms", "age", "dist", "price"],
                  [[repr(v) for v in row] + [repr(t)] for row, t in zip(x.tolist(), y.tolist())]), x, y


def _train(data, target, out, *extra, engine="builtin", blocked=None):
    return _ok(_cli("train", data, "--target", target, "--out", out, "--seed", 3,
                    "--verbose", 0, *extra, engine=engine, blocked=blocked))


def _held_out(out, name):
    return float(re.search(rf"held-out \(\d+ rows\):.*{name} ([\d.e+-]+)", out).group(1))


# ------------------------------------------------------------ classification

@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    d = tmp_path_factory.mktemp("iris")
    data, x, labels = _classification_csv(d)
    model = d / "iris.safetensors"
    out = _train(data, "species", model, "--epochs", 30)
    return d, data, x, labels, model, out


def test_train_reaches_high_held_out_accuracy_on_separable_string_labels(iris):
    _, _, _, _, model, out = iris
    assert "task:  classification (auto:" in out and "setosa, versicolor, virginica" in out
    assert "split: 320 training rows, 80 held out" in out
    assert _held_out(out, "accuracy") > 0.9
    assert _held_out(out, "loss") < 0.5
    assert model.exists() and "saved: " in out


def test_model_file_holds_the_scaler_of_the_training_rows(iris):
    _, _, x, _, model, _ = iris
    meta = json.loads(load_metadata(model)[KEY])
    assert meta["features"] == ["a", "b", "c", "d"] and meta["target"] == "species"
    assert meta["task"] == "classification"
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    mean, std = np.array(meta["mean"]), np.array(meta["std"])
    # The training rows are 320 of the 400: their statistics, not all rows'.
    assert np.all(np.abs(mean - x.mean(axis=0)) < 0.5 * x.std(axis=0))
    assert not np.allclose(mean, x.mean(axis=0), rtol=1e-9, atol=0)
    assert np.allclose(std[3] / std[0], x[:, 3].std() / x[:, 0].std(), rtol=0.15)


def test_predict_writes_original_labels_and_probabilities_from_the_scaler(iris):
    d, data, x, labels, model, _ = iris
    header, rows = _read(_ok(_cli("predict", model, data)))
    assert header == ["species", "p_setosa", "p_versicolor", "p_virginica"]
    probs = np.array([[np.float32(v) for v in r[1:]] for r in rows])
    meta = json.loads(load_metadata(model)[KEY])
    xs = ((x - np.array(meta["mean"])) / np.array(meta["std"])).astype(np.float32)
    np.testing.assert_array_equal(probs, load_model(model).predict(xs, verbose=0))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    predicted = np.array([r[0] for r in rows])
    assert set(predicted) <= set(labels)
    assert np.mean(predicted == labels) > 0.9


def test_predict_takes_features_by_name_in_any_order_ignoring_extras(iris, tmp_path):
    _, data, _, _, model, _ = iris
    header, rows = _read(data)
    order = [4, 2, 0, 3, 1]      # target first, features shuffled
    shuffled = _write(tmp_path / "shuffled.csv", ["id"] + [header[i] for i in order],
                      [[str(k)] + [r[i] for i in order] for k, r in enumerate(rows)])
    out = tmp_path / "preds.csv"
    said = _ok(_cli("predict", model, shuffled, "--out", out))
    assert f"wrote {len(rows)} predictions to {out}" in said
    assert out.read_text() == _ok(_cli("predict", model, data))


def test_numeric_labels_sort_as_numbers_and_keep_their_spelling(tmp_path):
    x, labels = _blobs(300, seed=2)
    codes = {"setosa": "10", "versicolor": "2", "virginica": "1.0"}
    data = _write(tmp_path / "codes.csv", ["a", "b", "c", "d", "code"],
                  [[repr(v) for v in r] + [codes[lab]] for r, lab in zip(x.tolist(), labels)])
    out = _train(data, "code", tmp_path / "m.safetensors", "--epochs", 5)
    assert "classification (auto: 3 distinct integers, at most 20)" in out
    header, rows = _read(_ok(_cli("predict", tmp_path / "m.safetensors", data)))
    assert header == ["code", "p_1.0", "p_2", "p_10"]
    assert {r[0] for r in rows} <= {"1.0", "2", "10"}


# ----------------------------------------------------------------- regression

def test_regression_reports_mse_mae_in_target_units_and_predicts_them(tmp_path):
    data, x, y = _regression_csv(tmp_path)
    model = tmp_path / "price.safetensors"
    out = _train(data, "price", model, "--epochs", 40, "--dropout", 0.1)
    assert "task:  regression (auto: numeric, not all integers)" in out
    mse, mae = _held_out(out, "mse"), _held_out(out, "mae")
    assert mse < 0.05 * y.var() and mae < 0.25 * y.std()
    header, rows = _read(_ok(_cli("predict", model, data)))
    assert header == ["price"]
    pred = np.array([float(r[0]) for r in rows])
    assert np.mean((pred - y) ** 2) < 0.05 * y.var()
    meta = json.loads(load_metadata(model)[KEY])
    assert meta["task"] == "regression" and abs(meta["target_mean"] - 1000) < 30


def test_auto_task_integers_with_many_values_are_regression(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 2))
    ages = np.round(40 + 15 * x[:, 0]).astype(int)        # > 20 distinct integers
    data = _write(tmp_path / "ages.csv", ["x0", "x1", "age"],
                  [[repr(a), repr(b), str(t)] for (a, b), t in zip(x.tolist(), ages)])
    out = _train(data, "age", tmp_path / "m.safetensors", "--epochs", 1)
    assert re.search(r"task:  regression \(auto: \d+ distinct integers, more than 20\)", out)
    out = _train(data, "age", tmp_path / "m.safetensors", "--epochs", 1,
                 "--task", "classification")
    assert "task:  classification (--task)" in out


# ------------------------------------------------- two parsers, same results

TRICKY = ('\ufeff a ,"b, quoted",label,odd\r\n'
          '1.5,"2",x,1\r\n'
          '\r\n'
          ' 3 ,4e-1,"y ""z""",-0.0\r\n'
          '5,6,x,nan\r\n'
          '-7,8.25,x,NA\n'
          '9,1_0,"y ""z""",\n'
          '11,12,01\n')


def _both_engines(path, **kw):
    from dropout_engine.cli import csvio
    tables = {}
    for engine in ("builtin", "pandas"):
        os.environ["DROPOUT_ENGINE_CSV"] = engine
        try:
            assert csvio.csv_engine() == engine
            tables[engine] = csvio.read_table(path, **kw)
        finally:
            del os.environ["DROPOUT_ENGINE_CSV"]
    return tables["builtin"], tables["pandas"]


def _same_numbers(a, b, name):
    from dropout_engine.cli.columns import parse_numbers
    (va, bad_a), (vb, bad_b) = parse_numbers(a.column(name)), parse_numbers(b.column(name))
    assert bad_a == bad_b
    if va is not None:
        np.testing.assert_array_equal(va, vb)      # NaN where NaN, same bits else
        assert np.array_equal(np.signbit(va), np.signbit(vb))
    return va


def test_both_parsers_read_the_same_table(tmp_path):
    pytest.importorskip("pandas")
    path = tmp_path / "tricky.csv"
    path.write_bytes(TRICKY.encode("utf-8"))
    a, b = _both_engines(path, text={"label"})
    assert a.names == b.names == ["a", "b, quoted", "label", "odd"]
    assert a.rows == b.rows == 6
    assert list(a.column("label")) == list(b.column("label")) == \
        ["x", 'y "z"', "x", "x", 'y "z"', "01"]
    np.testing.assert_array_equal(_same_numbers(a, b, "a"), [1.5, 3, 5, -7, 9, 11])
    np.testing.assert_array_equal(_same_numbers(a, b, "b, quoted"), [2, .4, 6, 8.25, 10, 12])
    np.testing.assert_array_equal(_same_numbers(a, b, "odd"),
                                  [1, -0.0, np.nan, np.nan, np.nan, np.nan])


def test_both_parsers_give_the_same_doubles_for_hard_decimals(tmp_path):
    pytest.importorskip("pandas")
    rng = np.random.default_rng(8)
    v = rng.normal(size=3000) * 10.0 ** rng.integers(-40, 40, 3000)
    digits = rng.integers(0, 10, (3000, 24))
    cols = {"repr": [repr(x) for x in v.tolist()], "g25": ["%.25g" % x for x in v],
            "long": ["0." + "".join(map(str, d)) for d in digits],
            "int": [str(int(x)) for x in rng.integers(-2 ** 62, 2 ** 62, 3000)]}
    path = _write(tmp_path / "hard.csv", list(cols), list(zip(*cols.values())))
    a, b = _both_engines(path)
    for name, cells in cols.items():
        np.testing.assert_array_equal(_same_numbers(a, b, name),
                                      [float(c) for c in cells])


def test_pandas_and_csv_module_train_and_predict_the_same_bytes(tmp_path, no_pandas):
    pytest.importorskip("pandas")
    data, _, _ = _classification_csv(tmp_path, n=150)
    outs = {}
    for engine, blocked in (("builtin", no_pandas), ("pandas", None)):
        model = tmp_path / f"{engine}.safetensors"
        _train(data, "species", model, "--epochs", 3, engine=engine, blocked=blocked)
        outs[engine] = (model.read_bytes(),
                        _ok(_cli("predict", model, data, engine=engine, blocked=blocked)))
    assert outs["builtin"] == outs["pandas"]


def test_without_pandas_auto_falls_back_to_the_csv_module(tmp_path, no_pandas):
    data, _, _ = _classification_csv(tmp_path, n=100)
    out = _train(data, "species", tmp_path / "m.safetensors", "--epochs", 1,
                 engine=None, blocked=no_pandas)
    assert "100 rows, 4 features" in out
    _fails(_cli("train", data, "--target", "species", engine="pandas", blocked=no_pandas),
           "DROPOUT_ENGINE_CSV=pandas", "pip install pandas")


def test_parquet_trains_the_same_model_as_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    data, x, labels = _classification_csv(tmp_path, n=200)
    table = pa.table({**{c: x[:, j] for j, c in enumerate("abcd")}, "species": labels})
    pq.write_table(table, tmp_path / "iris.parquet")
    _train(data, "species", tmp_path / "csv.safetensors", "--epochs", 2)
    _train(tmp_path / "iris.parquet", "species", tmp_path / "pq.safetensors", "--epochs", 2)
    assert (tmp_path / "csv.safetensors").read_bytes() == \
        (tmp_path / "pq.safetensors").read_bytes()


def test_parquet_without_pyarrow_names_the_extra(tmp_path, no_pandas):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    _fails(_cli("train", tmp_path / "t.parquet", "--target", "y", blocked=no_pandas),
           "pyarrow", "dropout_engine[parquet]")


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("engine", ["builtin", "pandas"])
@pytest.mark.parametrize("text, fragments", [
    ("", ["is empty"]),
    ("a,b,y\n", ["header but no data rows"]),
    ("a,b,y\n1,2,p\n3,oops,q\n", ["column 'b', row 2", "'oops' is not a number"]),
    ("a,b,y\n1,,p\n3,NaN,q\n,4,q\n5,6,p\n", ["3 empty or NaN feature cells",
                                            "column 'a': 1 (row 3)",
                                            "column 'b': 2 (rows 1, 2)"]),
    ("a,b,y\n1,2,p\n3,4\n", ["1 empty or NaN target cell", "'y': 1 (row 2)"]),
    ("a,b,y\n1,2,p\n3,4,q,5\n", ["line 3 has 4 fields, the header has 3"]),
    ("a,a,y\n1,2,p\n", ["names column 'a' twice"]),
    ("a,b,y\n1,2,p\n3,4,p\n", ["has one class only"]),
    ("a,b,y\n1,inf,p\n3,4,q\n", ["column 'b', row 1", "not a finite number"]),
])
def test_bad_tables_are_one_line_errors(tmp_path, no_pandas, engine, text, fragments):
    if engine == "pandas":
        pytest.importorskip("pandas")
    path = tmp_path / "bad.csv"
    path.write_text(text)
    _fails(_cli("train", path, "--target", "y", "--out", tmp_path / "m.safetensors",
                engine=engine, blocked=no_pandas if engine == "builtin" else None),
           *fragments)
    assert not (tmp_path / "m.safetensors").exists()


def test_missing_files_and_columns_are_one_line_errors(iris, tmp_path):
    _, data, _, _, model, _ = iris
    _fails(_cli("train", tmp_path / "nope.csv", "--target", "y"), "nope.csv", "no such file")
    _fails(_cli("train", data, "--target", "label"), "no column 'label'", "'species'")
    _fails(_cli("train", data, "--target", "species", "--out",
                tmp_path / "no" / "m.safetensors"),
           "does not exist")
    _fails(_cli("train", data, "--target", "species", "--task", "regression"),
           "column 'species', row 1", "regression target must be numeric")
    _fails(_cli("predict", tmp_path / "nope.safetensors", data), "nope.safetensors")
    _fails(_cli("info", tmp_path / "nope.safetensors"), "nope.safetensors")
    _fails(_cli("predict", data, data), "not a valid model file")
    header, rows = _read(data)
    partial = _write(tmp_path / "partial.csv", header[1:], [r[1:] for r in rows])
    _fails(_cli("predict", model, partial), "no column 'a'", "trained on")


def test_a_python_saved_model_predicts_on_raw_columns_when_the_count_fits(tmp_path):
    m = Sequential([Input((3,)), Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    path = tmp_path / "plain.safetensors"
    m.save(path)
    x = np.random.default_rng(5).normal(size=(7, 3))
    data = _write(tmp_path / "x.csv", ["p", "q", "r"], [[repr(v) for v in r] for r in x.tolist()])
    r = _cli("predict", path, data)
    header, rows = _read(_ok(r))
    assert "no command-line metadata" in r.stderr and "raw, unscaled" in r.stderr
    assert header == ["output_0", "output_1"]
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32),
                                  m.predict(x.astype(np.float32), verbose=0))
    wide = _write(tmp_path / "w.csv", ["p", "q", "r", "s"], [["1", "2", "3", "4"]])
    _fails(_cli("predict", path, wide), "no command-line metadata", "4 columns",
           "takes 3")


def test_usage_errors_exit_2(iris):
    _, data, _, _, _, _ = iris
    for args in (["train", data], ["train", data, "--target", "species", "--epochs", "0"],
                 ["train", data, "--target", "species", "--dropout", "1"],
                 ["train", data, "--target", "species", "--hidden", "64,x"],
                 ["predict", data], ["bogus"]):
        r = _cli(*args)
        assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------- info, help

def test_info_shows_layers_parameters_size_and_metadata(iris):
    _, _, _, _, model, _ = iris
    out = _ok(_cli("info", model))
    assert f"({os.path.getsize(model):,} bytes)" in out
    assert re.search(r"dense\s+Dense\s+\(None, 64\)\s+relu\s+-\s+kernel 4x64 float32, "
                     r"bias 64 float32\s+320", out)
    assert re.search(r"dropout\s+Dropout\s+\(None, 64\)\s+-\s+0\.5", out)
    assert re.search(r"Dense\s+\(None, 3\)\s+softmax", out)
    n = load_model(model).count_params()
    assert f"parameters: {n:,} (float32;" in out
    assert "Adam (learning_rate 0.001), loss sparse_categorical_crossentropy" in out
    assert "task:     classification, target 'species'" in out
    assert "classes:  3: setosa, versicolor, virginica" in out
    meta = json.loads(load_metadata(model)[KEY])
    assert re.search(rf"\n\s+d\s+{meta['mean'][3]:.6g}\s+{meta['std'][3]:.6g}\n", out)


def test_a_keras_out_file_predicts_and_shows_as_ours(iris, tmp_path):
    pytest.importorskip("h5py")
    d, data, _, _, model, _ = iris
    _train(data, "species", tmp_path / "m.keras", "--epochs", 30)
    assert (tmp_path / "m.keras").read_bytes()[:2] == b"PK"
    out = {}
    for name in (model, tmp_path / "m.keras"):
        _ok(_cli("predict", name, data, "--out", tmp_path / "p.csv"))
        out[name] = (tmp_path / "p.csv").read_text()
    assert out[model] == out[tmp_path / "m.keras"]      # same seed, same model
    info = _ok(_cli("info", tmp_path / "m.keras"))
    assert "format:     keras, version 3" in info
    assert "Adam (learning_rate 0.001), loss sparse_categorical_crossentropy" in info
    assert "classes:  3: setosa, versicolor, virginica" in info


def test_an_out_suffix_save_does_not_write_is_refused_before_training(iris, tmp_path):
    _, data, _, _, _, _ = iris
    r = _cli("train", data, "--target", "species", "--out", tmp_path / "m.bin")
    assert r.returncode == 2 and "'.keras'" in r.stderr and "'.safetensors'" in r.stderr
    assert "Traceback" not in r.stderr and "data:" not in r.stdout
    assert not (tmp_path / "m.bin").exists()


def test_info_on_a_plain_model_file_says_it_has_no_cli_metadata(tmp_path):
    m = Sequential([Input((3,)), Dense(2)])
    m.save(tmp_path / "m.safetensors", metadata={"owner": "me"})
    out = _ok(_cli("info", tmp_path / "m.safetensors"))
    assert "command-line metadata: none" in out and "not compiled" in out
    assert "'owner' (2 characters)" in out


@pytest.mark.parametrize("command, words", [
    ([], ["train", "predict", "info", "demo"]),
    (["train"], ["--target", "--hidden", "--dropout", "--epochs", "--batch-size", "--lr",
                 "--task", "--validation-split", "--seed", "--out", "at most 20",
                 "DROPOUT_ENGINE_CSV=builtin", "dropout_engine[parquet]"]),
    (["predict"], ["model", "data", "--out", "p_<label>"]),
    (["info"], ["model"]),
    (["demo"], ["--epochs", "--batch-size", "--seed", "--out", "--verbose"]),
])
def test_every_command_has_help(command, words):
    out = _ok(_cli(*command, "--help"))
    assert out.startswith("usage: python -m dropout_engine")
    for w in words:
        assert w in out, w


# ------------------------------------------------------ the C embedding API

def test_a_cli_trained_file_loads_and_predicts_in_c(iris):
    _, _, x, _, model, _ = iris
    lib = ctypes.CDLL(os.path.join(config.get_lib_dir(), "libdropout_engine.so"))
    lib.de_last_error.restype = ctypes.c_char_p
    lib.de_model_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_size_t, ctypes.c_void_p]
    lib.de_model_free.argtypes = [ctypes.c_void_p]
    h = ctypes.c_void_p()
    assert lib.de_model_load(os.fsencode(str(model)), ctypes.byref(h)) == 0, \
        lib.de_last_error()
    meta = json.loads(load_tensors(model)[1][KEY])
    xs = np.ascontiguousarray(((x - meta["mean"]) / np.array(meta["std"])), np.float32)
    y = np.empty((len(xs), 3), np.float32)
    try:
        assert lib.de_model_predict(h, xs.ctypes.data, len(xs), 4, y.ctypes.data) == 0
    finally:
        lib.de_model_free(h)
    np.testing.assert_allclose(y, load_model(model).predict(xs, verbose=0),
                               rtol=1e-6, atol=1e-6)

