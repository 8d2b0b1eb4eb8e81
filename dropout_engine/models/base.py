"""Model: what Sequential and the functional Model share (Keras 3's
``keras.Model``): weights, compile, fit, evaluate, predict, save, summary.

    model = Sequential([Input((784,)), Dense(512, activation="relu"),
                        Dropout(0.5), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=5, validation_split=0.1)
    probs = model.predict(x_test)

Layers fuse into C layers ``dropout(act(x @ w + b))`` (see ``_plan``).  fit
runs chunks of batches in one C call without the GIL (``training``); predict is
one C call for the whole network with per-call scratch, so many Python
threads may predict on one model at once.  Arrays are converted once to
float32 at the API edge.

What a subclass provides (sequential.py, functional.py): ``layers`` (Keras's
list), ``_layers`` (the layers holding weights, in Keras's weight order),
``build``, ``_replan`` (the plan again, after a layer's dropout seed
changed), ``get_config`` / ``from_config``, and sets ``_input_shape`` (of
one sample) and, once built, ``_plan`` (a ``_plan.Plan``) and ``_net``
(``_make_net``).
"""
import math

from .._validation import is_int
from .. import _validation, losses, metrics as metrics_mod, optimizers
from .. import _net, layers as layers_mod
from .._plan import SIGMOID, SOFTMAX
from ..training import Trainer, inputs as _inputs, on_batch
from ..training.distribution import is_chief

_PREDICT_CHUNK = 1024
_MAX_MC_SAMPLES = 1 << 16


class Model:
    """Keras 3's ``keras.Model``: the base of ``Sequential`` and of the
    functional model; holds what they share.  ``Model(inputs, outputs,
    name=None)`` makes the functional model (``models.functional``), as in
    Keras; subclassing Model with a ``call`` method is not supported."""
    _kinds = {}    # "sequential", "functional" -> their class (registered)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_kind" in cls.__dict__:
            Model._kinds[cls._kind] = cls

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            if not args and "inputs" not in kwargs and "outputs" not in kwargs:
                raise NotImplementedError(
                    "Model(): subclassed models (a call() method) are not "
                    "supported; build Model(inputs, outputs) from keras.Input "
                    "and layer calls, or a Sequential")
            cls = Model._kinds["functional"]
        return super().__new__(cls)

    @classmethod
    def from_config(cls, config):
        """Keras's ``Model.from_config``: a functional config (with
        "input_layers") builds the functional model, a list of layers a
        Sequential."""
        kind = "functional" if isinstance(config, dict) and "input_layers" in config \
            else "sequential"
        return Model._kinds[kind].from_config(config)

    def __init__(self, name=None, trainable=True):
        if not isinstance(self, tuple(Model._kinds.values())):
            raise NotImplementedError(
                f"{type(self).__name__}: subclassed models (a call() method) are "
                "not supported; subclass Sequential, or build Model(inputs, outputs)")
        self.name = name or layers_mod._unique_name(self._default_name)
        self._input_shape = None     # of one sample
        self._input_dtype = None     # an Input's, when not float32
        self._plan = self._net = None
        self.optimizer = self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._trainer = Trainer()

    # ------------------------------------------------------------ structure
    @property
    def _n_in(self):
        """Values per sample of the input (the C net's row width), or None."""
        return None if self._input_shape is None else math.prod(self._input_shape)

    def _make_net(self):
        self._net = self._plan.net()

    def _layer_changed(self):
        """One of our layers was quantized on its own (Dense.quantize)."""
        if self._net is not None:
            self._make_net()

    def _reseed_dropout(self, seeds):
        """Give the dropout layers these mask seeds ({index among the
        layers after the InputLayer: seed}), re-planning the C net when one
        changes (the plan holds the seeds); the optimizer state is then
        rebuilt, zeroed.  For a resumed fit (``_model_file.load_fit_state``)."""
        own = [l for l in self.layers if not isinstance(l, layers_mod.InputLayer)]
        changed = False
        for i, seed in seeds.items():
            if own[i]._seed != seed:
                own[i]._seed, changed = seed, True
        if changed and self.built:
            self._replan()

    @property
    def built(self):
        return self._net is not None

    @property
    def _n_out(self):
        return self._plan.n_out

    @property
    def weights(self):
        """The weight arrays themselves (kernel, bias per Dense): not copies."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        """BatchNormalization's moving statistics (fit moves them by its own
        rule, the optimizer never does)."""
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    # Keras's models are layers: the same count (ValueError before build).
    count_params = layers_mod.Layer.count_params

    def get_weights(self):
        """Copies of the weights in Keras order (Dense kernel [in, out], bias)."""
        if not self.built:
            raise ValueError(_validation.NOT_BUILT)
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Copy ``weights`` (Keras order) in; all shapes are checked first."""
        own = self.weights
        values = _validation.weight_values(
            own, weights, f"Model '{self.name}'",
            "" if self.built else f". {_validation.NOT_BUILT}")
        layers_mod.assign_weights(self._layers, own, values)

    def summary(self, line_length=None, positions=None, print_fn=None,
                expand_nested=False, show_trainable=False, layer_range=None):
        """Print the table Keras 3 prints: each layer's name (type), output
        shape and parameter count (and, for a DAG, what it is connected
        to), then the total, trainable and non-trainable parameters (see
        ``models.summary``).  ``print_fn`` receives the whole text in one
        call, as Keras's does."""
        from . import summary
        rows, shapes = [], self._shape_texts()
        for layer in self.layers:
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            connected = ", ".join(self._connections(layer)) or "-"
            trainable = ("Y" if layer.weights else "-")
            rows.append((layer.name, type(layer).__name__, shapes[id(layer)],
                         params, connected, trainable))
        summary.print_summary(self, rows, self._sequential_like, line_length,
                              positions, print_fn, show_trainable, layer_range)

    # What summary shows beyond the layers: whether Keras would call the
    # model "sequential-like" (no "Connected to" column), each layer's
    # inputs (for that column) and output shape ({id(layer): "(None, 4)"}).
    _sequential_like = True

    def _connections(self, layer):
        return []

    def _shape_texts(self):
        raise NotImplementedError

    def get_layer(self, name=None, index=None):
        """The layer of ``model.layers`` with this name, or at this index
        (Keras's errors for both, neither, or no such layer)."""
        layers = self.layers
        if index is not None and name is not None:
            raise ValueError("Provide only a layer name or a layer index. Received: "
                             f"index={index}, name={name}.")
        if index is not None:
            if not _validation.is_int(index):
                raise TypeError(f"get_layer: index must be an int, got "
                                f"{_validation.describe(index)}")
            if len(layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but "
                                 f"model only has {len(layers)} layers.")
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[layer.name for layer in layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    # ---------------------------------------------------------- quantize
    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """Quantize every Dense layer's kernel to int8 (Keras 3's
        ``model.quantize("int8")``) or to bfloat16 (ours), for faster
        inference.

        "int8": kernels get per-output-column abs-max scales; inputs are
        quantized per row at every call; the int8 products are summed
        exactly in int32 and dequantized in float32 as Keras does (see
        ``dropout_engine.quantization``), so predictions match a Keras
        model quantized the same way.

        "bfloat16" (ours, weight-only): each kernel is rounded to bfloat16
        (nearest, ties to even) and kept in 16 bits; predict widens it to
        float32 in registers and computes in float32 (activations, biases
        and norms stay float32), so a prediction equals the float32 predict
        on the rounded kernels bit for bit, within ~1e-2 relative of the
        original model, reading half the weight bytes.  ``get_weights``
        gives the rounded kernels as float32, ``set_weights`` rounds again;
        ``predict(mc_samples=...)`` works; ``save`` stores the kernels as
        safetensors "BF16" (the C library loads them), ``.keras`` and ONNX
        get the rounded values as float32.

        Differences from Keras (ours): a quantized model is inference-only
        here: ``predict`` and ``evaluate`` work, ``fit`` raises, and so does
        ``predict(mc_samples=...)`` after "int8" (Keras can fine-tune a
        quantized model; we cannot).  ``save`` stores the int8 kernels (safetensors
        "I8") and scales with the layers' dtype "int8_from_float32", and
        ``load_model`` rebuilds the quantized model, as does the C embedding
        loader (``de_model_load``).  ``config`` and ``filters`` are not
        supported.

        Raises:
            ValueError: the model is not built, is already quantized, or
                ``mode`` is not "int8" or "bfloat16".

        Example:
            >>> model.quantize("int8")      # or model.quantize("bfloat16")
            >>> probs = model.predict(x)
        """
        kwargs.pop("type_check", None)     # Keras's; only Dense is quantized here
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to "
                             f"{type(self).__name__}: {kwargs}")
        if config is not None or filters is not None:
            raise NotImplementedError("quantize: config and filters are not supported; "
                                      "call quantize('int8') or quantize('bfloat16')")
        if not self.built:
            raise ValueError("Cannot quantize a layer that isn't yet built. "
                             f"Layer '{self.name}' (of type "
                             f"'{type(self).__name__}') is not "
                             "built yet.")
        dense = [l for l in self._layers if isinstance(l, layers_mod.Dense)]
        for layer in dense:       # every check before any layer changes
            layer._check_quantize(mode)
        for layer in dense:
            layer._quantize(mode)
        # One rebuild per model holding these layers (this one included),
        # not one per layer as layer.quantize would do.
        layers_mod.Dense._tell_owners(dense)

    @property
    def quantized(self):
        """True once ``quantize("int8")`` or ``quantize("bfloat16")`` ran (ours)."""
        return self._plan is not None and self._plan.quantized is not None

    def _refuse_quantized(self, what, *, bf16_runs=False):
        """Raise unless the model can run ``what``: a quantized model only
        predicts and evaluates (a bfloat16 one also runs MC dropout, when
        ``bf16_runs``)."""
        mode = self._plan.quantized if self._plan is not None else None
        if mode is not None and not (bf16_runs and mode == "bfloat16"):
            raise NotImplementedError(
                f"Model '{self.name}' is quantized ({mode}): quantized models are "
                f"inference-only in dropout_engine, {what} is not supported "
                "(predict and evaluate are)")

    # -------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Choose the optimizer, the loss and the metrics (names or objects)."""
        unsupported = {k for k, v in kwargs.items() if v not in (None, False, 1, "auto")}
        if unsupported:
            raise NotImplementedError(f"compile: argument(s) {sorted(unsupported)} "
                                      "are not supported")
        opt = optimizers.get(optimizer)
        if loss is None:
            raise ValueError("compile: loss is required, e.g. loss='mse'")
        loss_obj = losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = [metrics]
        for m in metrics:     # validate names now; shapes resolve "accuracy" later
            metrics_mod.get(m, n_outputs=2)
        if len(metrics) > 8:
            raise ValueError(f"compile: at most 8 metrics, got {len(metrics)}")
        self.optimizer, self.loss, self._loss_obj = opt, loss, loss_obj
        self._metric_ids = list(metrics)
        self.compiled = True
        if self.built:
            opt.build(self.weights)
            self._net.reset_training()

    def _metrics_for(self, n_out):
        return [metrics_mod.get(m, n_outputs=n_out,
                                sparse=self._loss_obj.kind == losses.SCCE)
                for m in self._metric_ids]

    @property
    def metrics_names(self):
        if not self.compiled:
            return []
        return ["loss"] + [m if isinstance(m, str) else m.name for m in self._metric_ids]

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before {what}()")

    def _fused(self):
        kind, plan = self._loss_obj.kind, self._plan
        if plan.out_dropout:
            return False
        return ((kind in (losses.CCE, losses.SCCE) and plan.out_act == SOFTMAX)
                or (kind == losses.BCE and plan.out_act == SIGMOID))

    def _params(self):
        return self._plan.params(self.optimizer._slots)

    def _penalty(self):
        return _net.penalty(self._params())

    # ----------------------------------------------------------- arrays in
    def _first_name(self):
        return self._layers[0].name if self._layers else self.name

    def _vocab(self):
        """The vocabulary size when the input is token ids (an Embedding
        reads it), else None."""
        if self._plan is not None:
            return self._plan.ids
        first = self._layers[0] if self._layers else None
        return first.input_dim if isinstance(first, layers_mod.Embedding) else None

    def _x(self, x, *, check_finite=True, what="x"):
        """Validated float32 x [n, values per sample] (token ids for an
        Embedding first); builds the model from its shape if needed."""
        x, shape = _validation.model_input(x, self._input_shape, self._first_name(),
                                           vocab=self._vocab(),
                                           check_finite=check_finite, what=what)
        if not self.built:
            self.build((None,) + tuple(shape))
        return x

    def _xy(self, x, y, what="x"):
        """Validated float32 (x, targets); builds the model from x's width."""
        x = self._x(x, what=what)
        t = _validation.targets(y, x.shape[0], self._loss_obj.kind, self._n_out,
                                what="y" if what == "x" else what.replace("x", "y"))
        return x, t

    # ---------------------------------------------------------- inference
    def predict(self, x, batch_size=None, verbose="auto", steps=None,
                callbacks=None, *, mc_samples=None):
        """The model's outputs for ``x`` [n, features] as float32 [n, units].

        Dropout is the identity at inference ("weight" scaling multiplies by
        1 - rate).  NaN in x gives NaN out (x is not scanned).

        ``mc_samples=k`` (keyword-only, ours): Monte-Carlo dropout.  Every
        Dropout stays active as in training and the result is ``(mean,
        std)``, each float32 [n, units], over k passes with independent
        masks (std with ddof 0).  The k passes run in one C call, stacked
        into batches of up to ``batch_size`` (default 1024) rows, so the
        cost is that of predicting k * n rows.  Masks
        come from the package's seed stream: reproducible after
        ``set_random_seed``, different on each call.
        """
        if mc_samples is not None:
            return self._predict_mc(x, batch_size, mc_samples)
        chunk = _PREDICT_CHUNK if batch_size is None else _validation.batch_size(batch_size)
        net = self._net
        # The cheap check first, asked of the C net (the same layout test in
        # Python costs a fifth of a batch-1 predict); any other x (arrays to
        # convert, memmaps, tables, generators, PyDataset) goes through the
        # training/ adapters (building an unbuilt model).
        if net is None or not net.reads(x) or steps is not None:
            return _inputs.predict(self, x, chunk, steps)
        return net.predict(x, chunk)

    def _predict_mc(self, x, batch_size, samples):
        from .. import seeding
        self._refuse_quantized("predict(mc_samples=...)", bf16_runs=True)
        if not is_int(samples) or not 1 <= samples <= _MAX_MC_SAMPLES:
            raise ValueError(f"mc_samples must be an int in [1, {_MAX_MC_SAMPLES}], "
                             f"got {samples!r}")
        chunk = _PREDICT_CHUNK if batch_size is None else _validation.batch_size(batch_size)
        x = self._x(x, check_finite=False)
        return self._net.predict_mc(x, int(samples), seeding.next_seed(), chunk)

    def __call__(self, inputs, training=None, mask=None):
        """The model on an array, a float32 numpy array (Keras's eager call):
        inference (= ``predict``) unless ``training=True``, which runs every
        Dropout as in training, with fresh masks at each call (Keras's way
        to Monte-Carlo dropout; ``predict(mc_samples=k)`` is ours)."""
        if mask is not None:
            raise NotImplementedError("masks are not supported (mask=None)")
        return on_batch.call(self, inputs, training, _PREDICT_CHUNK)

    def predict_on_batch(self, x):
        """The outputs for one batch ``x``, a float32 array (= ``predict``)."""
        return self.predict(x)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics on one batch, as ``evaluate`` returns them."""
        return on_batch.test_on_batch(self, x, y, sample_weight, return_dict)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on the batch (x, y) (one C call, as a step of
        fit; see ``training.on_batch``).  Returns the batch's loss (with the
        regularization penalty), ``[loss, *metrics]`` with metrics, or the
        dict of them with ``return_dict``, computed before the update as
        Keras's.  A NaN/Inf loss raises FloatingPointError without applying
        the batch (the model keeps its weights)."""
        return on_batch.train_on_batch(self, x, y, sample_weight, class_weight,
                                       return_dict)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto",
                 sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        """``[loss, *metrics]`` over (x, y) (a float without metrics); the
        loss includes the regularization penalty, as Keras's, and is
        weighted by ``sample_weight`` ([n], >= 0) when given (metrics are
        not)."""
        self._require_compiled("evaluate")
        bs = _validation.batch_size(batch_size)
        logs = _inputs.evaluate(self, x, y, sample_weight, bs, steps)
        return on_batch.logs_result(logs, return_dict)

    # --------------------------------------------- the Trainer's interface
    # What training/ uses of a model, and nothing else: name, optimizer,
    # stop_training, history (set by the History callback), _xy (above),
    # _metric_names, _train_net and _evaluate.

    def _metric_names(self):
        """The log names of one training step: "loss", then each metric's."""
        return ["loss"] + [m.name for m in self._metrics_for(self._n_out)]

    def _train_net(self, batch_size, t_cols, weighted, allreduce=None):
        """The ``_net.Net``, set up to train batches of ``batch_size`` rows
        with ``t_cols`` target columns (and sample weights when
        ``weighted``); builds the optimizer's state on first use.  Its
        ``train`` runs chunks of batches (see ``_net.Net.train``).
        ``allreduce``: the distribution seam (``training.distribution``)."""
        opt = self.optimizer
        if allreduce is not None:
            self._plan.check_distributed()
        if opt._slots is None:
            opt.build(self.weights)
        self._net.setup_training(
            opt, batch_size, t_cols, self._loss_obj.kind,
            [m.kind for m in self._metrics_for(self._n_out)], weighted,
            fused=self._fused(), params=self._params(), allreduce=allreduce)
        return self._net

    def _evaluate(self, x, t, sw, batch_size):
        """Logs {"loss", metrics...} over validated arrays (x, t, sw)."""
        ms = self._metrics_for(self._n_out)
        sums = self._net.evaluate(x, t, self._loss_obj.kind, [m.kind for m in ms],
                                  max(batch_size, 256), sw)
        n = x.shape[0]
        logs = {"loss": sums[0] / n + self._penalty()}
        for m, s in zip(ms, sums[1:]):
            logs[m.name] = s / n
        return logs

    # ------------------------------------------------------------ training
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, validation_split=0.0, validation_data=None,
            shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train the model; the batch loop runs in C (see ``training``).

        Args:
            x: [n, features] numbers, converted once to float32; or data
                read a chunk at a time: a memmap (``np.load(path,
                mmap_mode="r")``), a pandas DataFrame or pyarrow Table, a
                generator of ``(x, y)`` / ``(x, y, sample_weight)`` batches,
                a ``PyDataset`` (Keras 3's rules: ``training.inputs``).
            y: targets: [n, units] (or [n] for one unit), or class indices
                [n] for sparse_categorical_crossentropy (not with a
                generator or PyDataset, whose batches hold them).
            batch_size: rows per update (default 32); the last batch may be
                smaller.
            epochs, initial_epoch: train epochs initial_epoch .. epochs-1.
            verbose: "auto"/1 progress bar, 2 one line per epoch, 0 silent.
            callbacks: list of ``dropout_engine.callbacks.Callback``.
            validation_split: fraction of the *last* rows held out (before
                shuffling), as Keras.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val,
                sample_weight_val)``; overrides validation_split.
            shuffle: reshuffle the rows each epoch (seeded by
                ``set_random_seed``); "batch" shuffles within batches;
                ignored for generators, a PyDataset's batch order.
            steps_per_epoch, validation_steps, validation_freq: Keras's.
            sample_weight: [n] weights >= 0: a batch's loss is
                sum(w_i * loss_i) / rows, as Keras's; metrics stay
                unweighted.  Held-out validation_split rows keep theirs.
            class_weight: {class index: weight}, the weight of each row's
                class (its label, the argmax of a one-hot row, or a single
                rounded column); classes left out weigh 1.  Not with
                sample_weight.

        Returns:
            The ``History``; ``.history`` maps "loss", each metric and their
            "val_" forms to per-epoch lists of floats.

        Raises:
            ValueError/TypeError for bad data (the model is unchanged);
            FloatingPointError when the loss becomes NaN/Inf and no callback
            stops training (the weights are those of the last good batch).
        """
        self._refuse_quantized("fit")
        self._require_compiled("fit")
        return self._trainer.fit(self, x, y, batch_size, epochs, verbose, callbacks,
                                 validation_split, validation_data, shuffle,
                                 class_weight, sample_weight, initial_epoch,
                                 steps_per_epoch, validation_steps,
                                 validation_batch_size, validation_freq)

    # -------------------------------------------------------------- config
    def get_compile_config(self):
        """The arguments of ``compile`` as JSON-able configs (None before
        compile), as Keras's; ``compile_from_config`` takes them back."""
        if not self.compiled:
            return None
        return {"optimizer": optimizers.serialize(self.optimizer),
                "loss": losses.serialize(self._loss_obj),
                "metrics": [m if isinstance(m, str) else
                            {"class_name": type(m).__name__, "config": m.get_config()}
                            for m in self._metric_ids]}

    def compile_from_config(self, config):
        """Compile with what ``get_compile_config`` returned."""
        self.compile(optimizer=optimizers.get(config["optimizer"]),
                     loss=losses.get(config["loss"]),
                     metrics=[metrics_mod.get(m, n_outputs=2) if isinstance(m, dict)
                              else m for m in config["metrics"]])

    # The file code (_model_file) loads on first use: with json, tempfile
    # and the container it costs twice the rest of the model to import.
    def save(self, filepath, overwrite=True, *, metadata=None):
        """Save architecture, weights, compile config and optimizer state to
        one file, ".keras" (Keras 3's) or ".safetensors" (ours): the suffix
        decides (``_model_file``).  Ours, keyword-only: ``metadata``, a
        dict of str -> str stored in the same file (``saving.load_metadata``).
        Under data parallelism only the chief (rank 0) writes."""
        if not is_chief():
            return
        from .. import _model_file
        _model_file.save_model(self, filepath, overwrite=overwrite, metadata=metadata)

    def __reduce__(self):
        """pickle / copy.deepcopy / joblib, as Keras 3's: through the model
        file's bytes (weights, compile config, optimizer state), so a copy
        predicts the same and trains on the same; an unbuilt model through
        its config."""
        from .. import _model_file
        if not self.built:
            return (type(self).from_config, (self.get_config(),))
        return (type(self)._from_bytes, (_model_file.model_to_bytes(self),))

    @classmethod
    def _from_bytes(cls, data):
        """Unpickling: the model whose file bytes ``__reduce__`` stored."""
        from .. import _model_file
        return _model_file.model_from_bytes(data, cls)

    def save_weights(self, filepath, overwrite=True):
        """The weights alone to one file (rank 0 alone under data parallelism)."""
        if not is_chief():
            return
        from .. import _model_file
        _model_file.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        from .. import _model_file
        _model_file.load_weights(self, filepath)

