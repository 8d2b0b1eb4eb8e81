"""Input and Dense (Keras 3 names and defaults).  A Dense holds its kernel
[in, out] and bias as float32 arrays the C engine reads and updates in
place, read-only to users (see Dense); ``quantize("int8")`` swaps in
Keras's int8 kernel, ``quantize("bfloat16")`` (ours) a bfloat16 one."""
import numpy as np

from .. import _net, activations, constraints, initializers, ops, regularizers
from .._validation import is_int
from . import symbolic
from .base import Layer

INT8_POLICY = "int8_from_float32"   # Keras's dtype policy after quantize("int8")
# Ours after quantize("bfloat16"), named as Keras names its quantized policies
# ("<mode>_from_<source>"); a .keras file gets float32 instead (Keras has no
# weight-only bfloat16 mode).
BF16_POLICY = "bfloat16_from_float32"
_MODE_OF_POLICY = {INT8_POLICY: "int8", BF16_POLICY: "bfloat16"}


class InputLayer(Layer):
    """What ``Input(shape)`` makes (Keras 3's arguments): declares the
    shape of one sample, (features,), (steps, features), (28, 28), ...
    (Keras's ``shape``: the batch axis excluded; ``batch_shape`` includes
    it); its ``output`` is the model's input KerasTensor.

    Args:
        shape: the per-sample shape; or ``batch_shape=(None, *shape)``.
        dtype: float32 (converted once from any real dtype) or an integer
            type (token ids for an Embedding).  sparse, ragged,
            input_tensor: not supported (None/False only); batch_size and
            optional are accepted and change nothing.
    """
    _base = "input_layer"

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 ragged=None, batch_shape=None, input_tensor=None, optional=False,
                 name=None, input_shape=None, **kwargs):
        if shape is None:
            shape = input_shape
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:] if isinstance(batch_shape, (list, tuple)) \
                else batch_shape
        if shape is None:
            raise ValueError("Input: a shape is required, e.g. Input(shape=(784,))")
        for what, v in (("sparse", sparse), ("ragged", ragged)):
            if v:
                raise NotImplementedError(f"Input: {what}=True is not supported")
        if input_tensor is not None:
            raise NotImplementedError("Input: input_tensor is not supported")
        kwargs.pop("trainable", None)
        if kwargs:
            raise TypeError(f"Input: unexpected arguments {sorted(kwargs)}")
        self.dtype = _input_dtype(dtype)
        super().__init__(name=name, input_shape=shape)
        self.input_dim = self._input_dim           # built from the start
        symbolic.record(self, [], self._input_shape, merge=False, dtype=self.dtype)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"InputLayer '{self.name}' is not called: its output "
                        "(what Input(shape) returns) is the model's input")

    def get_config(self):
        c = {"name": self.name, "shape": list(self._input_shape)}
        if self.dtype != "float32":
            c["dtype"] = self.dtype
        return c


def _input_dtype(dtype):
    """An Input's dtype as a name: float32 (converted once from any real
    dtype) or an integer type (token ids for an Embedding)."""
    if dtype is None:
        return "float32"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "iuf" or (dt.kind == "f" and dt != np.float32):
        raise ValueError(f"Input: dtype must be float32 or an integer type (token "
                         f"ids), got dtype={dtype!r}")
    return dt.name


def Input(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None,
          batch_shape=None, name=None, tensor=None, optional=False):
    """The model's input, a KerasTensor of shape ``(None, *shape)``:
    ``x = Input((784,))``, then ``Dense(10)(x)`` or
    ``Sequential([Input((784,)), Dense(10)])``; ``Input((28, 28))`` for
    images (then Flatten), ``Input((20,), dtype="int32")`` for token ids
    (then Embedding)."""
    if tensor is not None:
        raise NotImplementedError("Input: tensor is not supported")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                      ragged=ragged, batch_shape=batch_shape, name=name,
                      optional=optional).output


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

    ``kernel`` and ``bias`` are read-only numpy arrays (as Keras's variables
    are not numpy-writable): ``layer.kernel[...] = 0`` raises.  Change them
    with ``set_weights`` (the layer's or the model's), ``load_weights``, or
    training.  Why: predict packs the kernel into the GEMM's panels once, at
    its first call on more than 4 rows, and reuses them until a weight is
    written; that copy holds about the kernel's size again (batch-1 predict
    never makes it; it saves the per-call packing, ~10% of a batch-64
    predict of 1024-wide layers).

    Example:
        >>> Dense(64, activation="relu", input_shape=(100,))
    """
    _base = "dense"
    _min_ndim, _has_weights = 2, True       # Keras's input_spec: min_ndim=2

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        # The dtype policy of a quantized Dense (what a saved quantized
        # model's config holds): built float, then quantized at once.
        dtype = kwargs.get("dtype")
        self._quantize_on_build = _MODE_OF_POLICY.get(dtype) \
            if isinstance(dtype, str) else None
        if self._quantize_on_build:
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
        self._int8 = self._bf16 = None

    def build(self, input_dim):
        super().build(input_dim)
        self.kernel = _net.read_only(np.array(
            self.kernel_initializer((input_dim, self.units)), np.float32, order="C"))
        if self.use_bias:
            self.bias = _net.read_only(np.array(
                self.bias_initializer((self.units,)), np.float32, order="C"))
        if self._quantize_on_build:
            self.quantize(self._quantize_on_build)

    def output_dim(self, input_dim):
        return self.units

    def _call(self, x, training):
        """act(x @ kernel + bias) over x's last axis, the fused C forward
        (what predict runs for this layer)."""
        if self._int8 is not None:
            raise NotImplementedError(
                f"Layer '{self.name}' is quantized (int8): calling it on its own is "
                "not supported; call the model holding it (model.predict(x))")
        y, _ = ops.dense_forward(x.reshape(-1, self.input_dim), self.kernel, self.bias,
                                 activation=self.activation, training=False)
        return y.reshape(x.shape[:-1] + (self.units,))

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
        """None, or "int8" after ``quantize("int8")`` (Keras's attribute), or
        "bfloat16" after ``quantize("bfloat16")`` (ours)."""
        return "int8" if self._int8 is not None else \
            "bfloat16" if self._bf16 is not None else None

    @property
    def _quantized_kernel(self):
        """The Int8Kernel or Bf16Kernel, or None (float32)."""
        return self._int8 if self._int8 is not None else self._bf16

    @property
    def kernel_scale(self):
        return None if self._int8 is None else self._int8.kernel_scale

    def quantize(self, mode=None):
        """Quantize the kernel in place.  "int8" as Keras's
        ``Dense.quantize``: per output column abs-max scales, inputs
        quantized per row at every call (see ``quantization``); the float
        kernel is dropped.  "bfloat16" (ours): the kernel rounded to
        bfloat16, predict in float32 on those values.  The layer is then
        inference-only."""
        self._check_quantize(mode)
        self._quantize(mode)
        # Keras lets a layer of a built model be quantized on its own: the
        # models holding it rebuild their C nets to run it in int8.
        self._tell_owners([self])

    def _quantize(self, mode):
        """quantize(mode) once _check_quantize passed."""
        from .. import quantization
        if mode == "bfloat16":
            self._bf16 = quantization.Bf16Kernel(self.kernel)
            self.kernel = _net.read_only(self._bf16.kernel)
            return
        self._int8 = quantization.Int8Kernel.from_float(self.kernel)
        self.kernel = _net.read_only(self._int8.kernel)

    @staticmethod
    def _tell_owners(layers):
        for model in {m for layer in layers for m in layer._owners}:
            model._layer_changed()

    def _check_quantize(self, mode):
        """Raise (as Keras) unless quantize(mode) can run; changes nothing."""
        from .. import quantization
        if not self.built:
            raise ValueError("Cannot quantize a layer that isn't yet built. "
                             f"Layer '{self.name}' (of type 'Dense') is not built yet.")
        if self._quantized_kernel is not None:
            raise ValueError(f"Layer '{self.name}' is already quantized with "
                             f"dtype_policy='{self._policy}'. Received: mode={mode}")
        quantization.check_mode(mode)
        if mode == "int8" and self.input_dim > quantization.MAX_INPUTS:
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
            **({"dtype": self._policy} if self._quantized_kernel is not None else {}))

    @property
    def _policy(self):
        return INT8_POLICY if self._int8 is not None else \
            BF16_POLICY if self._bf16 is not None else "float32"
