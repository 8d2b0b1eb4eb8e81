"""How one fit is spread over processes: the Trainer's seam for data
parallelism, and the one place that says which process is the chief.

``dropout_engine.distribute.DataParallel`` is the implementation over MPI:
every process trains on its slice of each global batch, the C loop sums the
gradients over the processes after each backward pass, and every process
applies the same update.  This module knows nothing of MPI; its base class
is one process, and it holds the distribution in force
(``set_distribution``), which ``fit`` uses when its model was given none.

``is_chief()`` is the test for the writes that one process makes for all:
the progress bar, callbacks that write files (marked ``_chief_only``),
``model.save`` / ``save_weights`` and checkpoints, and what the library
prints or warns while it trains (``warn`` here; callbacks print through
``Callback._say``).  Call it, rather than reading a rank, wherever a new
such write appears.  Every process still runs the same loop and makes the
same decisions (stopping, rate changes) from the same reduced logs.
"""
import contextlib
import warnings


class Distribution:
    """One process (the default); subclass it to spread training.

    The Trainer uses these seams, on every process, in the same order:
        fitting(): a context around the whole fit (a distribution turns an
            error escaping it on one process into a clear stop of all).
        shard(data): the DataAdapter this process trains from.
        allreduce: what the C loop calls after each backward pass to sum
            the gradients over processes, handed to the model's
            ``_train_net`` (and on to ``_net.Net.setup_training``); None
            trains on this process's gradients alone.
        runs(callback): whether this process runs ``callback`` (the
            others are held, so that every process has the same list, for
            BackupAndRestore, but not called).
        agree(what, value): raise ValueError unless ``value`` is the same
            on every process (the training data's shape; where the fit
            starts, after on_train_begin: a BackupAndRestore backup).
        reduce_logs(logs): one epoch's training logs combined over the
            processes (before validation and the epoch-end callbacks).
        rows(n): the rows [lo, hi) of n that this process validates (of
            each chunk of the validation data, which every process reads).
        sum(values): float64 ``values`` summed over the processes (the
            same on all): the validation's row-weighted logs.
    """
    rank = 0
    world_size = 1
    allreduce = None

    def is_chief(self):
        """Whether this process makes the writes one process makes for all."""
        return self.rank == 0

    def fitting(self):
        return contextlib.nullcontext()

    def shard(self, data):
        return data

    def runs(self, callback):
        """Whether this process runs ``callback``: every one on the chief;
        on the others, not those whose class sets ``_chief_only`` (they
        write files or the terminal for everyone)."""
        return self.is_chief() or not getattr(callback, "_chief_only", False)

    def agree(self, what, value):
        pass

    def reduce_logs(self, logs):
        return logs

    def rows(self, n):
        return 0, n

    def sum(self, values):
        return values


_current = [Distribution()]


def set_distribution(value):
    """Make ``value`` (a Distribution, or None for one process) the
    distribution of every later ``fit`` whose model was given none (Keras's
    ``keras.distribution.set_distribution``)."""
    if value is None:
        value = Distribution()
    if not isinstance(value, Distribution):
        raise TypeError(f"set_distribution expects a Distribution (such as "
                        f"dropout_engine.distribute.DataParallel()) or None, "
                        f"got {type(value).__name__}")
    _current[0] = value


def distribution():
    """The distribution in force (Keras's ``keras.distribution.distribution``)."""
    return _current[0]


def is_chief():
    """Whether this process makes the writes that one process makes for all
    (rank 0 of the distribution in force; always True for one process)."""
    return _current[0].is_chief()


def warn(message, category=UserWarning, stacklevel=1):
    """``warnings.warn`` on the chief only: every process meets the same
    condition (they read the same data), one says so."""
    if is_chief():
        warnings.warn(message, category, stacklevel=stacklevel + 1)
