"""What `train` learns besides the weights, stored in the model file.

The model file's ``__metadata__`` gets one more key, ``dropout_engine.cli``,
whose value is this JSON object (written with ``model.save(path,
metadata=...)``, in the same atomic write as the weights):

    {"version": 1,
     "features": ["sepal_length", ...],   the feature columns, in model order
     "mean": [...], "std": [...],         per feature, from the training rows
     "target": "species",                 the target column's name
     "task": "classification" | "regression",
     "classes": ["setosa", ...],          classification: label of output i
     "target_mean": m, "target_std": s}   regression: the model predicts
                                          (y - m) / s

Features are standardized as scikit-learn's StandardScaler does: the mean
and the population standard deviation (ddof=0) of the training rows only
(not the held-out ones), 1 for a constant column.  A regression target is
standardized the same way, so the default learning rate suits any units;
predictions and the reported mse/mae are in the target's own units.  Floats
are stored as JSON numbers (Python's repr, exact), so predict applies the
very scaler train used.
"""
import json
import math

import numpy as np

from .errors import CLIError

KEY = "dropout_engine.cli"
VERSION = 1
TASKS = ("classification", "regression")


def _scale(values):
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


class Preprocessor:
    """Feature names and scaler, target name, task, classes (see module doc)."""

    def __init__(self, features, mean, std, target, task, classes=None,
                 target_mean=None, target_std=None):
        self.features, self.target, self.task = list(features), target, task
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.classes = None if classes is None else list(classes)
        self.target_mean, self.target_std = target_mean, target_std

    @classmethod
    def fit(cls, features, x, target, task, *, classes=None, y=None):
        """From the training rows `x` [rows, features] (float64) and, for
        regression, their targets `y`."""
        mean, std = _scale(x)
        if task == "regression":
            tm, ts = _scale(y)
            return cls(features, mean, std, target, task,
                       target_mean=float(tm), target_std=float(ts))
        return cls(features, mean, std, target, task, classes=classes)

    def transform(self, x):
        """Standardized float32 model input from raw float64 features."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def encode_target(self, y):
        """The model's training target: class indices, or the scaled value."""
        if self.task == "classification":
            return y
        return ((y - self.target_mean) / self.target_std).astype(np.float32)

    def decode(self, output):
        """float64 values in the target's units from the model's [rows, 1]."""
        return output[:, 0].astype(np.float64) * self.target_std + self.target_mean

    def to_json(self):
        d = {"version": VERSION, "features": self.features,
             "mean": self.mean.tolist(), "std": self.std.tolist(),
             "target": self.target, "task": self.task}
        if self.task == "classification":
            d["classes"] = self.classes
        else:
            d["target_mean"], d["target_std"] = self.target_mean, self.target_std
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, text, path):
        """The Preprocessor stored in model file `path`, checked field by field."""
        def fail(msg):
            return CLIError(f"{path}: the command-line metadata ({KEY!r}) is invalid: {msg}")
        try:
            d = json.loads(text)
        except ValueError as e:
            raise fail(f"not JSON ({e})") from None
        if not isinstance(d, dict) or d.get("version") != VERSION:
            raise fail(f"expected a JSON object with version {VERSION}")
        features = d.get("features")
        if not (isinstance(features, list) and features
                and all(isinstance(f, str) for f in features)):
            raise fail("'features' must be a non-empty list of names")
        if not isinstance(d.get("target"), str) or d.get("task") not in TASKS:
            raise fail(f"'target' must be a name and 'task' one of {TASKS}")

        def numbers(key, n=None, positive=False):
            v = d.get(key)
            vals = v if n is not None else [v]
            if not (isinstance(vals, list) and (n is None or len(vals) == n) and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool)
                    and math.isfinite(x) and (x > 0 or not positive) for x in vals)):
                raise fail(f"{key!r} must be {n or 1} finite "
                           f"{'positive ' if positive else ''}number(s), got {v!r:.100}")
            return v
        mean = numbers("mean", len(features))
        std = numbers("std", len(features), positive=True)
        if d["task"] == "classification":
            classes = d.get("classes")
            if not (isinstance(classes, list) and len(classes) >= 2
                    and all(isinstance(c, str) for c in classes)):
                raise fail("'classes' must be a list of at least two labels")
            return cls(features, mean, std, d["target"], d["task"], classes=classes)
        return cls(features, mean, std, d["target"], d["task"],
                   target_mean=numbers("target_mean"),
                   target_std=numbers("target_std", positive=True))
