"""`python -m dropout_engine train data.csv --target label`: a dropout MLP
from a table, saved with what predict needs to apply it (``preprocess``).

Steps: read the table (``csvio``); every column but the target is a
numeric feature (``columns``); pick the task; hold out a random
``--validation-split`` of the rows (seeded by ``--seed``); standardize on
the training rows; train ``Dense(h, relu) -> Dropout(rate)`` per hidden
layer, then softmax over the classes (sparse categorical cross-entropy) or
one linear unit (mse), with Adam; print the held-out metrics; save.
"""
import numpy as np

from .. import seeding
from ..layers import Dense, Dropout, Input
from ..models import Sequential
from ..optimizers import Adam
from . import columns, csvio
from .errors import CLIError
from .preprocess import KEY, Preprocessor


def _split(n, fraction, rng):
    """(training rows, held-out rows), a random split, each in file order."""
    n_val = max(int(round(n * fraction)), 1) if fraction > 0 else 0
    if n - n_val < 1:
        raise CLIError(f"{n} data row{'s' if n > 1 else ''} leave none to train on "
                       f"after --validation-split {fraction}")
    order = rng.permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _build(n_features, hidden, rate, n_out, task, learning_rate):
    layers = [Input((n_features,))]
    for units in hidden:
        layers.append(Dense(units, activation="relu"))
        if rate > 0:
            layers.append(Dropout(rate))
    if task == "classification":
        layers.append(Dense(n_out, activation="softmax"))
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        layers.append(Dense(1))
        loss, metrics = "mse", ["mae"]
    model = Sequential(layers)
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss=loss, metrics=metrics)
    return model


def _describe(model, n_features):
    parts = [str(n_features)]
    for layer in model.layers:
        if isinstance(layer, Dense):
            parts.append(f"{layer.units} {layer.activation}")
        else:
            parts.append(f"dropout {layer.rate:g}")
    return " -> ".join(parts) + f" ({model.count_params():,} parameters)"


def _target(table, name, task):
    """(task, why, classes or None, y) for the target column."""
    why = "--task"
    if task == "auto":
        task, why = columns.detect_task(table, name)
        why = f"auto: {why}"
    if task == "classification":
        classes, y = columns.encode_labels(table, name)
        return task, why, classes, y
    return task, why, None, columns.numeric_target(table, name)


def _metrics(model, prep, x, y):
    """The metrics line for rows x (standardized) with raw targets y."""
    if prep.task == "classification":
        loss, accuracy = model.evaluate(x, y, verbose=0)
        return f"loss {loss:.4f}, accuracy {accuracy:.4f}"
    err = prep.decode(model.predict(x, verbose=0)) - y
    return (f"mse {float(np.mean(err ** 2)):.6g}, mae {float(np.mean(np.abs(err))):.6g} "
            f"(in the target's units)")


def run(args):
    csvio.check_out_dir(args.out)    # before training, not after
    if args.seed is not None:
        seeding.set_random_seed(args.seed)
    # The target stays text: its spelling is the class label.
    table = csvio.read_table(args.data, text={args.target})
    if args.target not in table.names:
        raise CLIError(f"{table.path}: no column {args.target!r} (the --target); "
                       f"the columns are {', '.join(map(repr, table.names))}")
    features = [n for n in table.names if n != args.target]
    if not features:
        raise CLIError(f"{table.path}: no feature columns besides the target "
                       f"{args.target!r}")
    task, why, classes, y = _target(table, args.target, args.task)
    x = columns.feature_matrix(table, features)
    train_rows, val_rows = _split(table.rows, args.validation_split, seeding.numpy_rng())

    prep = Preprocessor.fit(features, x[train_rows], args.target, task,
                            classes=classes, y=y[train_rows])
    xs, ys = prep.transform(x), prep.encode_target(y)
    model = _build(len(features), args.hidden, args.dropout,
                   len(classes) if classes else 1, task, args.lr)
    print(f"data:  {table.path}: {table.rows} rows, {len(features)} features, "
          f"target {args.target!r}")
    print(f"task:  {task} ({why})" + (f", classes {', '.join(classes[:10])}"
                                      + (", ..." if len(classes) > 10 else "")
                                      if classes else ""))
    print(f"model: {_describe(model, len(features))}")
    print(f"split: {len(train_rows)} training rows, {len(val_rows)} held out")
    val = (xs[val_rows], ys[val_rows]) if len(val_rows) else None
    model.fit(xs[train_rows], ys[train_rows], batch_size=args.batch_size,
              epochs=args.epochs, verbose=args.verbose, validation_data=val)
    if len(val_rows):
        print(f"held-out ({len(val_rows)} rows): "
              f"{_metrics(model, prep, xs[val_rows], y[val_rows])}")
    else:
        print(f"training rows (no held-out split): "
              f"{_metrics(model, prep, xs[train_rows], y[train_rows])}")
    model.save(args.out, metadata={KEY: prep.to_json()})
    print(f"saved: {args.out}")
    return 0
