"""The model-file container: the safetensors layout, written and read with numpy.

Layout (https://github.com/huggingface/safetensors, format section)::

    [8 bytes]  N, the header length, unsigned 64-bit little-endian
    [N bytes]  a UTF-8 JSON object, padded with spaces to a multiple of 8:
               {"__metadata__": {str: str},
                name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
                ...}
    [rest]     the raw little-endian tensor bytes; offsets are relative to
               the start of this region, tensors are contiguous, no gaps.

Why this format: it is a plain byte layout a C reader can load with a few
lines, other tools (the `safetensors` package, Hugging Face) read it, and
nothing in it is ever executed -- there is no pickle anywhere on this path.

Writing is atomic: the bytes go to a temporary file in the same directory,
which is flushed, fsynced and then renamed over the target (os.replace), so
a crash or a full disk leaves either the old file or the new one, never half
of one.  Tensors are laid out in the dict's order (so a round trip keeps the
order); the 8-aligned header keeps every float32 tensor 4-aligned for a C
reader that maps the file.

Reading trusts nothing: the header length, the JSON, every dtype, shape and
offset are checked against each other and against the file size before a
single tensor byte is read, and every violation raises `ModelFileError`
naming the file, what was expected and what came.
"""
import json
import math
import os
import secrets
import sys

import numpy as np

__all__ = ["ModelFileError", "save_tensors", "load_tensors", "DTYPES", "Bfloat16"]

# safetensors dtype names -> little-endian numpy dtypes.  BF16 has no numpy
# dtype: it is written from a ``Bfloat16`` and read back widened to float32
# (exact).  The FP8 types are refused with a clear message.
DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"), "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
_NAME_OF = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items()}
_BF16 = "BF16"
# What a file's tensors are read as (BF16's bits as uint16, then widened).
_READ = dict(DTYPES, **{_BF16: np.dtype("<u2")})


class Bfloat16:
    """A tensor to store as safetensors "BF16": ``bits``, the bfloat16
    values as a uint16 array (each float32's top half; see
    ``quantization.Bf16Kernel``).  ``load_tensors`` gives such a tensor back
    as float32, the exact widening of the bits."""

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise TypeError(f"Bfloat16 takes the bits as uint16, got {bits.dtype}")
        self.bits = bits

# The reference implementation refuses headers above 100 MB; so do we, which
# also bounds what a tampered length field can make us allocate.
MAX_HEADER_SIZE = 100_000_000
_META = "__metadata__"
_TENSOR_KEYS = {"dtype", "shape", "data_offsets"}
_MAX_NDIM = 32  # numpy 1.x's limit (2.x allows 64)


class ModelFileError(ValueError):
    """A model file is truncated, tampered with or not a safetensors file."""


# ------------------------------------------------------------------ writing

def _check_text(what, s):
    if not isinstance(s, str):
        raise TypeError(f"{what} must be a str, got {type(s).__name__}")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{what} {s!r} is not valid UTF-8 text: {e}") from None


def _prepare(tensors, metadata):
    """Validate the inputs; return (header bytes, little-endian arrays)."""
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict of name -> numpy array, "
                        f"got {type(tensors).__name__}")
    header, arrays, offset = {}, [], 0
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict of str -> str or None, "
                            f"got {type(metadata).__name__}")
        for k, v in metadata.items():
            _check_text("metadata key", k)
            _check_text(f"metadata[{k!r}]", v)
        header[_META] = dict(metadata)
    for name, arr in tensors.items():
        _check_text("tensor name", name)
        if name == _META:
            raise ValueError(f"tensor name {_META!r} is reserved for the metadata")
        bf16 = isinstance(arr, Bfloat16)
        if bf16:
            arr = arr.bits
        if not isinstance(arr, (np.ndarray, np.generic)):
            raise TypeError(f"tensor {name!r} must be a numpy array or a Bfloat16, "
                            f"got {type(arr).__name__}")
        dt = arr.dtype
        key = _BF16 if bf16 else _NAME_OF.get((dt.kind, dt.itemsize))
        if key is None:
            raise ValueError(f"tensor {name!r} has dtype {dt}; a model file holds "
                             f"{', '.join(str(d) for d in DTYPES.values())} "
                             "(and bfloat16 through Bfloat16)")
        # Not ascontiguousarray: that turns a 0-d array into shape (1,).
        le = np.asarray(arr, dtype=_READ[key], order="C")
        header[name] = {"dtype": key, "shape": list(le.shape),
                        "data_offsets": [offset, offset + le.nbytes]}
        offset += le.nbytes
        arrays.append(le)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"))
    raw = text.encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    if len(raw) > MAX_HEADER_SIZE:
        raise ValueError(f"the header would take {len(raw)} bytes; readers "
                         f"refuse more than {MAX_HEADER_SIZE}")
    return raw, arrays


def _fsync_dir(dirname):
    # Makes the rename itself durable.  Windows cannot open a directory;
    # there the rename is as durable as the OS makes it.
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(dirname, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_temp(path):
    """Create a new, empty temporary file next to `path`; return (fd, name).

    Not tempfile.mkstemp: that creates mode 0600, and the finished model
    file should get the usual 0666 & ~umask like any other file we write.
    """
    dirname, base = os.path.split(path)
    for _ in range(100):
        tmp = os.path.join(dirname, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"could not create a temporary file next to {path!r}")


def save_tensors(path, tensors, metadata=None):
    """Write `tensors` (and a str -> str `metadata` map) to `path`, atomically.

    Args:
        path: str, bytes or os.PathLike; its directory must exist.
        tensors: dict of name -> numpy array of dtype bool, (u)int8/16/32/64,
            float16/32/64, or a ``Bfloat16`` (stored as "BF16").  Any memory
            order or byte order; stored C-order little-endian.
        metadata: optional dict of str -> str, stored as `__metadata__`.

    On any failure the temporary file is removed and a previous file at
    `path` is left untouched.

    Example:
        >>> save_tensors("w.safetensors", {"w": np.ones((2, 3), np.float32)},
        ...              {"format": "np"})
    """
    header, arrays = _prepare(tensors, metadata)

    def write(f):
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for a in arrays:
            f.write(a.reshape(-1).view(np.uint8))
    write_atomically(path, write)


def write_atomically(path, write, **open_kwargs):
    """Call ``write(f)`` on a new temporary file next to `path` (opened with
    ``os.fdopen(fd, "wb", **open_kwargs)`` unless `open_kwargs` give another
    mode), then flush, fsync and rename it over `path`.  On any failure,
    Ctrl-C included, the temporary file is removed and `path` untouched."""
    path = os.fsdecode(path)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, **{"mode": "wb", **open_kwargs}) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(os.path.dirname(path) or os.curdir)


# ------------------------------------------------------------------ reading

class _Reader:
    """Validation of one file; `fail` builds the error with the path in it."""

    def __init__(self, path):
        self.path = path

    def fail(self, msg):
        return ModelFileError(f"{self.path!r} is not a valid model file: {msg}")

    def parse_json(self, raw):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(f"the header is not UTF-8 text ({e})") from None

        def no_duplicates(pairs):
            obj = {}
            for k, v in pairs:
                if k in obj:
                    raise self.fail(f"the header repeats the key {k!r}")
                obj[k] = v
            return obj

        def no_constant(name):
            raise self.fail(f"the header contains {name}, which JSON does not allow")

        try:
            obj = json.loads(text, object_pairs_hook=no_duplicates,
                             parse_constant=no_constant)
        except (json.JSONDecodeError, RecursionError, ValueError) as e:
            if isinstance(e, ModelFileError):
                raise
            raise self.fail(f"the header is not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise self.fail(f"the header must be a JSON object, "
                            f"got a JSON {type(obj).__name__}")
        return obj

    def metadata(self, obj):
        meta = obj.pop(_META, {})
        if not isinstance(meta, dict) or not all(
                isinstance(v, str) for v in meta.values()):
            raise self.fail(f"{_META} must map str to str, got {meta!r:.200}")
        return meta

    def entry(self, name, info, data_size):
        """Check one tensor entry; return (dtype, shape, begin, end)."""
        where = f"tensor {name!r}"
        if not isinstance(info, dict) or set(info) != _TENSOR_KEYS:
            raise self.fail(f"{where} must be an object with exactly the keys "
                            f"{sorted(_TENSOR_KEYS)}, got {info!r:.200}")
        dtype = _READ.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            raise self.fail(f"{where} has dtype {info['dtype']!r:.40}; expected "
                            f"one of {', '.join(_READ)}")
        shape, offs = info["shape"], info["data_offsets"]
        if not (isinstance(shape, list) and all(
                type(d) is int and d >= 0 for d in shape)):
            raise self.fail(f"{where} has shape {shape!r:.200}; expected a list "
                            f"of non-negative integers")
        if not (isinstance(offs, list) and len(offs) == 2
                and all(type(o) is int for o in offs)
                and 0 <= offs[0] <= offs[1] <= data_size):
            raise self.fail(f"{where} has data_offsets {offs!r:.200}; expected "
                            f"[begin, end] with 0 <= begin <= end <= {data_size} "
                            f"(the size of the data region)")
        # numpy refuses shapes whose nonzero extents overflow intp even when
        # a zero makes the array empty; refuse them here, with a message.
        if len(shape) > _MAX_NDIM or math.prod(
                max(d, 1) for d in shape) * dtype.itemsize > sys.maxsize:
            raise self.fail(f"{where} has shape {shape!r:.200}, which numpy "
                            f"cannot represent (at most {_MAX_NDIM} dimensions "
                            f"and {sys.maxsize} bytes)")
        need = math.prod(shape) * dtype.itemsize
        if offs[1] - offs[0] != need:
            raise self.fail(f"{where} has shape {shape} of {info['dtype']}, which "
                            f"needs {need} bytes, but its offsets {offs} span "
                            f"{offs[1] - offs[0]}")
        return dtype, tuple(shape), offs[0], offs[1]

    def layout(self, entries, data_size):
        """The tensors must tile [0, data_size) exactly: no overlap, no gap."""
        pos = 0
        for name, (_, _, b, e) in sorted(entries.items(),
                                         key=lambda kv: kv[1][2:]):
            if b != pos:
                what = "overlaps the previous tensor" if b < pos else \
                    f"leaves {b - pos} bytes unaccounted for before it"
                raise self.fail(f"tensor {name!r} starts at {b} and {what} "
                                f"(which ends at {pos})")
            pos = e
        if pos != data_size:
            raise self.fail(f"the tensors cover {pos} bytes but the data region "
                            f"holds {data_size} (trailing bytes)")


def _read_exact(f, n, reader, what):
    buf = f.read(n)
    if len(buf) != n:
        raise reader.fail(f"the file ended while reading {what} "
                          f"(expected {n} bytes, got {len(buf)})")
    return buf


def load_tensors(path):
    """Read a model file written by `save_tensors` (or any safetensors writer).

    Args:
        path: str, bytes or os.PathLike.

    Returns:
        (tensors, metadata): a dict of name -> numpy array in header order
        (owned, writeable copies in native byte order, not memory maps; a
        "BF16" tensor widened to float32, exactly) and the `__metadata__`
        dict of str -> str ({} when absent).

    Raises:
        ModelFileError: the file is truncated, tampered with, or not in the
            safetensors layout; the message says what was expected and found.
        OSError: the file cannot be opened or read.
    """
    path = os.fsdecode(path)
    reader = _Reader(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise reader.fail(f"it holds {size} bytes, fewer than the 8-byte "
                              f"header length")
        n = int.from_bytes(_read_exact(f, 8, reader, "the header length"), "little")
        if n > min(size - 8, MAX_HEADER_SIZE):
            raise reader.fail(f"the header length field says {n} bytes, but at "
                              f"most {min(size - 8, MAX_HEADER_SIZE)} are possible "
                              f"(file size {size}, limit {MAX_HEADER_SIZE})")
        obj = reader.parse_json(_read_exact(f, n, reader, "the header"))
        meta = reader.metadata(obj)
        data_size = size - 8 - n
        entries = {name: reader.entry(name, info, data_size)
                   for name, info in obj.items()}
        bf16 = {name for name, info in obj.items() if info["dtype"] == _BF16}
        reader.layout(entries, data_size)
        tensors = {}
        for name, (dtype, shape, b, e) in entries.items():
            out = np.empty(shape, dtype=dtype)
            f.seek(8 + n + b)
            got = f.readinto(out.reshape(-1).view(np.uint8)) if e > b else 0
            if got != e - b:
                raise reader.fail(f"the file ended inside tensor {name!r} "
                                  f"(it changed while being read?)")
            if dtype == DTYPES["BOOL"] and out.view(np.uint8).max(initial=0) > 1:
                raise reader.fail(f"BOOL tensor {name!r} holds bytes other than 0/1")
            tensors[name] = out
    if sys.byteorder == "big":
        tensors = {k: v.astype(v.dtype.newbyteorder("="))
                   for k, v in tensors.items()}
    for name in bf16:    # bfloat16 is float32's top half
        tensors[name] = (tensors[name].astype(np.uint32) << 16).view(np.float32)
    return tensors, meta
