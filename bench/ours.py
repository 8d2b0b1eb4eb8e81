"""dropout_engine, driven exactly as a Keras user would drive it."""
import time

import numpy as np

# Learning-rate schedules the training bench runs (after the initial rate).
SCHEDULES = {"ExponentialDecay": {"decay_steps": 1000, "decay_rate": 0.9},
             "CosineDecay": {"decay_steps": 5000}}


def _model(net, schedule=None, policy="float32"):
    """schedule: the name of a keras.optimizers.schedules class, built from
    net.lr with the arguments of SCHEDULES (None: a constant rate); policy:
    the dtype policy the layers are made under (mixed_bfloat16)."""
    from dropout_engine.keras import mixed_precision
    mixed_precision.set_global_policy(policy)
    try:
        return _build(net, schedule)
    finally:
        mixed_precision.set_global_policy("float32")


def _build(net, schedule):
    from dropout_engine.keras import constraints, layers, models, optimizers
    seq = [layers.Input((net.sizes[0],))]
    if net.input_drop:
        seq.append(layers.Dropout(net.input_drop))
    n_layers = len(net.sizes) - 1
    for i, units in enumerate(net.sizes[1:]):
        last = i == n_layers - 1
        kc = constraints.MaxNorm(net.max_norm) if net.max_norm and not last else None
        seq.append(layers.Dense(units, activation=net.out_act if last else "relu",
                                kernel_constraint=kc))
        if not last and net.hidden_drop:
            seq.append(layers.Dropout(net.hidden_drop))
    model = models.Sequential(seq)
    lr = (net.lr if schedule is None
          else getattr(optimizers.schedules, schedule)(net.lr, **SCHEDULES[schedule]))
    opt = (optimizers.SGD(lr, momentum=net.momentum) if net.optimizer == "sgd"
           else optimizers.Adam(lr))
    loss = ("sparse_categorical_crossentropy" if net.out_act == "softmax"
            else "binary_crossentropy")
    model.compile(optimizer=opt, loss=loss)
    model.set_weights(net.weights)
    return model


def train_samples_per_s(net, x, y, threads, epochs, schedule=None,
                        policy="float32", unfused=False):
    """unfused: update the Dense kernels in a pass after the backward, not
    in their weight-gradient GEMMs (the same bits; for the paired ratio)."""
    import dropout_engine as de
    de.set_num_threads(threads)
    model = _model(net, schedule, policy)
    model.optimizer._unfused_update = unfused
    model.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)  # warm-up
    best = np.inf
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=net.batch, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def predictor(net, threads, quantize=None):
    """model.predict of the net, after model.quantize(quantize) if given."""
    import dropout_engine as de
    de.set_num_threads(threads)
    model = _model(net)
    if quantize:
        model.quantize(quantize)
    return model.predict
