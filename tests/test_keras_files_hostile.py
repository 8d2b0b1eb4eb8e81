"""Keras files that lie, and the suffix rule (issue 17): a damaged or hostile
``.keras`` / ``.weights.h5`` file raises ModelFileError naming the file and
what was wrong, never another exception, and nothing in it is executed;
save, save_weights and ModelCheckpoint write the format their suffix names
and refuse the others; loading goes by content.  Needs h5py, not Keras."""
import io
import json
import sys
import warnings
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from dropout_engine import callbacks, seeding  # noqa: E402
from dropout_engine.layers import Dense, Dropout, Input, PReLU  # noqa: E402
from dropout_engine.model import Sequential  # noqa: E402
from dropout_engine.safetensors import ModelFileError  # noqa: E402
from dropout_engine.saving import load_model  # noqa: E402

WEIGHTS = "model.weights.h5"


def _model():
    seeding.set_random_seed(2)
    m = Sequential([Input((5,)), Dense(8, activation="relu"), Dropout(0.3, seed=1),
                    Dense(6), PReLU(), Dense(3, activation="softmax")])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 5)).astype(np.float32)
    m.fit(x, np.eye(3)[np.arange(32) % 3], epochs=1, batch_size=8, verbose=0)
    return m, x


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m, x = _model()
    path = tmp_path_factory.mktemp("keras") / "m.keras"
    m.save(path)
    return m, x, path.read_bytes()


def _members(raw):
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """Write ``members`` (a dict, or (name, bytes) pairs to repeat a name)."""
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # zipfile on a duplicate name
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in items:
                z.writestr(name, data)
    return path


def _edit_h5(data, edit):
    bio = io.BytesIO(data)
    with h5py.File(bio, "r+") as f:
        edit(f)
    return bio.getvalue()


def _refused(path, match, **kw):
    with pytest.raises(ModelFileError, match=match) as e:
        load_model(path, **kw)
    assert path.name in str(e.value)


# ------------------------------------------------------------ damage

def test_truncations_are_refused(saved, tmp_path):
    _, _, raw = saved
    rng = np.random.default_rng(1)
    cuts = set(range(64)) | set(rng.integers(0, len(raw), 200).tolist()) | set(
        range(len(raw) - 64, len(raw)))
    bad = tmp_path / "cut.keras"
    for n in sorted(cuts):
        bad.write_bytes(raw[:n])
        with pytest.raises(ModelFileError, match="cut.keras"):
            load_model(bad)


def _flips(saved, data, seed, write, bad):
    """Load ``bad`` after ``write(flipped data)`` for 300 single-bit flips of
    ``data``: each is refused naming the file, or loads whole and predicts.
    Returns (refused, loaded)."""
    m, x, _ = saved
    shapes = [w.shape for w in m.get_weights()]
    refused = loaded = 0
    for bit in np.random.default_rng(seed).integers(0, 8 * len(data), 300).tolist():
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        write(bytes(flipped))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # an optimizer count flipped
                got = load_model(bad)
        except ModelFileError as e:
            assert bad.name in str(e)
            refused += 1
            continue
        loaded += 1
        assert [w.shape for w in got.get_weights()] == shapes
        got.predict(x[:4])
    return refused, loaded


def test_bit_flips_in_the_archive_load_whole_or_are_refused(saved, tmp_path):
    bad = tmp_path / "flip.keras"
    refused, _ = _flips(saved, saved[2], 2, bad.write_bytes, bad)
    assert refused >= 200       # the CRCs catch a flip in any member's bytes


def test_bit_flips_inside_the_weights_file_load_whole_or_are_refused(saved, tmp_path):
    """Past the zip's CRC (re-zipped after the flip): HDF5's own structure."""
    members = _members(saved[2])
    bad = tmp_path / "h5flip.keras"
    _, loaded = _flips(saved, members[WEIGHTS], 3,
                       lambda h5: _zip(bad, dict(members, **{WEIGHTS: h5})), bad)
    assert loaded >= 100        # flips in the weights' values


_JUNK = [None, -1, 0, 2 ** 70, "x", "relu", [], {}, 1e308, float("nan"), True,
         [None, 5], {"class_name": "Dense", "config": {}}, 0.5]


def _paths(obj, path=()):
    yield path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, path + (k,))


def test_mutated_configs_load_whole_or_are_refused(saved, tmp_path):
    """Values anywhere in config.json (layers, compile config, optimizer)
    replaced by junk or removed: ModelFileError or a working model."""
    m, x, raw = saved
    _mutate_and_load(raw, x, tmp_path)


def _functional():
    from dropout_engine.layers import Add, Concatenate, Embedding, GlobalAveragePooling1D
    from dropout_engine.models import Model
    ids = Input((6,), dtype="int32", name="ids")
    e = GlobalAveragePooling1D()(Embedding(9, 4, mask_zero=True)(ids))
    h = Concatenate()([Dense(5, activation="relu")(e), Dropout(0.2, seed=2)(e)])
    m = Model(ids, Dense(3, activation="softmax")(Add()([Dense(3)(h), Dense(3)(e)])))
    m.compile("adam", "categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 9, (16, 6))
    m.fit(x, np.eye(3)[np.arange(16) % 3], epochs=1, batch_size=8, verbose=0)
    return m, x


def test_mutated_functional_configs_load_whole_or_are_refused(tmp_path):
    m, x = _functional()
    m.save(tmp_path / "f.keras")
    _mutate_and_load((tmp_path / "f.keras").read_bytes(), x, tmp_path)


def _mutate_and_load(raw, x, tmp_path):
    members = _members(raw)
    config = json.loads(members["config.json"])
    paths = [p for p in _paths(config) if p]
    rng = np.random.default_rng(4)
    bad = tmp_path / "mut.keras"
    refused = 0
    for _ in range(300):
        c = json.loads(members["config.json"])
        for _ in range(int(rng.integers(1, 4))):
            *parent, key = paths[int(rng.integers(len(paths)))]
            node = c
            try:
                for k in parent:
                    node = node[k]
                if isinstance(node, dict) and rng.random() < 0.2:
                    del node[key]
                else:
                    node[key] = _JUNK[int(rng.integers(len(_JUNK)))]
            except (KeyError, IndexError, TypeError):
                pass            # an earlier mutation removed the path
        _zip(bad, dict(members, **{"config.json": json.dumps(c)}))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load_model(bad).predict(x[:2])
        except ModelFileError as e:
            assert "mut.keras" in str(e)
            refused += 1
    assert refused >= 150


def test_a_refused_weights_file_leaves_the_model_as_it_was(saved, tmp_path):
    m, x, raw = saved
    h5 = _edit_h5(_members(raw)[WEIGHTS],
                  lambda f: _replace(f, "optimizer/vars/5", np.zeros(2, np.float32)))
    path = tmp_path / "bad.weights.h5"
    path.write_bytes(h5)
    before = m.get_weights(), [s.copy() for s in m.optimizer.variables()]
    iterations = m.optimizer.iterations
    m.set_weights([w + 1 for w in m.get_weights()])
    changed = m.get_weights()
    with pytest.raises(ModelFileError, match="optimizer 'adam' variable 5"):
        m.load_weights(path)
    for a, b in zip(m.get_weights(), changed):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.optimizer.variables(), before[1]):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == iterations
    m.set_weights(before[0])


# ----------------------------------------------------- hostile archives

@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil", "C:evil",
                                  "dir\\evil"])
def test_member_names_leaving_the_archive_are_refused(saved, tmp_path, name):
    members = dict(_members(saved[2]), **{name: b"x"})
    _refused(_zip(tmp_path / "t.keras", members), "unsafe")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_two_members_of_one_name_are_refused(saved, tmp_path):
    members = list(_members(saved[2]).items()) + [("config.json", b"{}")]
    _refused(_zip(tmp_path / "dup.keras", members), "two members of the same name")


@pytest.mark.parametrize("missing", ["config.json", WEIGHTS])
def test_missing_members_are_named(saved, tmp_path, missing):
    members = _members(saved[2])
    del members[missing]
    _refused(_zip(tmp_path / "miss.keras", members), f"has no {missing}")


def test_a_weights_member_larger_than_the_model_can_need_is_not_read(saved, tmp_path):
    # 64 MiB of zeros deflate to ~64 KB: a decompression bomb.
    members = dict(_members(saved[2]), **{WEIGHTS: bytes(64 << 20)})
    path = _zip(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    _refused(path, f"{WEIGHTS} declares 67108864 bytes, more than")


def test_a_weights_file_larger_than_the_model_can_need_is_not_read(saved, tmp_path):
    m = _model()[0]
    path = tmp_path / "big.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(8 << 20))
    with pytest.raises(ModelFileError, match="more than"):
        m.load_weights(path)


@pytest.mark.parametrize("config,match", [
    (b"{not json", "not valid JSON"),
    (b'{"a": 1, "a": 2}', "repeats a key"),
    (json.dumps({"class_name": "Functional", "config": {}}).encode(),
     "the Functional config must be an object with a 'layers' list"),
    (json.dumps({"class_name": "Subclassed", "config": {}}).encode(),
     "'Subclassed' is not supported"),
    (json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Lambda", "config": {"name": "evil", "function": {
            "class_name": "__lambda__", "config": {"code": "import os"}}}}]}}).encode(),
     r"layer 'evil' \(Lambda\) is not supported"),
    (json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "registered_name": "Custom>Dense",
         "config": {"name": "d", "units": 2}}]}}).encode(),
     r"layer 'd' \(Dense\) is not supported"),
    (json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [None, 5]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_initializer": {
            "module": "evil", "class_name": "GlorotUniform", "config": {}}}}]}}).encode(),
     "custom object"),
    (json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [None, 5]}},
        {"class_name": "Dense", "config": {"name": "d", "units": -2}}]}}).encode(),
     r"layer 'd' \(Dense\): .*units must be a positive int"),
])
def test_bad_configs_are_refused_and_nothing_runs(saved, tmp_path, config, match):
    members = dict(_members(saved[2]), **{"config.json": config})
    _refused(_zip(tmp_path / "cfg.keras", members), match)


def _h5_case(saved, tmp_path, edit):
    members = _members(saved[2])
    members[WEIGHTS] = _edit_h5(members[WEIGHTS], edit)
    return _zip(tmp_path / "h5.keras", members)


def _replace(f, path, value):
    del f[path]
    f[path] = value


@pytest.mark.parametrize("edit,match", [
    (lambda f: _replace(f, "layers/dense/vars/0", np.zeros((8, 5), np.float32)),
     r"layer '\w+' \(layers/dense\) variable 0 must be float32 \(5, 8\), got float32 "
     r"\(8, 5\)"),
    (lambda f: _replace(f, "layers/dense/vars/1", np.zeros(8, np.float64)),
     "variable 1 must be float32 .8,., got float64"),
    (lambda f: f.__delitem__("layers/dense_1/vars/1"), "holds 1 variables, the model's layer has 2"),
    (lambda f: f.__delitem__("layers/p_re_lu"), "holds 0 variables"),
    (lambda f: f.create_group("layers/dense_9/vars").create_dataset("0", data=[1.0]),
     r"layers the model does not have: \['dense_9'\]"),
    (lambda f: _replace(f, "layers/dense/vars/0", h5py.SoftLink("/layers/dense_1/vars/0")),
     "missing .or a link."),
    (lambda f: _replace(f, "layers/dense", h5py.ExternalLink("other.h5", "/")),
     "ExternalLink; only hard links"),
    (lambda f: _replace(f, "optimizer/vars/3", np.zeros(3, np.float32)),
     r"optimizer 'adam' variable 3 must be float32 \(5, 8\)"),
    (lambda f: _replace(f, "optimizer/vars/0", np.float32(1.5)), "iterations"),
])
def test_weights_that_do_not_match_the_model_are_refused(saved, tmp_path, edit, match):
    _refused(_h5_case(saved, tmp_path, edit), match)


def test_an_external_dataset_is_refused(saved, tmp_path):
    def edit(f):
        del f["layers/dense/vars/1"]
        f["layers/dense/vars"].create_dataset("1", (8,), np.float32,
                                              external=[(str(tmp_path / "x.bin"), 0, 32)])
    (tmp_path / "x.bin").write_bytes(bytes(32))
    _refused(_h5_case(saved, tmp_path, edit), "must be a plain dataset")


def test_a_different_optimizer_state_count_is_skipped_with_keras_warning(saved, tmp_path):
    path = _h5_case(saved, tmp_path, lambda f: f.__delitem__("optimizer/vars/13"))
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer 'adam'"):
        m = load_model(path)
    assert m.optimizer.iterations == 0
    np.testing.assert_array_equal(m.get_weights()[0], saved[0].get_weights()[0])


def test_weights_that_are_not_hdf5_are_refused(saved, tmp_path):
    members = dict(_members(saved[2]), **{WEIGHTS: b"junk" * 100})
    _refused(_zip(tmp_path / "junk.keras", members), "not a valid HDF5 file")


def test_legacy_keras2_hdf5_files_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = "{}"
        f.attrs["layer_names"] = [b"dense"]
    _refused(path, "HDF5 file: a Keras 2 legacy '.h5' model")
    m = Sequential([Input((5,)), Dense(2)])
    with pytest.raises(ModelFileError, match="Keras 2 .legacy HDF5. weights file"):
        m.load_weights(path)


def test_load_weights_needs_a_built_model(saved, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(saved[2])
    with pytest.raises(ValueError, match="must be built"):
        Sequential([Dense(2)]).load_weights(path)


# ------------------------------------------------------- the suffix rule

@pytest.mark.parametrize("name,match", [
    ("m", r"name the file '\.keras' .* or '\.safetensors'"),
    ("m.h5", "Keras 2's HDF5 format"),
    ("m.hdf5", "Keras 2's HDF5 format"),
    ("m.weights.h5", r"weights-only file: call save_weights\(\)"),
    ("m.safetensors.bak", r"save\(\) writes the format its suffix names"),
])
def test_save_refuses_suffixes_it_does_not_write(tmp_path, name, match):
    m = Sequential([Input((4,)), Dense(2)])
    with pytest.raises(ValueError, match=match):
        m.save(tmp_path / name)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,match", [
    ("w", r"'\.weights\.h5' \(Keras 3's weights file\) or '\.safetensors'"),
    ("w.keras", r"holds a whole model: call save\(\)"),
    ("w.h5", "Keras 2's HDF5 format"),
])
def test_save_weights_refuses_suffixes_it_does_not_write(tmp_path, name, match):
    m = Sequential([Input((4,)), Dense(2)])
    with pytest.raises(ValueError, match=match):
        m.save_weights(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_model_checkpoint_refuses_a_bad_suffix_when_made():
    with pytest.raises(ValueError, match=r"save\(\) writes"):
        callbacks.ModelCheckpoint("ckpt-{epoch}")
    with pytest.raises(ValueError, match=r"save_weights\(\) writes"):
        callbacks.ModelCheckpoint("ckpt.keras", save_weights_only=True)
    callbacks.ModelCheckpoint("ckpt-{epoch}.safetensors")
    callbacks.ModelCheckpoint("w.weights.h5", save_weights_only=True)


def test_each_suffix_writes_its_format_and_loading_goes_by_content(tmp_path):
    m, x = _model()
    m.save(tmp_path / "m.keras")
    m.save(tmp_path / "m.safetensors")
    m.save_weights(tmp_path / "w.weights.h5")
    m.save_weights(tmp_path / "w.safetensors")
    assert (tmp_path / "m.keras").read_bytes()[:4] == b"PK\x03\x04"
    assert (tmp_path / "w.weights.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert (tmp_path / "m.safetensors").read_bytes()[8:9] == b"{"
    # Renamed files still load: the reader is picked by the first bytes.
    (tmp_path / "m.keras").rename(tmp_path / "k.safetensors")
    (tmp_path / "m.safetensors").rename(tmp_path / "s.keras")
    for name in ("k.safetensors", "s.keras"):
        np.testing.assert_array_equal(load_model(tmp_path / name).predict(x), m.predict(x))
    for name in ("w.weights.h5", "w.safetensors", "k.safetensors"):
        other = Sequential([Input((5,)), Dense(8, activation="relu"), Dropout(0.3),
                            Dense(6), PReLU(), Dense(3, activation="softmax")])
        other.load_weights(tmp_path / name)
        np.testing.assert_array_equal(other.predict(x), m.predict(x))


def test_without_h5py_keras_files_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    m = Sequential([Input((4,)), Dense(2)])
    with pytest.raises(ImportError, match=r"dropout_engine\[keras-files\]"):
        m.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    m.save(tmp_path / "m.safetensors")         # ours needs nothing more
    load_model(tmp_path / "m.safetensors")
