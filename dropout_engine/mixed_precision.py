"""Mixed precision (Keras 3's ``keras.mixed_precision`` / dtype policies):
``set_global_policy("mixed_bfloat16")`` makes the layers built afterwards
compute in bfloat16 with float32 variables, as Keras does.

What runs (issue 14): a Dense under ``mixed_bfloat16`` does its three GEMMs
(forward ``x @ W``, ``dX = dZ W^T`` and ``dW = X^T dZ``) with both operands
rounded to bfloat16 and float32 accumulation (VDPBF16PS where the CPU has
AVX512_BF16, a bit-identical emulation elsewhere); the weights, the
optimizer and its state stay float32, and the epilogue (bias, activation,
dropout) and the loss are float32.  That is one difference from Keras,
which also rounds each layer's output to bfloat16: ours are float32, and
``predict`` returns float32.  Saved files hold float32 weights.  Layers
without a GEMM take the policy for their config and compute in float32.

As in Keras 3 (``Trainer.compile``), only ``mixed_float16`` would wrap the
optimizer in a LossScaleOptimizer; bfloat16 has float32's exponent range,
so ``mixed_bfloat16`` trains without loss scaling.  float16 policies are
refused.

Example:
    >>> from dropout_engine.keras import mixed_precision, layers
    >>> mixed_precision.set_global_policy("mixed_bfloat16")
    >>> layers.Dense(10).dtype_policy
    <DTypePolicy "mixed_bfloat16">
    >>> mixed_precision.set_global_policy("float32")
"""
import numpy as np

_NAMES = {"float32": ("float32", "float32"),
          "mixed_bfloat16": ("bfloat16", "float32")}


class DTypePolicy:
    """A layer's dtype policy: ``name`` ("float32" or "mixed_bfloat16"),
    ``compute_dtype`` and ``variable_dtype`` (Keras's DTypePolicy).

    Args:
        name: the policy name; None takes the global policy's.
    """

    def __init__(self, name=None):
        if name is None:
            name = global_policy().name
        self._name = _check_name(name)
        self._compute_dtype, self._variable_dtype = _NAMES[self._name]

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        return self._compute_dtype

    @property
    def variable_dtype(self):
        return self._variable_dtype

    @property
    def quantization_mode(self):
        return None

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


Policy = DTypePolicy      # Keras's legacy name


def _check_name(name):
    if isinstance(name, type) or isinstance(name, np.dtype):
        name = np.dtype(name).name
    if not isinstance(name, str):
        raise TypeError("a dtype policy must be a policy name such as 'float32' or "
                        f"'mixed_bfloat16', or a DTypePolicy; got {name!r} "
                        f"(of type {type(name).__name__})")
    if name in ("mixed_float16", "float16", "bfloat16", "float64", "half",
                "double"):
        raise ValueError(
            f"dtype policy {name!r} is not supported: dropout_engine computes in "
            "float32, or with bfloat16 GEMMs under 'mixed_bfloat16' (its variables "
            "stay float32)")
    if name not in _NAMES:
        raise ValueError(f"Cannot convert {name!r} to a dtype policy: expected "
                         "'float32' or 'mixed_bfloat16'")
    return name


def policy_of(dtype):
    """A layer's ``dtype`` argument (None: the global policy; a name, a
    numpy float32 type or a DTypePolicy) as a DTypePolicy."""
    if isinstance(dtype, DTypePolicy):
        return dtype
    return DTypePolicy(dtype)


_global = DTypePolicy("float32")


def set_global_policy(policy):
    """Set the policy of the layers made from now on ("float32" restores
    the default)."""
    global _global
    if not isinstance(policy, (str, DTypePolicy)):
        raise ValueError("Invalid `policy` argument: expected the string name of a "
                         "policy (such as 'mixed_bfloat16') or a DTypePolicy, got "
                         f"{policy!r} (of type {type(policy).__name__})")
    _global = policy_of(policy)


def global_policy():
    """The policy new layers take when their ``dtype`` is None."""
    return _global


set_dtype_policy = set_global_policy
dtype_policy = global_policy
