"""`python -m dropout_engine predict model.safetensors data.csv [--out p.csv]`.

A model `train` made carries its preprocessing (``preprocess``): the
features are taken from the table by NAME, so the columns may come in any
order and extra ones (the target, ids) are ignored; a missing feature
column is an error.  The stored scaler is applied.  Output (CSV, to --out
or stdout), one row per input row:

  classification  a column named as the target with the predicted label
                  (spelled as in the training file), then ``p_<label>``
                  per class: the softmax probabilities;
  regression      one column named as the target: the prediction, in the
                  target's units.

A model file without that metadata (``model.save`` from Python): every
column of the table is taken as a numeric feature, in file order and
unscaled (what ``model.predict(x)`` would get), if their count is the
model's input width (a note on stderr says so), else it is an error; the
output columns are ``output_0``, ``output_1``, ...: the raw outputs.
Numbers are written in the shortest form that reads back as the same
float32.
"""
import sys

import numpy as np

from ..layers import Embedding
from ..layers.base import _show
from ..saving import load_metadata, load_model
from . import columns, csvio
from .errors import CLIError
from .preprocess import KEY, Preprocessor


def _text(values):
    # str of a numpy float32 is its shortest round-tripping repr.
    return [str(v) for v in np.asarray(values, np.float32)]


def _with_metadata(prep, table, model_path, n_in):
    if len(prep.features) != n_in:
        raise CLIError(f"{model_path}: its metadata names {len(prep.features)} features, "
                       f"the model takes {n_in}")
    missing = [f for f in prep.features if f not in table.names]
    if missing:
        raise CLIError(f"{table.path}: no column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(map(repr, missing))}, which the model was trained "
                       f"on (its features: {', '.join(prep.features)})")
    return prep.transform(columns.feature_matrix(table, prep.features))


def _raw(table, model_path, n_in):
    if len(table.names) != n_in:
        raise CLIError(f"{model_path}: has no command-line metadata (it was not made by "
                       f"`train`), so every column must be a feature, but {table.path} "
                       f"has {len(table.names)} columns and the model takes {n_in}")
    print(f"note: {model_path} has no command-line metadata; using the "
          f"{n_in} columns of {table.path} as raw, unscaled features in file order",
          file=sys.stderr)
    return columns.feature_matrix(table, table.names).astype(np.float32)


def outputs(prep, y):
    """(header, columns of text) for the model outputs `y` [rows, outputs]."""
    if prep is None:
        return [f"output_{j}" for j in range(y.shape[1])], [_text(c) for c in y.T]
    if prep.task == "regression":
        return [prep.target], [_text(prep.decode(y))]
    labels = np.array(prep.classes, dtype=object)[np.argmax(y, axis=1)]
    return ([prep.target] + [f"p_{c}" for c in prep.classes],
            [list(labels)] + [_text(c) for c in y.T])


def run(args):
    if args.out is not None:
        csvio.check_out_dir(args.out)
    model = load_model(args.model, compile=False)
    meta = load_metadata(args.model)
    prep = Preprocessor.from_json(meta[KEY], args.model) if KEY in meta else None
    table = csvio.read_table(args.data)
    n_in = model._n_in
    if len(model._input_shape) != 1 or isinstance(model.layers[0], Embedding):
        raise CLIError(f"{args.model}: the command line predicts from a table of "
                       f"features; this model takes input of shape "
                       f"{_show(model._input_shape)}"
                       f"{' (token ids)' if isinstance(model.layers[0], Embedding) else ''}")
    x = (_with_metadata(prep, table, args.model, n_in) if prep is not None
         else _raw(table, args.model, n_in))
    y = model.predict(x, batch_size=args.batch_size, verbose=0)
    if prep is not None:
        want = len(prep.classes) if prep.task == "classification" else 1
        if y.shape[1] != want:
            raise CLIError(f"{args.model}: the model has {y.shape[1]} outputs, its "
                           f"{prep.task} metadata needs {want}")
    header, cols = outputs(prep, y)
    csvio.write_csv(args.out, header, cols)
    if args.out is not None:
        print(f"wrote {table.rows} predictions to {args.out}")
    return 0
