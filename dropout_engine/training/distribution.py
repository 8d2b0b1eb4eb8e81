"""How one fit is spread over processes: the Trainer's seam for data
parallelism.

The planned use is an MPI all-reduce of the gradients inside the C loop:
every process trains on its shard of the rows, the loop sums the gradients
over processes after each backward pass, and every process applies the
same update.  Nothing here talks to MPI; the base class is one process.
"""


class Distribution:
    """One process (the default); subclass it to spread training.

    The Trainer uses three seams:
        shard(data): the DataAdapter of the rows this process trains on.
        allreduce: what the C loop calls after each backward pass to sum
            the gradients over processes, handed to the model's
            ``_train_net`` (and on to ``_net.Net.setup_training``); None
            trains on this process's gradients alone.
        reduce_logs(logs): one epoch's training logs combined over the
            processes (before validation and the epoch-end callbacks).
    """
    rank = 0
    world_size = 1
    allreduce = None

    def shard(self, data):
        return data

    def reduce_logs(self, logs):
        return logs


def is_chief():
    """Whether this process writes what a fit writes once (backups, files):
    rank 0 of a distributed fit; a process alone always is."""
    return True
