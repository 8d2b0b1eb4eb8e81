"""The dropout family: Dropout (and ours, keyword-only: ``scaling="weight"``,
the original paper's rule), GaussianDropout, AlphaDropout."""
import numpy as np

from .. import ops, seeding
from .._validation import is_int
from .base import Layer


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
