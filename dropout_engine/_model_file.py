"""The model <-> file mapping: one file in the safetensors layout.

The container (``safetensors.py``) writes atomically with numpy alone and
reads with full validation.  This module maps a model onto it, through the
model's public surface only (``get_config`` / ``from_config``, ``weights``
and ``set_weights``, ``get_compile_config`` / ``compile_from_config``,
``optimizer.variables()``), and builds the class it is given: ``saving``
(the public entries) gives ``Sequential``, and the model gives its own class
to save, pickle and reload, so neither this module nor the model's imports
the other's side.

  tensors   "weights/<layer index>/<kernel|bias>"  the weights, Keras order
            (the index among ``model.layers`` without the InputLayer)
            (a quantized Dense: bias, kernel as int8 "I8", kernel_scale;
            its config has dtype "int8_from_float32"; no optimizer state.
            After quantize("bfloat16"): kernel as "BF16", bias; dtype
            "bfloat16_from_float32"; no optimizer state)
            "optimizer/<i>/<slot>"                 the optimizer state of
                                                   weight i
  metadata  format = "dropout_engine.model" (or ".weights"), version = "1",
            model = the model config (Sequential's or the functional
            model's, JSON; each Dropout's and noise layer's seed is the one
            actually in use, so a loaded model draws the masks the original
            would have), compile = optimizer/loss/metrics (JSON or
            "null"), iterations = the optimizer's step count; plus any
            ``model.save(path, metadata={...})`` keys (``load_metadata``).
  a backup  (``callbacks.BackupAndRestore``, ``save_fit_state``) is such a
            file plus fit_state = the fit's position and callback states
            (JSON) and their arrays as "fit_state/<name>" tensors; it loads
            as a model file too.

Loading checks everything against everything: the config must build a
model whose weight names, shapes and dtypes are exactly the file's, and the
optimizer state must match the weights; any mismatch raises ModelFileError
(a ValueError) naming the file and what was expected.  Nothing is
unpickled or evaluated.

The suffix decides what save writes (``file_format``): ".keras" and
".weights.h5" are Keras 3's files (``_keras_file``), ".safetensors" ours;
any other suffix is refused.  Loading picks the reader by the file's first
bytes (a zip, HDF5, or else ours), whatever its name.
"""
import json
import os
import tempfile

import numpy as np

from .safetensors import Bfloat16, ModelFileError, load_tensors, save_tensors

FORMAT = "dropout_engine.model"
WEIGHTS_FORMAT = "dropout_engine.weights"
VERSION = "1"
# The metadata keys save_model writes itself; user metadata may not use them.
RESERVED_METADATA = frozenset({"format", "version", "model", "compile", "iterations",
                               "fit_state"})
FIT_STATE = "fit_state"
FIT_PREFIX = FIT_STATE + "/"
# Tensors that are not weights: load_model and load_weights pass them by.
_NOT_WEIGHTS = ("optimizer/", FIT_PREFIX)


# What each save writes, by suffix: (suffix, format, what it is).
_MODEL_SUFFIXES = ((".keras", "keras", "Keras 3's zip; Keras and dropout_engine load it"),
                   (".safetensors", "safetensors",
                    "dropout_engine's own file, which the C library also reads"))
_WEIGHTS_SUFFIXES = ((".weights.h5", "keras", "Keras 3's weights file"),
                     (".safetensors", "safetensors", "dropout_engine's own"))
_ZIP, _HDF5 = b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"


def file_format(filepath, *, weights=False):
    """"keras" or "safetensors": the format ``save`` (``save_weights`` when
    ``weights``) writes to ``filepath``, by its suffix.  Other suffixes are
    refused, with what each accepted one means (Keras 3 refuses them too)."""
    path = os.fsdecode(os.fspath(filepath))
    table = _WEIGHTS_SUFFIXES if weights else _MODEL_SUFFIXES
    for suffix, fmt, _ in table:
        if path.endswith(suffix):
            return fmt
    call = "save_weights" if weights else "save"
    choices = " or ".join(f"'{s}' ({what})" for s, _, what in table)
    if not weights and path.endswith(".weights.h5"):
        why = "'.weights.h5' is Keras's weights-only file: call save_weights(), or "
    elif weights and path.endswith(".keras"):
        why = "a '.keras' file holds a whole model: call save(), or "
    elif path.endswith((".h5", ".hdf5")):
        why = ("Keras 2's HDF5 format (legacy in Keras 3) is not written by "
               "dropout_engine: ")
    else:
        why = ""
    raise ValueError(f"{path!r}: {call}() writes the format its suffix names; "
                     f"{why}name the file {choices}")


def _sniff(filepath):
    """"zip", "hdf5" or None (then it should be ours) from the first bytes."""
    with open(filepath, "rb") as f:
        head = f.read(8)
    return "zip" if head[:4] == _ZIP else "hdf5" if head == _HDF5 else None


def _keras():
    from . import _keras_file
    return _keras_file


def _own_layers(model):
    """``model.layers`` without the InputLayer (a functional model's first)."""
    return [l for l in model.layers if type(l).__name__ != "InputLayer"]


def _weight_names(model):
    # Indices among the layers but the InputLayer (which a functional
    # model's ``layers`` lists first): a functional chain's file names its
    # tensors as the same Sequential's does (the C loader reads both).
    layers = _own_layers(model)
    return [f"weights/{li}/{name}" for li, layer in enumerate(layers)
            for name in getattr(layer, "weight_names", ())]


def _weights(model):
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet (no input shape): "
                         "nothing to save")
    return dict(zip(_weight_names(model), _file_values(model)))


def _file_values(model):
    """model.weights, a bfloat16 kernel as its bits (stored "BF16")."""
    for layer in model.layers:
        bf16 = getattr(layer, "_bf16", None)
        for w in layer.weights:
            yield Bfloat16(bf16.bits) if bf16 is not None and w is layer.kernel else w


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{os.fspath(path)!r} exists and overwrite=False")


def _optimizer_state(model):
    """{"optimizer/<weight index>/<slot>": state array}: the optimizer's
    variables come flat in weight order, the same number per weight."""
    weights, state = model.weights, model.optimizer.variables()
    per = len(state) // len(weights) if weights else 0
    return {f"optimizer/{i // per}/{i % per}": s for i, s in enumerate(state)}


def _user_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError(f"metadata must be a dict of str -> str, got {metadata!r:.200}")
    taken = sorted(RESERVED_METADATA.intersection(metadata))
    if taken:
        raise ValueError(f"metadata keys {taken} are the model file's own; "
                         f"the reserved keys are {sorted(RESERVED_METADATA)}")
    return metadata


def save_model(model, filepath, overwrite=True, *, metadata=None):
    """Write architecture, weights, compile config and optimizer state.

    Ours, keyword-only: ``metadata`` (a dict of str -> str) is stored beside
    them in the same atomic write; ``load_metadata`` gives it back.
    """
    fmt = file_format(filepath)
    _check_overwrite(filepath, overwrite)
    if fmt == "keras":
        return _keras().save_model(model, filepath, _user_metadata(metadata))
    tensors, meta = _content(model)
    meta.update(_user_metadata(metadata))
    save_tensors(filepath, tensors, meta)


def _content(model):
    """(tensors, metadata) of model.save's file."""
    tensors = _weights(model)
    # A quantized model is inference-only: no optimizer state to keep.
    if model.compiled and not model.quantized:
        tensors.update(_optimizer_state(model))
    config = model.get_config()
    seeds = {l.name: l._seed for l in model.layers if hasattr(l, "_seed")}
    for c in config["layers"]:
        if c["config"].get("name") in seeds:
            c["config"]["seed"] = seeds[c["config"]["name"]]
    meta = {"format": FORMAT, "version": VERSION, "model": json.dumps(config),
            "compile": json.dumps(model.get_compile_config()),
            "iterations": str(model.optimizer.iterations if model.compiled else 0)}
    return tensors, meta


def save_fit_state(model, filepath, state, arrays):
    """Write model.save's file of a compiled ``model`` plus a fit's state,
    atomically: ``state`` (JSON-able) as metadata "fit_state", ``arrays``
    ({name: ndarray}) as tensors "fit_state/<name>"."""
    tensors, meta = _content(model)
    tensors.update({FIT_PREFIX + name: a for name, a in arrays.items()})
    meta[FIT_STATE] = json.dumps(state)
    save_tensors(filepath, tensors, meta)


def load_fit_state(model, filepath):
    """Restore into the compiled ``model`` what ``save_fit_state`` saved of
    the model it was given: the Dropout mask seeds (so a resumed fit draws
    the masks the saved one would have, seeded or not), the weights, the
    optimizer state and iterations.  Returns (state, arrays).

    Raises:
        ModelFileError: the file is not a backup of a model like this one
            (the layers are checked first; a file whose weights or optimizer
            state then do not fit leaves the model partly restored).
    """
    tensors, meta, fail = _read(filepath, FORMAT)
    if FIT_STATE not in meta:
        raise fail("no 'fit_state' in its metadata: a model file, not a backup "
                   "written by BackupAndRestore")
    state = _json(meta, FIT_STATE, fail)
    seeds = _dropout_seeds(model, _json(meta, "model", fail), fail)
    iterations = _iterations(meta, fail)
    model._reseed_dropout(seeds)
    opt = model.optimizer
    if opt._slots is None:
        opt.build(model.weights)
    _assign(model, tensors, fail, extra_prefix=_NOT_WEIGHTS)
    _assign_optimizer_state(model, tensors, fail)
    opt.iterations = iterations
    arrays = {n[len(FIT_PREFIX):]: t for n, t in tensors.items()
              if n.startswith(FIT_PREFIX)}
    return state, arrays


def _dropout_seeds(model, config, fail):
    """{layer index: seed} of the dropout and noise layers (those with a
    mask seed) of the file's model config,
    whose layers must line up with ``model``'s."""
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not all(isinstance(c, dict) for c in layers):
        raise fail("the model config has no list of layers")
    layers = [c for c in layers if c.get("class_name") != "InputLayer"]
    own = _own_layers(model)
    kinds = [c.get("class_name") for c in layers]
    if kinds != [type(l).__name__ for l in own]:
        raise fail(f"it holds a model of layers {kinds}, this model's are "
                   f"{[type(l).__name__ for l in own]}")
    seeds = {}
    for i, (c, layer) in enumerate(zip(layers, own)):
        if hasattr(layer, "_seed"):
            seed = (c.get("config") or {}).get("seed")
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64:
                raise fail(f"layer {i} ({layer.name!r}) has no valid seed: {seed!r:.100}")
            seeds[i] = seed
    return seeds


def model_to_bytes(model):
    """The bytes of model.save's file (what pickling a model stores)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.safetensors")
        save_model(model, path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(data, cls):
    """load_model(..., cls) on the bytes model_to_bytes gave (unpickling)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        return load_model(path, cls)


def save_weights(model, filepath, overwrite=True):
    fmt = file_format(filepath, weights=True)
    _check_overwrite(filepath, overwrite)
    if fmt == "keras":
        _weights(model)           # refuses an unbuilt model
        return _keras().save_weights(model, filepath)
    save_tensors(filepath, _weights(model), {"format": WEIGHTS_FORMAT, "version": VERSION})


def _read(filepath, fmt):
    tensors, meta = load_tensors(filepath)

    def fail(msg):
        return ModelFileError(f"{os.fspath(filepath)!r}: {msg}")
    if meta.get("format") != fmt:
        raise fail(f"expected metadata format {fmt!r}, got {meta.get('format')!r}")
    if meta.get("version") != VERSION:
        raise fail(f"expected format version {VERSION!r}, got {meta.get('version')!r}")
    return tensors, meta, fail


def _assign(model, tensors, fail, extra_prefix=None):
    """Set the model's weights from the file's, checking names, shapes, dtypes."""
    names = _weight_names(model)
    own = set(tensors) if extra_prefix is None else {
        n for n in tensors if not n.startswith(extra_prefix)}
    if own != set(names):
        missing, extra = sorted(set(names) - own), sorted(own - set(names))
        raise fail(f"the weights do not match the model: missing {missing[:5]}, "
                   f"unexpected {extra[:5]}")
    values = []
    for name, w in zip(names, model.weights):
        t = tensors[name]
        if t.dtype != w.dtype or t.shape != w.shape:
            raise fail(f"tensor {name!r} must be {w.dtype} {w.shape}, got {t.dtype} "
                       f"{t.shape}")
        values.append(t)
    model.set_weights(values)


def _json(meta, key, fail):
    try:
        return json.loads(meta[key])
    except KeyError:
        raise fail(f"metadata {key!r} is missing") from None
    except ValueError as e:
        raise fail(f"metadata {key!r} is not valid JSON ({e})") from None


def load_metadata(filepath):
    """The ``metadata=`` a model file was saved with (``{}`` when none): the
    file's ``__metadata__`` without the reserved keys (a ``.keras`` file's
    are in its metadata.json)."""
    if _sniff(filepath) == "zip":
        return _keras().load_metadata(filepath)
    _, meta, _ = _read(filepath, FORMAT)
    return {k: v for k, v in meta.items() if k not in RESERVED_METADATA}


def load_model(filepath, cls, compile=True):
    """The ``cls`` model saved by ``model.save``: same weights, same
    predictions, and (when compiled) the optimizer state to go on training.
    A Keras 3 ``.keras`` file (found by its content) loads as Keras loads it."""
    kind = _sniff(filepath)
    if kind == "zip":
        return _keras().load_model(filepath, cls, compile=compile)
    if kind == "hdf5":
        raise ModelFileError(
            f"{os.fspath(filepath)!r} is an HDF5 file: a Keras 2 legacy '.h5' model "
            "or a '.weights.h5' weights file.  load_model reads '.keras' and "
            "'.safetensors' models; weights load into a built model with "
            "model.load_weights()")
    tensors, meta, fail = _read(filepath, FORMAT)
    config = _json(meta, "model", fail)
    try:
        model = cls.from_config(config)
        model.build()
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        raise fail(f"the model config is invalid: {e}") from None
    _assign(model, tensors, fail, extra_prefix=_NOT_WEIGHTS)
    cc = _json(meta, "compile", fail)
    if cc is None or not compile:
        return model
    try:
        model.compile_from_config(cc)
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        raise fail(f"the compile config is invalid: {e}") from None
    model.optimizer.iterations = _iterations(meta, fail)
    if model.quantized:       # saved without optimizer state
        return model
    _assign_optimizer_state(model, tensors, fail)
    return model


def _iterations(meta, fail):
    try:
        iterations = int(meta.get("iterations", "0"))
    except (ValueError, TypeError) as e:
        raise fail(f"metadata 'iterations' is not an int ({e})") from None
    if iterations < 0:
        raise fail(f"iterations must be >= 0, got {iterations}")
    return iterations


def _assign_optimizer_state(model, tensors, fail):
    """Set the optimizer's state arrays from the file's, checking them all."""
    opt = model.optimizer
    state = _optimizer_state(model)
    for name, s in state.items():
        t = tensors.get(name)
        if t is None or t.dtype != np.float32 or t.shape != s.shape:
            raise fail(f"optimizer state {name!r} must be float32 {s.shape}, got "
                       f"{'nothing' if t is None else f'{t.dtype} {t.shape}'}")
        s[...] = t
    n_state = sum(1 for n in tensors if n.startswith("optimizer/"))
    if n_state != len(state):
        raise fail(f"the file holds {n_state} optimizer state tensors, "
                   f"{type(opt).__name__} has {len(state)}")


def load_weights(model, filepath):
    """Load weights saved by ``save_weights`` (or ``save``) into ``model``;
    Keras 3's ``.weights.h5`` and ``.keras`` files (found by their content)
    load as Keras loads them, optimizer state included when compiled."""
    kind = _sniff(filepath)
    if kind is not None:
        if not model.built:
            raise ValueError(f"Model '{model.name}' must be built before load_weights")
        return _keras().load_weights(model, filepath, zipped=kind == "zip")
    tensors, meta = load_tensors(filepath)
    fmt = meta.get("format")
    if fmt not in (FORMAT, WEIGHTS_FORMAT):
        raise ModelFileError(f"{os.fspath(filepath)!r}: expected a dropout_engine "
                             f"model or weights file, got format {fmt!r}")
    if not model.built:
        raise ValueError(f"Model '{model.name}' must be built before load_weights")
    _assign(model, tensors, lambda m: ModelFileError(f"{os.fspath(filepath)!r}: {m}"),
            extra_prefix=_NOT_WEIGHTS)
