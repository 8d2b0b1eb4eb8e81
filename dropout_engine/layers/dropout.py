"""The dropout family: Dropout (and ours, keyword-only: ``scaling="weight"``,
the original paper's rule), GaussianDropout, AlphaDropout.

Each layer describes its training noise to the plan with ``_site(shape)``:
(noise kind, rate, inverted, mask axes) for its per-sample input shape;
the C engine draws it from keys of (seed, site, step), so a seeded fit is
the same for any thread count.
"""
import numpy as np

from .. import ops, seeding
from .._validation import is_int
from .base import Layer


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the units during training.

    Args:
        rate: float in [0, 1), the fraction dropped.
        noise_shape: None (a mask per element) or Keras's: a shape of the
            input's rank, batch axis first, each entry None (the input's
            length: the mask varies along that axis) or 1 (one draw shared
            along it).  For [batch, features] inputs, (None, features) is
            per element, (1, features) one mask for every row of the batch,
            (None, 1) a whole row dropped or kept; for [batch, steps,
            features], (None, 1, features) drops whole feature channels per
            sample (SpatialDropout1D).  The steps axes vary together or not
            at all.  Masks are the broadcast of a mask of the noise_shape
            drawn as an element-wise mask would be, so they are as
            deterministic (``_csrc/nn/noise.c``).
        seed: int or None; None takes the next seed of the package's stream
            (``set_random_seed``).  A seed fixes the layer's masks, step by
            step, whatever the global seed (Keras's ``seed``).
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
        self.noise_shape = _noise_shape(noise_shape, where)
        if scaling not in ("inverted", "weight"):
            raise ValueError(f"{where}: scaling must be 'inverted' or 'weight', "
                             f"got {scaling!r}")
        if seed is not None and (not is_int(seed) or not 0 <= seed < 2 ** 64):   # C keeps it in a uint64
            raise ValueError(f"{where}: seed must be an int in [0, 2**64) or None, got {seed!r}")
        self.rate, self.scaling, self.seed = rate, scaling, seed
        self._seed = int(seed) if seed is not None else seeding.next_seed()

    def _site(self, shape):
        """(noise kind, rate, inverted, axes) for a per-sample input shape."""
        return 0, self.rate, self.scaling == "inverted", \
            _mask_axes(self.noise_shape, shape, f"Layer '{self.name}'")

    def get_config(self):
        ns = self.noise_shape
        return dict(super().get_config(), rate=self.rate, seed=self.seed,
                    noise_shape=None if ns is None else list(ns),
                    scaling=self.scaling)

    def _call(self, x, training):
        """In training a fresh mask per call (the C dropout kernel, drawn
        from this layer's seed and the package's seed stream); at inference
        the identity, or times (1 - rate) for scaling="weight"."""
        if not training or self.rate == 0.0:
            return x * np.float32(1.0 - self.rate) if self.scaling == "weight" \
                else x.copy()
        y, mask = ops.dropout(x, self.rate, seed=self._seed, step=seeding.next_seed())
        if self.scaling == "weight":       # kept units unscaled; dropped ones 0
            kept = np.unpackbits(mask, bitorder="little")[:x.size].reshape(x.shape)
            y = np.where(kept.astype(bool), x, np.float32(0.0))
        return y


# The axes of engine.h's de_dropout_bcast.
AXIS_SAMPLE, AXIS_STEP, AXIS_FEATURE = 1, 2, 4


def _noise_shape(noise_shape, where):
    """Keras's noise_shape check: None or a tuple of positive ints and Nones."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(f"{where}: noise_shape must be a tuple of ints or None "
                         f"entries, got {noise_shape!r}")
    try:
        noise_shape = tuple(noise_shape)
    except TypeError:
        raise ValueError(f"{where}: noise_shape must be a tuple of ints or None "
                         f"entries, got {noise_shape!r}") from None
    for i, d in enumerate(noise_shape):
        if d is not None and (isinstance(d, bool) or not is_int(d) or d <= 0):
            raise ValueError(f"{where}: noise_shape[{i}] must be a positive int or "
                             f"None, got {d!r}")
    return tuple(None if d is None else int(d) for d in noise_shape)


def _mask_axes(noise_shape, shape, where):
    """The DE_AXIS_* bits of the axes a mask of ``noise_shape`` varies along,
    for per-sample input ``shape``; 0 when it varies along every axis (a
    mask per element, the fused path)."""
    if noise_shape is None:
        return 0
    full = (None,) + tuple(shape)
    if len(noise_shape) != len(full):
        raise ValueError(f"{where}: noise_shape {noise_shape} must have the input's "
                         f"rank {len(full)} (batch axis first), got {len(noise_shape)}")
    varies = []
    for i, (d, n) in enumerate(zip(noise_shape, full)):
        if i and d not in (None, 1, n):
            raise ValueError(f"{where}: noise_shape {noise_shape} does not broadcast "
                             f"to the input shape (None, {', '.join(map(str, shape))})")
        # The batch length is the batch's: any entry but 1 means per sample.
        varies.append(d != 1 or (i > 0 and n == 1))
    steps = varies[1:-1]
    if len(set(steps)) > 1:
        raise NotImplementedError(f"{where}: noise_shape {noise_shape}: the axes "
                                  "between the batch and the features must all be 1 "
                                  "or all vary")
    axes = (AXIS_SAMPLE * varies[0] + AXIS_FEATURE * varies[-1]
            + AXIS_STEP * (all(steps) if steps else True))
    return 0 if axes == AXIS_SAMPLE | AXIS_STEP | AXIS_FEATURE else axes


class _NoiseDropout(Dropout):
    """Base of the dropout layers whose training noise is not a 0/1 mask
    (noise.c draws it in C, as a pass after the layer before).  Anywhere in
    the stack: a site of its own when the layer before has one already."""
    noise = 0

    def __init__(self, rate, seed=None, **kwargs):
        if "scaling" in kwargs:
            raise TypeError(f"{type(self).__name__} takes no scaling argument")
        noise_shape = kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)
        self.noise_shape = _noise_shape(noise_shape, f"Layer '{self.name}'")

    def _site(self, shape):
        if _mask_axes(self.noise_shape, shape, f"Layer '{self.name}'"):
            raise NotImplementedError(
                f"Layer '{self.name}': {type(self).__name__} with a broadcast "
                f"noise_shape {self.noise_shape} is not supported (only a noise "
                "draw per element)")
        return self.noise, self.rate, True, 0

    def get_config(self):
        c = super().get_config()
        del c["scaling"]
        return c

    def _call(self, x, training):
        """In training the C noise pass (fresh draws per call); at inference
        the identity."""
        if not training or self.rate == 0.0:
            return x.copy()
        return ops._noise_dropout(x, self.rate, self.noise, seed=self._seed,
                                  step=seeding.next_seed())


class GaussianDropout(_NoiseDropout):
    """Multiply by noise ~ N(1, rate / (1 - rate)) in training (Keras's
    GaussianDropout); the identity at inference.

    Args:
        rate: float in [0, 1), as Dropout's: the variance is rate / (1 - rate).
        seed: int or None (as Dropout's).
    """
    _base = "gaussian_dropout"
    noise = 1         # DE_NOISE_GAUSSIAN

    def get_config(self):
        c = super().get_config()
        del c["noise_shape"]      # Keras's GaussianDropout has none
        return c


class AlphaDropout(_NoiseDropout):
    """Dropout for SELU networks (Keras's AlphaDropout): in training, dropped
    units are set to SELU's negative saturation and the result is shifted and
    scaled so that mean and variance are kept; the identity at inference.

    Args:
        rate: float in [0, 1), the fraction dropped.
        noise_shape: None (a draw per element); a broadcast shape is
            refused.
        seed: int or None (as Dropout's).
    """
    _base = "alpha_dropout"
    noise = 2         # DE_NOISE_ALPHA

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, noise_shape=noise_shape, **kwargs)
