"""Command line: `python -m dropout_engine demo` trains a dropout MLP on the
digits shipped with the package and saves it; `--help` lists the options.

The demo is written against the Keras-shaped API only (Sequential, Dense,
Dropout, Adam, fit, evaluate, save, load_model), so it doubles as an
end-to-end check of an installed package.
"""
import argparse
import os
import sys
import tempfile
import time

DESCRIPTION = """\
dropout_engine: a CPU engine for multilayer perceptrons with dropout.

commands:
  demo    train a 64-256-256-10 ReLU MLP with dropout (0.2 on the input,
          0.5 on the hidden layers; Adam, softmax, sparse categorical
          cross-entropy) on the 8x8 digits shipped with the package
          (1442 training / 355 test images), show the progress bar, print
          the test accuracy, the training throughput in samples/s and the
          path of the saved model file, then reload the file and check it
          predicts the same.  Exit code 0 on success, 1 if the reloaded
          model disagrees.
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m dropout_engine", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="command")
    d = sub.add_parser("demo", help="train and save a dropout MLP on digits",
                       description="Train a dropout MLP on the shipped 8x8 "
                                   "digits, report accuracy and speed, save it.")
    d.add_argument("--epochs", type=int, default=20,
                   help="training epochs (default: %(default)s)")
    d.add_argument("--batch-size", type=int, default=32,
                   help="batch size (default: %(default)s)")
    d.add_argument("--seed", type=int, default=0,
                   help="random seed for weights, dropout and shuffling "
                        "(default: %(default)s)")
    d.add_argument("--out", metavar="PATH",
                   help="where to save the model file (default: a new "
                        "temporary directory)")
    d.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="fit's verbosity: 0 silent, 1 progress bar, 2 one "
                        "line per epoch (default: %(default)s)")
    return p


def _build_model():
    from .layers import Dense, Dropout, Input
    from .model import Sequential
    from .optimizers import Adam

    model = Sequential([
        Input((64,)),
        Dropout(0.2),
        Dense(256, activation="relu"),
        Dropout(0.5),
        Dense(256, activation="relu"),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _latency_us(model, x, calls=2000):
    """Best-of-5 mean time of one predict(x) call, in microseconds."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls // 5):
            model.predict(x, verbose=0)
        best = min(best, (time.perf_counter() - start) / (calls // 5))
    return best * 1e6


def demo(args):
    import numpy as np

    from .datasets import load_digits
    from .saving import load_model
    from .seeding import set_random_seed

    set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_digits()
    # Pixels are 0..16; scale once at the edge to float32 [0, 1].
    x_train = x_train.astype(np.float32) / 16
    x_test = x_test.astype(np.float32) / 16

    model = _build_model()
    if args.verbose:
        model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              verbose=args.verbose)
    seconds = time.perf_counter() - start
    predictions = model.predict(x_test, verbose=0)
    accuracy = float(np.mean(predictions.argmax(axis=1) == y_test))

    out = args.out or os.path.join(tempfile.mkdtemp(prefix="dropout_engine_demo_"),
                                   "digits_mlp.safetensors")
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    model.save(out)
    reloaded = load_model(out)
    same = np.array_equal(reloaded.predict(x_test, verbose=0), predictions)
    reloaded.quantize("int8")       # Keras's int8 inference, on the copy
    q_accuracy = float(np.mean(reloaded.predict(x_test, verbose=0).argmax(axis=1)
                               == y_test))

    print(f"test accuracy:  {accuracy:.4f} "
          f"({len(y_test)} held-out images)")
    print(f"training speed: {args.epochs * len(y_train) / seconds:,.0f} samples/s "
          f"({args.epochs} epochs in {seconds:.2f} s)")
    print(f"saved model:    {out}")
    print(f"int8 (model.quantize): test accuracy {q_accuracy:.4f}, batch-1 "
          f"predict {_latency_us(reloaded, x_test[:1]):.1f} us (float32: "
          f"{_latency_us(model, x_test[:1]):.1f} us)")
    if not same:
        print("error: the reloaded model predicts differently", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
