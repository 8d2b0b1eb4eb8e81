"""scikit-learn estimators over the engine (scikit-learn is imported by this
module and the ones it imports only).

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from dropout_engine.sklearn import DropoutMLPClassifier
    clf = make_pipeline(StandardScaler(),
                        DropoutMLPClassifier((60,), dropout_rate=0.2, epochs=100))
    GridSearchCV(clf, {"dropoutmlpclassifier__dropout_rate": [0.0, 0.2, 0.5]},
                 cv=StratifiedKFold(5)).fit(x, y)

``DropoutMLPClassifier`` / ``DropoutMLPRegressor`` mirror scikit-learn's
MLPClassifier / MLPRegressor, with dropout after every hidden layer (and
optionally on the input).  ``KerasClassifier`` / ``KerasRegressor`` are
scikeras's wrappers (in ``_sklearn_keras``, with scikeras's arguments,
defaults and parameter routing): scikeras code runs with the import changed.

Decisions worth knowing:
  - ``alpha`` is scikit-learn's L2 term: ``0.5 * alpha * ||W||^2 /
    n_samples`` added to the mean loss (an ``L2(0.5 * alpha / n)`` kernel
    regularizer), so the same alpha means the same thing as in MLPClassifier.
  - ``random_state`` seeds weight init, dropout masks and shuffling through
    a seed stream of the fitting thread's own for the duration of ``fit``
    (``seeding.scoped``; the global stream, Python's ``random`` and numpy's
    global RNG are not touched).  Two fits with the same int give the same
    model on any thread count, also when they run at once in threads
    (joblib's threading backend, a Dask worker's threads).
  - In a Dask worker, a fit's engine threads are limited to the task's
    budget (``dropout_engine.dask.worker_threads``).
  - Fitted estimators pickle their architecture and weights, not the C net.
"""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from . import callbacks, constraints, optimizers, regularizers
from ._sklearn_common import _FittedModel, _proba, _seeded
from ._sklearn_keras import KerasClassifier, KerasRegressor
from .layers import Dense, Dropout, Input
from .models import Sequential

__all__ = ["DropoutMLPClassifier", "DropoutMLPRegressor", "KerasClassifier",
           "KerasRegressor"]

_OPTIMIZERS = {"adam": optimizers.Adam, "sgd": optimizers.SGD,
               "rmsprop": optimizers.RMSprop}


def _encode_labels(est, y):
    check_classification_targets(y)
    est.classes_, codes = np.unique(y, return_inverse=True)
    if len(est.classes_) < 2:
        raise ValueError(f"{type(est).__name__} needs samples of at least 2 "
                         f"classes in y; got 1 class ({est.classes_[0]!r})")
    return codes.reshape(-1)


def _predict_values(self, X):
    """A regressor's predict: float64, [n] when fitted on a 1-d y."""
    y = self._raw_predict(X).astype(np.float64)
    return y.ravel() if self._y_1d else y


class _DropoutMLP(_FittedModel, BaseEstimator):

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *,
                 dropout_rate=0.5, input_dropout=0.0, optimizer="adam",
                 learning_rate=0.001, batch_size=32, epochs=200, max_norm=None,
                 alpha=0.0001, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout_rate = dropout_rate
        self.input_dropout = input_dropout
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_norm = max_norm
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s <= 0
               for s in sizes):
            raise ValueError("hidden_layer_sizes must be positive ints, got "
                             f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _build(self, n_in, n_out, out_act, n_samples):
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        if not (isinstance(self.alpha, numbers.Real) and self.alpha >= 0):
            raise ValueError(f"alpha must be a float >= 0, got {self.alpha!r}")
        l2 = 0.5 * float(self.alpha) / n_samples

        def dense(units, act, name):
            return Dense(units, activation=act, name=name,
                         kernel_regularizer=regularizers.L2(l2) if l2 else None,
                         kernel_constraint=(constraints.MaxNorm(self.max_norm)
                                            if self.max_norm is not None else None))

        layers = [Input((n_in,))]
        if self.input_dropout:
            layers.append(Dropout(self.input_dropout, name="input_dropout"))
        for i, units in enumerate(self._hidden()):
            layers.append(dense(units, self.activation, f"hidden_{i}"))
            if self.dropout_rate:
                layers.append(Dropout(self.dropout_rate, name=f"dropout_{i}"))
        layers.append(dense(n_out, out_act, "output"))
        model = Sequential(layers, name=type(self).__name__)
        model.compile(optimizer=_OPTIMIZERS[self.optimizer](
            learning_rate=self.learning_rate), loss=self._loss)
        return model

    def _fit(self, x, t, n_out, out_act, stratify, sample_weight):
        sw = (None if sample_weight is None
              else _check_sample_weight(sample_weight, x, dtype=np.float32,
                                        ensure_non_negative=True))
        with _seeded(self.random_state) as seed:
            self.model_ = self._build(x.shape[1], n_out, out_act, x.shape[0])
            cbs, val = [], None
            if self.early_stopping:
                parts = train_test_split(
                    x, t, *([] if sw is None else [sw]),
                    test_size=self.validation_fraction, random_state=seed,
                    stratify=t if stratify else None)
                x, xv, t, tv = parts[:4]
                sw, swv = parts[4:] if sw is not None else (None, None)
                val = (xv, tv, swv)
                cbs.append(callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.n_iter_no_change,
                    restore_best_weights=True))
            hist = self.model_.fit(x, t, batch_size=self.batch_size,
                                   epochs=self.epochs, verbose=self.verbose,
                                   validation_data=val, callbacks=cbs,
                                   sample_weight=sw)
        self.loss_curve_ = list(hist.history.get("loss", []))
        self.n_iter_ = len(self.loss_curve_)
        if self.early_stopping:
            self.validation_loss_curve_ = list(hist.history.get("val_loss", []))
        return self


class DropoutMLPClassifier(ClassifierMixin, _DropoutMLP):
    """A multilayer perceptron classifier with dropout (scikit-learn API).

    Hidden layers ``Dense(units, activation)`` each followed by
    ``Dropout(dropout_rate)``; a softmax output trained with cross-entropy.

    Args:
        hidden_layer_sizes: units of each hidden layer.
        activation: 'relu', 'tanh', 'sigmoid', 'elu', 'selu', 'gelu' or 'linear'.
        dropout_rate: dropout after each hidden layer, in [0, 1).
        input_dropout: dropout on the input features, in [0, 1).
        optimizer: 'adam', 'sgd' or 'rmsprop'; learning_rate its step size.
        batch_size, epochs: as in Keras's fit.
        max_norm: None or a MaxNorm bound on each unit's incoming weights
            (Srivastava et al. use 3 or 4 with dropout).
        alpha: L2 penalty, scikit-learn's scaling (see the module docstring).
        early_stopping: hold out ``validation_fraction`` (stratified) and stop
            after ``n_iter_no_change`` epochs without a better validation
            loss, keeping the best weights.
        random_state: None, an int or a RandomState.
        verbose: 0 silent, 1 progress bar, 2 a line per epoch.

    Attributes:
        classes_, n_features_in_, loss_curve_ (training loss per epoch),
        n_iter_ (epochs run), model_ (the fitted ``Sequential``).

    Example:
        >>> clf = DropoutMLPClassifier((32,), dropout_rate=0.2, epochs=50)
        >>> clf.fit(x, y).predict_proba(x[:3])
    """
    _loss = "sparse_categorical_crossentropy"

    def fit(self, X, y, sample_weight=None):
        """Train on X, y; ``sample_weight`` [n] (>= 0) weighs each sample's
        loss as Keras's fit does (mini-batch SGD: a weight of 2 is not the
        same as a duplicated sample)."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        codes = _encode_labels(self, y)
        return self._fit(X, codes, len(self.classes_), "softmax", stratify=True,
                         sample_weight=sample_weight)

    def predict_proba(self, X):
        return _proba(self._raw_predict(X))

    def predict(self, X):
        p = self._raw_predict(X)
        return self.classes_[np.argmax(p, axis=1)]


class DropoutMLPRegressor(RegressorMixin, _DropoutMLP):
    """A multilayer perceptron regressor with dropout (scikit-learn API).

    As ``DropoutMLPClassifier`` (same arguments) with a linear output trained
    on the mean squared error; y may be [n] or [n, outputs].
    """
    _loss = "mse"

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True,
                             multi_output=True)
        self._y_1d = y.ndim == 1
        t = y.reshape(len(y), -1)
        return self._fit(X, t, t.shape[1], "linear", stratify=False,
                         sample_weight=sample_weight)

    predict = _predict_values

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
