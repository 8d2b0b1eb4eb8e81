"""Noise layers beside the dropout family: GaussianNoise (additive) and
SpatialDropout1D (whole feature channels), Keras 3 names and defaults.
Both are active in training only and the identity at inference; their
draws come from keys of (seed, site, step) in C (``_csrc/nn/noise.c``), so
a seeded fit is the same for any thread count."""
import numbers

from .. import seeding
from .._validation import is_int
from .base import Layer
from .dropout import AXIS_FEATURE, AXIS_SAMPLE, Dropout

_NOISE_ADDITIVE = 3     # engine.h's DE_NOISE_ADDITIVE


class GaussianNoise(Layer):
    """Add zero-centred Gaussian noise of standard deviation ``stddev`` in
    training (Keras's GaussianNoise); the identity at inference.

    Args:
        stddev: float in [0, 1] (Keras's bounds).
        seed: int or None; None takes the next seed of the package's stream.

    Example:
        >>> Sequential([Input((8,)), GaussianNoise(0.1), Dense(1)])
    """
    _base = "gaussian_noise"

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        if isinstance(stddev, bool) or not isinstance(stddev, numbers.Real):
            raise TypeError(f"{where}: stddev must be a float in [0, 1], got {stddev!r}")
        stddev = float(stddev)
        if not 0.0 <= stddev <= 1.0:
            raise ValueError(f"{where}: stddev must be in [0, 1], got {stddev}")
        if seed is not None and (not is_int(seed) or not 0 <= seed < 2 ** 64):
            raise ValueError(f"{where}: seed must be an int in [0, 2**64) or None, "
                             f"got {seed!r}")
        self.stddev, self.seed = stddev, seed
        self._seed = int(seed) if seed is not None else seeding.next_seed()

    def _site(self, shape):
        return _NOISE_ADDITIVE, self.stddev, True, 0

    def get_config(self):
        return dict(super().get_config(), stddev=self.stddev, seed=self.seed)


class SpatialDropout1D(Dropout):
    """Dropout of whole feature channels (Keras's SpatialDropout1D): on
    [batch, steps, features] inputs one keep/drop draw per (sample,
    feature), shared by all steps, the mask shape (batch, 1, features);
    kept units are scaled by 1 / (1 - rate) in training, the identity at
    inference.

    Args:
        rate: float in [0, 1), the fraction of channels dropped.
        seed: int or None (as Dropout's).
    """
    _base = "spatial_dropout1d"

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def _site(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Layer '{self.name}': SpatialDropout1D expects "
                             f"[batch, steps, features] inputs, got (None, "
                             f"{', '.join(map(str, shape))})")
        return 0, self.rate, True, AXIS_SAMPLE | AXIS_FEATURE

    def get_config(self):
        c = super().get_config()
        del c["noise_shape"], c["scaling"]
        return c
