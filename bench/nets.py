"""The benchmark workloads: architectures, data and initial weights shared
by every contender (the same data and the same starting weights for all)."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Net:
    name: str
    sizes: tuple            # (in, hidden..., out)
    input_drop: float
    hidden_drop: float
    out_act: str            # "softmax" or "sigmoid"
    optimizer: str          # "sgd" or "adam"
    lr: float
    momentum: float
    batch: int
    rows: int               # training rows per epoch
    max_norm: float = 0.0   # MaxNorm on hidden kernels (0: none)
    weights: list = field(default_factory=list)

    @property
    def classes(self):
        return self.sizes[-1] if self.out_act == "softmax" else 2

    def data(self, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.rows, self.sizes[0])).astype(np.float32)
        if self.out_act == "softmax":
            y = rng.integers(0, self.sizes[-1], self.rows).astype(np.int64)
        else:
            y = rng.integers(0, 2, (self.rows, 1)).astype(np.float32)
        return x, y

    def init_weights(self, seed=0):
        """Glorot-uniform kernels [in, out] (Keras order) and zero biases."""
        rng = np.random.default_rng(seed)
        ws = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            ws.append(rng.uniform(-lim, lim, (fan_in, fan_out)).astype(np.float32))
            ws.append(np.zeros(fan_out, np.float32))
        return ws


def workloads(quick):
    scale = 1 if quick else 4
    return {
        "W1": Net("W1 784-1024-1024-10", (784, 1024, 1024, 10), 0.2, 0.5,
                  "softmax", "sgd", 0.01, 0.9, 128, 128 * 12 * scale),
        "W2": Net("W2 100-64-64-10", (100, 64, 64, 10), 0.0, 0.5,
                  "softmax", "adam", 0.001, 0.0, 32, 32 * 250 * scale),
        "W3": Net("W3 sonar 60-60-30-1", (60, 60, 30, 1), 0.2, 0.0,
                  "sigmoid", "sgd", 0.1, 0.9, 16, 208 * 4 * scale, max_norm=3.0),
    }
