"""Where a running fit stands, and the seam to resume one
(``callbacks.BackupAndRestore``).

The Trainer makes one FitState per fit, ``model._trainer.state`` while the
fit runs.  A position is (epoch, batch): ``batch`` batches of ``epoch`` are
done.  To go on from a position bit for bit, the loop needs, besides what
the model holds (weights, optimizer state and its iteration count, which
also keys the dropout masks), two things of its own:

  - the shuffle generator as it was when the epoch began: the epoch's
    order is drawn again from it and the batches already done are skipped
    (data adapters draw from the generator only while they iterate, so
    replaying the epoch's start replays its draws);
  - the epoch's running sums of the batch logs, so that the epoch's logs
    (History, the monitors) are those of an uninterrupted epoch.

A callback reads ``epoch``, ``batch``, ``epoch_rng_state``, ``totals`` and
``seen`` to back the loop up, and calls ``resume`` in ``on_train_begin`` to
make the loop start at a saved position.
"""
import numpy as np

__all__ = ["FitState"]


class FitState:
    """One fit's loop position (see the module docstring).

    Attributes (read them, the Trainer sets them):
        rng: the fit's shuffle Generator.
        callbacks: the fit's CallbackList.
        chief: whether this process writes what the fit writes once
            (``distribution.is_chief()``: rank 0 of a distributed fit).
        epoch: the epoch running.
        batch: batches of it done (updated at every chunk end, before the
            batch hooks run).
        epoch_rng_state: ``rng.bit_generator.state`` when the epoch began.
        totals: float64 [n_logs], the epoch's sums of batch logs times rows.
        seen: the rows those sums cover.
    """

    def __init__(self, rng, callbacks, n_logs, chief=True):
        self.rng, self.callbacks, self.chief = rng, callbacks, chief
        self.epoch = self.batch = 0
        self.epoch_rng_state = None
        self.totals = np.zeros(n_logs)
        self.seen = 0.0
        self._resume = None

    def resume(self, epoch, batch=0, rng_state=None, totals=None, seen=0.0,
               stopped=False):
        """Start the loop at (``epoch``, ``batch``) instead of fit's
        ``initial_epoch`` (call it in ``on_train_begin``; Keras's
        BackupAndRestore sets ``model._initial_epoch`` for the same).

        Args:
            rng_state: the shuffle generator's state when ``epoch`` began
                (None keeps the fit's own).
            totals, seen: the epoch's sums up to ``batch`` (needed when
                ``batch`` > 0).
            stopped: the saved fit had been told to stop (a callback set
                ``stop_training``): no epoch runs, only ``on_train_end``.

        Raises:
            ValueError: a position or sums this fit cannot take.
        """
        if isinstance(rng_state, dict):
            try:
                probe = np.random.Generator(type(self.rng.bit_generator)())
                probe.bit_generator.state = rng_state
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"resume: rng_state is not a "
                                 f"{type(self.rng.bit_generator).__name__} state "
                                 f"({e})") from None
        elif rng_state is not None:
            raise TypeError(f"resume: rng_state must be a dict or None, got "
                            f"{type(rng_state).__name__}")
        sums = np.zeros_like(self.totals)
        if batch:
            sums = np.asarray(totals, dtype=np.float64)
            if sums.shape != self.totals.shape or not np.all(np.isfinite(sums)):
                raise ValueError(f"resume: totals must be {self.totals.size} finite "
                                 f"numbers (one per log), got {totals!r:.200}")
            if not seen > 0:
                raise ValueError(f"resume: seen must be > 0 with batch > 0, got {seen!r}")
        self._resume = (epoch, batch, rng_state, sums, float(seen) if batch else 0.0,
                        bool(stopped))

    def first_epoch(self, initial_epoch, epochs):
        """The epoch the loop starts at: the resumed one, else
        ``initial_epoch`` (``epochs`` when the resumed fit had stopped)."""
        if self._resume is None:
            return initial_epoch
        return epochs if self._resume[5] else self._resume[0]

    def start(self, initial_epoch, epochs):
        """(epoch, batch) where the loop starts: ``first_epoch`` and the
        batches of it a resume skips."""
        batch = self._resume[1] if self._resume is not None and not self._resume[5] else 0
        return self.first_epoch(initial_epoch, epochs), batch

    def begin_epoch(self, epoch):
        """Set up ``epoch`` (after its on_epoch_begin, before its first
        draw); returns (totals, seen, batches to skip)."""
        r, self._resume = self._resume, None
        if r is not None and r[2] is not None:
            self.rng.bit_generator.state = r[2]
        self.epoch, self.epoch_rng_state = epoch, self.rng.bit_generator.state
        if r is not None and r[1]:
            self.batch, self.seen = r[1], r[4]
            self.totals[:] = r[3]
        else:
            self.batch, self.seen = 0, 0.0
            self.totals[:] = 0.0
        return self.totals, self.seen, self.batch
