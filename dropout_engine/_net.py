"""The one Python caller of the binding for models, losses, metrics and
constraints: it owns each model's C net and runs the standalone loss,
metric, penalty and constraint kernels.

The binding (``_engine``) has four callers, each for one thing: this
module, ``ops`` and ``activations`` (the public kernel API) and ``_runtime``
(ISA, threads, build facts); ``tests/test_imports.py`` keeps it so.  What reaches C from
here has been validated by the public entry that called (``_validation``);
the binding only checks what would crash it.

``_plan`` describes a model's layers as the C layer list ``Net`` takes;
this module knows the C-facing attributes of the other objects: an
optimizer's ``_c_config()``, ``_iterations`` and ``_slots`` (through the
param descriptions ``_plan.Plan.params`` builds), a constraint's ``_c``.
"""
import contextlib

import numpy as np

from . import _engine


class Net:
    """A model's C network: predict, evaluate and, once set up, train.

    Args (those of ``_engine.Net``):
        n_in: input width.
        in_rate, in_inverted, in_seed: the input dropout.
        layers: the C layers, dicts as ``_plan.Plan.net`` builds them.

    ``reads(x)``, ``predict(x, chunk)``, ``predict_mc(x, samples, key,
    chunk)``, ``evaluate(x, t, loss, metric_kinds, chunk, sw)``,
    ``packed_bytes()`` and ``release_packed()`` are the binding's own methods, bound here once so that a batch-1 predict pays no
    extra Python call.  ``reads(x)``: whether predict reads x as is (a
    C-contiguous native float32 [m > 0, n_in] ndarray), the cheap check the
    caller makes first; predict refuses anything else.  The x, t and sw of
    the others must be validated float32 (``_validation``).
    """

    def __init__(self, n_in, in_rate, in_inverted, in_seed, layers):
        c = _engine.Net(n_in, in_rate, in_inverted, in_seed, layers)
        self._c = c
        self.reads, self.predict = c.reads, c.predict
        self.predict_mc, self.evaluate = c.predict_mc, c.evaluate
        # predict's packed kernel panels (see _engine.Net and read_only).
        self.packed_bytes, self.release_packed = c.packed_bytes, c.release_packed
        self._train_token = self._optimizer = self._allreduce = None

    # ---------------------------------------------------------- training
    def setup_training(self, optimizer, batch, t_cols, loss, metrics, weighted, *,
                       fused, params, allreduce=None):
        """Make the net ready to train ``batch``-row batches with this
        optimizer, loss and metric kinds (arena, param table); a no-op when
        the last setup was the same.

        Args:
            optimizer: the Optimizer whose ``_c_config()`` and step counter
                each ``train`` call hands to C.
            batch, t_cols: rows per batch, target columns.
            loss, metrics: the loss kind and the list of metric kinds.
            weighted: batches carry sample weights.
            fused: the loss gradient is taken through the output activation.
            params: the C param descriptions (``Plan.params``) of the weights
                and the optimizer's state arrays.
            allreduce: the distribution seam (``training.distribution``):
                None trains on this process's batches alone; else the
                distribution's all-reduce (``distribute._MPIAllreduce``):
                ``batch`` is then the global batch, this process trains on
                its slice of it, the C loop sums the gradients over the
                processes, and the weights and optimizer state start from
                rank 0's (broadcast here, at every setup).
        """
        # The arena holds this process's rows of a batch.
        rows = batch if allreduce is None else -(-batch // allreduce.size)
        token = (rows, t_cols, loss, tuple(metrics), optimizer, weighted)
        if self._train_token != token:
            self._c.train_setup(rows, t_cols, loss, fused, list(metrics), params,
                                weighted)
            self._train_token = token
        self._c.set_allreduce(None if allreduce is None
                              else allreduce.c_hook(self._c.shm_bytes()), batch)
        if allreduce is not None:
            arrays = [a for p in params for a in (p["w"], *p["slots"])]
            with writable(arrays):
                allreduce.broadcast(arrays + [optimizer._iterations])
        self._optimizer, self._allreduce = optimizer, allreduce

    def comm_seconds(self):
        """Seconds the C loop spent summing over the processes (MPI calls,
        a shared window's barriers and sums, waits for a late process)
        since this training setup's hook was set (every fit sets it)."""
        return self._c.comm_seconds()

    def training_batch(self):
        """The rows per batch of the current training setup (0 if none)."""
        return self._train_token[0] if self._train_token else 0

    def reset_training(self):
        """Forget the training setup (the optimizer's state arrays were
        rebuilt: the C param table points at the old ones)."""
        self._train_token = None

    def train(self, x, t, index, first, count, stats, sw):
        """Run batches ``first .. first+count-1`` of the rows ``index`` of
        ``x``/``t`` (batch j is ``index[j*batch : (j+1)*batch]``) in one C
        call without the GIL; per-batch [loss, metrics...] go to ``stats``.
        Returns how many batches were applied (fewer than ``count`` when a
        batch's loss was NaN/Inf: that batch was not applied)."""
        opt = self._optimizer
        if self._allreduce is None:
            return self._c.train(opt._c_config(), x, t, index, first, count,
                                 opt._iterations, stats, sw)
        with self._allreduce.watch("a training step"):
            return self._c.train(opt._c_config(), x, t, index, first, count,
                                 opt._iterations, stats, sw)


# ------------------------------------------------------------ weight writes
def read_only(w):
    """``w`` (a weight array), made read-only to its users and returned.

    Why: predict packs each float kernel's GEMM panels once and reuses them
    (``_engine.Net``), so a write the engine is not told of would leave the
    packed copy stale.  Keras's variables are not numpy-writable either; the
    sanctioned writes are ``set_weights`` (model or layer), ``load_weights``
    / ``load``, training, and ``write_weights`` here.  The engine's C code
    writes through its own pointers, which the flag does not guard."""
    w.flags.writeable = False
    return w


@contextlib.contextmanager
def writable(arrays):
    """The weight arrays ``arrays`` writable inside the block, read-only or
    not (their flags are restored after), and every holder of packed panels
    told to repack when it ends."""
    locked = [not a.flags.writeable for a in arrays]
    try:
        for a in arrays:
            a.flags.writeable = True
        yield arrays
    finally:
        for a, lock in zip(arrays, locked):
            a.flags.writeable = not lock
        weights_written()


def write_weights(own, values):
    """Copy ``values`` (checked by ``_validation.weight_values``) into the
    weight arrays ``own``, read-only or not, then tell every holder of
    packed panels to repack."""
    with writable(list(own)):
        for w, v in zip(own, values):
            np.copyto(w, v, casting="unsafe")


def bf16_round(w, bits):
    """bits[...] = w (float32) rounded to bfloat16 (uint16, same shape): the
    engine's one conversion (frame/bf16.h; ties to even, NaN kept)."""
    _engine.bf16_round(w.reshape(-1), bits.reshape(-1))


def weights_written():
    """Weights changed outside the engine's C code: packed copies of them
    are stale (every net repacks at its next large predict)."""
    _engine.weights_written()


# ------------------------------------------------- standalone objects' kernels
def loss_sum(kind, p, t, sw):
    """Sum over the rows of loss ``kind`` (weighted by ``sw`` when given);
    p, t validated float32 [n, k] (``_validation.pred_true``)."""
    return _engine.loss_rows(kind, p, t, None, False, 1.0, sw)


def metric_sum(kind, p, t, sw):
    """Sum over the rows of metric ``kind`` (weighted by ``sw`` when given)."""
    return _engine.metric_rows(kind, p, t, sw)


def penalty(params):
    """The regularization penalty of the weights in ``params`` (as
    ``Plan.params`` describes them), as the C loop adds it to the loss."""
    return sum(_engine.param_penalty(p) for p in params if p["l1"] or p["l2"])


def constrain(w, kind, max_value, axis):
    """Apply a weight constraint (a Constraint's ``_c``) to float32 C-contiguous
    ``w`` in place: the C loop's own code, run as an update with rate 0."""
    _engine.param_update({"kind": 0, "lr": 0.0}, 0,
                         {"w": w.reshape(w.shape[0], -1) if w.ndim > 1 else w,
                          "slots": [], "constraint": kind,
                          "max_value": max_value, "axis": axis},
                         np.zeros(w.size, np.float32))
