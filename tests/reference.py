"""numpy references for the C kernels (float64 where precision matters).

Sections: GEMM, activations, dropout/RNG, dense forward/backward, losses,
optimizers.  Each is plain numpy that a reader can check by eye.
"""
import numpy as np

# ----------------------------------------------------------------- GEMM


# ---------------------------------------------------------- activations


# ------------------------------------------------------------ dropout/RNG


# ----------------------------------------------------- dense fwd / bwd


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
