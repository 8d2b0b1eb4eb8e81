"""JAX peer (with optax): a jitted step per batch, and the whole epoch
compiled as one lax.scan (no Python between steps: the strongest peer for
small models)."""
import time

import numpy as np

from .peers import child_main, optional, run_pinned


def _setup(net, threads):
    jax = optional("jax")
    optax = optional("optax")
    if jax is None or optax is None:
        return None
    jnp = jax.numpy
    params = [jnp.asarray(w) for w in net.weights]
    opt = (optax.sgd(net.lr, momentum=net.momentum) if net.optimizer == "sgd"
           else optax.adam(net.lr, eps=1e-7))
    n_layers = len(net.sizes) - 1

    def drop(key, h, rate):
        if not rate:
            return h
        keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
        return jnp.where(keep, h / (1.0 - rate), 0.0)

    def forward(p, x, key=None):
        keys = jax.random.split(key, n_layers + 1) if key is not None else None
        h = drop(keys[0], x, net.input_drop) if key is not None else x
        for i in range(n_layers):
            h = h @ p[2 * i] + p[2 * i + 1]
            if i < n_layers - 1:
                h = jax.nn.relu(h)
                if key is not None:
                    h = drop(keys[i + 1], h, net.hidden_drop)
        return h

    def loss(p, x, y, key):
        z = forward(p, x, key)
        if net.out_act == "softmax":
            return optax.softmax_cross_entropy_with_integer_labels(z, y).mean()
        return optax.sigmoid_binary_cross_entropy(z, y).mean()

    def step(carry, batch):
        p, s, key = carry
        key, sub = jax.random.split(key)
        g = jax.grad(loss)(p, batch[0], batch[1], sub)
        upd, s = opt.update(g, s, p)
        p = optax.apply_updates(p, upd)
        if net.max_norm:
            for i in range(n_layers - 1):
                w = p[2 * i]
                norms = jnp.sqrt(jnp.sum(w * w, axis=0, keepdims=True))
                p[2 * i] = w * (jnp.clip(norms, 0, net.max_norm) / (1e-7 + norms))
        return (p, s, key), None

    return jax, jnp, params, opt, step, forward


def train_samples_per_s(net, x, y, threads, epochs, scan):
    got = _setup(net, threads)
    if got is None:
        return None
    jax, jnp, params, opt, step, _ = got
    nb = len(x) // net.batch
    jx = jnp.asarray(x[: nb * net.batch])
    jy = jnp.asarray(y[: nb * net.batch])
    carry = (params, opt.init(params), jax.random.PRNGKey(0))

    if scan:
        @jax.jit
        def epoch(carry, perm_key):
            perm = jax.random.permutation(perm_key, nb * net.batch)
            xb = jx[perm].reshape(nb, net.batch, -1)
            yb = jy[perm].reshape((nb, net.batch) + jy.shape[1:])
            carry, _ = jax.lax.scan(step, carry, (xb, yb))
            return carry
    else:
        jstep = jax.jit(step)

        def epoch(carry, perm_key):
            perm = np.asarray(jax.random.permutation(perm_key, nb * net.batch))
            for b in range(nb):
                idx = perm[b * net.batch:(b + 1) * net.batch]
                carry, _ = jstep(carry, (jx[idx], jy[idx]))
            return carry

    key = jax.random.PRNGKey(1)
    carry = epoch(carry, key)  # compile + warm-up
    jax.block_until_ready(carry)
    best = np.inf
    for e in range(epochs):
        t0 = time.perf_counter()
        carry = epoch(carry, jax.random.fold_in(key, e))
        jax.block_until_ready(carry)
        best = min(best, time.perf_counter() - t0)
    return nb * net.batch / best


def predictor(net, threads):
    got = _setup(net, threads)
    if got is None:
        return None
    jax, jnp, params, _, _, forward = got
    f = jax.jit(lambda p, x: forward(p, x))

    def predict(x):
        return np.asarray(f(params, x))
    return predict


def _figure(net, a):
    """One figure for the pinned child (see peers.child_main)."""
    if a.mode in ("step", "scan"):
        x, y = net.data()
        if net.out_act == "softmax":
            y = y.astype(np.int32)
        return train_samples_per_s(net, x, y, a.threads, 2 if a.quick else 4,
                                   scan=a.mode == "scan")
    from .timing import measure
    f = predictor(net, a.threads)
    xb = net.data()[0][:1 if a.mode == "predict1" else 64]
    return None if f is None else measure(lambda: f(xb), repeats=5).best


def run_in_child(net_key, threads, quick, mode):
    """The figure from a pinned subprocess, or None if JAX is absent."""
    if optional("jax") is None or optional("optax") is None:
        return None
    return run_pinned("bench.jax_peer", net_key, threads, quick, mode)


if __name__ == "__main__":
    import sys
    child_main(sys.argv[1:], _figure)
