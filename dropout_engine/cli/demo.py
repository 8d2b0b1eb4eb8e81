"""`python -m dropout_engine demo`: a dropout MLP on the digits shipped with
the package, trained, saved, reloaded and quantized.

Written against the Keras-shaped API only (Sequential, Dense, Dropout, Adam,
fit, evaluate, save, load_model), so it doubles as an end-to-end check of an
installed package.
"""
import os
import sys
import tempfile
import time


def _build_model():
    from ..layers import Dense, Dropout, Input
    from ..models import Sequential
    from ..optimizers import Adam

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


def run(args):
    import numpy as np

    from ..datasets import load_digits
    from ..saving import load_model
    from ..seeding import set_random_seed

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
