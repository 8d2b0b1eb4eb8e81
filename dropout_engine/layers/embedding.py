"""Embedding (Keras 3's): integer token ids -> rows of a trained table.

The engine gathers the rows in C and, when a GlobalAveragePooling1D
follows, averages them in the same pass (the bag-of-words MLP of Keras's
text tutorials); the backward pass sums the gradient into the table's rows
(``_csrc/nn/stage.c``) and the optimizer updates the table like any weight
(densely, as Keras's JAX backend does).  Token ids must be integers in
[0, input_dim); they are checked at the API edge and again in C."""
import numpy as np

from .. import constraints, initializers, regularizers
from .._validation import is_int
from .base import Layer

MAX_VOCAB = 1 << 24    # ids travel as float32, exact up to 2**24


class Embedding(Layer):
    """Turn token ids into dense vectors: (steps,) ids -> (steps, output_dim).

    Args:
        input_dim: vocabulary size (largest id + 1), at most 2**24.
        output_dim: the vector size.
        embeddings_initializer: default "uniform" (Keras's RandomUniform(-0.05,
            0.05)).
        embeddings_regularizer, embeddings_constraint: as Keras's.
        mask_zero: id 0 is padding: a GlobalAveragePooling1D after it
            averages the other steps only (the only layer here that reads
            the mask; anything else that would drop it is refused).
        weights: optional initial table [input_dim, output_dim].

    Only as the model's first layer (its input is the token ids).  The
    attribute ``input_dim`` is the vocabulary size, as in Keras.

    Example:
        >>> Sequential([Input((20,), dtype="int32"), Embedding(1000, 16),
        ...             GlobalAveragePooling1D(), Dense(1, activation="sigmoid")])
    """
    _base = "embedding"

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None,
                 mask_zero=False, weights=None, lora_rank=None, lora_alpha=None,
                 **kwargs):
        input_length = kwargs.pop("input_length", None)   # Keras 2's: the steps
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        activity = kwargs.pop("activity_regularizer", None)
        super().__init__(**kwargs)
        where = f"Layer '{self.name}'"
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not is_int(v) or v <= 0:
                raise ValueError(f"{where}: {arg} must be a positive integer, got {v!r}")
        if input_dim > MAX_VOCAB:
            raise ValueError(f"{where}: input_dim must be at most {MAX_VOCAB} (token "
                             f"ids travel as float32), got {input_dim}")
        if lora_rank is not None or lora_alpha is not None:
            raise NotImplementedError(f"{where}: LoRA (lora_rank) is not supported")
        if activity is not None:
            raise NotImplementedError(f"{where}: activity_regularizer is not supported")
        if not isinstance(mask_zero, (bool, np.bool_)):
            raise TypeError(f"{where}: mask_zero must be True or False, got {mask_zero!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.embeddings = None
        if weights is not None:
            w = weights[0] if isinstance(weights, (list, tuple)) and len(weights) == 1 \
                else weights
            w = np.asarray(w)
            if w.shape != (self.input_dim, self.output_dim) or w.dtype.kind not in "iuf":
                raise ValueError(f"{where}: weights must be a [{self.input_dim}, "
                                 f"{self.output_dim}] array of numbers, got "
                                 f"{getattr(w, 'shape', w)!r}")
            self.build()
            np.copyto(self.embeddings, w, casting="unsafe")

    def build(self, input_dim=None):
        if self.embeddings is None:
            self.embeddings = np.ascontiguousarray(self.embeddings_initializer(
                (self.input_dim, self.output_dim)), np.float32)

    @property
    def built(self):
        return self.embeddings is not None

    def _build_for(self, shape):
        self.build()

    def _output_shape(self, shape):
        return tuple(shape) + (self.output_dim,)

    @property
    def weights(self):
        return [] if self.embeddings is None else [self.embeddings]

    weight_names = ("embeddings",)

    def get_config(self):
        return dict(
            super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
            embeddings_constraint=constraints.serialize(self.embeddings_constraint),
            mask_zero=self.mask_zero)
