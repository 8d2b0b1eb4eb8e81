"""The normalization layers: BatchNormalization and LayerNormalization
(Keras 3 names, arguments and defaults).

Inside a model each one runs in the C layer step of the Dense before it:
between the bias and the activation (``Dense(64) -> BatchNormalization()
-> Activation("relu") -> Dropout(0.5)``), or after the activation when the
Dense has one (``Dense(64, activation="relu") -> BatchNormalization()``),
always before that layer's dropout (see ``_plan``).  Training normalises
with the batch's statistics (BN: each feature over the batch, biased
variance, as Keras) and moves BN's ``moving_mean``/``moving_variance`` by
Keras's rule ``moving = moving * momentum + batch * (1 - momentum)`` inside
the C loop; inference (predict, evaluate, validation) uses the moving
statistics, one affine map per feature.  LayerNormalization normalises
each row over its features, the same in training and inference.

Weights, in Keras's order: ``gamma`` (when ``scale``), ``beta`` (when
``center``), then BN's ``moving_mean`` and ``moving_variance``, which are
non-trainable (``non_trainable_weights``; the optimizer never updates them).
"""
import numpy as np

from .. import _validation, constraints, initializers, regularizers
from .._validation import is_int
from .base import Layer

BATCH, LAYER = 1, 2      # DE_NORM_BATCH, DE_NORM_LAYER (engine.h)


def _feature_axis(axis, where):
    """Keras's axis for [batch, features] inputs: -1 or 1 (or a list of one
    of them, as a built LayerNormalization's config holds)."""
    ax = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if not is_int(ax) or ax not in (-1, 1):
        raise ValueError(f"{where}: only axis=-1 (the features of [batch, features] "
                         f"inputs) is supported, got axis={axis!r}")
    return axis


def _flag(where, name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {v!r}")
    return bool(v)


class _Normalization(Layer):
    """What both layers share: gamma/beta, their initializers, regularizers
    and constraints, and the description the C layer step takes."""
    _kind = 0

    def __init__(self, axis, epsilon, center, scale, beta_initializer,
                 gamma_initializer, beta_regularizer, gamma_regularizer,
                 beta_constraint, gamma_constraint, **kwargs):
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        self.axis = _feature_axis(axis, where)
        self.epsilon = _validation.real(f"{where}: epsilon", epsilon, strict=True)
        self.center = _flag(where, "center", center)
        self.scale = _flag(where, "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    @staticmethod
    def _array(init, dim):
        return np.ascontiguousarray(init((dim,)), np.float32)

    def build(self, input_dim):
        super().build(input_dim)
        if self.scale:
            self.gamma = self._array(self.gamma_initializer, input_dim)
        if self.center:
            self.beta = self._array(self.beta_initializer, input_dim)

    @property
    def trainable_weights(self):
        return [w for w in (self.gamma, self.beta) if w is not None]

    @property
    def non_trainable_weights(self):
        return []

    @property
    def weights(self):
        return self.trainable_weights + self.non_trainable_weights

    @property
    def weight_names(self):
        """Names of ``weights``, in order (the model file's tensor names)."""
        return ([n for n, on in (("gamma", self.scale), ("beta", self.center)) if on]
                + self._stat_names)

    _stat_names = []

    def _params(self):
        """(weight, regularizer, constraint) of the trained weights, in the
        C layer's order (gamma, beta)."""
        return [(w, reg, con) for w, reg, con in (
            (self.gamma, self.gamma_regularizer, self.gamma_constraint),
            (self.beta, self.beta_regularizer, self.beta_constraint)) if w is not None]

    def _c_norm(self, post):
        """The binding's description of this normalisation (de_norm_t);
        post: it comes after the Dense's activation."""
        return {"kind": self._kind, "post": bool(post), "epsilon": self.epsilon,
                "gamma": self.gamma, "beta": self.beta}

    def get_config(self):
        return dict(
            super().get_config(), axis=self.axis, epsilon=self.epsilon,
            center=self.center, scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=constraints.serialize(self.beta_constraint),
            gamma_constraint=constraints.serialize(self.gamma_constraint))


class BatchNormalization(_Normalization):
    """Normalise each feature with the batch's mean and variance in training
    and the moving averages at inference: ``gamma * (x - mean) /
    sqrt(var + epsilon) + beta`` (Keras 3's BatchNormalization).

    Args:
        axis: -1 (or 1): the features of [batch, features] inputs.
        momentum: in [0, 1], of the moving averages.
        epsilon: > 0, added to the variance.
        center, scale: learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer, beta_regularizer, gamma_regularizer,
        beta_constraint, gamma_constraint: as Keras's.
        renorm, synchronized: only False (Keras refuses ``synchronized``
        outside TensorFlow; batch renormalization is not implemented).

    Example:
        >>> Sequential([Input((20,)), Dense(64), BatchNormalization(),
        ...             Activation("relu"), Dropout(0.5), Dense(1)])
    """
    _base = "batch_normalization"
    _kind = BATCH
    _stat_names = ["moving_mean", "moving_variance"]

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(axis, epsilon, center, scale, beta_initializer,
                         gamma_initializer, beta_regularizer, gamma_regularizer,
                         beta_constraint, gamma_constraint, **kwargs)
        where = f"Layer '{self.name}'"
        if synchronized:
            raise ValueError(f"{where}: Argument synchronized=True is only supported "
                             "with the TensorFlow backend.")
        if renorm:
            raise NotImplementedError(f"{where}: renorm=True (batch renormalization) "
                                      "is not supported")
        self.momentum = _validation.real(f"{where}: momentum", momentum)
        if self.momentum > 1.0:
            raise ValueError(f"{where}: momentum must be in [0, 1], got {momentum}")
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.renorm, self.renorm_clipping = False, renorm_clipping
        self.renorm_momentum, self.synchronized = renorm_momentum, False
        self.moving_mean = self.moving_variance = None

    def build(self, input_dim):
        super().build(input_dim)
        self.moving_mean = self._array(self.moving_mean_initializer, input_dim)
        self.moving_variance = self._array(self.moving_variance_initializer, input_dim)

    @property
    def non_trainable_weights(self):
        return [] if self.moving_mean is None else [self.moving_mean,
                                                    self.moving_variance]

    def _c_norm(self, post):
        return dict(super()._c_norm(post), momentum=self.momentum,
                    moving_mean=self.moving_mean, moving_var=self.moving_variance)

    def get_config(self):
        return dict(
            super().get_config(), momentum=self.momentum,
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(
                self.moving_variance_initializer),
            synchronized=False, renorm=False, renorm_clipping=self.renorm_clipping,
            renorm_momentum=self.renorm_momentum)


class LayerNormalization(_Normalization):
    """Normalise each sample over its features: ``gamma * (x - mean) /
    sqrt(var + epsilon) + beta`` with the row's mean and (biased) variance,
    in training and inference alike (Keras 3's LayerNormalization).

    Args:
        axis: -1 (or 1, or [-1]): the features of [batch, features] inputs.
        epsilon: > 0, added to the variance.
        center, scale: learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, beta_regularizer,
        gamma_regularizer, beta_constraint, gamma_constraint: as Keras's.
        rms_scaling: only False (deprecated in Keras; use RMS normalization).
    """
    _base = "layer_normalization"
    _kind = LAYER

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if kwargs.pop("rms_scaling", False):
            raise NotImplementedError(
                f"Layer '{kwargs.get('name') or 'layer_normalization'}': "
                "rms_scaling=True (deprecated in Keras) is not supported")
        super().__init__(axis, epsilon, center, scale, beta_initializer,
                         gamma_initializer, beta_regularizer, gamma_regularizer,
                         beta_constraint, gamma_constraint, **kwargs)

    def get_config(self):
        return dict(super().get_config(), rms_scaling=False)
