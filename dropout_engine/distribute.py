"""Data-parallel training over MPI: one line makes a training script use
every process ``mpirun`` starts.

    import dropout_engine as de
    de.distribute.set_distribution(de.distribute.DataParallel())
    ...                                   # the script, unchanged
    model.fit(x, y, batch_size=256, epochs=10, validation_split=0.1)
    model.save("model.safetensors")       # rank 0 writes, the others skip

    $ mpirun -np 4 python train.py        # 4 processes, one model
    $ python train.py                     # the same script, one process

Each process loads the same data and shuffles it the same way (rank 0's
generator state is broadcast every epoch); the C training loop trains each
process on its slice of every global batch of ``batch_size`` rows (rows
[mb r / N, mb (r + 1) / N) of a batch of mb rows on rank r of N), with the
dropout masks one process would draw for those rows, and sums the
gradients with MPI_Allreduce before every process applies the same update.
The loss is the global batch mean.  So N processes train the model one
process would train with the same ``batch_size`` (to float rounding of the
sums, <= 1e-5 after 100 steps), and two runs with the same N and seed are
bit-identical.  The weights and optimizer state start from rank 0's
(broadcast at the start of every fit).  GaussianDropout/AlphaDropout noise
is drawn per process (reproducible, but not one process's draws).

Rank 0 alone draws the progress bar, prints and warns (EarlyStopping's,
ReduceLROnPlateau's, ModelCheckpoint's lines, "ran out of data", ...),
runs the callbacks that write files (ModelCheckpoint, CSVLogger,
TensorBoard) and writes BackupAndRestore's backups; ``model.save`` and
``save_weights`` write on rank 0 only (``training.distribution.is_chief``).
Every process runs the other callbacks and returns the same History.
Every callback sees the same, globally reduced, logs, so every process
makes the same decisions (early stopping, rate changes): the training
metrics are reduced in C per batch; validation is split over the
processes: each reads every validation chunk (arrays, memmaps, tables, a
generator's or a PyDataset's batches: the same data everywhere),
evaluates rows [k r / N, k (r + 1) / N) of each chunk of k rows, and the
row-weighted sums are reduced (MPI_Allreduce), so val_ logs are one
process's to float rounding.  Every process reads a BackupAndRestore
backup on restart (its ``backup_dir`` must be shared; a fit whose
processes would start at different points is refused on all).

Faults: an exception escaping ``fit`` on every process (a NaN loss, which
every process sees at the same batch, or bad data they all load) is raised
on each as usual; one escaping it on some processes only (within a few
seconds) prints its traceback with the rank and aborts the whole job
(MPI_Abort), as does an uncaught exception anywhere; a process waiting
longer than ``timeout`` seconds in a collective (a peer hung, or left fit
alone) aborts it too; a killed process and Ctrl-C on mpirun end the job
through mpirun.

MPI is loaded at run time through mpi4py (``pip install
"dropout_engine[mpi]"``) and only when the script was started by an MPI
launcher (or given ``comm=``): nothing MPI is needed to build, import or
use the package otherwise.  The C loop calls the MPI library's own
MPI_Allreduce, found with ctypes in the library mpi4py loaded.
"""
import contextlib
import ctypes
import os
import sys
import threading
import time
import traceback

import numpy as np

from .training.data_adapters import DataAdapter
from .training.distribution import Distribution, distribution, is_chief, set_distribution

__all__ = ["DataParallel", "set_distribution", "distribution", "is_chief"]

# World-size variables of the launchers: Open MPI, MPICH/Intel MPI (Hydra),
# MVAPICH.
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
_BUCKETS = {"step": 0, "layer": 1, "overlap": 2}   # engine.h's DE_BUCKET_*


def _launched_size():
    """The world size an MPI launcher announced, or None."""
    for var in _SIZE_VARS:
        v = os.environ.get(var, "")
        if v.isdigit():
            return int(v)
    return None


def _mpi4py():
    try:
        from mpi4py import MPI
    except ImportError as e:
        if (e.name or "").split(".")[0] == "mpi4py" or "mpi4py" not in sys.modules:
            raise ImportError("dropout_engine.distribute.DataParallel: this process "
                              "was started by an MPI launcher, and training over "
                              "MPI needs mpi4py: pip install \"dropout_engine[mpi]\" "
                              f"({e})") from None
        raise ImportError("dropout_engine.distribute.DataParallel: mpi4py could not "
                          f"load an MPI library ({e}); see mpi4py's MPI4PY_LIBMPI "
                          "and MPI4PY_MPIABI") from None
    return MPI


_FUNCTIONS = ("MPI_Allreduce", "MPI_Iallreduce", "MPI_Wait", "MPI_Barrier")
_OPTIONAL = ("MPI_Win_sync",)   # MPI-3; without it the shared window is off


def _mpi_functions(MPI):
    """Addresses of _FUNCTIONS in the MPI library mpi4py loaded: looked up
    through mpi4py's own module (whose dependencies dlsym searches), else
    in the libmpi this process mapped.  An absent _OPTIONAL one is None."""
    libs = [MPI.__file__]
    try:
        with open("/proc/self/maps") as f:
            libs += sorted({line.split()[-1] for line in f
                            if "libmpi" in line and ".so" in line})
    except OSError:
        pass
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            found = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                     for name in _FUNCTIONS]
        except (OSError, AttributeError):
            continue
        return tuple(found) + tuple(
            ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
            if hasattr(lib, name) else None for name in _OPTIONAL)
    raise RuntimeError("dropout_engine.distribute: MPI_Allreduce was not found "
                       f"in the MPI library mpi4py loaded ({MPI.Get_library_version()})")


class _Watchdog:
    """Aborts the job when this process waits in one collective for more
    than ``timeout`` seconds: a peer that hung, or left fit alone, must not
    hang the others for ever."""

    def __init__(self, timeout, expire):
        self.timeout, self._expire = timeout, expire
        self._since = self._what = self._thread = None

    @contextlib.contextmanager
    def watch(self, what):
        if self.timeout is None or self._since is not None:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="dropout_engine-watchdog")
            self._thread.start()
        self._what, self._since = what, time.monotonic()
        try:
            yield
        finally:
            self._since = None

    def _run(self):
        while True:
            time.sleep(min(0.25, self.timeout / 4))
            since = self._since
            if since is not None and time.monotonic() - since > self.timeout:
                self._expire(f"waited more than {self.timeout:g} s in {self._what}: "
                             "a peer process died, hung or left fit")


def _nodes(MPI, comm):
    """The communicator of this process's node (the processes that share
    its memory), and the one of the processes with its node rank on the
    other nodes (None: one node).  DROPOUT_ENGINE_RANKS_PER_NODE=k cuts each
    node into nodes of k processes (how the tests run the several-node
    path on one machine)."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    k = os.environ.get("DROPOUT_ENGINE_RANKS_PER_NODE", "")
    if k.isdigit() and int(k) > 0:
        whole = node
        node = whole.Split(whole.Get_rank() // int(k), key=whole.Get_rank())
        whole.Free()
    cross = comm.Split(node.Get_rank(), key=comm.Get_rank())
    if cross.Get_size() == 1:
        cross.Free()
        cross = None
    return node, cross


class _MPIAllreduce:
    """The ``allreduce`` seam over an MPI communicator: the hook the C loop
    calls (``c_hook``), plus the Python collectives of a fit (broadcast of
    the starting state, checks, the watchdog, the abort)."""

    def __init__(self, MPI, comm, buckets, timeout, shared_memory):
        self.MPI, self.comm = MPI, comm
        # Its own communicator, so that it can never match a collective of
        # the training (a failed process meets the others here, or not).
        self._fault_comm = comm.Dup()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.buckets = buckets
        self._fns = _mpi_functions(MPI)
        self._watchdog = _Watchdog(timeout, self.abort)
        self.watch = self._watchdog.watch
        self.node, self.cross = _nodes(MPI, comm)
        # The window: only for one all-reduce a step, and only where every
        # node has as many processes (their slices must match over the
        # nodes); else MPI_Allreduce alone.
        sizes = set(comm.allgather(self.node.Get_size()))
        self.shared_memory = (shared_memory and buckets == "step" and len(sizes) == 1
                              and self._fns[4] is not None)
        self._windows = []      # grown, never freed: a net may still point in

    def _window(self, nbytes):
        """The newest shared window of at least ``nbytes`` a process
        (allocated on every process of the node at once: the size asked is
        the largest asked by any, so all make the same calls)."""
        MPI = self.MPI
        nbytes = self.node.allreduce(nbytes, op=MPI.MAX)
        if not self._windows or self._windows[-1][1] < nbytes:
            size = -(-nbytes // 4096) * 4096      # page-aligned segments
            win = MPI.Win.Allocate_shared(size, 1, comm=self.node)
            win.Lock_all()                        # one passive epoch for good
            segs = [MPI.Get_address(win.Shared_query(k)[0])
                    for k in range(self.node.Get_size())]
            self._windows.append((win, size, segs))
        return self._windows[-1]

    def c_hook(self, shm_bytes=0):
        """The de_allreduce_t fields (engine.h) for ``_engine.Net.set_allreduce``,
        with a shared window for ``shm_bytes`` (``Net.shm_bytes()``) a process
        when gradients are summed through one."""
        MPI = self.MPI

        def h(obj):
            # As a C intptr_t: MPICH's int handles may come sign-extended
            # to 64 unsigned bits (0xffffffff84000001), which C truncates
            # back to the int.
            v = MPI._handleof(obj)
            return v - (1 << 64) if v >= 1 << 63 else v
        allreduce, iallreduce, wait, barrier, win_sync = self._fns
        hook = {"allreduce": allreduce, "iallreduce": iallreduce or 0, "wait": wait,
                "comm": h(self.comm), "float32": h(MPI.FLOAT), "float64": h(MPI.DOUBLE),
                "sum": h(MPI.SUM), "in_place": int(MPI.IN_PLACE),
                "int_handles": int(MPI._sizeof(MPI.Comm) == 4),
                "rank": self.rank, "size": self.size, "buckets": _BUCKETS[self.buckets]}
        if self.shared_memory and shm_bytes > 0:
            with self.watch("the allocation of the shared gradients"):
                win, size, segs = self._window(shm_bytes)
            hook["shm"] = {"barrier": barrier, "win_sync": win_sync, "node": h(self.node),
                           "cross": h(self.cross) if self.cross is not None else 0,
                           "win": h(win), "rank": self.node.Get_rank(), "seg": segs,
                           "seg_bytes": size}
        return hook

    def broadcast(self, arrays):
        """Rank 0's values of ``arrays`` (numpy, updated in place) on every
        process."""
        with self.watch("the broadcast of the starting weights"):
            for a in arrays:
                self.comm.Bcast(a, root=0)

    def all_failed(self, within):
        """Whether every process reaches this call within ``within`` seconds
        (they all failed alike); a process still training never does."""
        req = self._fault_comm.Ibarrier()
        end = time.monotonic() + within
        while not req.Test():
            if time.monotonic() > end:
                return False
            time.sleep(0.005)
        return True

    def abort(self, why):
        """Print why, then end every process of the job."""
        print(f"dropout_engine.distribute: rank {self.rank} of {self.size}: {why}; "
              "aborting the job", file=sys.stderr, flush=True)
        # COMM_WORLD's: MPICH aborts only the caller on another communicator.
        self.MPI.COMM_WORLD.Abort(1)


class DataParallel(Distribution):
    """Data parallelism over the processes of an MPI job (see the module
    docstring); one process when the script was not started by mpirun.

    Keyword-only args (ours):
        comm: an mpi4py communicator to train over (default: a duplicate of
            COMM_WORLD when an MPI launcher started the script; without one,
            this process alone and MPI is not loaded).
        buckets: when the C loop sums gradients: "step" (one MPI_Allreduce
            of all of them after the backward pass; the default: on the
            measured machine the others did not pay, README "Scaling
            out"), "layer"
            (one per layer as its backward ends) or "overlap" (one
            MPI_Iallreduce per layer as its backward ends, the rest of the
            backward running meanwhile, waited for before the update).
        timeout: seconds a process may wait in one collective (a training
            chunk, a broadcast) before it aborts the job; None: no limit.
        shared_memory: with buckets="step", the processes of a node sum
            their gradients through an MPI shared-memory window (each sums
            a slice of everyone's, nodes then sum each slice with
            MPI_Allreduce) instead of MPI_Allreduce alone (default True;
            False for MPI_Allreduce everywhere).  It applies where every
            node runs as many processes and the MPI library has
            MPI_Win_sync (MPI-3); elsewhere MPI_Allreduce is used.

    Each process uses (CPUs it may run on) / (processes on its node)
    engine threads unless ``OMP_NUM_THREADS`` is set.
    """

    def __init__(self, *, comm=None, buckets="step", timeout=300.0, shared_memory=True):
        if not isinstance(shared_memory, bool):
            raise ValueError(f"DataParallel: shared_memory must be True or False, "
                             f"got {shared_memory!r}")
        if buckets not in _BUCKETS:
            raise ValueError(f"DataParallel: buckets must be one of "
                             f"{sorted(_BUCKETS)}, got {buckets!r}")
        if timeout is not None and not (isinstance(timeout, (int, float))
                                        and not isinstance(timeout, bool) and timeout > 0):
            raise ValueError(f"DataParallel: timeout must be a number of seconds "
                             f"> 0 or None, got {timeout!r}")
        self.buckets, self.timeout = buckets, timeout
        self.allreduce = None
        if comm is None and (_launched_size() or 1) <= 1:
            return                      # one process: no MPI at all
        MPI = _mpi4py()
        comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
        self.rank, self.world_size = comm.Get_rank(), comm.Get_size()
        if self.world_size == 1:
            return
        self.allreduce = _MPIAllreduce(MPI, comm, buckets, timeout, shared_memory)
        self._share_cores(MPI, comm)
        self._install_excepthook()

    def __repr__(self):
        shm = self.allreduce is not None and self.allreduce.shared_memory
        return (f"DataParallel(rank={self.rank}, world_size={self.world_size}, "
                f"buckets={self.buckets!r}, shared_memory={shm})")

    @staticmethod
    def _share_cores(MPI, comm):
        if "OMP_NUM_THREADS" in os.environ:
            return
        from ._runtime import set_num_threads
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        per_node = node.Get_size()
        node.Free()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
        set_num_threads(max(1, cpus // per_node))

    def _install_excepthook(self):
        previous, mpi = sys.excepthook, self.allreduce

        def hook(kind, value, tb):
            previous(kind, value, tb)
            mpi.abort(f"uncaught {kind.__name__}")
        sys.excepthook = hook

    # ------------------------------------------------ the Trainer's seams
    # How long a process whose fit failed waits for the others to fail too.
    _FAULT_GRACE = 3.0

    @contextlib.contextmanager
    def fitting(self):
        try:
            yield
        except BaseException as e:
            mpi = self.allreduce
            if mpi is not None and not mpi.all_failed(min(self._FAULT_GRACE,
                                                          self.timeout or self._FAULT_GRACE)):
                traceback.print_exception(type(e), e, e.__traceback__)
                mpi.abort(f"{type(e).__name__} in fit (the other processes "
                          "cannot go on without this one)")
            raise

    def shard(self, data):
        """The adapter itself (every process reads all the rows; the C loop
        takes this process's slice of each global batch), checked to be the
        same on every process and shuffled as rank 0 shuffles."""
        if self.allreduce is None:
            return data
        self.agree("train on the same data; (rows, batch_size, target columns, "
                   "weighted, batches)",
                   (data.num_samples, data.batch_size, data.t_cols, bool(data.weighted),
                    data.num_batches))
        return _GlobalBatches(data, self.allreduce)

    def agree(self, what, value):
        """Raise ValueError on every process unless ``value`` is the same
        on all (``what`` says what it is, for the message)."""
        if self.allreduce is None:
            return
        with self.allreduce.watch("a check that the processes agree"):
            every = self.allreduce.comm.allgather(value)
        for r, theirs in enumerate(every):
            if theirs != every[0]:
                raise ValueError(f"DataParallel: every process must {what}; it is "
                                 f"{every[0]} on rank 0 but {theirs} on rank {r}")

    def reduce_logs(self, logs):
        """The logs as they are: the C loop already summed each batch's loss
        and metrics over the processes, so every process has the global
        means."""
        return logs

    def rows(self, n):
        """Rank r of N validates rows [n r / N, n (r + 1) / N) of each
        validation chunk of n rows (every process reads every chunk)."""
        r, size = self.rank, self.world_size
        return n * r // size, n * (r + 1) // size

    def sum(self, values):
        """float64 ``values`` summed over the processes (MPI_Allreduce, as
        the C loop sums a batch's loss and metrics): the same on every one."""
        if self.allreduce is None:
            return values
        out = np.ascontiguousarray(values, np.float64).copy()
        with self.allreduce.watch("the validation"):
            self.allreduce.comm.Allreduce(self.allreduce.MPI.IN_PLACE, out,
                                          op=self.allreduce.MPI.SUM)
        return out


class _GlobalBatches(DataAdapter):
    """An adapter that every process reads whole, its shuffles rank 0's
    (the generator's state is broadcast before each epoch)."""

    def __init__(self, data, mpi):
        self._data, self._mpi = data, mpi
        self.num_samples, self.batch_size = data.num_samples, data.batch_size
        self.t_cols, self.weighted = data.t_cols, data.weighted

    @property
    def num_batches(self):
        return self._data.num_batches

    def more(self):
        # A generator that ran out ends the fit on every process alike.
        return self._data.more()

    def epoch(self, rng):
        with self._mpi.watch("the epoch's shuffle"):
            state = self._mpi.comm.bcast(rng.bit_generator.state
                                         if self._mpi.rank == 0 else None, root=0)
        rng.bit_generator.state = state
        yield from self._data.epoch(rng)
