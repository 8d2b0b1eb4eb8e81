"""Training samples/s of W1, W2, W3 against PyTorch, JAX (a jitted step per
batch, and the epoch as one lax.scan), Keras 3 and scikit-learn."""
from . import jax_peer, ours, torch_peer
from .nets import workloads
from .peers import optional

PEERS = ("torch", "jax-step", "jax-scan", "keras", "sklearn")


def _keras(net, x, y, threads, epochs):
    import os
    import time
    os.environ.setdefault("KERAS_BACKEND", "jax" if optional("jax") else "torch")
    keras = optional("keras")
    if keras is None:
        return None
    L = keras.layers
    seq = [keras.Input((net.sizes[0],))]
    if net.input_drop:
        seq.append(L.Dropout(net.input_drop))
    for i, u in enumerate(net.sizes[1:]):
        last = i == len(net.sizes) - 2
        kc = keras.constraints.MaxNorm(net.max_norm) if net.max_norm and not last else None
        seq.append(L.Dense(u, activation=net.out_act if last else "relu", kernel_constraint=kc))
        if not last and net.hidden_drop:
            seq.append(L.Dropout(net.hidden_drop))
    m = keras.Sequential(seq)
    opt = (keras.optimizers.SGD(net.lr, momentum=net.momentum) if net.optimizer == "sgd"
           else keras.optimizers.Adam(net.lr))
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy"
              if net.out_act == "softmax" else "binary_crossentropy")
    m.set_weights(net.weights)
    m.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)
    best = float("inf")
    for _ in range(epochs):
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def _sklearn(net, x, y, threads, epochs):
    """MLPClassifier has no dropout: it does less work than the others."""
    import time
    import warnings
    nn = optional("sklearn.neural_network")
    if nn is None:
        return None
    from .peers import blas_threads
    clf = nn.MLPClassifier(hidden_layer_sizes=net.sizes[1:-1], solver=net.optimizer,
                           learning_rate_init=net.lr, batch_size=net.batch,
                           momentum=net.momentum or 0.9, nesterovs_momentum=False,
                           max_iter=1, shuffle=True, random_state=0)
    yy = y.ravel()
    best = float("inf")
    with blas_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs + 1):
            t0 = time.perf_counter()
            clf.partial_fit(x, yy, classes=sorted(set(yy.tolist())))
            best = min(best, time.perf_counter() - t0)
    return len(x) / best


def run(threads, quick):
    rows = []
    epochs = 2 if quick else 5
    for key, net in workloads(quick).items():
        net.weights = net.init_weights()
        x, y = net.data()
        try:
            mine = ours.train_samples_per_s(net, x, y, threads, epochs)
        except ImportError as exc:  # the Model API is not there yet
            print(f"# {key}: dropout_engine model API unavailable ({exc})")
            continue
        peers = {
            "torch": lambda: torch_peer.train_samples_per_s(net, x, y, threads, epochs),
            "jax-step": lambda: jax_peer.run_in_child(key, threads, quick, "step"),
            "jax-scan": lambda: jax_peer.run_in_child(key, threads, quick, "scan"),
            "keras": lambda: _keras(net, x, y, threads, epochs),
            "sklearn": lambda: _sklearn(net, x, y, threads, epochs),
        }
        for name, fn in peers.items():
            theirs = fn()
            rows.append(dict(bench=f"train {net.name}", case=f"batch {net.batch}",
                             threads=threads, ours=mine, peer=theirs or float("nan"),
                             unit="samples/s", peer_name=name if theirs else f"{name} (absent)",
                             spread=0.0, ratio=(mine / theirs) if theirs else float("nan")))
    return rows
