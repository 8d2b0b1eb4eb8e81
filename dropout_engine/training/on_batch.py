"""Keras 3's batch-at-a-time entries: ``train_on_batch``, ``test_on_batch``,
``predict_on_batch``, and calling the model on an array (``model(x,
training=True)``).

``train_on_batch`` is one step of fit's C loop on the rows given: one call
of the net fit trains with (gather, forward, loss, backward, update, in C
without the GIL).  The net keeps its training setup and arena from call to
call (a smaller batch reuses a larger arena, as fit's last batch does), so
a loop of calls allocates no C memory after the first.  The optimizer's
iteration count advances by one per call, and it keys the dropout masks as
in fit: N calls on the consecutive batches of (x, y) give the weights of
``fit(x, y, batch_size=B, shuffle=False)`` bit for bit.

What these use of a model: the Trainer's interface (``_xy``,
``_metric_names``, ``_train_net``, ``_evaluate``, see trainer.py), the
Trainer's lock (one training at a time), and for calls ``_x``, ``_net``
and ``_refuse_quantized``.
"""
import numpy as np

from .. import _validation, seeding


def logs_result(logs, return_dict):
    """What evaluate and the *_on_batch methods return, as Keras's: the
    logs dict, or the loss alone (a float) without metrics, else the list
    [loss, *metrics]."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def train_on_batch(model, x, y, sample_weight, class_weight, return_dict):
    """``model.train_on_batch``: one optimizer step on (x, y); the loss
    (with the regularization penalty) and metrics of the batch as computed
    before the update, as Keras's."""
    model._refuse_quantized("train_on_batch")
    model._require_compiled("train_on_batch")
    lock = model._trainer._lock
    if not lock.acquire(blocking=False):
        raise RuntimeError(f"Model '{model.name}' is already being trained "
                           "(fit is running in another thread)")
    try:
        x, t = model._xy(x, y)
        sw = _validation.sample_weights(sample_weight, class_weight, t)
        n = x.shape[0]
        # Keep a larger arena than this batch needs (the C loop trains a
        # batch shorter than its arena, as fit's last one).
        net = model._train_net(max(n, model._net.training_batch()), t.shape[1],
                               sw is not None)
        names = model._metric_names()
        stats = np.empty((1, len(names)), np.float32)
        done = net.train(x, t, np.arange(n, dtype=np.int64), 0, 1, stats, sw)
        logs = {k: float(v) for k, v in zip(names, stats[0])}
    finally:
        lock.release()
    if done == 0:
        raise FloatingPointError(
            f"train_on_batch: the loss became {logs['loss']}; the batch was not "
            "applied and the model keeps its weights (try a lower learning rate)")
    return logs_result(logs, return_dict)


def test_on_batch(model, x, y, sample_weight, return_dict):
    """``model.test_on_batch``: the loss and metrics on (x, y), as evaluate."""
    model._require_compiled("test_on_batch")
    x, t = model._xy(x, y)
    sw = _validation.sample_weights(sample_weight, None, t)
    return logs_result(model._evaluate(x, t, sw, x.shape[0]), return_dict)


def call(model, x, training, chunk):
    """``model(x, training=...)``: inference (= predict) unless ``training``;
    then every Dropout (and GaussianDropout, AlphaDropout) draws as in
    training, fresh masks at each call (Keras's Monte-Carlo dropout; the
    package's seed stream makes them reproducible after set_random_seed)."""
    if training is None or not _validation.flag("training", training):
        return model.predict(x)
    model._refuse_quantized("calling the model with training=True")
    x = model._x(x, check_finite=False)
    # One dropout-active pass: the Monte-Carlo kernel with one sample (its
    # mean is that pass, bit for bit).
    return model._net.predict_mc(x, 1, seeding.next_seed(), chunk)[0]
