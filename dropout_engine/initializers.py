"""Weight initializers with Keras 3's names, arguments, defaults and formulas.

    Zeros, Ones, Constant(value=0.0), Identity(gain=1.0),
    RandomNormal(mean=0.0, stddev=0.05, seed=None),
    RandomUniform(minval=-0.05, maxval=0.05, seed=None),
    TruncatedNormal(mean=0.0, stddev=0.05, seed=None)   (redrawn beyond 2 stddev),
    Orthogonal(gain=1.0, seed=None),
    VarianceScaling(scale=1.0, mode="fan_in", distribution="truncated_normal",
                    seed=None, input_axes=None, output_axes=None),
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal
    (seed=None, input_axes=None, output_axes=None).

By name (``Dense(4, kernel_initializer="orthogonal")``) as Keras 3 spells
them: the snake-case class names, and its aliases "normal" (RandomNormal),
"uniform" (RandomUniform), "zero", "one", "IdentityInitializer",
"OrthogonalInitializer".  The lower-case module attributes (``zeros``,
``random_normal``, ...) are the classes, as in Keras.

Draws come from numpy Generators: a seeded initializer gives the same values
at every call (as Keras's); an unseeded one takes the next seed of the
package's stream (see ``seeding``) at each call, so ``set_random_seed``
makes initial weights reproducible.  (Keras 3 fixes an unseeded
initializer's seed at construction, so one instance shared by two layers
gives both the same weights, with a warning; here they differ.)  Values are
float32 unless ``dtype=`` asks for another float type.
"""
import math
import numbers

import numpy as np

from . import _registry, seeding
from ._validation import describe, is_int


def _shape(shape):
    """A shape tuple of ints >= 0 (an int is a 1-D shape)."""
    if is_int(shape):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {describe(shape)}") from None
    if not all(is_int(d) and d >= 0 for d in shape):
        raise ValueError(f"shape must be a tuple of ints >= 0, got {shape}")
    return tuple(int(d) for d in shape)


def _dtype(dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise ValueError(f"initializers make float arrays (float32 by default), "
                         f"got dtype={dtype!r}")
    return dt


def _number(name, v, *, positive=False, nonneg=False):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) \
            or not math.isfinite(float(v)):
        raise TypeError(f"{name} must be a finite number, got {describe(v)}")
    if (positive and not v > 0) or (nonneg and not v >= 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v!r}")
    return v


class Initializer:
    """Base class: ``init(shape, dtype=None)`` returns a new float array."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Fill(Initializer):
    value = 0.0

    def __call__(self, shape, dtype=None):
        return np.full(_shape(shape), self.value, _dtype(dtype))


class Zeros(_Fill):
    """All zeros."""
    value = 0.0


class Ones(_Fill):
    """All ones."""
    value = 1.0


class Constant(_Fill):
    """Every element ``value`` (a scalar, as Keras allows)."""

    def __init__(self, value=0.0):
        self.value = _number("Constant: value", value)

    def get_config(self):
        return {"value": self.value}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only, as Keras)."""

    def __init__(self, gain=1.0):
        self.gain = _number("Identity: gain", gain)

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D "
                             f"matrices. Received: shape={shape} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


class _Random(Initializer):
    """Base of the random initializers: ``seed`` None or an int."""

    def __init__(self, seed=None):
        if seed is not None and not is_int(seed):
            raise TypeError(f"{type(self).__name__}: seed must be an int or None, "
                            f"got {describe(seed)}")
        self.seed = None if seed is None else int(seed)

    def _rng(self):
        return seeding.numpy_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


def _truncated(rng, shape):
    """Standard normals, each outside [-2, 2] redrawn (Keras's truncation)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out


class RandomNormal(_Random):
    """Normal(mean, stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean = _number("RandomNormal: mean", mean)
        self.stddev = _number("RandomNormal: stddev", stddev, nonneg=True)

    def __call__(self, shape, dtype=None):
        return self._rng().normal(self.mean, self.stddev, _shape(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal(mean, stddev) with values beyond two ``stddev`` of the mean
    redrawn, as Keras's (``stddev`` is that of the normal before
    truncation: the result's is 0.88 of it)."""

    def __call__(self, shape, dtype=None):
        z = _truncated(self._rng(), _shape(shape))
        return (self.mean + self.stddev * z).astype(_dtype(dtype))


class RandomUniform(_Random):
    """Uniform in [minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval = _number("RandomUniform: minval", minval)
        self.maxval = _number("RandomUniform: maxval", maxval)

    def __call__(self, shape, dtype=None):
        return self._rng().uniform(self.minval, self.maxval,
                                   _shape(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"seed": self.seed, "minval": self.minval, "maxval": self.maxval}


class Orthogonal(_Random):
    """An orthogonal matrix (times ``gain``) from the QR decomposition of a
    normal one, Keras's recipe: orthonormal columns, or rows when there are
    fewer rows than columns; a shape of more than 2-D is the matrix
    [prod(shape[:-1]), shape[-1]] reshaped."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = _number("Orthogonal: gain", gain)

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least "
                             f"two-dimensional. Received: shape={shape} of rank "
                             f"{len(shape)}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        # The signs of R's diagonal make the draw uniform over orthogonal
        # matrices (Mezzadri's correction, as Keras applies it).
        q *= np.where(np.diag(r) < 0, -1.0, 1.0)
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(_dtype(dtype))

    def get_config(self):
        return {"seed": self.seed, "gain": self.gain}


def compute_fans(shape, input_axes=None, output_axes=None):
    """(fan_in, fan_out) of a weight shape, Keras's rule: [in, out] for 2-D,
    n for 1-D, (..., in, out) times the receptive field for more; or the
    products over ``input_axes`` / ``output_axes`` when both are given."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(math.prod(shape[a] for a in input_axes)),
                int(math.prod(shape[a] for a in output_axes)))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


class VarianceScaling(_Random):
    """Variance ``scale / n``, n the fan_in, fan_out or their mean:
    truncated normal (stddev sqrt(scale / n) after truncation), untruncated
    normal, or uniform in [-sqrt(3 scale / n), sqrt(3 scale / n)], as
    Keras's ("normal" means "truncated_normal")."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal",
                 seed=None, input_axes=None, output_axes=None):
        super().__init__(seed)
        self.scale = _number("VarianceScaling: scale", scale, positive=True)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {mode!r}; expected 'fan_in', "
                             "'fan_out' or 'fan_avg'")
        dist = distribution.lower() if isinstance(distribution, str) else distribution
        dist = "truncated_normal" if dist == "normal" else dist
        if dist not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"Invalid `distribution` argument: {distribution!r}; "
                             "expected 'truncated_normal', 'untruncated_normal' or "
                             "'uniform'")
        for name, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
            if axes is not None and not (isinstance(axes, (list, tuple))
                                         and all(is_int(a) for a in axes)):
                raise TypeError(f"VarianceScaling: {name} must be a list of ints or "
                                f"None, got {describe(axes)}")
        self.mode, self.distribution = mode, dist
        self.input_axes = None if input_axes is None else list(input_axes)
        self.output_axes = None if output_axes is None else list(output_axes)

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out,
               "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(1.0, fan)
        rng, dt = self._rng(), _dtype(dtype)
        if self.distribution == "truncated_normal":
            # 0.8796...: the stddev of a standard normal truncated at +-2.
            return (math.sqrt(var) / 0.87962566103423978 * _truncated(rng, shape)).astype(dt)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(var), shape).astype(dt)
        limit = math.sqrt(3.0 * var)
        return rng.uniform(-limit, limit, shape).astype(dt)

    def get_config(self):
        return {"seed": self.seed, "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


def _variance(name, scale, mode, distribution, doc):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed,
                                 input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}
    return type(name, (VarianceScaling,), {"__init__": __init__, "__doc__": doc,
                                           "get_config": get_config,
                                           "__module__": __name__})


GlorotUniform = _variance("GlorotUniform", 1.0, "fan_avg", "uniform",
                          "Uniform in +-sqrt(6 / (fan_in + fan_out)) (Xavier).")
GlorotNormal = _variance("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                         "Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).")
HeUniform = _variance("HeUniform", 2.0, "fan_in", "uniform",
                      "Uniform in +-sqrt(6 / fan_in).")
HeNormal = _variance("HeNormal", 2.0, "fan_in", "truncated_normal",
                     "Truncated normal, stddev sqrt(2 / fan_in).")
LecunUniform = _variance("LecunUniform", 1.0, "fan_in", "uniform",
                         "Uniform in +-sqrt(3 / fan_in).")
LecunNormal = _variance("LecunNormal", 1.0, "fan_in", "truncated_normal",
                        "Truncated normal, stddev sqrt(1 / fan_in).")

# Keras's lower-case names are the classes themselves.
zeros, ones, constant, identity = Zeros, Ones, Constant, Identity
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
orthogonal, variance_scaling = Orthogonal, VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal

_CLASSES = (Zeros, Ones, Constant, Identity, RandomNormal, RandomUniform,
            TruncatedNormal, Orthogonal, VarianceScaling, GlorotUniform,
            GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal)
_NAMES = {"zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones,
          "constant": Constant, "identity": Identity,
          "IdentityInitializer": Identity, "random_normal": RandomNormal,
          "normal": RandomNormal, "random_uniform": RandomUniform,
          "uniform": RandomUniform, "truncated_normal": TruncatedNormal,
          "orthogonal": Orthogonal, "OrthogonalInitializer": Orthogonal,
          "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
          "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
          "he_normal": HeNormal, "lecun_uniform": LecunUniform,
          "lecun_normal": LecunNormal}


serialize = _registry.serialize


def get(identifier):
    """An Initializer from a name ('glorot_uniform', 'normal'), a config dict,
    a class (instantiated with its defaults, as Keras does) or an instance."""
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    return _registry.resolve(identifier, "initializer", Initializer, _NAMES)


def deserialize(config, custom_objects=None):
    """The Initializer of a ``{"class_name": ..., "config": {...}}`` dict."""
    if not isinstance(config, dict):
        raise TypeError(f"deserialize expects a config dict, got {describe(config)}")
    return get(config)
