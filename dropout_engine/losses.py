"""Keras's five losses, from probabilities (as Keras's defaults).

Values follow Keras 3 (predictions clipped to [1e-7, 1 - 1e-7], BCE and the
regression losses averaged over the last axis, CCE on predictions
renormalised to sum 1), then averaged over the batch.  In training, when
the model's output activation is softmax (CCE, sparse CCE) or sigmoid (BCE),
the loss's gradient is taken through the activation in the fused, stable
form ``p - y``; the reported value is still Keras's.  ``from_logits=True``
is not supported (put the activation on the last layer instead).

Calling a loss object (or function) on numpy arrays runs the same C code
the training loop does.
"""
from . import _net, _registry, _validation
from ._loss_kinds import BCE, CCE, MAE, MSE, SCCE  # noqa: F401 (losses.SCCE ...)


class Loss:
    """Base class: ``loss(y_true, y_pred)`` is the batch mean (a float)."""
    kind = None
    default_name = None

    def __init__(self, name=None, reduction="sum_over_batch_size", from_logits=False):
        if from_logits:
            raise NotImplementedError(
                f"{type(self).__name__}(from_logits=True) is not supported: use "
                "a softmax/sigmoid activation on the last layer (its gradient is "
                "fused with the loss, so it is just as stable)")
        if reduction != "sum_over_batch_size":
            raise NotImplementedError(f"reduction={reduction!r} is not supported; "
                                      "only 'sum_over_batch_size'")
        self.name = name or self.default_name

    def __call__(self, y_true, y_pred, sample_weight=None):
        p, t = _validation.pred_true(y_true, y_pred, self.kind == SCCE)
        sw = _validation.sample_weights(sample_weight, None, t)
        return _net.loss_sum(self.kind, p, t, sw) / p.shape[0]

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _loss(cls_name, kind, name):
    return type(cls_name, (Loss,), {"kind": kind, "default_name": name})


MeanSquaredError = _loss("MeanSquaredError", MSE, "mean_squared_error")
MeanAbsoluteError = _loss("MeanAbsoluteError", MAE, "mean_absolute_error")
BinaryCrossentropy = _loss("BinaryCrossentropy", BCE, "binary_crossentropy")
CategoricalCrossentropy = _loss("CategoricalCrossentropy", CCE,
                                "categorical_crossentropy")
SparseCategoricalCrossentropy = _loss("SparseCategoricalCrossentropy", SCCE,
                                      "sparse_categorical_crossentropy")

_NAMES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def _function(cls):
    def fn(y_true, y_pred):
        """Per-batch mean of the loss (see the module docstring)."""
        return cls()(y_true, y_pred)
    fn.loss_class = cls
    return fn


mean_squared_error = mse = _function(MeanSquaredError)
mean_absolute_error = mae = _function(MeanAbsoluteError)
binary_crossentropy = _function(BinaryCrossentropy)
categorical_crossentropy = _function(CategoricalCrossentropy)
sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy)
for _n in ("mean_squared_error", "mean_absolute_error", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy"):
    globals()[_n].__name__ = _n


serialize = _registry.serialize


def get(identifier):
    """A Loss from a name ('mse'), one of this module's functions, a config
    dict or an instance.  (Custom loss functions are not supported: the loss
    runs inside the C training loop.)"""
    if callable(identifier) and hasattr(identifier, "loss_class"):
        return identifier.loss_class(name=identifier.__name__)
    return _registry.resolve(identifier, "loss", Loss, _NAMES,
                             make=lambda cls, name: cls(name=name))
