"""numpy references for the C kernels (float64 where precision matters).

Sections: GEMM, activations, dropout/RNG, noise layers, input layers,
dense forward/backward, losses, optimizers.  Each is plain numpy that a reader can check by eye.
"""
import numpy as np

# ----------------------------------------------------------------- GEMM
def gemm(a, b, trans_a=False, trans_b=False, c=None):
    """op(a) @ op(b) (+ c) in float64, op = transpose when asked."""
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    out = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return out if c is None else out + np.asarray(c, np.float64)


def gemm_error_bound(a, b, trans_a=False, trans_b=False):
    """Per-element bound on float32 rounding of op(a) @ op(b): a few ulps
    times sqrt(k) times the sum of |products| (sqrt(k): rounding errors of a
    sum of k terms add like a random walk)."""
    a64 = np.abs(np.asarray(a, np.float64))
    b64 = np.abs(np.asarray(b, np.float64))
    k = a64.shape[0] if trans_a else a64.shape[1]
    mags = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return 4 * np.finfo(np.float32).eps * np.sqrt(k) * mags + 1e-30


# ---------------------------------------------------------- activations
# Keras 3's definitions, evaluated in float64.
import math

SELU_ALPHA = 1.67326324235437728481704299167176
SELU_SCALE = 1.05070098735548049341933498529460
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _normal_cdf(z):
    """Phi(z) = (1 + erf(z / sqrt 2)) / 2, written with erfc so that it keeps
    its relative precision far in the left tail."""
    return 0.5 * _erfc(-z / math.sqrt(2.0)).astype(np.float64)


def relu_general(z, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ReLU: slope * (z - threshold) at or below the threshold (0 when
    the slope is 0), min(z, max_value) above it; NaN stays NaN."""
    mx = np.inf if max_value is None else max_value
    low = negative_slope * (z - threshold) if negative_slope else np.zeros_like(z)
    return np.where(z <= threshold, low, np.minimum(z, mx))


def activation(name, z, **p):
    """act(z) in float64 (Keras 3's definitions; p: the parameters of
    relu, leaky_relu, elu and prelu, Keras's defaults otherwise); softmax is
    row-wise (last axis), max-subtracted.  NaN in gives NaN out."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):   # inf * 0 is NaN, as in Keras
        return _activation(name, z, **p)


def _activation(name, z, **p):
    if name == "linear":
        return z.copy()
    if name == "relu":
        return relu_general(z, **p) if p else np.maximum(z, 0.0)
    if name == "leaky_relu":
        return relu_general(z, p.get("negative_slope", 0.2))
    if name == "relu6":
        return np.minimum(np.maximum(z, 0.0), 6.0)
    if name == "prelu":
        return np.where(z > 0, z, p["alpha"] * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))   # exp(inf) = inf gives 0, as it should
    if name == "hard_sigmoid":
        return np.minimum(np.maximum(z + 3.0, 0.0), 6.0) / 6.0
    if name == "silu":
        return z * (1.0 / (1.0 + np.exp(-z)))   # x * sigmoid(x): silu(-inf) is NaN
    if name == "softplus":
        return np.logaddexp(z, 0.0)
    if name == "elu":
        return np.where(z > 0, z, p.get("alpha", 1.0) * np.expm1(np.minimum(z, 0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
    if name == "gelu":
        return z * _normal_cdf(z)  # Keras: 0.5 * x * (1 + erf(x / sqrt(2)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def activation_vjp(name, z, g, **p):
    """g * d act(z) / dz (for softmax: the row-wise Jacobian-vector product)."""
    z = np.asarray(z, dtype=np.float64)
    a = activation(name, z, **p)
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-z))
    if name == "linear":
        d = np.ones_like(z)
    elif name == "relu" and p:
        mx = p.get("max_value")
        mx = np.inf if mx is None else mx
        d = np.where(z <= p.get("threshold", 0.0), p.get("negative_slope", 0.0),
                     (z < mx).astype(np.float64))
    elif name == "relu":
        d = (z > 0).astype(np.float64)
    elif name == "leaky_relu":
        d = np.where(z > 0, 1.0, p.get("negative_slope", 0.2))
    elif name == "relu6":
        d = ((z > 0) & (z < 6)).astype(np.float64)
    elif name == "prelu":
        d = np.where(z > 0, 1.0, p["alpha"] * np.ones_like(z))
    elif name == "tanh":
        d = 1.0 - a * a
    elif name == "sigmoid":
        d = a * (1.0 - a)
    elif name == "hard_sigmoid":
        d = np.where((z > -3) & (z < 3), 1.0 / 6.0, 0.0)
    elif name == "silu":
        d = sig * (1.0 + z * (1.0 - sig))
    elif name == "softplus":
        d = sig
    elif name == "elu":
        d = np.where(z > 0, 1.0, p.get("alpha", 1.0) * np.exp(np.minimum(z, 0)))
    elif name == "selu":
        d = SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0)))
    elif name == "gelu":
        d = _normal_cdf(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    elif name == "softmax":
        return a * (g - (g * a).sum(axis=-1, keepdims=True))
    else:
        raise ValueError(name)
    return g * d


def ulp32(v):
    """The float32 ulp at |v| (the smallest normal's ulp below it)."""
    v = np.abs(np.asarray(v, dtype=np.float64)).astype(np.float32)
    v = np.maximum(v, np.finfo(np.float32).tiny)
    return np.spacing(v).astype(np.float64)


# ------------------------------------------------------------ dropout/RNG
# The mask generator exactly as rng.h defines it, in numpy uint64 arithmetic
# (which wraps modulo 2**64).
M64 = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(z):
    """SplitMix64 finaliser of a uint64 array."""
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _plus(a, k):
    """a + k * GOLDEN modulo 2**64 (k: int or uint64 array)."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.uint64) + np.asarray(k, dtype=np.uint64) * GOLDEN


def rng_key(seed, stream, step):
    k = mix64(_plus(np.uint64(seed), 1))
    k = mix64(_plus(k, stream + 1))
    return int(mix64(_plus(k, step + 1)))


def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def lane_words(key, rows, segs, steps):
    """uint32 words [len(rows), len(segs), steps * 16] of the lanes of
    (key, row, seg): step t gives words 16t..16t+15, word 2l / 2l+1 the
    low / high half of lane l's xoroshiro128++ output."""
    with np.errstate(over="ignore"):
        i = np.asarray(rows, dtype=np.uint64)[:, None]
        s = np.asarray(segs, dtype=np.uint64)[None, :]
        b = mix64(_plus(mix64(_plus(np.uint64(key), i + np.uint64(1))), s + np.uint64(1)))
        lanes = np.arange(8, dtype=np.uint64)
        s0 = mix64(_plus(b[..., None], 2 * lanes + np.uint64(1)))
        s1 = mix64(_plus(b[..., None], 2 * lanes + np.uint64(2)))
        out = np.empty(b.shape + (steps, 16), dtype=np.uint32)
        for t in range(steps):
            r = _rotl(s0 + s1, 17) + s0
            out[..., t, 0::2] = (r & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            out[..., t, 1::2] = (r >> np.uint64(32)).astype(np.uint32)
            s1 = s1 ^ s0
            s0 = _rotl(s0, 49) ^ s1 ^ (s1 << np.uint64(21))
            s1 = _rotl(s1, 28)
    return out.reshape(b.shape + (steps * 16,))


def random_bits(key, n):
    """The flat stream: row 0, segment 0, never ending."""
    return lane_words(key, [0], [0], -(-n // 16))[0, 0, :n]


def dropout_params(rate, inverted=True):
    """(drop_below, scale) as rng.c thresholds them."""
    if rate <= 0:
        return 0, np.float32(1.0)
    t = min(max(round(rate * 2.0**32), 1), 2**32 - 1)
    return t, np.float32(2.0**32 / (2.0**32 - t) if inverted else 1.0)


def keep_mask(key, m, n, rate):
    """bool [m, n]: True where the unit is kept."""
    t, _ = dropout_params(rate)
    nseg = -(-n // 256)
    words = lane_words(key, np.arange(m), np.arange(nseg), 16)
    return words.reshape(m, nseg * 256)[:, :n] >= t


def unpack_mask(mask, shape):
    """The public uint8 mask as bool keep flags of `shape`."""
    size = int(np.prod(shape))
    return np.unpackbits(mask, bitorder="little")[:size].reshape(shape).astype(bool)


# -------------------------------------------------------- noise layers
# Keras's training noise as noise.c draws it, from the site's flat stream
# (random_bits) or, for broadcast masks, from the small mask's keep_mask.
ALPHA_P = -1.7580993408473766     # -scale * alpha of SELU


def normals(key, n, mean, sd):
    """mean + sd * z, z standard normals by Box-Muller on the flat stream
    (one pair of words gives two), float64."""
    bits = random_bits(key, n + (n & 1)).astype(np.float64)
    u = (bits + 1.0) / 2.0**32
    r = sd * np.sqrt(-2.0 * np.log(u[0::2]))
    t = 2 * np.pi * u[1::2]
    return np.stack([mean + r * np.cos(t), mean + r * np.sin(t)], axis=1).ravel()[:n]


def noise_mul_add(kind, key, n, rate):
    """(mul, add) of y -> y * mul + add for GaussianDropout ("gaussian",
    mul ~ N(1, rate / (1 - rate))), AlphaDropout ("alpha") or GaussianNoise
    ("additive", add ~ N(0, rate^2): rate is the stddev)."""
    if kind == "gaussian":
        return normals(key, n, 1.0, np.sqrt(rate / (1 - rate))), np.zeros(n)
    if kind == "additive":
        return np.ones(n), normals(key, n, 0.0, rate).astype(np.float32)
    kept = random_bits(key, n) >= dropout_params(rate)[0]
    a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * rate
    return np.where(kept, a, 0.0), np.where(kept, b, a * ALPHA_P + b)


def broadcast_keep(key, m, steps, n, rate, sample=True, step=True, feature=True,
                   group=0):
    """bool [m * steps, n]: de_dropout_bcast's keep flags, the small mask
    [rows', n'] of keep_mask read at the broadcast index (sample b reads
    row b, or b // group, or 0; step t reads t or 0; feature j reads j or 0)."""
    nb = m if sample else (-(-m // group) if group else 1)
    ns, nf = (steps if step else 1), (n if feature else 1)
    small = keep_mask(key, nb * ns, nf, rate).reshape(nb, ns, nf)
    b = np.arange(m)
    bi = b if sample else (b // group if group else 0 * b)
    ti = np.arange(steps) if step else np.zeros(steps, int)
    fi = np.arange(n) if feature else np.zeros(n, int)
    return small[bi[:, None, None], ti[None, :, None], fi[None, None, :]].reshape(
        m * steps, n)


# -------------------------------------------------- input layers
def embedding_mean(ids, table, mask_zero=False):
    """float64 Embedding + GlobalAveragePooling1D: each sample's rows of
    `table` averaged, masked steps (id 0 when mask_zero) left out (Keras's
    masked mean: 0 / 0 = NaN when every step is padding)."""
    rows = np.asarray(table, np.float64)[ids]              # [n, T, D]
    w = (ids != 0).astype(np.float64) if mask_zero else np.ones(ids.shape)
    with np.errstate(invalid="ignore"):
        return (rows * w[..., None]).sum(1) / w.sum(1, keepdims=True)


def embedding_mean_grad(ids, dy, vocab, mask_zero=False):
    """d loss / d table of embedding_mean for upstream dy [n, D]: each
    step's share dy / count added to its id's row."""
    w = (ids != 0).astype(np.float64) if mask_zero else np.ones(ids.shape)
    share = w / w.sum(1, keepdims=True)                      # [n, T]
    g = np.zeros((vocab, dy.shape[1]))
    np.add.at(g, ids, share[..., None] * np.asarray(dy, np.float64)[:, None, :])
    return g


# ----------------------------------------------------- dense fwd / bwd
def dense_forward(x, w, b, act, keep=None, scale=1.0, **p):
    """float64 y = keep * scale * act(x @ w + b) and z (p: act's parameters)."""
    z = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    if b is not None:
        z = z + np.asarray(b, np.float64)
    y = activation(act, z, **p)
    if keep is not None:
        y = np.where(keep, y * np.float64(scale), 0.0)
    return y, z


def finite_differences(loss, p, eps=1e-6):
    """d loss() / d p by central differences, p (a float64 array that
    loss reads) perturbed in place one element at a time."""
    fd = np.empty(p.shape)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + eps
        up = loss()
        p[idx] = old - eps
        fd[idx] = (up - loss()) / (2 * eps)
        p[idx] = old
    return fd


def dense_backward(dy, x, w, b, act, keep=None, scale=1.0, **p):
    """float64 (dx, dw, db) of dense_forward for upstream gradient dy."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    _, z = dense_forward(x, w, b, act, **p)
    g = np.asarray(dy, np.float64)
    if keep is not None:
        g = np.where(keep, g * np.float64(scale), 0.0)
    dz = activation_vjp(act, z, g, **p)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


# ------------------------------------------------- losses / optimizers
# Keras 3's loss formulas from probabilities (float64), per sample.
EPS = 1e-7


def loss_per_sample(name, t, p):
    """Per-sample loss; t: targets [n, k] (class indices [n] for 'scce')."""
    p = np.asarray(p, np.float64)
    if name == "mse":
        return ((np.asarray(t, np.float64) - p) ** 2).mean(axis=-1)
    if name == "mae":
        return np.abs(np.asarray(t, np.float64) - p).mean(axis=-1)
    if name == "bce":
        t = np.asarray(t, np.float64)
        pc = np.clip(p, EPS, 1 - EPS)
        return -(t * np.log(pc + EPS) + (1 - t) * np.log(1 - pc + EPS)).mean(axis=-1)
    if name == "scce":
        t = np.eye(p.shape[1])[np.asarray(t, np.int64).ravel()]
    q = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -(np.asarray(t, np.float64) * np.log(q)).sum(axis=-1)


def loss(name, t, p):
    return loss_per_sample(name, t, p).mean()


# Keras 3's optimizer updates (float64), one step on w with gradient g;
# `state` is a dict updated in place; step = iterations before the update.
def keras_step(kind, w, g, state, step, lr, **h):
    w = np.asarray(w, np.float64).copy()
    g = np.asarray(g, np.float64)
    wd = h.get("weight_decay") or 0.0
    if wd:
        w -= w * wd * lr
    if kind == "sgd":
        mom = h.get("momentum", 0.0)
        if mom:
            m = state.get("m", 0.0) * mom - lr * g
            state["m"] = m
            w += mom * m - lr * g if h.get("nesterov") else m
        else:
            w -= lr * g
    elif kind == "adam":
        b1, b2, eps = h.get("beta_1", 0.9), h.get("beta_2", 0.999), h.get("epsilon", 1e-7)
        t = step + 1
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = state.get("m", 0.0) + (g - state.get("m", 0.0)) * (1 - b1)
        v = state.get("v", 0.0) + (g * g - state.get("v", 0.0)) * (1 - b2)
        state.update(m=m, v=v)
        w -= m * alpha / (np.sqrt(v) + eps)
    elif kind == "rmsprop":
        rho, mom, eps = h.get("rho", 0.9), h.get("momentum", 0.0), h.get("epsilon", 1e-7)
        v = rho * state.get("v", 0.0) + (1 - rho) * g * g
        state["v"] = v
        if h.get("centered"):
            a = rho * state.get("a", 0.0) + (1 - rho) * g
            state["a"] = a
            den = v - a * a + eps
        else:
            den = v + eps
        inc = lr * g / np.sqrt(den)
        if mom:
            state["mo"] = mom * state.get("mo", 0.0) + inc
            w -= state["mo"]
        else:
            w -= inc
    else:
        raise ValueError(kind)
    return w


# PyTorch's rules (torch.optim.SGD / Adam docs), for the equivalence claim.
def torch_step(kind, w, g, state, step, lr, momentum=0.0, nesterov=False,
               betas=(0.9, 0.999), eps=1e-8):
    w = np.asarray(w, np.float64).copy()
    g = np.asarray(g, np.float64)
    if kind == "sgd":
        if momentum:
            buf = g if "buf" not in state else momentum * state["buf"] + g
            state["buf"] = buf
            g = g + momentum * buf if nesterov else buf
        return w - lr * g
    t = step + 1
    m = betas[0] * state.get("m", 0.0) + (1 - betas[0]) * g
    v = betas[1] * state.get("v", 0.0) + (1 - betas[1]) * g * g
    state.update(m=m, v=v)
    mhat, vhat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return w - lr * mhat / (np.sqrt(vhat) + eps)


def max_norm(w, max_value, axis=0):
    w = np.asarray(w, np.float64)
    n = np.sqrt((w * w).sum(axis=axis, keepdims=True))
    return w * (np.clip(n, 0, max_value) / (1e-7 + n))


# --------------------------------------------------- int8 (Keras quantize)
# Keras 3's model.quantize("int8") (keras/src/layers/core/dense.py
# _int8_call, keras.quantizers.abs_max_quantize), written out in numpy with
# every float operation in float32 and in Keras's order, so that the
# engine's int8 path can be compared bit for bit.
Q_EPS = np.float32(1e-7)   # keras.backend.epsilon()


def abs_max_quantize(x, axis):
    """(int8 values, float32 scale with `axis` kept): scale = 127 / (max|x| +
    eps), values = clip(round-half-even(x * scale), -127, 127)."""
    x = np.asarray(x, np.float32)
    amax = np.max(np.abs(x), axis=axis, keepdims=True)
    scale = np.float32(127) / (amax + Q_EPS)
    q = np.clip(np.round(x * scale), -127, 127)
    return q.astype(np.int8), scale.astype(np.float32)


def qdense_pre(x, kernel, kernel_scale, b):
    """The pre-activation of a quantized Dense: rows of x quantized, int8
    products summed exactly (int64 here), then float32
    acc / (kernel_scale * row_scale) + b, the operations Keras does."""
    q, s = abs_max_quantize(x, axis=-1)
    acc = q.astype(np.int64) @ np.asarray(kernel, np.int64)
    assert np.abs(acc).max(initial=0) < 2 ** 31   # Keras's int32 is exact
    y = acc.astype(np.float32) / (np.asarray(kernel_scale, np.float32) * s)
    if b is not None:
        y = y + np.asarray(b, np.float32)
    return y.astype(np.float32)


def qnet_forward(x, layers, in_keep=None, activate=None):
    """Inference of a quantized net.  layers: (kernel int8, kernel_scale,
    bias or None, activation name, keep or None); keep (1 - rate, for
    "weight"-scaled dropout) multiplies the layer's float32 output, in_keep
    the input.  activate(name, z) -> float32 applies an activation (default:
    `activation` in float64 rounded to float32; pass the engine's own to
    compare the int8 arithmetic bit for bit through non-linear layers)."""
    activate = activate or (lambda n, z: activation(n, z).astype(np.float32))
    h = np.asarray(x, np.float32)
    if in_keep is not None:
        h = h * np.float32(in_keep)
    for kernel, kscale, b, act, keep in layers:
        h = activate(act, qdense_pre(h, kernel, kscale, b))
        if keep is not None:
            h = h * np.float32(keep)
    return h


# ------------------------------------------------------- normalization
# Keras 3's BatchNormalization / LayerNormalization in float64: xhat =
# (x - mean) / sqrt(var + eps) with the biased variance, y = gamma * xhat +
# beta; BN over the batch (axis 0), LN over the features (axis 1).
def norm_forward(kind, x, gamma=None, beta=None, eps=1e-3):
    """(y, xhat, mean, var) in float64; kind "batch" or "layer"."""
    x = np.asarray(x, np.float64)
    axis = 0 if kind == "batch" else 1
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    y = xhat * (1.0 if gamma is None else np.asarray(gamma, np.float64))
    y = y + (0.0 if beta is None else np.asarray(beta, np.float64))
    return y, xhat, mean.ravel(), var.ravel()


def norm_backward(kind, x, dy, gamma=None, eps=1e-3):
    """float64 (dx, dgamma, dbeta) of norm_forward for upstream dy, the
    textbook closed forms (BN: Ioffe & Szegedy; LN the same per row)."""
    _, xhat, _, var = norm_forward(kind, x, eps=eps)
    dy = np.asarray(dy, np.float64)
    axis = 0 if kind == "batch" else 1
    g = dy * (1.0 if gamma is None else np.asarray(gamma, np.float64))
    rstd = 1.0 / np.sqrt((var if kind == "batch" else var[:, None]) + eps)
    dx = rstd * (g - g.mean(axis=axis, keepdims=True)
                 - xhat * (g * xhat).mean(axis=axis, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def batch_norm_infer(x, moving_mean, moving_var, gamma=None, beta=None, eps=1e-3):
    """Keras's inference BN (ops.batch_normalization) in float64."""
    x = np.asarray(x, np.float64)
    inv = 1.0 / np.sqrt(np.asarray(moving_var, np.float64) + eps)
    if gamma is not None:
        inv = inv * np.asarray(gamma, np.float64)
    res = -np.asarray(moving_mean, np.float64) * inv
    if beta is not None:
        res = res + np.asarray(beta, np.float64)
    return x * inv + res


def moving_update(moving, batch, momentum):
    """Keras's rule in its float32 arithmetic: moving * momentum + batch *
    (1 - momentum), the Python float factors rounded to float32."""
    return (np.float32(moving) * np.float32(momentum)
            + np.float32(batch) * np.float32(1.0 - momentum)).astype(np.float32)


def bf16_round(x):
    """float32 -> bfloat16 -> float32: round to nearest, ties to even (as
    frame/bf16.h, VCVTNEPS2BF16 and torch), NaN kept a quiet NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = np.where(nan, (u >> 16) | 0x40, r).astype(np.uint32)
    return (r << 16).view(np.float32).reshape(x.shape)


def _layer_activation(layer, z, weights):
    """float64 output of an activation layer (``activation`` layers of
    dropout_engine) on z; a PReLU takes its alpha from ``weights``."""
    kind = type(layer).__name__
    if kind == "Activation":
        return activation(layer.activation, z)
    if kind == "ReLU":
        return relu_general(z, layer.negative_slope, layer.max_value, layer.threshold)
    if kind == "LeakyReLU":
        return relu_general(z, layer.negative_slope)
    if kind == "ELU":
        return activation("elu", z, alpha=layer.alpha)
    if kind == "Softmax":
        return activation("softmax", z)
    if kind == "PReLU":
        return activation("prelu", z, alpha=weights.pop(0))
    raise ValueError(kind)


def graph_forward(model, x, weights):
    """float64 inference output of a (functional or Sequential) model: its
    layers in order, each on the outputs of the layers it was called on.
    ``weights``: float64 arrays in Keras order (what get_weights gives),
    read as they are (finite differences perturb them in place).  Dropout
    is the identity ("weight" scaling multiplies by 1 - rate), as are the
    noise layers; BatchNormalization uses its moving statistics; an
    Embedding's mask_zero reaches the GlobalAveragePooling1D reading it."""
    w = list(weights)
    values, masks = {}, {}
    out = None
    functional = type(model.layers[0]).__name__ == "InputLayer"
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            values[id(layer.output)] = np.asarray(x, np.float64)
            continue
        if functional:
            ins = [values[id(t)] for t in layer._inbound_nodes[0].input_tensors]
        else:                                   # a Sequential's layer
            ins = [np.asarray(x, np.float64) if out is None else out]
        h = ins[0]
        if kind == "Dense":
            h = h @ w.pop(0)
            if layer.use_bias:
                h = h + w.pop(0)
            h = activation(layer.activation, h)
        elif kind in ("Dropout", "GaussianDropout", "AlphaDropout", "GaussianNoise",
                      "SpatialDropout1D"):
            if getattr(layer, "scaling", "inverted") == "weight":
                h = h * (1.0 - layer.rate)
        elif kind in ("Flatten", "Reshape"):
            h = h.reshape((h.shape[0],) + layer._output_shape(h.shape[1:]))
        elif kind == "Embedding":
            ids = h.astype(np.int64)
            h = w.pop(0)[ids]
            masks[id(h)] = (ids != 0) if layer.mask_zero else None
        elif kind == "GlobalAveragePooling1D":
            keep = masks.get(id(h))
            wt = np.ones(h.shape[:2]) if keep is None else keep.astype(np.float64)
            with np.errstate(invalid="ignore"):
                h = (h * wt[..., None]).sum(1) / wt.sum(1, keepdims=True)
        elif kind == "BatchNormalization":
            g = w.pop(0) if layer.scale else None
            b = w.pop(0) if layer.center else None
            h = batch_norm_infer(h, w.pop(0), w.pop(0), g, b, layer.epsilon)
        elif kind == "LayerNormalization":
            g = w.pop(0) if layer.scale else None
            b = w.pop(0) if layer.center else None
            h = norm_forward("layer", h, g, b, layer.epsilon)[0]
        elif kind == "Concatenate":
            h = np.concatenate(ins, axis=-1)
        elif kind in ("Add", "Average"):
            h = sum(ins[1:], ins[0]) / (len(ins) if kind == "Average" else 1)
        elif kind == "Subtract":
            h = ins[0] - ins[1]
        elif kind == "Multiply":
            h = np.prod(ins, axis=0)
        elif kind in ("Maximum", "Minimum"):
            h = (np.max if kind == "Maximum" else np.min)(ins, axis=0)
        else:
            h = _layer_activation(layer, h, w)
        out = h
        if functional:
            values[id(layer.output)] = h
    return out


BF16_KC = 256           # frame/dispatch.h's DE_BF16_KC
_BF16_TINY = np.float64.fromhex("0x1.ffffffp-127")   # FLT_MIN - 2^-151


def bf16_pack_round(x):
    """What de_gemm_bf16's packing makes of x: zeros (sign kept) for
    |x| < FLT_MIN, then bf16_round."""
    x = np.asarray(x, dtype=np.float32)
    tiny = np.abs(x) < np.finfo(np.float32).tiny
    return bf16_round(np.where(tiny, np.copysign(np.float32(0), x), x))


def gemm_bf16(a, b, c=None):
    """de_gemm_bf16 in numpy: a [m, k] @ b [k, n] (+ c) on bf16_pack_round'ed
    inputs, each element summed as VDPBF16PS does (dispatch.h): per KC block
    from zero, one rounding per product in k order, a result that rounds
    (unbounded exponent) below FLT_MIN flushed to a zero of its sign (the
    double sum decides it exactly), +0 added for an odd block, then
    c + acc in float32."""
    a = bf16_pack_round(a).astype(np.float64)
    b = bf16_pack_round(b).astype(np.float64)
    m, k = a.shape
    out = (np.zeros((m, b.shape[1]), np.float32) if c is None
           else np.array(c, dtype=np.float32))
    with np.errstate(all="ignore"):
        for p0 in range(0, k, BF16_KC):
            acc = np.zeros_like(out)
            pe = min(k, p0 + BF16_KC)
            for p in range(p0, pe):
                d = acc.astype(np.float64) + a[:, p, None] * b[None, p, :]
                acc = np.where(np.abs(d) < _BF16_TINY, np.copysign(0.0, d),
                               d).astype(np.float32)
            if (pe - p0) % 2:
                acc = acc + np.float32(0)
            out = acc if (p0 == 0 and c is None) else out + acc
    return out
