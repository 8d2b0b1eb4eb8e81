"""What the scikit-learn estimators share: the seeded fit, pickling of the
fitted model, probabilities from the model's outputs (scikit-learn is
imported only by the modules that import this one)."""
import contextlib

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import seeding
from .dask import worker_threads
from .models import Model


@contextlib.contextmanager
def _seeded(random_state):
    """Run a fit with this thread's seed stream set from ``random_state``
    (``seeding.scoped``: fits in threads at once are each reproducible)
    and, in a Dask worker (a joblib "dask" backend's search), the engine's
    threads limited to the task's budget (``dask.worker_threads``)."""
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    with seeding.scoped(seed), worker_threads():
        yield seed


class _FittedModel:
    """An estimator's fitted ``model_``: predictions, and pickling (the
    config and the weights travel, the C net is rebuilt on load)."""

    def _raw_predict(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.model_.predict(X)

    def __getstate__(self):
        state = super().__getstate__()
        model = state.get("model_")
        if isinstance(model, Model):
            state = dict(state, model_=(model.get_config(), model.get_weights()))
        return state

    def __setstate__(self, state):
        model = state.get("model_")
        if isinstance(model, tuple):
            config, weights = model
            rebuilt = Model.from_config(config)
            rebuilt.build()
            rebuilt.set_weights(weights)
            state = dict(state, model_=rebuilt)
        super().__setstate__(state)


def _proba(p):
    """float64 class probabilities from the model's float32 outputs."""
    p = np.asarray(p, np.float64)
    if p.shape[1] == 1:
        p = np.hstack([1.0 - p, p])
    return p / p.sum(axis=1, keepdims=True)
