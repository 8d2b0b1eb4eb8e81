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
``model.save`` / ``save_weights`` and checkpoints.  Call it, rather than
reading a rank, wherever a new such write appears.
"""
import contextlib


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
        local_callbacks(callbacks): the callbacks this process runs.
        reduce_logs(logs): one epoch's training logs combined over the
            processes (before validation and the epoch-end callbacks).
        evaluate(evaluate, val, batch_size): the validation logs, from the
            model's ``_evaluate`` over the arrays ``val`` = (x, t, sw).
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

    def local_callbacks(self, callbacks):
        """``callbacks`` (a list or None) less, on a process that is not the
        chief, those whose class sets ``_chief_only`` (they write files or
        the terminal for everyone)."""
        if callbacks is None or self.is_chief():
            return callbacks
        return [cb for cb in callbacks if not getattr(cb, "_chief_only", False)]

    def reduce_logs(self, logs):
        return logs

    def evaluate(self, evaluate, val, batch_size):
        return evaluate(*val, batch_size)


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
