"""The public low-level kernels (float32), each validated here before C runs.

Conventions:
- Inputs of any real dtype are converted to float32 once, at this edge
  (bool, complex, object and string arrays are refused).  Outputs are new
  float32 arrays unless `out=` is given.
- Dense kernels are ``[in, out]`` (Keras order): ``y = act(x @ w + b)``.
- Dropout is inverted (as Keras and PyTorch): kept units are multiplied by
  ``1 / keep`` where ``keep`` is the keep probability *as thresholded*
  (a 32-bit draw), dropped units are exactly 0.
- Masks are returned as uint8 arrays of ``ceil(size / 8)`` bytes holding one
  bit per element in row-major order, little-endian bit order (1 = kept):
  ``np.unpackbits(mask, bitorder="little")[:y.size].reshape(y.shape)``.
- Masks come from a counter-based stream: the same ``seed`` and ``step`` give
  the same mask whatever the thread count or ISA; another step, another mask.
"""
import math

import numpy as np

from . import _validation as chk
from . import _engine, activations
from ._runtime import get_num_threads, isa, set_num_threads

__all__ = ["matmul", "dense_forward", "dense_backward", "dropout",
           "random_bits", "isa", "set_num_threads", "get_num_threads",
           "ACTIVATIONS"]

ACTIVATIONS = activations.NAMES    # index = the C kind


def _mask_bytes(words, n_bits):
    """The public uint8 view of a C mask (a view: no copy)."""
    return words.view(np.uint8)[: math.ceil(n_bits / 8)]


def _mask_words(name, mask, n_bits):
    """A caller's uint8 mask back into zero-padded uint64 words for C."""
    nbytes = math.ceil(n_bits / 8)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 1:
        raise TypeError(f"{name} must be the 1-D uint8 mask returned by "
                        f"dense_forward, got {chk.describe(mask)}")
    if mask.size != nbytes:
        raise ValueError(f"{name} must hold {nbytes} bytes for {n_bits} "
                         f"elements, got {mask.size}")
    words = chk.mask_words(n_bits)
    words.view(np.uint8)[:nbytes] = mask
    return words


def matmul(a, b, *, trans_a=False, trans_b=False, out=None):
    """Return ``op(a) @ op(b)`` in float32, ``op`` transposing when asked.

    Args:
        a, b: 2-D arrays.  Row-strided views with unit column stride are read
            in place; other layouts are copied once.
        trans_a, trans_b: use ``a.T`` / ``b.T`` (taken by the GEMM's packing,
            never by copying the matrix).
        out: optional C-contiguous float32 array of the result's shape; it
            must not overlap ``a`` or ``b``.

    Example:
        >>> import numpy as np
        >>> from dropout_engine import ops
        >>> ops.matmul(np.ones((2, 3)), np.ones((2, 3)), trans_b=True)
        array([[3., 3.],
               [3., 3.]], dtype=float32)
    """
    trans_a = chk.flag("trans_a", trans_a)
    trans_b = chk.flag("trans_b", trans_b)
    a = chk.float32_array("a", a, ndim=2, contiguous=False)
    b = chk.float32_array("b", b, ndim=2, contiguous=False)
    m, ka = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if ka != kb:
        raise ValueError(
            f"matmul: op(a) has shape ({m}, {ka}) and op(b) has shape "
            f"({kb}, {n}); the inner dimensions must agree")
    if out is None:
        out = np.empty((m, n), dtype=np.float32)
    else:
        chk.out_array("out", out, (m, n))
        if np.shares_memory(out, a) or np.shares_memory(out, b):
            raise ValueError("out must not overlap a or b")
    if m == 0 or n == 0:
        return out
    if ka == 0:
        out.fill(0.0)
        return out
    _engine.gemm(trans_a, trans_b, a, b, out, False)
    return out


def _dense_inputs(x, w, b):
    x = chk.float32_array("x", x, ndim=2)
    w = chk.float32_array("w", w, ndim=2)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features but w expects "
                         f"{w.shape[0]} (w is [in, out] = {w.shape})")
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"w must have at least one input and one output, "
                         f"got shape {w.shape}")
    return x, w, None if b is None else _bias(b, w)


def _bias(b, w):
    b = chk.float32_array("b", b, ndim=1)
    if b.shape[0] != w.shape[1]:
        raise ValueError(f"b must have shape ({w.shape[1]},) to match w "
                         f"{w.shape}, got {b.shape}")
    return b


def dense_forward(x, w, b, *, activation="linear", dropout_rate=0.0, seed=0,
                  step=0, training=True):
    """``y = dropout(act(x @ w + b))`` in one fused pass; returns ``(y, mask)``.

    The GEMM finishes each tile with the bias, the activation, the mask draw
    and the ``1/keep`` scaling while the tile is in cache, and ``y`` is
    written once.  ``mask`` is None when ``dropout_rate == 0`` or
    ``training=False`` (dropout is then the identity and no RNG is drawn).

    Args:
        x: ``[batch, in]``.  w: ``[in, out]``.  b: ``[out]`` or None.
        activation: one of ``ops.ACTIVATIONS`` at Keras's defaults (gelu is
            the exact erf form, leaky_relu's slope 0.2, softmax row-wise;
            "swish" is silu), or None for linear.
        dropout_rate: in [0, 1).
        seed, step: ints in [0, 2**64) that fix the mask.
        training: False makes dropout the identity.
    """
    x, w, b = _dense_inputs(x, w, b)
    act = activations.kind("activation", activation)
    rate = chk.rate("dropout_rate", dropout_rate)
    seed = chk.uint64("seed", seed)
    step = chk.uint64("step", step)
    training = chk.flag("training", training)
    if not training:
        rate = 0.0
    m, n = x.shape[0], w.shape[1]
    y = np.empty((m, n), dtype=np.float32)
    words = chk.mask_words(m * n) if rate > 0 else None
    if m:
        key = _engine.rng_key(seed, 0, step)
        _engine.dense_forward(x, w, b, act, rate, True, key, y, words)
    return y, (None if words is None else _mask_bytes(words, m * n))


def dense_backward(dy, x, w, y, mask, *, activation, dropout_rate, b=None):
    """Gradients of :func:`dense_forward`: returns ``(dx, dw, db)``.

    ``dz = dy * keep * scale * act'(.)`` is computed in one pass over ``dy``,
    then ``dw = x.T @ dz``, ``db = dz.sum(0)``, ``dx = dz @ w.T``.

    Args:
        dy: gradient w.r.t. ``y``, ``[batch, out]``.
        x, w: the forward inputs.  y, mask: the forward outputs (mask None
            when the forward drew no dropout).
        activation, dropout_rate: as given to the forward.
        b: the forward's bias.  Required for "gelu", "silu", and for
            "softmax" with dropout, whose derivatives need the pre-activation
            (recomputed as ``x @ w + b``); pass zeros if the layer had no
            bias.
    """
    x, w, _ = _dense_inputs(x, w, None)
    m, n = x.shape[0], w.shape[1]
    dy = chk.float32_array("dy", dy, ndim=2)
    y = chk.float32_array("y", y, ndim=2)
    for name, arr in (("dy", dy), ("y", y)):
        if arr.shape != (m, n):
            raise ValueError(f"{name} must have shape {(m, n)} (x rows, w "
                             f"columns), got {arr.shape}")
    act = activations.kind("activation", activation)
    rate = chk.rate("dropout_rate", dropout_rate)
    if rate > 0 and mask is None:
        raise ValueError("mask is None but dropout_rate > 0: pass the mask "
                         "dense_forward returned")
    words = _mask_words("mask", mask, m * n) if rate > 0 else None
    z = None
    if _engine.act_needs_pre(act, rate > 0):
        if b is None:
            raise ValueError(f"activation {ACTIVATIONS[act]!r} needs b= to "
                             "recompute the pre-activation (zeros if no bias)")
        b = _bias(b, w)
        z = matmul(x, w)
        z += b
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty(n, dtype=np.float32)
    if m == 0:
        dw.fill(0.0)
        db.fill(0.0)
        return dx, dw, db
    scratch = np.empty((m, n), dtype=np.float32)
    _engine.dense_backward(dy, x, w, y, z, words, act, rate, True, scratch,
                           dx, dw, db)
    return dx, dw, db


def dropout(x, rate, *, seed=0, step=0, out=None):
    """Inverted dropout of ``x``; returns ``(out, mask)``.

    The same stream as :func:`dense_forward` draws the mask, with ``x``
    viewed as rows of its last axis (a 1-D array is one row), so
    ``dropout(act(x @ w + b), r, seed=s, step=t)`` reproduces
    ``dense_forward(x, w, b, activation=act, dropout_rate=r, seed=s, step=t)``.

    Args:
        x: array of any shape (at least one element per row).
        rate: in [0, 1); 0 copies ``x`` (mask None).
        seed, step: ints that fix the mask.
        out: optional float32 C-contiguous array of x's shape; ``out=x``
            works in place (x must then be float32 and C-contiguous).
    """
    rate = chk.rate("rate", rate)
    seed = chk.uint64("seed", seed)
    step = chk.uint64("step", step)
    inplace = out is not None and out is x
    if inplace:
        chk.out_array("out", out, np.shape(x))
        xa = out
    else:
        xa = chk.float32_array("x", x)
        if out is None:
            out = np.empty(xa.shape, dtype=np.float32)
        else:
            chk.out_array("out", out, xa.shape)
            if np.shares_memory(out, xa):
                raise ValueError("out must be x itself or not overlap it")
    if rate == 0.0:
        if not inplace:
            np.copyto(out, xa)
        return out, None
    cols = xa.shape[-1] if xa.ndim else 1
    rows = xa.size // cols if cols else 0
    words = chk.mask_words(xa.size)
    if xa.size:
        key = _engine.rng_key(seed, 0, step)
        _engine.dropout(xa.reshape(rows, cols), out.reshape(rows, cols),
                        words, rate, True, key)
    return out, _mask_bytes(words, xa.size)


def _noise_dropout(x, rate, kind, *, seed=0, step=0):
    """GaussianDropout's (kind 1) or AlphaDropout's (kind 2) training noise
    on a new float32 copy of ``x`` (any shape), the C pass the training loop
    runs after a Dense (noise.c), drawn from (seed, step).  For the layers'
    own calls (``GaussianDropout(0.2)(x, training=True)``)."""
    rate = chk.rate("rate", rate)
    seed = chk.uint64("seed", seed)
    step = chk.uint64("step", step)
    y = np.array(chk.float32_array("x", x), dtype=np.float32, order="C", copy=True)
    if y.size and rate > 0.0:
        mul = np.empty(y.size + 1, np.float32)
        _engine.noise(int(kind), rate, _engine.rng_key(seed, 0, step),
                      y.reshape(-1), mul)
    return y


def random_bits(seed, n):
    """``n`` uint32 words of the generator that draws the masks (seed's
    stream 0, step 0, row 0), for statistical testing."""
    seed = chk.uint64("seed", seed)
    if not chk.is_int(n):
        raise TypeError(f"n must be an int >= 0, got {chk.describe(n)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.empty(int(n), dtype=np.uint32)
    if n:
        _engine.random_bits(_engine.rng_key(seed, 0, 0), out)
    return out
