"""Keras 3 peer (on JAX when installed, else torch), in a pinned child."""
import os
import time

from .peers import child_main


def _figure(net, a):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
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
    x, y = net.data()
    m.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)  # compile + warm-up
    best = float("inf")
    for _ in range(2 if a.quick else 5):
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


if __name__ == "__main__":
    import sys
    child_main(sys.argv[1:], _figure)
