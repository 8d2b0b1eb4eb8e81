"""The progress bar: Progbar, a Keras-style bar drawn between the C chunks
of fit/evaluate (also ``keras.utils.Progbar``), and ProgbarLogger, the
callback that drives it.

On a terminal it redraws one line with a carriage return::

    12/47 [=====>........................] - ETA: 3s - loss: 0.4312 - accuracy: 0.8821 - 31250 samples/s

and ends it with the elapsed time and time per step.  When the output is
not a terminal (a log file, CI) it prints only the finished line, one line
per epoch, like Keras's verbose=2, so logs are not flooded.

Why it is cheap: an update that comes sooner than `interval` after the last
one draws nothing, and drawing is a few string formats -- fit calls it once
per chunk of batches, not per batch.
"""
import math
import sys
import time

from .base import Callback

__all__ = ["Progbar", "ProgbarLogger"]


def _format_eta(eta):
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def _format_per_unit(seconds, unit_name):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def _as_number(v):
    """float(v) for numbers, numpy scalars and 1-element arrays; else None."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _format_value(v):
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


class Progbar:
    """Displays a progress bar.

    Args:
        target: total number of steps expected, None if unknown.
        width: width of the bar in characters.
        verbose: 0 silent, 1 a live bar (one finished line per bar when the
            output is not a terminal), 2 one finished line per bar, no bar.
        interval: minimum time in seconds between two redraws.
        unit_name: the name of a step in the time-per-step figure.
        stateful_metrics: keyword-only; names whose values are shown as
            given.  Others are averaged over the steps, weighted by how many
            steps each update covered (Keras semantics).
        stateless_metrics: keyword-only; the converse: only these are
            averaged, all others shown as given.  Give at most one of the two.
        file: keyword-only, ours: the stream to draw on (default sys.stdout).

    Example:
        >>> bar = Progbar(47)
        >>> bar.update(12, [("loss", 0.43)], samples=384)  # doctest: +SKIP
    """

    def __init__(self, target, width=30, verbose=1, interval=0.05,
                 unit_name="step", *, stateful_metrics=None,
                 stateless_metrics=None, file=None):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("give stateful_metrics or stateless_metrics, "
                             "not both")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = (set(stateful_metrics or ())
                                 if stateless_metrics is None else None)
        self.stateless_metrics = (set(stateless_metrics)
                                  if stateless_metrics is not None else None)
        self.file = file if file is not None else sys.stdout
        isatty = getattr(self.file, "isatty", None)
        self._dynamic_display = bool(isatty and isatty()) or "ipykernel" in sys.modules
        self._values = {}  # name -> [sum, steps], [value, 1], [text, None]
        self._seen_so_far = 0
        self._samples = None
        self._start = time.monotonic()
        self._last_update = -math.inf
        self._first = None          # (time, current) of the first step seen
        self._prev_width = 0

    def _is_stateless(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _accumulate(self, current, values, finalize):
        for k, v in values or ():
            x = _as_number(v)
            if x is None:               # shown as given, e.g. a string
                self._values[k] = [v, None]
            elif not self._is_stateless(k) or finalize:
                self._values[k] = [x, 1]
            else:
                steps = max(current - self._seen_so_far, 1)
                acc = self._values.get(k)
                if acc is None or acc[1] is None:
                    acc = self._values[k] = [0.0, 0]
                acc[0] += x * steps
                acc[1] += steps

    def _time_per_step(self, current, now):
        # The first update pays for warm-up (arena allocation, page faults);
        # like Keras, estimate from the steps after it when there are any.
        if not current:
            return 0.0
        if self._first is None:
            self._first = (now, current)
        t0, c0 = self._first
        if current > c0 and now > t0:
            return (now - t0) / (current - c0)
        return (now - self._start) / current

    def update(self, current, values=None, finalize=None, *, samples=None):
        """Updates the progress bar.

        Args:
            current: index of the current step (the number of steps done).
            values: list of (name, value) pairs, e.g. list(logs.items()).
            finalize: whether this is the last update; None means
                `current >= target`.
            samples: keyword-only, ours: samples processed so far; when
                given, the line ends with the throughput in samples/s.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._accumulate(current, values, finalize)
        self._seen_so_far = current
        if samples is not None:
            self._samples = samples
        now = time.monotonic()
        per_step = self._time_per_step(current, now)
        if self.verbose == 0 or (not finalize and (
                now - self._last_update < self.interval
                or self.verbose == 2 or not self._dynamic_display)):
            return
        self._last_update = now
        if self.verbose == 2:
            line = self._count(current) + f" - {now - self._start:.0f}s - " \
                + _format_per_unit(per_step, self.unit_name)
        else:
            line = self._bar(current)
            if finalize or self.target is None:
                line += f" - {now - self._start:.0f}s " \
                    + _format_per_unit(per_step, self.unit_name)
            else:
                line += " - ETA: " + _format_eta(per_step * (self.target - current))
        line += "".join(f" - {k}: {v}" if n is None else
                        f" - {k}: {_format_value(v / max(1, n))}"
                        for k, (v, n) in self._values.items())
        elapsed = now - self._start
        if self._samples is not None and elapsed > 0:
            line += f" - {self._samples / elapsed:.0f} samples/s"
        self._write(line, finalize)

    def add(self, n, values=None):
        """Advances the bar by `n` steps (Keras's Progbar.add)."""
        self.update(self._seen_so_far + n, values)

    def _count(self, current):
        if self.target is None:
            return "%7d/Unknown" % current
        digits = int(math.log10(max(self.target, 1))) + 1
        return f"%{digits}d/%d" % (current, self.target)

    def _bar(self, current):
        text = self._count(current)
        if self.target is None or self.target <= 0:
            return text
        done = min(int(self.width * current / self.target), self.width)
        arrow = ("=" * (done - 1) + (">" if current < self.target else "=")
                 if done else "")
        return f"{text} [{arrow}{'.' * (self.width - done)}]"

    def _write(self, line, finalize):
        if self._dynamic_display and self.verbose == 1:
            # Pad over the remains of a longer previous line.
            pad = " " * max(self._prev_width - len(line), 0)
            self._prev_width = len(line)
            out = "\r" + line + pad + ("\n" if finalize else "")
        else:
            out = line + "\n"
        self.file.write(out)
        self.file.flush()


class ProgbarLogger(Callback):
    """Prints a progress bar and the metrics to stdout (fit adds it when
    verbose != 0).

    It reads params "verbose", "epochs" and "steps" (and, when fit provides
    them, ours: "samples" and "batch_size", for a samples/s figure).  It is
    updated from on_train_batch_end, which fit calls at chunk ends with the
    chunk's last batch index, so the bar advances chunk by chunk and never
    forces fit to stop at every batch.
    """
    # One process writes for all under data parallelism (training.distribution).
    _chief_only = True

    batch_hooks_at_chunk_ends = True

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _reset(self):
        self.seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose,
                               unit_name="step", stateless_metrics=())

    def _samples(self):
        p = self.params or {}
        if not p.get("batch_size") or self.seen == 0:
            return None
        done = self.seen * p["batch_size"]
        return min(done, p["samples"]) if p.get("samples") else done

    def _update(self, batch, logs):
        if self.progbar is None:
            self._reset()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()),
                                finalize=False, samples=self._samples())

    def _finalize(self, logs):
        if self.progbar is None:
            self._reset()
        if self.target is None:
            self.target = self.progbar.target = self.seen
        self.progbar.update(self.target, list((logs or {}).items()),
                            finalize=True, samples=self._samples())

    def on_train_begin(self, logs=None):
        # Inside fit, validation runs silently.
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._reset()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)  # predictions are not metrics

    def on_predict_end(self, logs=None):
        self._finalize(None)
