"""Metrics: accuracy (binary, categorical, sparse categorical), mse, mae.

``metrics=["accuracy"]`` picks the variant as Keras 3 does, from the shapes:
a single output unit -> binary accuracy (threshold 0.5); integer labels for
several units -> sparse categorical; else categorical.  In fit the metrics
are computed in C on each training batch's (dropout-perturbed) output, as
Keras does; logs carry the running mean over the epoch.
"""
import numpy as np

from . import _net, _registry, _validation

BINARY_ACC, CAT_ACC, SPARSE_CAT_ACC, MSE, MAE = range(5)


class Metric:
    """A running mean of a per-sample value: update_state / result /
    reset_state, as Keras's."""
    kind = None
    default_name = None

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self):
        self._total, self._count = 0.0, 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch; with ``sample_weight`` ([n], >= 0) the mean is
        weighted, as Keras's: sum(w_i * v_i) / sum(w_i)."""
        p, t = _validation.pred_true(y_true, y_pred, self.kind == SPARSE_CAT_ACC)
        sw = _validation.sample_weights(sample_weight, None, t)
        self._total += _net.metric_sum(self.kind, p, t, sw)
        self._count += p.shape[0] if sw is None else float(sw.sum(dtype=np.float64))

    def result(self):
        return self._total / self._count if self._count else 0.0

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _metric(cls_name, kind, name):
    return type(cls_name, (Metric,), {"kind": kind, "default_name": name})


BinaryAccuracy = _metric("BinaryAccuracy", BINARY_ACC, "binary_accuracy")
CategoricalAccuracy = _metric("CategoricalAccuracy", CAT_ACC, "categorical_accuracy")
SparseCategoricalAccuracy = _metric("SparseCategoricalAccuracy", SPARSE_CAT_ACC,
                                    "sparse_categorical_accuracy")
MeanSquaredError = _metric("MeanSquaredError", MSE, "mean_squared_error")
MeanAbsoluteError = _metric("MeanAbsoluteError", MAE, "mean_absolute_error")

_NAMES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier, *, n_outputs=None, sparse=False):
    """A Metric from a name, a config dict or an instance.  "accuracy" /
    "acc" need ``n_outputs`` and ``sparse`` (labels are class indices)."""
    if identifier in ("accuracy", "acc"):
        if n_outputs == 1:
            cls = BinaryAccuracy
        elif sparse:
            cls = SparseCategoricalAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    return _registry.resolve(identifier, "metric", Metric, _NAMES,
                             make=lambda cls, name: cls(name=name))
