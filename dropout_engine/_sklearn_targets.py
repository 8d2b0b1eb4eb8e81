"""The default target encoders of KerasClassifier / KerasRegressor (scikeras's
data transformer interface: fit / transform / inverse_transform, and
get_metadata, whose entries become the estimator's fitted attributes and
the build function's ``meta``)."""
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets

from ._sklearn_common import _proba


class _ClassifierLabelEncoder(TransformerMixin, BaseEstimator):
    """KerasClassifier's default target_encoder: labels <-> class indices.

    Args:
        categories: "auto" (the classes are those of the y given to fit) or
            the array of all classes (partial_fit's ``classes``).
    """

    def __init__(self, categories="auto"):
        self.categories = categories

    def fit(self, y):
        auto = isinstance(self.categories, str) and self.categories == "auto"
        check_classification_targets(y)
        self.classes_ = np.unique(np.asarray(y) if auto else self.categories)
        if auto and len(self.classes_) < 2:
            raise ValueError("KerasClassifier needs samples of at least 2 classes "
                             f"in y; got 1 class ({self.classes_[0]!r})")
        self.n_classes_ = len(self.classes_)
        self.n_outputs_ = self.n_outputs_expected_ = 1
        return self

    def transform(self, y):
        y = np.asarray(y).reshape(-1)
        codes = np.searchsorted(self.classes_, y)
        unseen = (codes == len(self.classes_)) | (
            self.classes_[np.minimum(codes, len(self.classes_) - 1)] != y)
        if unseen.any():
            raise ValueError(f"y contains labels not seen in fit: "
                             f"{np.unique(y[unseen])[:5].tolist()} (the classes "
                             f"are {self.classes_[:10].tolist()})")
        return codes.astype(np.int64)

    def inverse_transform(self, y, return_proba=False):
        proba = _proba(y)
        return proba if return_proba else self.classes_[np.argmax(proba, axis=1)]

    def get_metadata(self):
        return {"classes_": self.classes_, "n_classes_": self.n_classes_,
                "n_outputs_": self.n_outputs_,
                "n_outputs_expected_": self.n_outputs_expected_}


class _RegressorTargetEncoder(TransformerMixin, BaseEstimator):
    """KerasRegressor's default target_encoder: y as float32 [n, outputs]
    for the model, predictions back in y's shape ([n] for a 1-d y)."""

    def fit(self, y):
        y = np.asarray(y)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.n_outputs_expected_ = 1
        self.y_ndim_ = y.ndim
        return self

    def transform(self, y):
        y = np.asarray(y, np.float32)
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if outputs != self.n_outputs_:
            raise ValueError(f"y has {outputs} outputs (shape {y.shape}); the "
                             f"estimator was fitted with {self.n_outputs_}")
        return y.reshape(len(y), -1)

    def inverse_transform(self, y):
        y = np.asarray(y, np.float64)
        return y.reshape(-1) if self.y_ndim_ == 1 else y

    def get_metadata(self):
        return {"n_outputs_": self.n_outputs_,
                "n_outputs_expected_": self.n_outputs_expected_}
