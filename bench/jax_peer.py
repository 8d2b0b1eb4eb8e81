"""JAX peer (with optax): a jitted step per batch, and the whole epoch
compiled as one lax.scan (no Python between steps: the strongest peer for
small models)."""
import time

import numpy as np

from .peers import optional


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


def _child(argv):
    """Run in a subprocess: JAX's thread pool is fixed at import, so each
    thread count gets its own process pinned to that many cores."""
    import argparse
    import json
    import os
    from .nets import workloads
    p = argparse.ArgumentParser()
    p.add_argument("--net")
    p.add_argument("--threads", type=int)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mode", choices=["step", "scan", "predict1", "predict64"])
    a = p.parse_args(argv)
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: a.threads]))
    net = workloads(a.quick)[a.net]
    net.weights = net.init_weights()
    if a.mode in ("step", "scan"):
        x, y = net.data()
        if net.out_act == "softmax":
            y = y.astype(np.int32)
        out = train_samples_per_s(net, x, y, a.threads, 2 if a.quick else 4,
                                  scan=a.mode == "scan")
    else:
        from .timing import measure
        f = predictor(net, a.threads)
        rows = 1 if a.mode == "predict1" else 64
        xb = net.data()[0][:rows]
        out = None if f is None else measure(lambda: f(xb), repeats=5).best
    print(json.dumps(out))


def run_in_child(net_key, threads, quick, mode):
    """The figure from a pinned subprocess, or None if JAX is absent."""
    import json
    import subprocess
    import sys
    if optional("jax") is None or optional("optax") is None:
        return None
    cmd = [sys.executable, "-m", "bench.jax_peer", "--net", net_key,
           "--threads", str(threads), "--mode", mode] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        print(f"# jax {mode} {net_key} failed: {r.stderr.strip()[-300:]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    import sys
    _child(sys.argv[1:])
