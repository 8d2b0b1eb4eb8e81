"""fit / evaluate / predict inputs: which adapter reads x, with Keras 3's
rules (keras/src/trainers/data_adapters, 3.15).

Kinds of x, and their adapter (``data_adapters`` lists the modules):
  - arrays (numpy, lists, anything ``np.asarray`` reads): converted once
    to float32, ``ArrayAdapter``;
  - memmaps (``np.load(path, mmap_mode="r")``, ``np.memmap``), pandas
    DataFrame/Series, pyarrow Table/RecordBatch: ``RowsAdapter``, a chunk
    at a time (y and sample_weight may be any array kind);
  - a generator (any iterator) of batches: ``GeneratorAdapter``;
  - a PyDataset (ours, Keras's, or ``Sequence``-like): ``PyDatasetAdapter``.

Keras's rules, kept:
  - with a generator or a PyDataset, ``y`` and ``sample_weight`` must not
    be passed (they come in the batches); ``class_weight`` is refused for
    a generator and applied to a PyDataset's targets;
  - ``shuffle`` is ignored for generators, with Keras's warning (fit's
    default is True, so a plain ``fit(generator)`` warns, as Keras's
    does); a PyDataset's batch order is shuffled when True (see
    py_dataset); ``shuffle="batch"`` shuffles arrays within batches;
  - ``validation_split`` takes the last rows of arrays, memmaps and tables
    (before shuffling) and is refused for generators and PyDatasets;
  - ``validation_data``: ``(x, y)`` / ``(x, y, sample_weight)`` of any
    array kind, or a generator or PyDataset; ``validation_steps`` batches
    of it per validation (a generator, and arrays, go on where the last
    validation stopped; without it a generator is read to its end once);
  - ``steps_per_epoch``: see ``data_adapters.Passes`` and
    generator_adapter; with arrays and no ``batch_size``, the batch size is
    ceil(rows / steps_per_epoch);
  - ``evaluate(steps=)`` / ``predict(steps=)``: that many batches.
Ours: a validation generator that has run dry gives no ``val_`` logs for
that epoch (with the ran-out warning) rather than failing the fit.
"""
import collections.abc
import math

import numpy as np

from .. import _validation
from .chunks import BatchFailure
from .data_adapters import ArrayAdapter, split_at, unpack_validation, warn_ran_out
from .distribution import warn
from .frame_rows import FrameRows, table_kind
from .generator_adapter import GeneratorAdapter
from .memmap_adapter import RowsAdapter, memmap_of, rows_of
from .py_dataset import PyDatasetAdapter, is_py_dataset


def kind(x):
    """"array", "rows" (memmap or table), "generator" or "py_dataset"."""
    if isinstance(x, np.ndarray):
        return "rows" if memmap_of(x) is not None else "array"
    if table_kind(x) is not None:
        return "rows"
    if is_py_dataset(x):
        return "py_dataset"
    if isinstance(x, collections.abc.Iterator):
        return "generator"
    return "array"


def _rows(a, what):
    if a is None:
        return None
    return FrameRows.of(a, what) if table_kind(a) is not None else rows_of(a)


def _converter(model, class_weight=None, what="x", predict=False):
    """``(x, y, sw) -> (x, t, sw)`` validated, for fit/evaluate (y needed)
    or predict (x only, NaN passed through)."""
    if predict:
        return lambda x, y, sw: (model._x(x, check_finite=False, what=what), None, None)
    sw_what = "sample_weight" if what == "x" else "validation sample_weight"

    def conv(x, y, sw):
        x, t = model._xy(x, y, what=what)
        return x, t, _validation.sample_weights(sw, class_weight, t, what=sw_what)
    return conv


def _refuse_in_batches(k, y, sample_weight, class_weight):
    name = "generator" if k == "generator" else "PyDataset"
    for arg, what, v in (("y", "the targets", y),
                         ("sample_weight", "the sample weights", sample_weight)):
        if v is not None:
            raise ValueError(f"When providing `x` as a {name}, `{arg}` should not be "
                             f"passed. Instead, {what} should be included as part "
                             f"of the {name}.")
    if k == "generator" and class_weight is not None:
        raise ValueError("Argument `class_weight` is not supported for Python "
                         f"generator inputs. Received: class_weight={class_weight}")


def _batches_adapter(model, k, x, shuffle, steps, class_weight=None, what="x",
                     predict=False, validation=False):
    conv = _converter(model, class_weight, what, predict)
    prefix = "the validation " if validation else "the "
    if k == "generator":
        return GeneratorAdapter(x, conv, not predict, steps, source=prefix + "generator")
    return PyDatasetAdapter(x, conv, not predict, shuffle, steps,
                            source=prefix + "PyDataset")


def _steps(name, v):
    return None if v is None else _validation.positive_int(name, v)


def get_data(model, x, y, sample_weight, class_weight, validation_split,
             validation_data, batch_size, shuffle, steps_per_epoch,
             validation_batch_size, validation_steps):
    """fit's data: (the training DataAdapter, the validation adapter or None).

    Args: fit's, with ``batch_size`` as given (None: 32, or from
    steps_per_epoch for arrays) and ``validation_batch_size`` validated.
    """
    steps = _steps("steps_per_epoch", steps_per_epoch)
    vsteps = _steps("validation_steps", validation_steps)
    B = _validation.batch_size(batch_size)
    k = kind(x)
    val = None
    if k in ("generator", "py_dataset"):
        _refuse_in_batches(k, y, sample_weight, class_weight)
        if validation_split:
            raise ValueError("`validation_split` is only supported for Tensors or NumPy "
                             f"arrays (and, here, memmaps and tables), got a {k}")
        if k == "generator" and shuffle:
            warn("`shuffle=True` was passed, but will be ignored since the "
                 "data `x` was provided as a generator. The generator is "
                 "expected to yield already-shuffled data.", stacklevel=4)
        data = _batches_adapter(model, k, x, shuffle, steps, class_weight)
    elif k == "rows":
        xs, ys, sws = _rows(x, "x"), _rows(y, "y"), _rows(sample_weight, "sample_weight")
        split = None if validation_data is not None else split_at(xs.n, validation_split)
        if split is not None:
            part = (lambda s, lo, hi: None if s is None else s.sub(lo, hi))
            xv, yv, swv = (part(s, split, xs.n) for s in (xs, ys, sws))
            xs, ys, sws = (part(s, 0, split) for s in (xs, ys, sws))
        if batch_size is None and steps:
            B = math.ceil(xs.n / steps)
        conv = _converter(model, class_weight)
        data = RowsAdapter(conv, xs, ys, sws, B, shuffle, steps)
        if split is not None:
            val = RowsAdapter(_converter(model, what="x_val"), xv, yv, swv,
                              validation_batch_size, False, vsteps, source="x_val")
    else:
        x, t = model._xy(x, y)
        sw = _validation.sample_weights(sample_weight, class_weight, t)
        split = None if validation_data is not None else split_at(x.shape[0],
                                                                  validation_split)
        if split is not None:
            cut = (lambda a, s: None if a is None else a[s])
            val = ArrayAdapter(x[split:], t[split:], cut(sw, slice(split, None)),
                               validation_batch_size, False, vsteps)
            x, t, sw = x[:split], t[:split], cut(sw, slice(None, split))
        if batch_size is None and steps:
            B = math.ceil(x.shape[0] / steps)
        data = ArrayAdapter(x, t, sw, B, shuffle, steps)
    if validation_data is not None:
        vx, vy, vsw = unpack_validation(validation_data)
        if not isinstance(validation_data, (tuple, list)) and kind(vx) not in (
                "generator", "py_dataset"):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, "
                             "y_val, sample_weight_val), or a generator or PyDataset; "
                             f"got {_validation.describe(validation_data)}")
        val = evaluation_source(model, vx, vy, vsw, validation_batch_size, vsteps,
                                validation=True)
    return data, val


def evaluation_source(model, x, y, sample_weight, batch_size, steps, *,
                      validation=False, predict=False):
    """The adapter evaluate (or predict, or fit's validation) reads: x in
    order, in chunks of whole batches."""
    what = "x_val" if validation else "x"
    k = kind(x)
    if k in ("generator", "py_dataset"):
        if not predict:
            _refuse_in_batches(k, y, sample_weight, None)
        return _batches_adapter(model, k, x, False, steps, what=what, predict=predict,
                                validation=validation)
    conv = _converter(model, what=what, predict=predict)
    if k == "rows":
        ys = None if predict else _rows(y, what.replace("x", "y"))
        sws = None if predict else _rows(sample_weight, "sample_weight")
        return RowsAdapter(conv, _rows(x, what), ys, sws, batch_size, False, steps,
                           source=what)
    x, t, sw = conv(x, None if predict else y, None if predict else sample_weight)
    return ArrayAdapter(x, t, sw, batch_size, False, steps)


def chunks_of(data, rng, where, keeps_weights=False):
    """``data.epoch(rng)``, a bad batch raised naming ``where`` ("fit: epoch
    3") and the batch."""
    try:
        yield from data.epoch(rng)
    except BatchFailure as failure:
        failure.throw(where, keeps_weights)


def _rows_of_chunk(part):
    """The chunk's (x, t, sw) in order (evaluation chunks are in order)."""
    idx = part.index
    a, k = int(idx[0]), idx.shape[0]
    if int(idx[-1]) == a + k - 1:
        s = slice(a, a + k)
        return part.x[s], (None if part.t is None else part.t[s]), (
            None if part.sw is None else part.sw[s])
    take = (lambda v: None if v is None else v[idx])
    return take(part.x), take(part.t), take(part.sw)


def run_evaluation(model, data, batch_size, where="evaluate"):
    """Logs over everything ``data`` gives (rows-weighted means of the
    chunks' logs, which is the mean over all rows); None when it gave no
    rows."""
    seen = []
    for part in chunks_of(data, None, where):
        x, t, sw = _rows_of_chunk(part)
        seen.append((x.shape[0], model._evaluate(x, t, sw, batch_size)))
    if not seen:
        return None
    if len(seen) == 1:
        return seen[0][1]
    total = sum(n for n, _ in seen)
    return {key: sum(n * logs[key] for n, logs in seen) / total for key in seen[0][1]}


def _shared_evaluation(model, data, batch_size, dist, where):
    """``run_evaluation`` spread over the processes of ``dist``: every
    process reads every chunk (the same data everywhere), evaluates its
    share of the chunk's rows (``dist.rows``), and the row-weighted sums
    are summed over the processes (``dist.sum``), so that every process
    gets the same logs, those of one process to float rounding."""
    names = model._metric_names()
    sums = np.zeros(1 + len(names))          # rows, then rows x each log
    for part in chunks_of(data, None, where):
        x, t, sw = _rows_of_chunk(part)
        lo, hi = dist.rows(x.shape[0])
        if hi > lo:
            logs = model._evaluate(x[lo:hi], None if t is None else t[lo:hi],
                                   None if sw is None else sw[lo:hi], batch_size)
            sums += [hi - lo] + [(hi - lo) * logs[k] for k in names]
    sums = dist.sum(sums)
    if not sums[0]:
        return None
    return {k: float(v / sums[0]) for k, v in zip(names, sums[1:])}


def validate(model, val, batch_size, dist=None):
    """fit's validation logs, or None when a validation generator ran dry;
    spread over the processes of ``dist`` when it has more than one."""
    if dist is None or dist.world_size == 1:
        logs = run_evaluation(model, val, batch_size, "fit's validation")
    else:
        logs = _shared_evaluation(model, val, batch_size, dist, "fit's validation")
    if logs is None:
        warn_ran_out()
    return logs


def _arrays(model, x, y, sample_weight, batch_size, steps, predict):
    """Arrays for evaluate / predict: converted once, the first ``steps``
    batches (no adapter: it would add an index as long as x)."""
    x, t, sw = _converter(model, predict=predict)(x, y, sample_weight)
    if steps is not None:
        k = steps * batch_size
        x, t, sw = (None if a is None else a[:k] for a in (x, t, sw))
    return x, t, sw


def evaluate(model, x, y, sample_weight, batch_size, steps):
    """``model.evaluate``'s logs over any kind of x."""
    steps = _steps("steps", steps)
    if kind(x) == "array":
        return model._evaluate(*_arrays(model, x, y, sample_weight, batch_size, steps,
                                        False), batch_size)
    data = evaluation_source(model, x, y, sample_weight, batch_size, steps)
    logs = run_evaluation(model, data, batch_size)
    if logs is None:
        raise ValueError("evaluate: x gave no batches (an exhausted generator?)")
    return logs


def predict(model, x, batch_size, steps):
    """``model.predict`` of any kind of x: float32 [rows, units]."""
    steps = _steps("steps", steps)
    if kind(x) == "array":
        x = _arrays(model, x, None, None, batch_size, steps, True)[0]
        return model._net.predict(x, batch_size)
    data = evaluation_source(model, x, None, None, batch_size, steps, predict=True)
    outs = [model._net.predict(_rows_of_chunk(part)[0], batch_size)
            for part in chunks_of(data, None, "predict")]
    if not outs:
        raise ValueError("predict: x gave no batches (an exhausted generator?)")
    return outs[0] if len(outs) == 1 else np.concatenate(outs)
