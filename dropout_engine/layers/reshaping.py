"""Flatten and Reshape (Keras 3 names and defaults).  Both are free in the
engine: a sample's values are contiguous, so [batch, 28, 28] is [batch,
784] and [batch, steps, features] is [batch * steps, features] without a
copy; they only change which axis the next layer acts on."""
import math

from .base import Layer, _channels_last, _show


class _Reshaping(Layer):
    """A weightless layer that only changes the per-sample shape."""

    def build(self, input_dim=None):
        self.input_dim = input_dim if input_dim is not None else 0

    @property
    def built(self):
        return True

    def _build_for(self, shape):
        self._output_shape(shape)      # raises when it cannot take the shape
        self.input_dim = shape[-1]


class Flatten(_Reshaping):
    """Flatten each sample to one axis: (28, 28) -> (784,).

    Args:
        data_format: None or "channels_last" (the order is kept as is);
            "channels_first" is refused.
    """
    _base = "flatten"

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format, f"Layer '{self.name}'",
                                          "its Flatten transposes; channels_last is free")

    def _output_shape(self, shape):
        return (math.prod(shape),)

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class Reshape(_Reshaping):
    """Reshape each sample to ``target_shape`` (the batch axis kept); one
    entry may be -1, inferred from the others.

    Args:
        target_shape: tuple of positive ints (and at most one -1).
    """
    _base = "reshape"

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        try:
            target = tuple(target_shape)
        except TypeError:
            raise TypeError(f"{where}: target_shape must be a tuple of ints, got "
                            f"{target_shape!r}") from None
        if not target or any(isinstance(d, bool) or not isinstance(d, int)
                             or not (d > 0 or d == -1) for d in target) \
                or target.count(-1) > 1:
            raise ValueError(f"{where}: target_shape must be positive ints and at "
                             f"most one -1, got {target_shape!r}")
        self.target_shape = target

    def _output_shape(self, shape):
        n, known = math.prod(shape), math.prod(d for d in self.target_shape if d != -1)
        out = tuple(n // known if d == -1 else d for d in self.target_shape)
        if math.prod(out) != n:
            raise ValueError(f"Layer '{self.name}': cannot reshape an input of shape "
                             f"{_show(shape)} ({n} values per sample) to "
                             f"{_show(self.target_shape)}")
        return out

    def get_config(self):
        return dict(super().get_config(), target_shape=list(self.target_shape))
