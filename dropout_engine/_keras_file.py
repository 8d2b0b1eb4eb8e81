"""Keras 3's files: ``.keras`` (a zip of config.json, metadata.json and
model.weights.h5) and ``.weights.h5``, read and written as Keras 3.15 does,
with h5py (an optional dependency: ``pip install "dropout_engine[keras-files]"``).

The HDF5 layout (Keras's saving_lib, checked against files Keras writes):

    layers/<snake_case class>[_n]/vars   attrs name = the layer's name;
                                         datasets "0", "1", ... its variables
    optimizer/vars                       attrs name = the optimizer's name;
                                         "0" iterations, "1" learning rate
                                         (not with a schedule), then the slots
    vars                                 attrs name = the model's name

``_keras_config`` maps configs, layer classes and the optimizer-state order.
Reading trusts nothing: zip members are read into memory only (never
extracted), within size limits derived from the model the config builds;
HDF5 links must be hard links to plain (not external, not virtual)
datasets of the exact dtype and shape expected; anything else raises
ModelFileError naming the file.  Nothing is unpickled or evaluated.
Writing is atomic (temporary file, fsync, rename), as for our own files.
"""
import datetime
import io
import json
import os
import warnings
import zipfile

import numpy as np

from . import _keras_config as kc
from .safetensors import ModelFileError, write_atomically

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
KERAS_VERSION = "3.15.1"        # the Keras whose files we write, and test against
_JSON_LIMIT = 64 << 20          # config.json / metadata.json
_H5_SLACK = 4 << 20             # HDF5's own bytes over the tensors, at most
_OURS = "dropout_engine"        # our key in metadata.json (user metadata)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras files (.keras, .weights.h5) need h5py: pip install "
                          "'dropout_engine[keras-files]' (or pip install h5py); "
                          "'.safetensors' files need nothing more") from None
    return h5py


def _failer(path):
    return lambda msg: ModelFileError(f"{os.fspath(path)!r}: {msg}")


# ------------------------------------------------------------------ writing

def _write_h5(model, h5):
    """The model's weights (and optimizer state, when compiled) as Keras lays
    them out; returns the bytes of the HDF5 file."""
    bio = io.BytesIO()
    with h5.File(bio, "w") as f:
        for path, layer, kind in zip(kc.h5_paths(kc.class_names(model)), model.layers,
                                     kc.class_names(model)):
            g = f.create_group(path).create_group("vars")
            g.attrs["name"] = layer.name
            named = dict(zip(getattr(layer, "weight_names", ()), layer.weights))
            for i, name in enumerate(kc.var_names(kind, layer)):
                g[str(i)] = named[name]
        if model.compiled and not model.quantized:
            opt = model.optimizer
            g = f.create_group("optimizer").create_group("vars")
            g.attrs["name"] = opt.name
            n_scalars, state = kc.optimizer_layout(opt, len(model.weights))
            scalars = [np.int64(opt.iterations), np.float32(opt.learning_rate)]
            for i, v in enumerate(scalars[:n_scalars] + state):
                g[str(i)] = v
        f.create_group("vars").attrs["name"] = model.name
    return bio.getvalue()


def save_model(model, filepath, metadata):
    """Write ``model`` as a ``.keras`` zip (``metadata``: our user metadata,
    kept in metadata.json, which Keras does not read)."""
    config = json.dumps(kc.model_to_keras(model))     # refuses unmapped layers first
    weights = _write_h5(model, _h5py())
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    if metadata:
        meta[_OURS] = metadata

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr(METADATA, json.dumps(meta))
            z.writestr(CONFIG, config)
            z.writestr(WEIGHTS, weights)
    write_atomically(filepath, write)


def save_weights(model, filepath):
    weights = _write_h5(model, _h5py())
    write_atomically(filepath, lambda f: f.write(weights))


# ------------------------------------------------------------------ reading

def _json(raw, what, fail):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise fail(f"{what} repeats a key")
        return dict(pairs)
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except ModelFileError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise fail(f"{what} is not valid JSON ({e})") from None


class _Zip:
    """A .keras archive opened for reading: member names checked, members
    read whole into memory within a size limit."""

    def __init__(self, path):
        self.fail = _failer(path)
        try:
            self.z = zipfile.ZipFile(os.fsdecode(os.fspath(path)))
            infos = self.z.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
            raise self.fail(f"not a valid .keras zip ({e})") from None
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise self.fail("the archive holds two members of the same name")
        for n in names:
            if n.startswith(("/", "\\")) or "\\" in n or ".." in n.split("/") or ":" in n:
                raise self.fail(f"the archive member name {n!r:.100} is unsafe "
                                "(an absolute path or one leaving the archive)")
        self.infos = {i.filename: i for i in infos}

    def read(self, name, limit, required=True):
        info = self.infos.get(name)
        if info is None:
            if required:
                raise self.fail(f"the archive has no {name} (a .keras file holds "
                                f"{CONFIG}, {METADATA} and {WEIGHTS})")
            return None
        if info.file_size > limit:
            raise self.fail(f"{name} declares {info.file_size} bytes, more than the "
                            f"{limit} this model can need")
        try:
            with self.z.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError,
                EOFError, OSError) as e:
            raise self.fail(f"cannot read {name} ({e})") from None
        if len(data) != info.file_size:
            raise self.fail(f"{name} holds {len(data)} bytes, its header says "
                            f"{info.file_size}")
        return data

    def close(self):
        self.z.close()


class _H5:
    """Checked access to a Keras weights HDF5 file."""

    def __init__(self, h5, fail):
        self.h5, self.fail, self.f = h5, fail, None

    def open(self, source):
        try:
            self.f = self.h5.File(source, "r")
        except (OSError, ValueError, OverflowError) as e:
            raise self.fail(f"the weights are not a valid HDF5 file ({e})") from None
        if "layer_names" in self.f.attrs:
            raise self.fail("this is a Keras 2 (legacy HDF5) weights file: load it in "
                            "Keras and save it again as '.weights.h5' with Keras 3")

    def vars(self, path):
        """The "vars" group at ``path`` ({} when absent), hard links only."""
        node = self.f
        for part in path.split("/") + ["vars"]:
            link = node.get(part, getlink=True)
            if link is None:
                return {}
            if not isinstance(link, self.h5.HardLink):
                raise self.fail(f"{path}: {part!r} is a {type(link).__name__}; only hard "
                                "links are allowed")
            node = node[part]
            if not isinstance(node, self.h5.Group):
                raise self.fail(f"{path}: {part!r} must be a group")
        return node

    def dataset(self, group, key, where):
        if not isinstance(group.get(key, getlink=True), self.h5.HardLink):
            raise self.fail(f"{where} variable {key} is missing (or a link)")
        ds = group[key]
        if not isinstance(ds, self.h5.Dataset) or ds.external or ds.is_virtual:
            raise self.fail(f"{where} variable {key} must be a plain dataset")
        return ds

    def array(self, group, key, dtype, shape, where):
        """The dataset's values, once its dtype and shape are the expected."""
        ds = self.dataset(group, key, where)
        if ds.dtype != dtype or ds.shape != tuple(shape):
            raise self.fail(f"{where} variable {key} must be {np.dtype(dtype)} "
                            f"{tuple(shape)}, got {ds.dtype} {ds.shape}")
        try:
            return np.array(ds[()], order="C")   # (not ascontiguousarray: 0-d stays 0-d)
        except (OSError, ValueError, RuntimeError) as e:
            raise self.fail(f"{where} variable {key} cannot be read ({e})") from None

    def close(self):
        if self.f is not None:
            self.f.close()


def _read_layers(model, h5):
    """Every layer's variables from the file, in the model's weight order."""
    new, paths = [], kc.h5_paths(kc.class_names(model))
    for path, layer, kind in zip(paths, model.layers, kc.class_names(model)):
        g, where = h5.vars(path), f"layer {layer.name!r} ({path})"
        names = kc.var_names(kind, layer)
        if len(g) != len(names):
            raise h5.fail(f"{where} holds {len(g)} variables, the model's layer has "
                          f"{len(names)}")
        own = dict(zip(layer.weight_names, layer.weights)) if names else {}
        got = {n: h5.array(g, str(i), own[n].dtype, own[n].shape, where)
               for i, n in enumerate(names)}
        new += [got[n] for n in getattr(layer, "weight_names", ())]
    extra = [k for k in (h5.f["layers"].keys() if "layers" in h5.f else ())
             if f"layers/{k}" not in paths and len(h5.vars(f"layers/{k}"))]
    if extra:
        raise h5.fail(f"the file holds variables of layers the model does not have: "
                      f"{sorted(extra)[:5]}")
    return new


def _read_optimizer(model, h5):
    """A function that sets the optimizer's state read from the file, as
    Keras's load does (None, with Keras's warning, when the file's count
    differs: an optimizer saved before it was built)."""
    opt = model.optimizer
    g = h5.vars("optimizer")
    n_scalars, state = kc.optimizer_layout(opt, len(model.weights))
    if len(g) != n_scalars + len(state):
        warnings.warn(f"Skipping variable loading for optimizer '{opt.name}', because "
                      f"it has {n_scalars + len(state)} variables whereas the saved "
                      f"optimizer has {len(g)} variables.", stacklevel=2)
        return None
    where = f"optimizer {opt.name!r}"
    it = h5.dataset(g, "0", where)
    if it.shape != () or it.dtype.kind not in "iu":
        raise h5.fail(f"{where} variable 0 (iterations) must be an integer scalar")
    iterations = int(h5.array(g, "0", it.dtype, (), where))
    lr = float(h5.array(g, "1", np.float32, (), where)) if n_scalars == 2 else None
    values = [h5.array(g, str(n_scalars + i), np.float32, s.shape, where)
              for i, s in enumerate(state)]
    if not 0 <= iterations < 2 ** 63 or lr is not None and not 0 < lr < np.inf:
        raise h5.fail(f"{where}: iterations {iterations} / learning rate {lr} out of range")

    def assign():
        for s, v in zip(state, values):
            s[...] = v
        opt.iterations = iterations
        # The variable is the current rate (ReduceLROnPlateau changes it), in
        # float32: the config's rate stays when it is the same number.
        if lr is not None and np.float32(opt.learning_rate) != np.float32(lr):
            opt.learning_rate = lr
    return assign


def _load_state(model, source, fail, *, optimizer):
    """Read and check everything, then change the model (so a bad file
    leaves a model given to load_weights as it was)."""
    h5 = _H5(_h5py(), fail)
    try:
        h5.open(source)
        weights = _read_layers(model, h5)
        assign = _read_optimizer(model, h5) if (
            optimizer and model.compiled and not model.quantized) else None
        model.set_weights(weights)       # checks all, then copies
        if assign is not None:
            assign()
    except ModelFileError:
        raise
    except (KeyError, IndexError, OSError, RuntimeError, TypeError, ValueError,
            OverflowError) as e:
        # h5py's own errors on damaged HDF5 structures (a dtype of no
        # numpy type, an unreadable B-tree, ...).
        raise fail(f"the weights file is damaged ({type(e).__name__}: {e})") from None
    finally:
        h5.close()


def _limit(model):
    """The most bytes a weights member of this model can take."""
    n = sum(w.nbytes for w in model.weights)
    return 4 * n + _H5_SLACK        # weights + at most three optimizer slots


def load_model(filepath, cls, compile=True):
    """The ``cls`` model a ``.keras`` file describes: its weights and, when
    ``compile``, its compile config and optimizer state (as Keras loads them)."""
    fail = _failer(filepath)
    z = _Zip(filepath)
    try:
        config = kc.unshare(_json(z.read(CONFIG, _JSON_LIMIT), CONFIG, fail))
        z.read(METADATA, _JSON_LIMIT, required=False)
        model = kc.model_from_keras(config, cls, fail)
        cc = config.get("compile_config") if compile else None
        if cc:
            try:
                model.compile_from_config(kc.compile_from_keras(cc, fail))
            except ModelFileError:
                raise
            except (ValueError, TypeError, KeyError, NotImplementedError) as e:
                raise fail(f"the compile config is invalid: {e}") from None
        weights = z.read(WEIGHTS, _limit(model))
    finally:
        z.close()
    _load_state(model, io.BytesIO(weights), fail, optimizer=True)
    return model


def load_weights(model, filepath, *, zipped):
    """Weights (and optimizer state, when compiled) from a ``.weights.h5``
    file or the weights of a ``.keras`` file (``zipped``), as Keras's."""
    fail = _failer(filepath)
    source = os.fsdecode(os.fspath(filepath))
    if zipped:
        z = _Zip(filepath)
        try:
            source = io.BytesIO(z.read(WEIGHTS, _limit(model)))
        finally:
            z.close()
    elif os.path.getsize(source) > _limit(model):
        raise fail(f"the file holds {os.path.getsize(source)} bytes, more than the "
                   f"{_limit(model)} this model's weights can need")
    _load_state(model, source, fail, optimizer=True)


def load_metadata(filepath):
    """The ``metadata=`` a ``.keras`` file was saved with (``{}`` when none)."""
    fail = _failer(filepath)
    z = _Zip(filepath)
    try:
        raw = z.read(METADATA, _JSON_LIMIT, required=False)
    finally:
        z.close()
    meta = {} if raw is None else _json(raw, METADATA, fail)
    ours = meta.get(_OURS, {}) if isinstance(meta, dict) else None
    if not isinstance(ours, dict) or not all(isinstance(v, str) for v in ours.values()):
        raise fail(f"{METADATA}: {_OURS!r} must map str to str")
    return ours
