"""Metrics: accuracy (binary, categorical, sparse categorical), mse, mae.

``metrics=["accuracy"]`` picks the variant as Keras 3 does, from the shapes:
a single output unit -> binary accuracy (threshold 0.5); integer labels for
several units -> sparse categorical; else categorical.  In fit the metrics
are computed in C on each training batch's (dropout-perturbed) output, as
Keras does; logs carry the running mean over the epoch.
"""
import numpy as np

from . import _engine

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
        if sample_weight is not None:
            raise NotImplementedError("sample_weight is not supported")
        p = np.ascontiguousarray(y_pred, np.float32)
        if p.ndim == 1:
            p = p[:, None]
        t = np.ascontiguousarray(y_true, np.float32).reshape(p.shape[0], -1)
        self._total += _engine.metric_rows(self.kind, p, t)
        self._count += p.shape[0]

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
_CLASSES = {c.__name__: c for c in _NAMES.values()}


def get(identifier, *, n_outputs=None, sparse=False):
    """A Metric from a name, a config dict or an instance.  "accuracy" /
    "acc" need ``n_outputs`` and ``sparse`` (labels are class indices)."""
    if isinstance(identifier, Metric):
        return identifier
    if identifier in ("accuracy", "acc"):
        if n_outputs == 1:
            cls = BinaryAccuracy
        elif sparse:
            cls = SparseCategoricalAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' "
                             f"or one of {sorted(_NAMES)}")
        return _NAMES[identifier](name=identifier)
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"Unknown metric {identifier!r}; expected a name or a "
                     "dropout_engine.metrics.Metric")
