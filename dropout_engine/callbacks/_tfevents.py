"""TensorBoard event files, written with the standard library and numpy alone.

An event file is a TFRecord stream.  Each record is

    uint64 length | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload)

(little endian), where the CRC is CRC-32C (Castagnoli) masked as TensorFlow
does, ``((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32``; TensorBoard's
reader checks both CRCs and drops the rest of a file at the first bad one.
Each payload is one serialized ``tensorflow.Event`` protocol buffer; the
first record of a file carries ``file_version = "brain.Event:2"``.

Only the few protobuf messages we write are encoded here, by hand (varint
keys, length-delimited submessages), with the field numbers of TensorFlow's
event.proto / summary.proto / tensor.proto:

    Event          wall_time=1 (double), step=2 (int64), file_version=3, summary=5
    Summary        value=1 (repeated Value)
    Summary.Value  tag=1, simple_value=2 (float), histo=5, tensor=8, metadata=9
    HistogramProto min=1 max=2 num=3 sum=4 sum_squares=5 (double),
                   bucket_limit=6 bucket=7 (packed repeated double)
    SummaryMetadata plugin_data=1 {plugin_name=1, content=2}
    TensorProto    dtype=1 (DT_STRING = 7), string_val=8

Scalars are legacy ``simple_value`` summaries and histograms legacy
``HistogramProto`` ones, as tensorboardX and PyTorch write them: TensorBoard
reads both directly and converts them to its tensor form on load.
"""
import os
import socket
import struct
import threading
import time

import numpy as np

__all__ = ["EventFileWriter", "crc32c", "masked_crc32c"]


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1   # reflected Castagnoli
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data):
    """CRC-32C of ``data`` (bytes); crc32c(b"123456789") == 0xE3069283."""
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    """TFRecord's masked CRC (a CRC of data holding CRCs is weak, hence the mask)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------- protobuf encoding
def _varint(n):
    n &= (1 << 64) - 1      # int64 fields: negative values as two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _message(field, payload):
    """A length-delimited field: bytes, strings and submessages."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return _key(field, 2) + _varint(len(payload)) + payload


def _double(field, x):
    return _key(field, 1) + struct.pack("<d", x)


def _packed_doubles(field, xs):
    return _message(field, struct.pack(f"<{len(xs)}d", *xs))


def _event(step, wall_time, *, summary_value=None, file_version=None):
    out = _double(1, wall_time) + _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _message(3, file_version)
    if summary_value is not None:
        out += _message(5, _message(1, summary_value))   # Summary{value: [v]}
    return out


def _scalar_value(tag, value):
    return _message(1, tag) + _key(2, 5) + struct.pack("<f", value)


def _histogram_value(tag, values, bins):
    """A HistogramProto of the finite entries of ``values``: ``bins`` equal
    buckets from min to max (one bucket when they are equal); bucket i's
    right edge is bucket_limit[i], its left edge the previous limit (min for
    the first), which is how TensorBoard reads the legacy form."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        lo = hi = 0.0
        limits, counts = [0.0], [0.0]
    else:
        lo, hi = float(v.min()), float(v.max())
        if lo == hi:
            limits, counts = [hi], [float(v.size)]
        else:
            counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
            limits, counts = edges[1:].tolist(), counts.astype(np.float64).tolist()
    histo = (_double(1, lo) + _double(2, hi) + _double(3, float(v.size))
             + _double(4, float(v.sum())) + _double(5, float(np.dot(v, v)))
             + _packed_doubles(6, limits) + _packed_doubles(7, counts))
    return _message(1, tag) + _message(5, histo)


def _string_tensor_value(tag, plugin_name, content, data):
    """A scalar DT_STRING tensor summary owned by ``plugin_name``."""
    metadata = _message(1, _message(1, plugin_name) + _message(2, content))
    tensor = _key(1, 0) + _varint(7) + _message(8, data)
    return _message(1, tag) + _message(8, tensor) + _message(9, metadata)


# ------------------------------------------------------------------ writer
_counter = [0]
_counter_lock = threading.Lock()


def _record(payload):
    header = struct.pack("<Q", len(payload))
    return (header + struct.pack("<I", masked_crc32c(header)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


class EventFileWriter:
    """Appends events to a new event file in ``logdir`` (created if needed).

    The file is named as TensorFlow names its own
    (``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``) so that several
    writers into one directory never collide.  Writes are buffered until
    ``flush`` or ``close``.

    Example:
        >>> w = EventFileWriter("logs/train")
        >>> w.add_scalar("epoch_loss", 0.25, step=0)
        >>> w.close()
    """

    def __init__(self, logdir):
        logdir = os.fspath(logdir)
        os.makedirs(logdir, exist_ok=True)
        with _counter_lock:
            n = _counter[0]
            _counter[0] += 1
        name = (f"events.out.tfevents.{int(time.time()):010d}."
                f"{socket.gethostname()}.{os.getpid()}.{n}.v2")
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb")
        self._write(_event(0, time.time(), file_version="brain.Event:2"))
        self.flush()

    @property
    def closed(self):
        return self._file.closed

    def _write(self, payload):
        if self._file.closed:
            raise ValueError(f"event file {self.path} is closed")
        self._file.write(_record(payload))

    def add_scalar(self, tag, value, step, wall_time=None):
        """One float32 scalar ``tag`` at ``step``."""
        self._write(_event(step, time.time() if wall_time is None else wall_time,
                           summary_value=_scalar_value(tag, float(value))))

    def add_histogram(self, tag, values, step, bins=30, wall_time=None):
        """The distribution of ``values`` (any shape) at ``step``, in
        ``bins`` equal buckets (TensorFlow's default count)."""
        self._write(_event(step, time.time() if wall_time is None else wall_time,
                           summary_value=_histogram_value(tag, values, bins)))

    def add_keras_model(self, tag, model_json, step=0, wall_time=None):
        """A Keras-format model config (JSON text), which TensorBoard's graph
        plugin draws as the conceptual graph."""
        self._write(_event(step, time.time() if wall_time is None else wall_time,
                           summary_value=_string_tensor_value(
                               tag, "graph_keras_model", b"1",
                               model_json.encode("utf-8"))))

    def flush(self):
        if not self._file.closed:
            self._file.flush()

    def close(self):
        if not self._file.closed:
            self._file.close()
