"""Weight quantization: Keras 3's ``model.quantize("int8")``, and ours,
``model.quantize("bfloat16")`` (``Bf16Kernel`` below).

What a quantized Dense computes (keras/src/layers/core/dense.py,
``_int8_call``; keras.quantizers.abs_max_quantize), all in float32:

  - the kernel, once, per output column:
        kernel_scale = 127 / (max_k |w[k, j]| + 1e-7)
        kernel = clip(round(w * kernel_scale), -127, 127) as int8
  - each input row, at every call, the same with the row's max:
        s = 127 / (max |x| + 1e-7),  q = clip(round(x * s), -127, 127)
  - y = act(float32(q @ kernel) / (kernel_scale * s) + bias), the matmul
    summed exactly in int32; round is half-to-even (numpy's).

The C engine runs the int8 matmul with the kernel packed in panels of 64
output columns (see _csrc/frame/dispatch.h); ``Int8Kernel`` holds the Keras-shaped
arrays and that packed copy, made here once.

"bfloat16" (ours; Keras has no weight-only bfloat16 mode) rounds each Dense
kernel to bfloat16 once (round to nearest even, the engine's frame/bf16.h)
and keeps the 16-bit values; predict widens them to float32 in registers
(exact) and computes in float32 with float32 activations, bias and norms.
So a prediction is float32 math on the rounded weights: bit for bit the
float32 predict of a model whose kernels were set to those values, with
half the weight bytes to read.
"""
import numpy as np

from . import _net

#: Keras 3's quantization modes; "int8" is implemented here, plus ours.
KERAS_MODES = ("int8", "float8", "int4", "gptq", "awq")
SUPPORTED_MODES = ("int8", "bfloat16")
EPSILON = 1e-7          # keras.backend.epsilon()
PANEL = 64              # output columns per packed panel (DE_Q_PANEL)
MAX_INPUTS = 1 << 16    # keeps the engine's int32 sums exact


def check_mode(mode):
    """ValueError unless ``mode`` is a mode we implement."""
    if mode in SUPPORTED_MODES:
        return
    if isinstance(mode, str) and mode in KERAS_MODES:
        raise ValueError(f"Quantization mode {mode!r} is not supported by "
                         f"dropout_engine; supported: {SUPPORTED_MODES}")
    raise ValueError(f"Invalid quantization mode. Expected one of {SUPPORTED_MODES} "
                     f"(Keras also knows {KERAS_MODES[1:]}). Received: mode={mode!r}")


def abs_max_quantize(w, axis):
    """Keras's abs_max_quantize(to_numpy=True) on float32 ``w``: (int8
    values, float32 scale with ``axis`` kept as size 1)."""
    w = np.asarray(w, np.float32)
    scale = np.divide(127, np.add(np.max(np.abs(w), axis=axis, keepdims=True),
                                  EPSILON))
    q = np.clip(np.round(np.multiply(w, scale)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _aligned(nbytes, dtype):
    """A zeroed 1-D array of ``nbytes`` bytes whose data is 64-byte aligned."""
    raw = np.zeros(nbytes + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + nbytes].view(dtype)


class _Kernel:
    """What both quantized kernels share: ``kernel`` [n_in, n_out]."""

    @property
    def n_in(self):
        return self.kernel.shape[0]

    @property
    def n_out(self):
        return self.kernel.shape[1]


class Int8Kernel(_Kernel):
    """A quantized Dense kernel: ``kernel`` int8 [n_in, n_out] and
    ``kernel_scale`` float32 [n_out] (Keras's variables, owned here and
    returned by get_weights), plus what the engine reads: ``packed`` (the
    kernel in 64-column panels, k padded to a multiple of 4: panel p, k-quad
    q, column j, byte t at ((p * kq + q) * 64 + j) * 4 + t), ``corr``
    (128 * column sums, for the unsigned-input trick of VNNI) and ``scale``
    (kernel_scale padded to whole panels with ones)."""

    def __init__(self, kernel, kernel_scale):
        self.kernel = np.ascontiguousarray(kernel, np.int8)
        self.kernel_scale = np.ascontiguousarray(kernel_scale, np.float32)
        self.repack()

    @classmethod
    def from_float(cls, w):
        q, scale = abs_max_quantize(w, axis=0)
        return cls(q, scale[0])

    def repack(self):
        """Rebuild the engine's arrays from kernel and kernel_scale (after
        set_weights changed them in place)."""
        k, n = self.kernel.shape
        kq, panels = -(-k // 4), -(-n // PANEL)
        pad = np.zeros((4 * kq, panels * PANEL), np.int8)
        pad[:k, :n] = self.kernel
        packed = getattr(self, "packed", None)
        if packed is None:
            packed = _aligned(pad.size, np.int8)
            self.corr = _aligned(4 * panels * PANEL, np.int32)
            self.scale = _aligned(4 * panels * PANEL, np.float32)
        # [kq, 4, panels, 64] -> [panels, kq, 64, 4]
        packed[:] = pad.reshape(kq, 4, panels, PANEL).transpose(2, 0, 3, 1).ravel()
        self.packed = packed
        self.corr[:] = 128 * pad.sum(axis=0, dtype=np.int32)
        self.scale[:] = 1.0
        self.scale[:n] = self.kernel_scale


def widen_bf16(bits):
    """bfloat16 bits (uint16) -> float32, exact: the bits are float32's top
    half."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


class Bf16Kernel(_Kernel):
    """A bfloat16 Dense kernel (``quantize("bfloat16")``): ``bits`` uint16
    [n_in, n_out], the kernel rounded to bfloat16 (what the engine reads and
    the file stores, safetensors "BF16"), and ``kernel``, those values widened
    to float32 (what ``weights``/``get_weights`` give, read-only to users).

    set_weights writes float32 values into ``kernel``; ``repack`` then
    rounds them to bfloat16 again (so ``kernel`` always holds exactly the
    widened ``bits``)."""

    def __init__(self, w):
        self.kernel = np.array(w, np.float32, order="C")
        self.bits = np.empty(self.kernel.shape, np.uint16)
        self.repack()

    def repack(self):
        with _net.writable([self.kernel]):
            _net.bf16_round(self.kernel, self.bits)
            self.kernel[...] = widen_bf16(self.bits)
