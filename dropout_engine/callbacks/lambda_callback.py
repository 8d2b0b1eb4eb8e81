"""LambdaCallback: a callback made of plain functions."""
from .base import HOOKS, Callback

__all__ = ["LambdaCallback"]


class LambdaCallback(Callback):
    """A callback made of plain functions.

    Args:
        on_epoch_begin, on_epoch_end: f(epoch, logs).
        on_train_begin, on_train_end: f(logs).
        on_train_batch_begin, on_train_batch_end: f(batch, logs).
        **kwargs: any other hook by its name, e.g. on_test_end=f.  Batch
            hooks given here are called at every batch (fit slows down to
            one batch per C call to honour them).

    Example:
        >>> log = LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None,
                 on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hooks {unknown}; the "
                            f"hooks are {', '.join(HOOKS)}")
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin,
                     on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got "
                                    f"{type(fn).__name__}")
                setattr(self, name, fn)
