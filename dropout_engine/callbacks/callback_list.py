"""CallbackList: a list of callbacks called as one (what fit, evaluate and
predict talk to), with Keras 3's semantics."""
import numpy as np

from .base import BATCH_HOOKS, BEGIN_END_HOOKS, HOOKS, Callback, overrides
from .history import History
from .progbar import ProgbarLogger

__all__ = ["CallbackList"]


def _pythonify(logs):
    """A fresh dict per dispatch, numpy scalars as Python floats (Keras)."""
    if not logs:
        return {}
    return {k: float(v) if isinstance(v, (np.generic, np.ndarray)) and np.size(v) == 1
            else v for k, v in logs.items()}


def _dispatcher(hook, indexed):
    if indexed:
        def dispatch(self, index, logs=None):
            logs = _pythonify(logs)
            for cb in self._running:
                getattr(cb, hook)(index, logs)
    else:
        def dispatch(self, logs=None):
            logs = _pythonify(logs)
            for cb in self._running:
                getattr(cb, hook)(logs)
    dispatch.__name__ = dispatch.__qualname__ = hook
    dispatch.__doc__ = f"Calls `{hook}` on every callback, in order."
    return dispatch


class CallbackList(Callback):
    """A list of callbacks called as one.

    Args:
        callbacks: list of Callback instances (or None).
        add_history: add a History callback if the list has none.
        add_progbar: add a ProgbarLogger callback if the list has none.
        model: the model the callbacks see.
        runs: ours, keyword-only: ``runs(callback)`` says whether this
            process calls it (``Distribution.runs``); the others stay in
            ``callbacks``, the same list on every process, uncalled.
        **params: passed to every callback's set_params when given.

    Every hook of Callback exists here and calls that hook on each callback
    in order (those with `_dispatch_last` after the others), with a fresh
    copy of `logs`.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False,
                 model=None, *, runs=None, **params):
        super().__init__()
        self.callbacks = list(callbacks) if callbacks else []
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be dropout_engine Callback "
                                f"instances, got {type(cb).__module__}."
                                f"{type(cb).__qualname__}")
        self._history = next((c for c in self.callbacks
                              if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks
                              if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.callbacks.sort(key=lambda cb: cb._dispatch_last)   # stable
        self._runs = runs
        self._running = [cb for cb in self.callbacks if runs is None or runs(cb)]
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def append(self, callback):
        self.callbacks.append(callback)
        if self._runs is None or self._runs(callback):
            self._running.append(callback)

    def wants_batch_hooks(self, mode="train"):
        """Ours: whether some callback needs its batch hooks at every batch.

        Args:
            mode: "train" (fit), "test" (evaluate) or "predict".

        Returns:
            True if a callback that is not content with chunk ends (see the
            module docstring) overrides a batch-level hook of `mode`; fit,
            evaluate or predict should then run one batch per C call.
        """
        if mode not in BATCH_HOOKS:
            raise ValueError(f"mode must be one of {sorted(BATCH_HOOKS)}, "
                             f"got {mode!r}")
        return any(not cb.batch_hooks_at_chunk_ends and overrides(cb, hook)
                   for cb in self._running for hook in BATCH_HOOKS[mode])


for _hook in HOOKS:
    setattr(CallbackList, _hook,
            _dispatcher(_hook, indexed=_hook not in BEGIN_END_HOOKS))
del _hook
