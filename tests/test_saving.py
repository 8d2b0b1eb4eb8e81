"""model.save / load_model round trips and damaged files."""
import json

import numpy as np
import pytest

import dropout_engine as de
from dropout_engine import regularizers, seeding
from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential
from dropout_engine.optimizers import Adam, schedules, SGD
from dropout_engine.safetensors import ModelFileError, load_tensors, save_tensors
from dropout_engine.saving import load_model


def _data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > x[:, 1]).astype(np.int64) + (x[:, 2] > 0)


def _trained(opt=None):
    seeding.set_random_seed(3)
    m = Sequential([Input((6,)), Dropout(0.1),
                    Dense(16, activation="relu", kernel_regularizer=regularizers.l2(1e-3)),
                    Dropout(0.5, scaling="weight"), Dense(3, activation="softmax")])
    m.compile(opt or Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    m.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return m


@pytest.mark.parametrize("opt", [None, SGD(schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.9)])
def test_a_loaded_model_predicts_the_same_and_goes_on_training_the_same(tmp_path, opt):
    m = _trained(opt)
    path = tmp_path / "model.safetensors"
    m.save(path)
    loaded = load_model(path)
    x, y = _data()
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert loaded.optimizer.iterations == m.optimizer.iterations
    assert type(loaded.optimizer) is type(m.optimizer)
    assert loaded.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
    for model in (m, loaded):
        seeding.set_random_seed(11)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def _needs_h5py(name):
    """A Keras-file case: skipped, saying so, where h5py (the optional
    extra "keras-files") is not installed."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        return pytest.param(name, marks=pytest.mark.skip(reason="needs h5py"))
    return name


@pytest.mark.parametrize("name", ["w.safetensors", _needs_h5py("w.weights.h5")])
def test_save_weights_and_load_weights(tmp_path, name):
    m = _trained()
    m.save_weights(tmp_path / name)
    other = Sequential([Input((6,)), Dropout(0.1), Dense(16, activation="relu"),
                        Dropout(0.5), Dense(3, activation="softmax")])
    other.load_weights(tmp_path / name)
    for a, b in zip(m.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["m.safetensors", _needs_h5py("m.keras")])
def test_an_uncompiled_model_round_trips(tmp_path, name):
    m = Sequential([Input((4,)), Dense(2)])
    m.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.get_weights()[0], m.get_weights()[0])


def _rewrite(path, tensors=None, meta=None):
    t, md = load_tensors(path)
    if tensors:
        tensors(t)
    if meta:
        meta(md)
    save_tensors(path, t, md)


def _config_edit(fn):
    def edit(md):
        c = json.loads(md["model"])
        fn(c)
        md["model"] = json.dumps(c)
    return edit


@pytest.mark.parametrize("damage,msg", [
    (dict(meta=lambda md: md.update(format="other")), "expected metadata format"),
    (dict(meta=lambda md: md.update(model="{not json")), "not valid JSON"),
    (dict(meta=lambda md: md.pop("model")), "'model' is missing"),
    (dict(meta=_config_edit(lambda c: c["layers"][2]["config"].update(units=17))),
     "must be float32"),
    (dict(meta=_config_edit(lambda c: c["layers"][2].update(class_name="Conv2D"))),
     "model config is invalid"),
    (dict(meta=_config_edit(lambda c: c["layers"][3]["config"].update(rate=2.0))),
     "rate must be in"),
    (dict(tensors=lambda t: t.pop("weights/3/bias")),
     "do not match the model"),
    (dict(tensors=lambda t: t.update({k: v.astype(np.float64) for k, v in t.items()
                                      if k.endswith("kernel")})), "must be float32"),
    (dict(tensors=lambda t: t.update({"optimizer/0/0": np.zeros(3, np.float32)})),
     "optimizer state"),
    (dict(meta=lambda md: md.update(compile='{"optimizer": "nope"}')),
     "compile config is invalid"),
])
def test_damaged_files_raise_a_clear_model_file_error(tmp_path, damage, msg):
    m = _trained()
    path = tmp_path / "m.safetensors"
    m.save(path)
    _rewrite(path, **damage)
    with pytest.raises(ModelFileError, match=msg):
        load_model(path)


def test_truncated_and_garbage_files_raise_model_file_error(tmp_path):
    m = _trained()
    path = tmp_path / "m.safetensors"
    m.save(path)
    raw = path.read_bytes()
    for cut in (0, 7, 100, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ModelFileError):
            load_model(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelFileError):
        load_model(path)


@pytest.mark.parametrize("name", ["m.safetensors", _needs_h5py("m.keras")])
def test_overwrite_false_refuses_an_existing_file(tmp_path, name):
    m = Sequential([Input((4,)), Dense(2)])
    m.save(tmp_path / name)
    with pytest.raises(FileExistsError):
        m.save(tmp_path / name, overwrite=False)


def test_pickle_and_deepcopy_go_through_the_model_file():
    import copy
    import pickle
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    de.set_random_seed(4)
    model = Sequential([Input((6,)), Dense(8, activation="relu"), Dropout(0.3),
                        Dense(3, activation="softmax")], name="pickled")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    clones = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model)]
    for clone in clones:
        assert clone.name == "pickled" and clone is not model
        np.testing.assert_array_equal(clone.predict(x), model.predict(x))
        assert clone.optimizer.iterations == model.optimizer.iterations
    # the optimizer state came along: one more epoch agrees bit for bit
    runs = []
    for m in clones + [model]:
        de.set_random_seed(9)
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
        runs.append(m.get_weights())
    for other in runs[:2]:
        assert all(np.array_equal(a, b) for a, b in zip(other, runs[2]))
    unbuilt = Sequential([Dense(2)])
    assert [type(l) for l in pickle.loads(pickle.dumps(unbuilt)).layers] == [Dense]
    model.quantize("int8")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x),
                                  model.predict(x))


def test_user_metadata_is_saved_in_the_same_file_and_read_back(tmp_path):
    from dropout_engine.saving import load_metadata
    m = _trained()
    path = tmp_path / "m.safetensors"
    m.save(path, metadata={"app.scaler": '{"mean": [0.5]}', "note": "é"})
    assert load_metadata(path) == {"app.scaler": '{"mean": [0.5]}', "note": "é"}
    _, meta = load_tensors(path)
    assert meta["note"] == "é" and meta["format"] == "dropout_engine.model"
    x, _ = _data()
    np.testing.assert_array_equal(load_model(path).predict(x), m.predict(x))
    m.save(path)
    assert load_metadata(path) == {}


@pytest.mark.parametrize("metadata, err", [
    ({"model": "x"}, ValueError), ({"format": "x"}, ValueError),
    ({"k": 1}, TypeError), (["k"], TypeError)])
def test_user_metadata_may_not_take_the_reserved_keys_or_be_no_str_map(tmp_path,
                                                                       metadata, err):
    m = _trained()
    path = tmp_path / "m.safetensors"
    m.save(path)
    before = path.read_bytes()
    with pytest.raises(err, match="metadata"):
        m.save(path, metadata=metadata)
    assert path.read_bytes() == before      # nothing written
