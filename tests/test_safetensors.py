"""The model-file container: round trips, atomic saves, and tampered files.

Every damaged file must either load (to the same shapes) or raise
ModelFileError -- never another exception, never a crash.
"""
import json
import os
import pathlib

import numpy as np
import pytest

from dropout_engine import safetensors as st
from dropout_engine.safetensors import ModelFileError, load_tensors, save_tensors


def _sample():
    rng = np.random.default_rng(0)
    return {
        "dense/kernel": rng.standard_normal((5, 3)).astype(np.float32),
        "dense/bias": np.zeros(3, np.float32),
        "step": np.array(7, np.int64),
        "f64": rng.standard_normal(4),
        "i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 4), np.float32),
    }


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k])


def _header(path):
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _write_raw(path, header, data=b"", pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(len(text).to_bytes(8, "little") + text + data)


# ------------------------------------------------------------- round trips

def test_round_trip_keeps_values_dtypes_order_and_metadata(tmp_path):
    t = _sample()
    save_tensors(tmp_path / "m.safetensors", t, {"config": '{"a": 1}', "é": "ü"})
    got, meta = load_tensors(str(tmp_path / "m.safetensors"))
    _assert_same(t, got)
    assert meta == {"config": '{"a": 1}', "é": "ü"}


def test_loaded_arrays_are_owned_writeable_native_copies(tmp_path):
    save_tensors(tmp_path / "m", _sample())
    for a in load_tensors(tmp_path / "m")[0].values():
        assert a.flags.owndata and a.flags.writeable and a.flags.c_contiguous
        assert a.dtype.isnative


def test_non_contiguous_and_big_endian_inputs_are_stored_canonically(tmp_path):
    x = np.arange(12, dtype=">f4").reshape(3, 4)
    save_tensors(tmp_path / "m", {"t": x.T, "be": x})
    got, _ = load_tensors(tmp_path / "m")
    np.testing.assert_array_equal(got["t"], x.T)
    np.testing.assert_array_equal(got["be"], x)
    assert got["be"].dtype == np.float32


def test_layout_is_padded_contiguous_little_endian(tmp_path):
    save_tensors(tmp_path / "m", {"a": np.array([1.5], np.float32),
                                  "b": np.array([2, 3], np.int64)}, {"k": "v"})
    raw = (tmp_path / "m").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and raw[8:8 + n].rstrip(b" ").endswith(b"}")
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"k": "v"}
    assert header["a"] == {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    assert header["b"] == {"dtype": "I64", "shape": [2], "data_offsets": [4, 20]}
    assert raw[8 + n:] == (np.array([1.5], "<f4").tobytes()
                           + np.array([2, 3], "<i8").tobytes())


def test_metadata_absent_loads_as_empty_dict(tmp_path):
    save_tensors(tmp_path / "m", {"a": np.ones(2, np.float32)})
    assert "__metadata__" not in _header(tmp_path / "m")[0]
    assert load_tensors(tmp_path / "m")[1] == {}


def test_bytes_paths_work(tmp_path):
    path = os.fsencode(tmp_path / "m")
    save_tensors(path, {"a": np.ones(2, np.float32)})
    assert list(load_tensors(path)[0]) == ["a"]


def test_header_over_the_limit_is_refused_on_save(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "MAX_HEADER_SIZE", 16)
    with pytest.raises(ValueError, match="refuse more than 16"):
        save_tensors(tmp_path / "m", {"a_long_tensor_name": np.ones(1)})
    assert list(tmp_path.iterdir()) == []


def test_empty_file_of_tensors_round_trips(tmp_path):
    save_tensors(tmp_path / "m", {})
    assert load_tensors(tmp_path / "m") == ({}, {})


@pytest.mark.parametrize("tensors, metadata, err", [
    ([np.ones(2)], None, TypeError),
    ({"a": [1.0, 2.0]}, None, TypeError),
    ({"a": np.array(["x"])}, None, ValueError),
    ({"a": np.ones(2, np.complex64)}, None, ValueError),
    ({"__metadata__": np.ones(2)}, None, ValueError),
    ({1: np.ones(2)}, None, TypeError),
    ({"a": np.ones(2)}, {"k": 1}, TypeError),
    ({"a": np.ones(2)}, ["k"], TypeError),
    ({"\ud800": np.ones(2)}, None, ValueError),
])
def test_save_rejects_bad_inputs_and_writes_nothing(tmp_path, tensors, metadata, err):
    with pytest.raises(err):
        save_tensors(tmp_path / "m", tensors, metadata)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- interoperability

def test_interoperates_with_the_reference_safetensors_package(tmp_path):
    ref = pytest.importorskip(
        "safetensors.numpy",
        reason="the `safetensors` package is not installed; only the "
               "interoperability check is skipped")
    t = _sample()
    save_tensors(tmp_path / "ours", t, {"k": "v"})
    _assert_same(t, ref.load_file(str(tmp_path / "ours")))
    ref.save_file(t, str(tmp_path / "theirs"), metadata={"k": "v"})
    got, meta = load_tensors(tmp_path / "theirs")
    assert meta == {"k": "v"}
    _assert_same(t, {k: got[k] for k in t})


# ---------------------------------------------------------------- atomicity

def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("target", ["replace", "fsync"])
def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch, target):
    path = tmp_path / "m.safetensors"
    save_tensors(path, {"old": np.ones(3, np.float32)})
    before = path.read_bytes()
    monkeypatch.setattr(st.os, target, _fail)
    with pytest.raises(OSError, match="No space"):
        save_tensors(path, {"new": np.zeros(5, np.float32)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


class _FailingFile:
    """A file whose third write raises `exc` (a full disk, or Ctrl-C)."""

    def __init__(self, f, exc):
        self.f, self.exc, self.writes = f, exc, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.f.close()

    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            raise self.exc
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"),
                                 KeyboardInterrupt()])
def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, exc):
    path = tmp_path / "m"
    save_tensors(path, {"old": np.ones(3, np.float32)})
    before = path.read_bytes()
    real = os.fdopen
    monkeypatch.setattr(st.os, "fdopen",
                        lambda fd, mode: _FailingFile(real(fd, mode), exc))
    with pytest.raises(type(exc)):
        save_tensors(path, {"a": np.ones(1000, np.float32), "b": np.ones(2)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_replaces_existing_file_and_keeps_umask_mode(tmp_path):
    path = tmp_path / "m"
    save_tensors(path, {"a": np.ones(3, np.float32)})
    save_tensors(path, {"b": np.ones(2, np.int32)})
    assert list(load_tensors(path)[0]) == ["b"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------ damaged files

@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small"
    save_tensors(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                        "b": np.array([1, 2], np.int64)}, {"name": "x"})
    return path


def _shapes(path):
    return {k: v.shape for k, v in load_tensors(path)[0].items()}


def test_every_truncation_raises_model_file_error(small_file, tmp_path):
    raw = small_file.read_bytes()
    bad = tmp_path / "bad"
    for n in range(len(raw)):
        bad.write_bytes(raw[:n])
        with pytest.raises(ModelFileError, match="bad"):
            load_tensors(bad)


def test_appended_bytes_raise_model_file_error(small_file):
    small_file.write_bytes(small_file.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="trailing"):
        load_tensors(small_file)


def test_single_bit_flips_load_or_raise_model_file_error(small_file, tmp_path):
    raw = small_file.read_bytes()
    expected = _shapes(small_file)
    n = int.from_bytes(raw[:8], "little")
    rng = np.random.default_rng(1)
    # Every bit of the length field, 400 in the JSON, 200 in the data.
    def sample(lo, hi, k):
        return [(int(i), int(b)) for i, b in zip(rng.integers(lo, hi, k),
                                                 rng.integers(0, 8, k))]
    positions = [(i, b) for i in range(8) for b in range(8)]
    positions += sample(8, 8 + n, 400) + sample(8 + n, len(raw), 200)
    bad = tmp_path / "bad"
    outcomes = {"loaded": 0, "refused": 0}
    for i, bit in positions:
        flipped = bytearray(raw)
        flipped[i] ^= 1 << bit
        bad.write_bytes(bytes(flipped))
        try:
            shapes = _shapes(bad)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        assert sorted(shapes.values()) == sorted(expected.values()), (i, bit)
        outcomes["loaded"] += 1
    assert outcomes["refused"] > 0 and outcomes["loaded"] >= 200


def test_huge_header_length_is_refused_without_allocating(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes((2 ** 62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFileError, match="header length"):
        load_tensors(bad)


def test_header_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    save_tensors(tmp_path / "m", {"a_long_tensor_name": np.ones(1)})
    monkeypatch.setattr(st, "MAX_HEADER_SIZE", 16)
    with pytest.raises(ModelFileError, match="limit 16"):
        load_tensors(tmp_path / "m")


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize("header, data, match", [
    ({"a": _entry(offsets=(0, 16))}, bytes(8), "data_offsets"),
    ({"a": _entry(offsets=(-8, 0))}, bytes(8), "data_offsets"),
    ({"a": _entry(offsets=(8, 0))}, bytes(8), "data_offsets"),
    ({"a": _entry(offsets=(0, 8.0))}, bytes(8), "data_offsets"),
    ({"a": _entry(offsets=(0,))}, bytes(8), "data_offsets"),
    ({"a": _entry(), "b": _entry(offsets=(4, 12))}, bytes(16), "overlaps"),
    ({"a": _entry(), "b": _entry()}, bytes(8), "overlaps"),
    ({"a": _entry(offsets=(8, 16))}, bytes(16), "unaccounted"),
    ({"a": _entry()}, bytes(12), "trailing"),
    ({"a": _entry(dtype="F33")}, bytes(8), "dtype 'F33'"),
    ({"a": _entry(dtype="F8_E4M3", shape=(8,))}, bytes(8), "dtype 'F8_E4M3'"),
    ({"a": _entry(dtype=4)}, bytes(8), "dtype 4"),
    ({"a": _entry(shape=(3,))}, bytes(8), "needs 12 bytes"),
    ({"a": _entry(shape=(-2,))}, bytes(8), "non-negative"),
    ({"a": _entry(shape=(2.0,))}, bytes(8), "non-negative"),
    ({"a": _entry(shape=(True, 2))}, bytes(8), "non-negative"),
    ({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, bytes(8), "shape"),
    ({"a": _entry(shape=(0, 2 ** 40, 2 ** 40), offsets=(0, 0))}, b"", "cannot represent"),
    ({"a": _entry(shape=(0,) * 40, offsets=(0, 0))}, b"", "cannot represent"),
    ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), "exactly the keys"),
    ({"a": dict(_entry(), extra=1)}, bytes(8), "exactly the keys"),
    ({"a": [1, 2]}, bytes(8), "exactly the keys"),
    ({"__metadata__": {"k": 1}}, b"", "__metadata__"),
    ({"__metadata__": ["k"]}, b"", "__metadata__"),
    ({"a": _entry(dtype="BOOL", shape=(2,), offsets=(0, 2))}, b"\x01\x02", "BOOL"),
])
def test_inconsistent_headers_raise_model_file_error(tmp_path, header, data, match):
    bad = tmp_path / "bad"
    _write_raw(bad, header, data)
    with pytest.raises(ModelFileError, match=match):
        load_tensors(bad)


@pytest.mark.parametrize("text, match", [
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"{'a': 1}", "not valid JSON"),
    (b'{"a": 1} x', "not valid JSON"),
    (b'{"__metadata__": {"k": NaN}}', "NaN"),
    (b'{"__metadata__": {}, "__metadata__": {}}', "repeats"),
    pytest.param(b"[" * 100000 + b"]" * 100000, "not valid JSON|JSON object",
                 id="deep-nesting"),
    pytest.param(b'{"a": {"dtype": "F32", "shape": [1' + b"0" * 5000 + b']}}',
                 "not valid JSON", id="5000-digit-int"),
])
def test_malformed_json_raises_model_file_error(tmp_path, text, match):
    bad = tmp_path / "bad"
    bad.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(ModelFileError, match=match):
        load_tensors(bad)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_tensors(tmp_path / "nope")
