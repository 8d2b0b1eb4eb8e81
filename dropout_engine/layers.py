"""Layers: Input, Dense, Dropout, GaussianDropout, AlphaDropout, and the
activation layers Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras 3
names and defaults).

Layers hold configuration and, once built, their weights as float32 numpy
arrays that the C engine reads and updates in place (so ``get_weights`` /
``set_weights`` are copies, and the arrays are never rebound).  The model
fuses them into C layers ``dropout(act(x @ w + b))``; see
``Sequential``'s docstring for the sequences that fuse.

Our addition: ``Dropout(rate, *, scaling="inverted"|"weight")``.
"inverted" (Keras's and PyTorch's rule) scales kept units by 1/(1-rate) in
training and is the identity at inference; "weight" (the original paper's)
leaves training unscaled and multiplies activations by (1 - rate) at
inference, so the expected value matches.
"""

import warnings
import weakref

import numpy as np

from ._validation import is_int
from . import activations, constraints, initializers, regularizers, seeding

INT8_POLICY = "int8_from_float32"   # Keras's dtype policy after quantize("int8")
_counters = {}


def _unique_name(base):
    n = _counters.get(base, 0)
    _counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _shape_dim(shape, where):
    """The feature count of an input shape like (5,) or (None, 5)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if len(shape) == 2 and shape[0] is None:
        shape = shape[1:]
    if len(shape) != 1 or not isinstance(shape[0], (int, np.integer)) or shape[0] <= 0:
        raise ValueError(f"{where}: expected an input shape (features,) with "
                         f"features > 0, got {shape}")
    return int(shape[0])


class Layer:
    """Base class.  ``name`` defaults to the snake-case class name made
    unique ('dense', 'dense_1', ...)."""
    _base = "layer"

    def __init__(self, name=None, input_shape=None, input_dim=None, dtype=None,
                 trainable=True):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or _unique_name(self._base)
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"Layer '{self.name}': only float32 is supported, got dtype={dtype!r}")
        if not trainable:
            raise NotImplementedError(f"Layer '{self.name}': trainable=False is not supported")
        if input_dim is not None:
            input_shape = (input_dim,)
        self._input_dim = (None if input_shape is None
                           else _shape_dim(input_shape, f"Layer '{self.name}'"))
        self.input_dim = None   # set by build
        self._owners = weakref.WeakSet()   # the models holding this layer

    def build(self, input_dim):
        self.input_dim = input_dim

    @property
    def built(self):
        return self.input_dim is not None

    def output_dim(self, input_dim):
        return input_dim

    @property
    def weights(self):
        return []

    def count_params(self):
        return sum(w.size for w in self.weights)

    def get_config(self):
        c = {"name": self.name}
        if self._input_dim is not None:
            c["input_shape"] = [self._input_dim]
        return c

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class InputLayer(Layer):
    """What ``Input(shape)`` returns: declares the feature count."""
    _base = "input_layer"

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None):
        if shape is None:
            shape = input_shape
        if shape is None:
            raise ValueError("Input: a shape is required, e.g. Input(shape=(784,))")
        super().__init__(name=name, input_shape=shape)

    def get_config(self):
        return {"name": self.name, "shape": [self._input_dim]}


def Input(shape=None, batch_size=None, dtype=None, name=None):
    """Declare the model's input: ``Sequential([Input((784,)), Dense(10)])``."""
    if dtype not in (None, "float32", np.float32):
        raise ValueError(f"Input: only float32 is supported, got dtype={dtype!r}")
    return InputLayer(shape=shape, batch_size=batch_size, name=name)


class Dense(Layer):
    """``output = activation(input @ kernel + bias)``; kernel ``[in, units]``.

    Args:
        units: positive int, the output width.
        activation: None/'linear' or a name of ``activations`` ('relu',
            'leaky_relu', 'relu6', 'tanh', 'sigmoid', 'hard_sigmoid',
            'silu'/'swish', 'softplus', 'elu', 'selu', 'gelu', 'softmax'),
            or one of its functions (``activations.relu``), at Keras's
            defaults; stored as the name.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, kernel_constraint, bias_constraint: as in Keras.

    Example:
        >>> Dense(64, activation="relu", input_shape=(100,))
    """
    _base = "dense"

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        # Keras's dtype policy of a quantized Dense (what a saved quantized
        # model's config holds): built float, then quantized at once.
        self._int8_on_build = kwargs.get("dtype") == INT8_POLICY
        if self._int8_on_build:
            del kwargs["dtype"]
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        if not is_int(units):
            raise TypeError(f"{where}: units must be a positive int, got {units!r}")
        if units <= 0:
            raise ValueError(f"{where}: units must be a positive int, got {units}")
        if activity_regularizer is not None:
            raise NotImplementedError(f"{where}: activity_regularizer is not supported")
        self.units = int(units)
        self.activation = activations.resolve(activation, where)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = self.bias = None
        self._int8 = None

    def build(self, input_dim):
        super().build(input_dim)
        self.kernel = np.ascontiguousarray(
            self.kernel_initializer((input_dim, self.units)), np.float32)
        if self.use_bias:
            self.bias = np.ascontiguousarray(
                self.bias_initializer((self.units,)), np.float32)
        if self._int8_on_build:
            self.quantize("int8")

    def output_dim(self, input_dim):
        return self.units

    @property
    def weights(self):
        """[kernel, bias]; once quantized, Keras's [bias, kernel (int8),
        kernel_scale] (without bias when use_bias=False)."""
        if self.kernel is None:
            return []
        bias = [self.bias] if self.use_bias else []
        if self._int8 is not None:
            return bias + [self.kernel, self.kernel_scale]
        return [self.kernel] + bias

    @property
    def weight_names(self):
        """Names of ``weights``, in order (the model file's tensor names)."""
        bias = ["bias"] if self.use_bias else []
        return bias + ["kernel", "kernel_scale"] if self._int8 is not None \
            else ["kernel"] + bias

    @property
    def quantization_mode(self):
        """None, or "int8" after ``quantize("int8")`` (Keras's attribute)."""
        return None if self._int8 is None else "int8"

    @property
    def kernel_scale(self):
        return None if self._int8 is None else self._int8.kernel_scale

    def quantize(self, mode=None):
        """Quantize the kernel to int8 in place, as Keras's
        ``Dense.quantize``: per output column abs-max scales, inputs
        quantized per row at every call (see ``quantization``).  The float
        kernel is dropped; the layer is then inference-only."""
        self._check_quantize(mode)
        self._quantize()
        # Keras lets a layer of a built model be quantized on its own: the
        # models holding it rebuild their C nets to run it in int8.
        self._tell_owners([self])

    def _quantize(self):
        """quantize("int8") once _check_quantize passed."""
        from . import quantization
        self._int8 = quantization.Int8Kernel.from_float(self.kernel)
        self.kernel = self._int8.kernel

    @staticmethod
    def _tell_owners(layers):
        for model in {m for layer in layers for m in layer._owners}:
            model._layer_changed()

    def _check_quantize(self, mode):
        """Raise (as Keras) unless quantize(mode) can run; changes nothing."""
        from . import quantization
        if not self.built:
            raise ValueError("Cannot quantize a layer that isn't yet built. "
                             f"Layer '{self.name}' (of type 'Dense') is not built yet.")
        if self._int8 is not None:
            raise ValueError(f"Layer '{self.name}' is already quantized with "
                             f"dtype_policy='int8_from_float32'. Received: mode={mode}")
        quantization.check_mode(mode)
        if self.input_dim > quantization.MAX_INPUTS:
            raise ValueError(f"Layer '{self.name}': int8 quantization supports at most "
                             f"{quantization.MAX_INPUTS} inputs, the layer has "
                             f"{self.input_dim}")

    def get_config(self):
        return dict(
            super().get_config(), units=self.units, activation=self.activation,
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
            **({"dtype": INT8_POLICY} if self._int8 is not None else {}))


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the units during training.

    Args:
        rate: float in [0, 1), the fraction dropped.
        noise_shape: only None is supported.
        seed: int or None; None takes the next seed of the package's stream
            (``set_random_seed``).
        scaling: keyword-only, ours: "inverted" (default; Keras/PyTorch) or
            "weight" (the original paper: unscaled in training, times
            (1 - rate) at inference).
    """
    _base = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, *, scaling="inverted",
                 **kwargs):
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)):
            raise TypeError(f"{where}: rate must be a float in [0, 1), got {rate!r}")
        rate = float(rate)
        if not (0.0 <= rate < 1.0):
            raise ValueError(f"{where}: rate must be in [0, 1), got {rate}")
        if noise_shape is not None:
            raise NotImplementedError(f"{where}: noise_shape is not supported")
        if scaling not in ("inverted", "weight"):
            raise ValueError(f"{where}: scaling must be 'inverted' or 'weight', "
                             f"got {scaling!r}")
        if seed is not None and (not is_int(seed) or not 0 <= seed < 2 ** 64):   # C keeps it in a uint64
            raise ValueError(f"{where}: seed must be an int in [0, 2**64) or None, got {seed!r}")
        self.rate, self.scaling, self.seed = rate, scaling, seed
        self._seed = int(seed) if seed is not None else seeding.next_seed()

    def get_config(self):
        return dict(super().get_config(), rate=self.rate, seed=self.seed,
                    scaling=self.scaling)


class _NoiseDropout(Dropout):
    """Base of the dropout layers whose training noise is not a 0/1 mask
    (noise.c draws it in C, as a pass after the fused layer).  Only after a
    Dense layer, alone (not stacked with another dropout layer)."""
    noise = 0

    def __init__(self, rate, seed=None, **kwargs):
        if "scaling" in kwargs:
            raise TypeError(f"{type(self).__name__} takes no scaling argument")
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        c = super().get_config()
        del c["scaling"]
        return c


class GaussianDropout(_NoiseDropout):
    """Multiply by noise ~ N(1, rate / (1 - rate)) in training (Keras's
    GaussianDropout); the identity at inference.

    Args:
        rate: float in [0, 1), as Dropout's: the variance is rate / (1 - rate).
        seed: int or None (as Dropout's).
    """
    _base = "gaussian_dropout"
    noise = 1         # DE_NOISE_GAUSSIAN


class AlphaDropout(_NoiseDropout):
    """Dropout for SELU networks (Keras's AlphaDropout): in training, dropped
    units are set to SELU's negative saturation and the result is shifted and
    scaled so that mean and variance are kept; the identity at inference.

    Args:
        rate: float in [0, 1), the fraction dropped.
        noise_shape: only None is supported.
        seed: int or None (as Dropout's).
    """
    _base = "alpha_dropout"
    noise = 2         # DE_NOISE_ALPHA

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, noise_shape=noise_shape, **kwargs)


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


_CLASSES = {c.__name__: c for c in (InputLayer, Dense, Dropout, GaussianDropout,
                                     AlphaDropout, Activation, ReLU, LeakyReLU,
                                     PReLU, ELU, Softmax)}


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, where="layer"):
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES \
            or not isinstance(config.get("config"), dict):
        raise ValueError(f"{where}: expected {{'class_name': one of "
                         f"{sorted(_CLASSES)}, 'config': {{...}}}}, got {config!r:.200}")
    return _CLASSES[config["class_name"]].from_config(config["config"])


