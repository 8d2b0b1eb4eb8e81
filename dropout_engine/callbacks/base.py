"""The Callback base class and the table of its hooks (Keras 3 semantics);
users import it from dropout_engine.callbacks."""

__all__ = ["Callback", "HOOKS", "BEGIN_END_HOOKS", "BATCH_HOOKS", "overrides"]

BEGIN_END_HOOKS = ("on_train_begin", "on_train_end", "on_test_begin",
                   "on_test_end", "on_predict_begin", "on_predict_end")
EPOCH_HOOKS = ("on_epoch_begin", "on_epoch_end")
# Per mode, the batch hooks whose override makes fit/evaluate/predict stop
# at batch boundaries.  on_train_batch_* call on_batch_* by default (Keras).
BATCH_HOOKS = {
    "train": ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
              "on_train_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}
HOOKS = BEGIN_END_HOOKS + EPOCH_HOOKS + tuple(
    dict.fromkeys(h for hooks in BATCH_HOOKS.values() for h in hooks))


class Callback:
    """Base class of callbacks: override the hooks you need.

    Attributes:
        params: dict of training parameters (verbose, epochs, steps, and,
            ours, samples and batch_size when fit knows them).
        model: the model being trained (set by set_model).
        batch_hooks_at_chunk_ends: class attribute, ours.  False (the
            default) means an overridden batch hook must see every batch;
            True means calls at chunk ends suffice (see dropout_engine.callbacks).
        _backup_attributes: class attribute, ours: the names of the
            attributes that are this callback's training state, which
            BackupAndRestore saves and restores (JSON-able values and numpy
            arrays, in lists and str-keyed dicts).  Give your own stateful
            callback one to have it resume exactly.
        _dispatch_last: class attribute, ours: the CallbackList calls this
            callback after all the others (BackupAndRestore: it saves the
            state they reach at each epoch end, and restores theirs after
            their on_train_begin reset it).

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    batch_hooks_at_chunk_ends = False
    _backup_attributes = ()
    _dispatch_last = False

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    def _chief(self):
        """Ours: whether this process prints and writes what one process
        does for all: rank 0 of a distributed fit (its ``FitState.chief``),
        and any process outside fit.  The others train alike and keep quiet."""
        state = getattr(getattr(self._model, "_trainer", None), "state", None)
        return state is None or state.chief

    def _say(self, message):
        """Ours: print ``message`` (on the chief only, see ``_chief``)."""
        if self._chief():
            print(message, flush=True)

    def on_batch_begin(self, batch, logs=None):
        """Called before a training batch (backwards-compatible alias)."""

    def on_batch_end(self, batch, logs=None):
        """Called after a training batch (backwards-compatible alias)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (training only)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; logs holds the epoch's results,
        with `val_`-prefixed entries when fit validated."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch in evaluate (and fit's validation)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after a batch in evaluate (and fit's validation)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a batch in predict."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a batch in predict."""

    def on_train_begin(self, logs=None):
        """Called at the start of fit."""

    def on_train_end(self, logs=None):
        """Called at the end of fit."""

    def on_test_begin(self, logs=None):
        """Called at the start of evaluate (and fit's validation)."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluate (and fit's validation)."""

    def on_predict_begin(self, logs=None):
        """Called at the start of predict."""

    def on_predict_end(self, logs=None):
        """Called at the end of predict."""


def overrides(cb, hook):
    """True if `cb` replaces the base class's `hook` (in a subclass or, as
    LambdaCallback does, on the instance)."""
    return hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook)
