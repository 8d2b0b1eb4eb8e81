"""The merge layers (Keras 3's): Concatenate, Add, Subtract, Average,
Multiply, Maximum, Minimum.  Called on a list of KerasTensors of
``(None, features)``; the C engine merges the branches' outputs (graph.c)
in Keras's order of operations, and a merge followed by a Dense is read by
that Dense's GEMM directly.  Ours: no broadcasting (all inputs have the
same width, but for Concatenate's axis) and 2-D tensors only, so
Concatenate takes axis -1 (or 1).
"""
from .._validation import is_int
from .base import Layer

# DE_COMBINE_* of engine.h
CONCAT, ADD, SUBTRACT, AVERAGE, MULTIPLY, MAXIMUM, MINIMUM = range(1, 8)


class _Merge(Layer):
    """Base of the merge layers: ``combine`` is the C merge."""
    combine = None

    def _call_shape(self, shapes, merge):
        batch = [(None, *s) for s in shapes]
        if not merge:
            raise ValueError("A merge layer should be called on a list of inputs. "
                             f"Received: input_shape={batch[0]} (not a list of "
                             "shapes)")
        if any(len(s) != 1 for s in shapes):
            raise NotImplementedError(
                f"Layer '{self.name}': {type(self).__name__} of inputs of shapes "
                f"{batch} is not supported (dropout_engine merges tensors of one "
                "vector per sample, (None, features); flatten or pool the steps "
                "first)")
        dims = [s[0] for s in shapes]
        self._check(dims, batch)
        if self.built and self.input_dim != tuple(dims):
            raise ValueError(f"Layer '{self.name}' was built for inputs of widths "
                             f"{list(self.input_dim)}, got {list(dims)}")
        self.build(tuple(dims))
        return (self._width(dims),)

    def _check(self, dims, shapes):
        if len(set(dims)) > 1:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes "
                             f"{shapes} (layer '{self.name}': the inputs of "
                             f"{type(self).__name__} must all have the same width)")

    def _width(self, dims):
        return dims[0]

    def output_dim(self, input_dim):
        return self._width(list(input_dim)) if isinstance(input_dim, tuple) \
            else input_dim


class Add(_Merge):
    """The sum of the inputs (Keras's Add)."""
    _base = "add"
    combine = ADD


class Subtract(_Merge):
    """inputs[0] - inputs[1] (Keras's Subtract)."""
    _base = "subtract"
    combine = SUBTRACT

    def _check(self, dims, shapes):
        if len(dims) != 2:
            raise ValueError("A `Subtract` layer should be called on exactly 2 "
                             f"inputs. Received: inputs={shapes}")
        super()._check(dims, shapes)


class Average(_Merge):
    """The mean of the inputs (Keras's Average: their sum, divided by their
    count)."""
    _base = "average"
    combine = AVERAGE


class Multiply(_Merge):
    """The element-wise product of the inputs (Keras's Multiply)."""
    _base = "multiply"
    combine = MULTIPLY


class Maximum(_Merge):
    """The element-wise maximum of the inputs (Keras's Maximum; NaN
    propagates; the gradient goes to the first input holding the max)."""
    _base = "maximum"
    combine = MAXIMUM


class Minimum(_Merge):
    """The element-wise minimum of the inputs (Keras's Minimum)."""
    _base = "minimum"
    combine = MINIMUM


class Concatenate(_Merge):
    """The inputs side by side along the feature axis (Keras's Concatenate).

    Args:
        axis: -1 (the default) or 1, the feature axis of (batch, features)
            tensors.
    """
    _base = "concatenate"
    combine = CONCAT

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not is_int(axis) or axis not in (-1, 1):
            raise ValueError(f"Layer '{self.name}': Concatenate supports axis=-1 "
                             f"(the features of (batch, features) tensors), got "
                             f"axis={axis!r}")
        self.axis = int(axis)

    def _check(self, dims, shapes):
        pass        # any widths: they add up

    def _width(self, dims):
        return sum(dims)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


MERGES = (Concatenate, Add, Subtract, Average, Multiply, Maximum, Minimum)


# Keras's functional forms: ``concatenate([a, b])`` is
# ``Concatenate()([a, b])``.
def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)
