"""GlobalAveragePooling1D (Keras 3's, alias GlobalAvgPool1D): the mean over
the steps of [batch, steps, features], masked when an Embedding's
``mask_zero`` says which steps are padding.  In the engine right after an
Embedding it fuses into the gather (the mean of the looked-up rows, never
stored per step); elsewhere it is a mean pass of its own."""
from .base import Layer, _channels_last, _show


class GlobalAveragePooling1D(Layer):
    """Average over the steps axis: (steps, features) -> (features,).

    Args:
        data_format: None or "channels_last"; "channels_first" is refused.
        keepdims: keep the steps axis with length 1: (1, features).

    With an Embedding's ``mask_zero=True`` the masked steps are left out of
    the mean, as Keras's (a sample whose steps are all padding gives NaN,
    Keras's 0 / 0).
    """
    _base = "global_average_pooling1d"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format, f"Layer '{self.name}'",
                                          "the steps must be the middle axis")
        if not isinstance(keepdims, bool):
            raise TypeError(f"Layer '{self.name}': keepdims must be True or False, "
                            f"got {keepdims!r}")
        self.keepdims = keepdims

    def _output_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Layer '{self.name}': GlobalAveragePooling1D expects "
                             f"[batch, steps, features] inputs, got {_show(shape)}")
        return (1, shape[1]) if self.keepdims else (shape[1],)

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format,
                    keepdims=self.keepdims)


GlobalAvgPool1D = GlobalAveragePooling1D
