"""scikeras's KerasClassifier / KerasRegressor over our models (Sequential or functional).

Code written for scikeras runs with the imports changed:

    from dropout_engine import keras                     # was: import keras
    from dropout_engine.sklearn import KerasClassifier   # was: scikeras.wrappers

    def get_clf(meta, hidden_layer_sizes, dropout):
        model = keras.models.Sequential()
        model.add(keras.layers.Input(shape=(meta["n_features_in_"],)))
        for size in hidden_layer_sizes:
            model.add(keras.layers.Dense(size, activation="relu"))
            model.add(keras.layers.Dropout(dropout))
        model.add(keras.layers.Dense(1, activation="sigmoid"))
        return model

    clf = KerasClassifier(model=get_clf, loss="binary_crossentropy",
                          optimizer="adam", optimizer__learning_rate=0.1,
                          model__hidden_layer_sizes=(100,), model__dropout=0.5,
                          verbose=0)
    GridSearchCV(clf, {"model__dropout": [0, 0.5],
                       "optimizer__learning_rate": [0.05, 0.1]}).fit(X, y)

scikeras's rules, as its documentation gives them:
  - Parameters: scikeras's constructor arguments and defaults (optimizer
    "rmsprop", verbose 1, batch_size None, epochs 1, ...) and any other
    keyword argument; they are the instance's public attributes, so
    get_params, set_params, clone and grid searches see them all.
  - ``model`` is a function returning a Sequential (or a Sequential, or
    None in a subclass that defines ``_keras_build_fn``).  It is called with
    the keyword arguments it names (given bare, or as ``model__name``, which
    wins) and, when its signature names them or takes **kwargs: ``meta``
    (the fitted attributes: n_features_in_, X_shape_, X_dtype_, y_dtype_,
    y_ndim_, target_type_, classes_ and n_classes_ (classifier),
    n_outputs_, n_outputs_expected_, feature_encoder_, target_encoder_),
    ``compile_kwargs`` (the optimizer as an instance built with the
    ``optimizer__`` parameters, loss, metrics, ...: ``model.compile(
    **compile_kwargs)`` works) and ``params`` (get_params()).  A model it
    returns compiled is kept as it is; one it returns uncompiled is
    compiled with compile_kwargs.
  - Prefixes route parameters: ``model__``, ``fit__`` (Model.fit),
    ``predict__`` (Model.predict), ``compile__``, ``optimizer__``,
    ``loss__``, ``metrics__``, ``callbacks__`` (a class given as optimizer,
    loss, metrics or callbacks is built with them; see ``_param_routing``),
    ``score__`` (the scorer).  Bare parameters that Model.fit takes
    (batch_size, epochs, verbose, validation_split, shuffle, ...) go to
    fit, batch_size and verbose to predict too; a batch_size of -1 means
    the whole data set.
  - warm_start, partial_fit, initialize, current_epoch, sample_weight
    (zero-weight rows are dropped), class_weight (classifier; "balanced"
    too), and the data transformers: the ``target_encoder`` and
    ``feature_encoder`` properties, which a subclass may override, fitted
    as target_encoder_ / feature_encoder_.

Ours, differently:
  - an uncompiled model with loss=None gets a default loss (binary
    cross-entropy for a 1-unit output, sparse categorical cross-entropy
    for more; mse for the regressor) where scikeras raises;
  - a bare keyword argument that neither the model function nor
    fit/compile/predict take raises a TypeError naming it;
  - the classifier's default target encoder takes 1-d labels of any type
    and gives the model class indices, one-hot rows or 0/1 floats,
    whichever its compiled loss and output width want;
  - random_state seeds the package's seed stream for build and fit (see
    ``dropout_engine.sklearn``).
"""
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted,
                                      validate_data)

from . import losses, optimizers
from ._param_routing import instantiate, route, signature_names
from ._sklearn_common import _FittedModel, _seeded
from ._sklearn_targets import _ClassifierLabelEncoder, _RegressorTargetEncoder
from .callbacks.base import Callback
from .models import Model

__all__ = ["KerasClassifier", "KerasRegressor"]

# Bare parameters that go to Model.fit / Model.predict / Model.compile.
_FIT_KWARGS = frozenset({"batch_size", "epochs", "verbose", "validation_split",
                         "shuffle", "class_weight", "sample_weight",
                         "initial_epoch", "validation_steps",
                         "validation_batch_size", "validation_freq"})
_PREDICT_KWARGS = frozenset({"batch_size", "verbose", "steps"})
_COMPILE_KWARGS = frozenset({"optimizer", "loss", "metrics", "loss_weights",
                             "weighted_metrics", "run_eagerly"})
_PREFIXES = tuple(p + "__" for p in ("model", "fit", "compile", "predict",
                                     "optimizer", "loss", "metrics",
                                     "callbacks", "score"))


def _output_units(model):
    """The model's output width (once built; before, the units of its last
    Dense: the layers after it keep the width); None without one."""
    if model.built:
        return model._n_out
    for layer in reversed(model.layers):
        if hasattr(layer, "units"):
            return layer.units
    return None


def _loss_kind(loss):
    if isinstance(loss, type) and issubclass(loss, losses.Loss):
        return loss.kind
    return losses.get(loss).kind


class _KerasWrapper(_FittedModel, BaseEstimator):
    """What KerasClassifier and KerasRegressor share (scikeras's BaseWrapper)."""

    _fit_kwargs = _FIT_KWARGS
    _y_checks = {}

    def __init__(self, model=None, *, build_fn=None, warm_start=False,
                 random_state=None, optimizer="rmsprop", loss=None, metrics=None,
                 batch_size=None, validation_batch_size=None, verbose=1,
                 callbacks=None, validation_split=0.0, shuffle=True,
                 run_eagerly=False, epochs=1, **kwargs):
        self.model = model
        self.build_fn = build_fn
        self.warm_start = warm_start
        self.random_state = random_state
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.batch_size = batch_size
        self.validation_batch_size = validation_batch_size
        self.verbose = verbose
        self.callbacks = callbacks
        self.validation_split = validation_split
        self.shuffle = shuffle
        self.run_eagerly = run_eagerly
        self.epochs = epochs
        vars(self).update(kwargs)
        self._user_params = frozenset(kwargs)

    # ---------------------------------------------------------- parameters
    def _get_param_names(self):
        """The public attributes that are not fitted ones (scikeras): the
        constructor's arguments, the extra keyword arguments, and the
        routed parameters set_params added."""
        return sorted(k for k in vars(self)
                      if not k.startswith("_") and not k.endswith("_"))

    def set_params(self, **params):
        for key, value in params.items():
            if key.startswith(_PREFIXES):
                setattr(self, key, value)
                continue
            try:
                super().set_params(**{key: value})
            except ValueError:
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}: give "
                    f"it to the constructor ({type(self).__name__}({key}=...)) or "
                    f"route it ({', '.join(p + key for p in _PREFIXES[:2])}, ...)"
                    ) from None
        return self

    @property
    def initialized_(self):
        """True once fit or initialize built ``model_``."""
        return hasattr(self, "model_")

    @property
    def current_epoch(self):
        """Epochs trained so far (over warm-started fits and partial_fits)."""
        return len(getattr(self, "history_", {}).get("loss", []))

    @property
    def feature_encoder(self):
        """The transformer for X (identity); override to change it."""
        return FunctionTransformer()

    def _get_metadata(self):
        """``meta``: the fitted attributes (one trailing underscore)."""
        return {k: v for k, v in vars(self).items()
                if len(k) > 1 and k[-1] == "_" and k[-2] != "_" and k[0] != "_"}

    def _get_compile_kwargs(self):
        params = self.get_params()
        kw = {k: params[k] for k in _COMPILE_KWARGS if k in params}
        kw.update(route(params, "compile"))
        opt = kw.get("optimizer")
        if isinstance(opt, str):
            opt = type(optimizers.get(opt))
        kw["optimizer"] = instantiate(opt, route(params, "optimizer", strict=True),
                                      "optimizer")
        loss, loss_params = kw.get("loss"), route(params, "loss")
        if isinstance(loss, str) and loss_params:
            loss = type(losses.get(loss))
        kw["loss"] = instantiate(loss, loss_params, "loss")
        kw["metrics"] = instantiate(kw.get("metrics"), route(params, "metrics"),
                                    "metrics")
        if not isinstance(kw["metrics"], (type(None), list, tuple, dict)):
            kw["metrics"] = [kw["metrics"]]
        return kw

    # --------------------------------------------------------------- model
    def _build_fn(self):
        model, own = self.model, getattr(self, "_keras_build_fn", None)
        if model is None and self.build_fn is not None:
            warnings.warn("``build_fn`` will be renamed to ``model`` in a future "
                          "release (scikeras); use model=", stacklevel=4)
            model = self.build_fn
        if model is None:
            if own is None:
                raise ValueError(f"{type(self).__name__} needs model= (a function "
                                 "returning a Sequential), or a subclass that "
                                 "implements _keras_build_fn")
            return own
        if own is not None:
            raise ValueError("This class cannot implement ``_keras_build_fn`` if "
                             "using the `model` parameter")
        if isinstance(model, Model):
            return lambda: model
        if not callable(model):
            raise TypeError("model must be a function returning a Sequential or "
                            "functional Model, such a model or None, got "
                            f"{type(model).__name__}")
        return model

    def _build_keras_model(self):
        fn = self._build_fn()
        names, var_kw = signature_names(fn)
        takes = (lambda k: var_kw or k in names)
        fn_name = getattr(fn, "__name__", type(fn).__name__)
        params = self.get_params()
        args = {}
        for key in sorted(getattr(self, "_user_params", ())):
            if "__" in key:
                continue
            if takes(key):
                args[key] = params[key]
            elif key not in _FIT_KWARGS | _PREDICT_KWARGS | _COMPILE_KWARGS:
                raise TypeError(f"{type(self).__name__}: parameter {key!r} is not "
                                f"an argument of the model function {fn_name}, nor "
                                f"of fit, predict or compile (route it: model__"
                                f"{key}=, fit__{key}=, ...)")
        for key, value in route(params, "model", strict=True).items():
            if not takes(key):
                raise TypeError(f"{type(self).__name__}: model__{key} was given "
                                f"but the model function {fn_name} takes no "
                                f"argument {key!r}")
            args[key] = value
        for special, make in (("meta", self._get_metadata),
                              ("compile_kwargs", self._get_compile_kwargs),
                              ("params", self.get_params)):
            if takes(special):
                args[special] = make()
        model = fn(**args)
        if not isinstance(model, Model):
            raise TypeError(f"the model function {fn_name} must return a "
                            "Sequential or a functional Model, got "
                            f"{type(model).__name__}")
        return model

    def _ensure_compiled_model(self):
        if self.model_.compiled:
            return
        kw = self._get_compile_kwargs()
        if kw.get("loss") is None:
            kw["loss"] = self._default_loss(self.model_)
        self.model_.compile(**kw)

    def _check_model_compatibility(self):
        """scikeras's check: a loss given here must be the one the model was
        compiled with (a model compiled in the build function keeps its own)."""
        if getattr(self, "n_outputs_expected_", 1) != 1:
            raise ValueError(f"the target encoder expects {self.n_outputs_expected_} "
                             "model outputs; a Sequential has 1")
        if isinstance(self.loss, (str, losses.Loss, type)) and \
                _loss_kind(self.loss) != self.model_._loss_obj.kind:
            raise ValueError(f"loss={self.loss!r} but the model was compiled with "
                             f"loss={self.model_.loss!r}; data may not match the "
                             "loss function")

    def _initialize_callbacks(self):
        params = self.get_params()

        def make(destination):
            value = params.get(destination)
            if value is None:
                return []
            cbs = instantiate(value, route(params, destination), destination)
            if isinstance(cbs, dict):
                cbs = list(cbs.values())
            elif not isinstance(cbs, (list, tuple)):
                cbs = [cbs]
            flat = [c for cb in cbs for c in (cb if isinstance(cb, (list, tuple))
                                              else [cb])]
            for cb in flat:
                if not isinstance(cb, Callback):
                    raise TypeError(f"{destination} must be dropout_engine "
                                    "Callback instances or classes (a list, a dict "
                                    f"or one), got {type(cb).__name__}")
            return flat

        shared = make("callbacks")
        self._fit_callbacks = shared + make("fit__callbacks")
        self._predict_callbacks = shared + make("predict__callbacks")

    # ---------------------------------------------------------------- data
    def _validate(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype="numeric",
                             **self._y_checks)
        if reset:
            self.X_dtype_, self.X_shape_ = X.dtype, X.shape
            self.y_dtype_, self.y_ndim_ = y.dtype, y.ndim
            self.target_type_ = self._type_of_target(y)
        elif y.ndim != self.y_ndim_:
            raise ValueError(f"y has {y.ndim} dimensions, but this "
                             f"{type(self).__name__} expects {self.y_ndim_}")
        return X, y

    def _type_of_target(self, y):
        return type_of_target(y)

    @staticmethod
    def _sample_weights(X, y, sample_weight):
        sw = _check_sample_weight(sample_weight, X, dtype=np.float32,
                                  ensure_non_negative=True)
        if not sw.any():
            raise ValueError("No training samples had any weight; only zeros "
                             "were passed in sample_weight")
        keep = sw != 0
        return X[keep], y[keep], sw[keep]

    def _model_targets(self, t):
        return t

    def _initialize(self, X, y):
        X, y = self._validate(X, y, reset=True)
        self.target_encoder_ = self.target_encoder.fit(y)
        vars(self).update(getattr(self.target_encoder_, "get_metadata", dict)())
        self.feature_encoder_ = self.feature_encoder.fit(X)
        vars(self).update(getattr(self.feature_encoder_, "get_metadata", dict)())
        self.model_ = self._build_keras_model()
        self._initialize_callbacks()
        return X, y

    # ------------------------------------------------------------ training
    def initialize(self, X, y):
        """Build ``model_`` (and the encoders) without training."""
        with _seeded(self.random_state):
            self._initialize(X, y)
        return self

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Build a new model (unless warm_start) and train it on X, y.

        ``kwargs`` go to Model.fit (scikeras deprecates them in favour of
        ``fit__`` parameters); epochs comes from kwargs, else fit__epochs,
        else epochs.
        """
        epochs = kwargs.pop("epochs", getattr(self, "fit__epochs", self.epochs))
        initial_epoch = kwargs.pop("initial_epoch", 0)
        self._fit(X, y, sample_weight, self.warm_start, epochs, initial_epoch, kwargs)
        return self

    def partial_fit(self, X, y, sample_weight=None, **kwargs):
        """Train one more epoch, keeping the model and its history."""
        for key in ("epochs", "initial_epoch"):
            if key in kwargs:
                raise TypeError(f"Invalid argument `{key}` to `partial_fit`: "
                                "partial_fit always trains 1 epoch from the "
                                "current one")
        self._fit(X, y, sample_weight, True, 1, self.current_epoch, kwargs)
        return self

    def _fit(self, X, y, sample_weight, warm_start, epochs, initial_epoch, kwargs):
        with _seeded(self.random_state):
            if (self.warm_start or warm_start) and self.initialized_:
                X, y = self._validate(X, y, reset=False)
            else:
                X, y = self._initialize(X, y)
            self._ensure_compiled_model()
            sw = None
            if sample_weight is not None:
                X, y, sw = self._sample_weights(X, y, sample_weight)
            t = self._model_targets(self.target_encoder_.transform(y))
            X = np.asarray(self.feature_encoder_.transform(X), np.float32)
            self._check_model_compatibility()
            self._fit_keras_model(X, t, sw, warm_start, epochs, initial_epoch, kwargs)

    def _fit_keras_model(self, X, t, sw, warm_start, epochs, initial_epoch, kwargs):
        params = self.get_params()
        args = {k: params[k] for k in self._fit_kwargs if k in params}
        args.update(route(params, "fit"))
        args = {k: v for k, v in args.items() if not k.startswith("callbacks")}
        args.update(sample_weight=sw, epochs=initial_epoch + epochs,
                    initial_epoch=initial_epoch, **kwargs)
        for key in ("batch_size", "validation_batch_size"):
            if isinstance(args.get(key), int) and args[key] == -1:
                args[key] = X.shape[0]
        args["callbacks"] = self._fit_callbacks
        hist = self.model_.fit(X, t, **args)
        if not warm_start or not hasattr(self, "history_") or initial_epoch == 0:
            self.history_ = {}
        for key, values in hist.history.items():
            self.history_.setdefault(key, []).extend(values)

    # ---------------------------------------------------------- prediction
    def _predict_raw(self, X, **kwargs):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype="numeric")
        X = np.asarray(self.feature_encoder_.transform(X), np.float32)
        params = self.get_params()
        args = {k: params[k] for k in _PREDICT_KWARGS if k in params}
        args.update(route(params, "predict", strict=True))
        args = {k: v for k, v in args.items() if not k.startswith("callbacks")}
        args["callbacks"] = getattr(self, "_predict_callbacks", [])
        args.update(kwargs)
        if isinstance(args.get("batch_size"), int) and args["batch_size"] == -1:
            args["batch_size"] = X.shape[0]
        return self.model_.predict(X, **args)

    def predict(self, X, **kwargs):
        """Predictions for X (kwargs go to Model.predict)."""
        raw = self._predict_raw(X, **kwargs)      # NotFittedError before fit
        return self.target_encoder_.inverse_transform(raw)

    def score(self, X, y, sample_weight=None):
        """``scorer(y, predict(X))`` with the ``score__`` parameters."""
        return self.scorer(y, self.predict(X), sample_weight=sample_weight,
                           **route(self.get_params(), "score"))


class KerasClassifier(ClassifierMixin, _KerasWrapper):
    """scikeras's KerasClassifier over our Sequential (see the module
    docstring of ``dropout_engine._sklearn_keras`` for the rules).

    Args:
        model: a function returning a Sequential, compiled or not (it may
            take ``meta``, ``compile_kwargs``, ``params`` and any routed
            ``model__`` argument), a Sequential, or None in a subclass
            implementing ``_keras_build_fn``.
        optimizer, loss, metrics: as Model.compile takes them (names,
            instances, or classes built with ``optimizer__``, ``loss__``,
            ``metrics__`` parameters).
        class_weight: None, {label: weight} or "balanced"; multiplies the
            sample weights.
        warm_start, random_state, batch_size, validation_batch_size,
        verbose, callbacks, validation_split, shuffle, run_eagerly, epochs:
            as in scikeras; **kwargs: more parameters (see the module
            docstring).

    Attributes:
        model_, history_, classes_, n_classes_, target_type_,
        n_features_in_, X_shape_, X_dtype_, y_dtype_, y_ndim_, n_outputs_,
        n_outputs_expected_, target_encoder_, feature_encoder_.

    Example:
        >>> def build(meta, dropout=0.2):
        ...     return Sequential([Input((meta["n_features_in_"],)),
        ...                        Dense(60, activation="relu"), Dropout(dropout),
        ...                        Dense(1, activation="sigmoid")])
        >>> clf = KerasClassifier(build, loss="binary_crossentropy", epochs=100,
        ...                       model__dropout=0.2, verbose=0)
        >>> GridSearchCV(clf, {"model__dropout": [0.0, 0.2]}, cv=3).fit(x, y)
    """
    _fit_kwargs = _FIT_KWARGS - {"class_weight"}   # made into sample weights

    def __init__(self, model=None, *, build_fn=None, warm_start=False,
                 random_state=None, optimizer="rmsprop", loss=None, metrics=None,
                 batch_size=None, validation_batch_size=None, verbose=1,
                 callbacks=None, validation_split=0.0, shuffle=True,
                 run_eagerly=False, epochs=1, class_weight=None, **kwargs):
        super().__init__(
            model, build_fn=build_fn, warm_start=warm_start,
            random_state=random_state, optimizer=optimizer, loss=loss,
            metrics=metrics, batch_size=batch_size,
            validation_batch_size=validation_batch_size, verbose=verbose,
            callbacks=callbacks, validation_split=validation_split,
            shuffle=shuffle, run_eagerly=run_eagerly, epochs=epochs, **kwargs)
        self.class_weight = class_weight

    scorer = staticmethod(accuracy_score)
    score = _KerasWrapper.score         # not ClassifierMixin's: score__ routing

    @property
    def target_encoder(self):
        """The transformer for y (labels <-> class indices); override to
        change it (it must take ``return_proba`` in inverse_transform)."""
        classes = getattr(self, "_classes_arg", None)
        return _ClassifierLabelEncoder("auto" if classes is None else classes)

    def _type_of_target(self, y):
        kind = type_of_target(y)
        classes = getattr(self, "_classes_arg", None)
        if kind == "binary" and classes is not None:
            kind = type_of_target(np.asarray(classes))
        return kind

    @staticmethod
    def _default_loss(model):
        return ("binary_crossentropy" if _output_units(model) == 1
                else "sparse_categorical_crossentropy")

    def _model_targets(self, t):
        """Class indices as the compiled model wants them: 0/1 floats for a
        1-unit output, indices for sparse categorical cross-entropy, one-hot
        rows otherwise.  Other encodings (a custom target_encoder) pass."""
        t = np.asarray(t)
        if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
            return t
        k = self.n_classes_
        if _output_units(self.model_) == 1:
            if k != 2:
                raise ValueError(f"the model has 1 output unit, which can learn 2 "
                                 f"classes; y has {k}")
            return t.astype(np.float32)
        if self.model_._loss_obj.kind == losses.SCCE:
            return t
        return np.eye(k, dtype=np.float32)[t]

    def _weighted(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        w = compute_sample_weight(class_weight=self.class_weight, y=y)
        return w if sample_weight is None else np.asarray(sample_weight, np.float64) * w

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Build a new model (unless warm_start) and train it on X, y."""
        self._classes_arg = None
        return super().fit(X, y, sample_weight=self._weighted(y, sample_weight),
                           **kwargs)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **kwargs):
        """Train one more epoch; ``classes`` (all of them) on the first call
        when this y lacks some."""
        self._classes_arg = (classes if classes is not None
                             else getattr(self, "classes_", None))
        return super().partial_fit(X, y, sample_weight=self._weighted(y, sample_weight),
                                   **kwargs)

    def predict_proba(self, X, **kwargs):
        """Class probabilities, float64 [n, n_classes]."""
        raw = self._predict_raw(X, **kwargs)
        return self.target_encoder_.inverse_transform(raw, return_proba=True)


class KerasRegressor(RegressorMixin, _KerasWrapper):
    """scikeras's KerasRegressor over our Sequential: as KerasClassifier
    (same arguments but class_weight), y numeric [n] or [n, outputs],
    predictions float64 in y's shape, scored by R^2."""
    _y_checks = {"y_numeric": True, "multi_output": True}

    scorer = staticmethod(r2_score)
    score = _KerasWrapper.score

    @property
    def target_encoder(self):
        """The transformer for y; override to change it."""
        return _RegressorTargetEncoder()

    @staticmethod
    def _default_loss(model):
        return "mse"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
