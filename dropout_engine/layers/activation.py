"""The activation layers: Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax
(Keras 3 names and defaults); each fuses into the Dense before it."""
import warnings

import numpy as np

from .. import activations, constraints, initializers, regularizers
from .._validation import is_int
from .base import Layer


class Activation(Layer):
    """Apply an activation (a name or function of ``activations``, as
    Dense's ``activation=``) to its input.  Inside a model it fuses into
    the Dense before it (see ``Sequential``)."""
    _base = "activation"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.resolve(activation, f"Layer '{self.name}'")

    def _act(self):
        """The activation the C layer runs (activations.Act)."""
        return activations.named(self.activation)

    def _call(self, x, training):
        return activations.get(self.activation)(x)

    def get_config(self):
        return dict(super().get_config(), activation=self.activation)


class ReLU(Layer):
    """Keras's ReLU layer: ``max(x, 0)``, or with arguments
    ``negative_slope * (x - threshold)`` for x <= threshold and
    ``min(x, max_value)`` above it.

    Args:
        max_value: number >= 0 or None (no clipping).
        negative_slope: number >= 0.
        threshold: number >= 0.
    """
    _base = "re_lu"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self._c = activations.relu_act(negative_slope, max_value, threshold,
                                       f"Layer '{self.name}'")
        self.max_value, self.negative_slope, self.threshold = \
            max_value, negative_slope, threshold

    def _act(self):
        return self._c

    def _call(self, x, training):
        return activations.relu(x, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        return dict(super().get_config(), max_value=self.max_value,
                    negative_slope=self.negative_slope, threshold=self.threshold)


class LeakyReLU(Layer):
    """x for x > 0, ``negative_slope * x`` otherwise (Keras 3's default
    slope 0.3; the function ``activations.leaky_relu``'s is 0.2).

    Args:
        negative_slope: number >= 0 (Keras 2's ``alpha=`` is accepted, with
            Keras's deprecation warning).
    """
    _base = "leaky_re_lu"

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.")
        super().__init__(**kwargs)
        self._c = activations.leaky_act(negative_slope, f"Layer '{self.name}'")
        self.negative_slope = negative_slope

    def _act(self):
        return self._c

    def _call(self, x, training):
        return activations.leaky_relu(x, self.negative_slope)

    def get_config(self):
        return dict(super().get_config(), negative_slope=self.negative_slope)


class ELU(Layer):
    """x for x > 0, ``alpha * (e^x - 1)`` otherwise.

    Args:
        alpha: a finite number (Keras's default 1.0).
    """
    _base = "elu"

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self._c = activations.elu_act(alpha, f"Layer '{self.name}'")
        self.alpha = alpha

    def _act(self):
        return self._c

    def _call(self, x, training):
        return activations.elu(x, self.alpha)

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha)


class Softmax(Layer):
    """Softmax over the features.

    Args:
        axis: -1 (or 1, the same axis of [batch, features] inputs).
    """
    _base = "softmax"

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        ax = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if not is_int(ax) or ax not in (-1, 1):
            raise ValueError(f"Layer '{self.name}': only axis=-1 (the features of "
                             f"[batch, features] inputs) is supported, got axis={axis!r}")
        self.axis = axis

    def _act(self):
        return activations.named("softmax")

    def _call(self, x, training):
        ax = self.axis[0] if isinstance(self.axis, (list, tuple)) else self.axis
        return activations.softmax(x, axis=ax)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


class PReLU(Layer):
    """x for x > 0, ``alpha * x`` otherwise, with ``alpha`` a trained weight
    per feature (Keras's PReLU; the optimizer updates it like a bias).

    Args:
        alpha_initializer, alpha_regularizer, alpha_constraint: as Keras's
            (default "Zeros": the layer starts as relu).
        shared_axes: only None (inputs are [batch, features]).
    """
    _base = "p_re_lu"
    _ndim, _has_weights = 2, True      # one alpha per feature of [batch, features]

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if shared_axes is not None:
            raise NotImplementedError(f"Layer '{self.name}': shared_axes is not "
                                      "supported (inputs are [batch, features]: one "
                                      "alpha per feature)")
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        self.shared_axes = None
        self.alpha = None

    def build(self, input_dim):
        super().build(input_dim)
        self.alpha = np.ascontiguousarray(self.alpha_initializer((input_dim,)),
                                          np.float32)

    def _act(self):
        return activations.Act(activations.PRELU, prelu=self)

    def _call(self, x, training):
        """Keras's relu(x) - alpha * relu(-x) (NaN and inf as Keras's)."""
        return np.maximum(x, 0) - self.alpha * np.maximum(-x, 0)

    @property
    def weights(self):
        return [] if self.alpha is None else [self.alpha]

    weight_names = ("alpha",)

    def get_config(self):
        return dict(
            super().get_config(),
            alpha_initializer=initializers.serialize(self.alpha_initializer),
            alpha_regularizer=regularizers.serialize(self.alpha_regularizer),
            alpha_constraint=constraints.serialize(self.alpha_constraint),
            shared_axes=None)
