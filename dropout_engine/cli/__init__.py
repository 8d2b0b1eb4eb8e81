"""The command line, ``python -m dropout_engine <command>``: the parser and
the dispatch; each command lives in its own module (``train``, ``predict``,
``info``, ``demo``), table reading and writing in ``csvio``.

Errors a user can make (a missing file or column, a non-numeric or empty
cell, a bad model file) print one line, ``error: ...``, on stderr and exit
with code 2, without a traceback; argparse's usage errors exit 2 as well.
"""
import argparse
import os
import sys

from .errors import CLIError

__all__ = ["main", "CLIError"]

PROG = "python -m dropout_engine"

DESCRIPTION = """\
dropout_engine: a CPU engine for multilayer perceptrons with dropout.

commands:
  train   train a dropout MLP on a CSV (or Parquet) table: every column but
          --target is a numeric feature, standardized; holds out a
          validation split, prints its metrics, saves one model file that
          also holds the scaler and the class labels.
  predict apply such a model file to a table (features found by column
          name) and write the predictions as CSV.
  info    show the layers, shapes, activations, dropout rates, dtypes,
          parameter count and metadata of a model file.
  demo    train a 64-256-256-10 ReLU MLP with dropout (0.2 on the input,
          0.5 on the hidden layers; Adam, softmax, sparse categorical
          cross-entropy) on the 8x8 digits shipped with the package
          (1442 training / 355 test images), show the progress bar, print
          the test accuracy, the training throughput in samples/s and the
          path of the saved model file, then reload the file and check it
          predicts the same.  Exit code 0 on success, 1 if the reloaded
          model disagrees.

`python -m dropout_engine <command> --help` describes each command.
"""

TRAIN_EPILOG = """\
--task auto picks classification when any target cell is not a number, or
when all are integers with at most 20 distinct values; else regression.
Cells: numbers as Python's float() reads them; empty, NA, N/A, NaN, null,
None are missing (an error in features and target).  Rows in messages are
counted from 1, the first row after the header.  CSV is read with pandas
when it is installed, else with the csv module (the same table either way;
DROPOUT_ENGINE_CSV=builtin forces the csv module); .parquet/.pq files need
pyarrow (pip install "dropout_engine[parquet]").
"""

PREDICT_EPILOG = """\
Classification writes the predicted label (a column named as the target)
and one probability column p_<label> per class; regression writes the
prediction in the target's units.  A model file saved from Python without
the command line's metadata is applied to all the table's columns, in file
order and unscaled, when their count is the model's input width.
"""


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _number(ok, expected):
    """An argparse type: a float for which ok(v) holds."""
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v
    return parse


# Dropout rates and the validation split.
_fraction = _number(lambda v: 0 <= v < 1, "a number in [0, 1)")
_learning_rate = _number(lambda v: 0 < v < float("inf"), "a positive number")


def _hidden(text):
    """'64,64' -> [64, 64]; '' -> [] (no hidden layer)."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        return [_positive_int(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths like 64,64, got {text!r}")


def _model_out(path):
    """A model path whose suffix names a format save writes (checked before
    training, not after)."""
    from .._model_file import file_format
    try:
        file_format(path)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return path


def _common_fit_options(p, epochs):
    p.add_argument("--epochs", type=_positive_int, default=epochs,
                   help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="batch size (default: %(default)s)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="fit's verbosity: 0 silent, 1 progress bar (one line per "
                        "epoch when the output is not a terminal), 2 one line per "
                        "epoch (default: %(default)s)")


def _parser():
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="command")
    raw = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train a dropout MLP on a CSV/Parquet table",
                       formatter_class=raw, epilog=TRAIN_EPILOG,
                       description="Train a dropout MLP on a table and save it, "
                                   "with its scaler and labels, to one model file.")
    t.add_argument("data", help="the training table: .csv, or .parquet/.pq")
    t.add_argument("--target", required=True, metavar="COLUMN",
                   help="the column to predict; all others are features")
    t.add_argument("--hidden", type=_hidden, default=[64, 64], metavar="UNITS,...",
                   help="hidden ReLU layer widths (default: 64,64; '' for none)")
    t.add_argument("--dropout", type=_fraction, default=0.5, metavar="RATE",
                   help="dropout rate after each hidden layer (default: %(default)s)")
    _common_fit_options(t, epochs=20)
    t.add_argument("--lr", type=_learning_rate, default=1e-3,
                   help="Adam's learning rate (default: %(default)s)")
    t.add_argument("--task", choices=("auto", "classification", "regression"),
                   default="auto", help="what to learn (default: %(default)s; the "
                                        "rule is below)")
    t.add_argument("--validation-split", type=_fraction, default=0.2, metavar="FRACTION",
                   help="fraction of the rows, drawn at random, held out for the "
                        "reported metrics (default: %(default)s)")
    t.add_argument("--seed", type=_seed, default=None,
                   help="seed for the split, weights, dropout and shuffling "
                        "(default: fresh randomness)")
    t.add_argument("--out", type=_model_out, default="model.safetensors", metavar="PATH",
                   help="the model file to write, atomically (default: %(default)s, "
                        "the file the C library reads; '.keras' writes Keras 3's)")

    pr = sub.add_parser("predict", help="predict with a model file on a table",
                        formatter_class=raw, epilog=PREDICT_EPILOG,
                        description="Apply a model file to a CSV/Parquet table and "
                                    "write the predictions as CSV.")
    pr.add_argument("model", help="a model file written by `train` (or model.save)")
    pr.add_argument("data", help="the table: .csv, or .parquet/.pq")
    pr.add_argument("--out", metavar="PATH",
                    help="the CSV file to write, atomically (default: stdout)")
    pr.add_argument("--batch-size", type=_positive_int, default=None,
                    help="rows per predict call (default: the whole table in chunks)")

    i = sub.add_parser("info", help="describe a model file",
                       description="Show what a model file holds: layers, shapes, "
                                   "activations, dropout rates, dtypes, parameter "
                                   "count, file size and metadata.")
    i.add_argument("model", help="a model file (model.save or `train`)")

    d = sub.add_parser("demo", help="train and save a dropout MLP on digits",
                       description="Train a dropout MLP on the shipped 8x8 "
                                   "digits, report accuracy and speed, save it.")
    _common_fit_options(d, epochs=20)
    d.add_argument("--seed", type=_seed, default=0,
                   help="random seed for weights, dropout and shuffling "
                        "(default: %(default)s)")
    d.add_argument("--out", metavar="PATH",
                   help="where to save the model file (default: a new "
                        "temporary directory)")
    return p


def _run(args):
    from importlib import import_module
    return import_module(f".{args.command}", __name__).run(args)


def _message(e):
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def main(argv=None):
    """Run the command line on `argv` (default sys.argv[1:]); the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ..safetensors import ModelFileError
    try:
        return _run(args)
    except (CLIError, ModelFileError, OSError, FloatingPointError) as e:
        if isinstance(e, BrokenPipeError):     # `predict ... | head`
            # Later writes to the closed pipe (at exit) must not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        print(f"error: {_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
