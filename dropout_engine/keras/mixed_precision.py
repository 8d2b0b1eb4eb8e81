"""keras.mixed_precision: dtype policies (dropout_engine.mixed_precision)."""
from dropout_engine.mixed_precision import (  # noqa: F401
    DTypePolicy, Policy, dtype_policy, global_policy, set_dtype_policy,
    set_global_policy)
