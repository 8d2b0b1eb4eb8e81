"""Keras 3 configs <-> ours: the layer table, and the translation of model,
layer, compile and optimizer-state layouts between a ``.keras`` file and a
model (``_keras_file`` does the zip and HDF5 I/O).

Adding a layer: one entry in ``LAYERS`` when its Keras config (the keys of
``get_config()``) and ours are the same and its variables are stored in the
order of ``weight_names`` (Keras's order: trainable ones first, then the
non-trainable ones, each in creation order).  Otherwise the entry says what
differs: ``ours`` lists our keys Keras does not have, with the value that
behaves as Keras does (a file is written without them, and refused when a
layer has another value), ``keras_vars`` gives the Keras order of the
layer's ``weight_names``, ``strict`` says Keras's constructor takes only
its config's keys (no ``trainable``; its dtype a name).  Keras config keys we do not take, at the value
that means what ours does, are dropped on reading (``_KERAS_ONLY``); any
other key reaches our constructor, which refuses it with its own message.

Nothing here is evaluated: a config is plain JSON mapped onto our classes
by name; an unknown class is refused by name.
"""
import re

from . import layers, optimizers
from .safetensors import ModelFileError


class Entry:
    """How a Keras layer class maps onto ours (see the module docstring)."""

    def __init__(self, cls, *, ours=None, keras_vars=None, strict=False):
        self.cls, self.ours, self.keras_vars = cls, dict(ours or {}), keras_vars
        self.strict = strict

    def var_names(self, layer):
        """The layer's weight names in the order Keras stores them."""
        names = tuple(getattr(layer, "weight_names", ()))
        return tuple(self.keras_vars(layer)) if self.keras_vars else names


def _dense_vars(layer):
    # Keras's variable_serialization_spec: kernel, bias, then kernel_scale
    # (ours after quantize is bias, kernel, kernel_scale).
    return [n for n in ("kernel", "bias", "kernel_scale") if n in layer.weight_names]


# Keras class name -> Entry.  InputLayer is translated apart (its shape).
LAYERS = {
    "Dense": Entry(layers.Dense, keras_vars=_dense_vars),
    "Dropout": Entry(layers.Dropout, ours={"scaling": "inverted"}),
    "GaussianDropout": Entry(layers.GaussianDropout),
    "AlphaDropout": Entry(layers.AlphaDropout),
    "Activation": Entry(layers.Activation),
    "ReLU": Entry(layers.ReLU),
    "LeakyReLU": Entry(layers.LeakyReLU),
    "PReLU": Entry(layers.PReLU),
    "ELU": Entry(layers.ELU),
    "Softmax": Entry(layers.Softmax),
    "GaussianNoise": Entry(layers.GaussianNoise),
    "Flatten": Entry(layers.Flatten),
    "Reshape": Entry(layers.Reshape),
    "GlobalAveragePooling1D": Entry(layers.GlobalAveragePooling1D),
    "SpatialDropout1D": Entry(layers.SpatialDropout1D, strict=True),
    "Embedding": Entry(layers.Embedding),
    **{c.__name__: Entry(c) for c in layers.MERGES},
}
_BY_CLASS = {e.cls: name for name, e in LAYERS.items()}
# Keras's model classes: config.json's class_name -> our kind.
_MODELS = {"Sequential": "sequential", "Functional": "functional"}


def var_names(kind, layer):
    """The layer's weight names in the order Keras stores them (an
    InputLayer, which a functional model's file lists, has none)."""
    return () if kind == "InputLayer" else LAYERS[kind].var_names(layer)

# What Keras 3.15's quantize("int8") stores: our int8 Dense's arithmetic.
_INT8_CONFIG = {
    "module": "keras.quantizers", "class_name": "Int8QuantizationConfig",
    "config": {"weight_quantizer": None, "activation_quantizer": {
        "module": "keras.quantizers", "class_name": "AbsMaxQuantizer",
        "config": {"value_range": [-127, 127], "epsilon": 1e-07, "output_dtype": "int8"},
        "registered_name": None}},
    "registered_name": None}
# Keras-only config keys, at the values under which Keras computes what we do.
_KERAS_ONLY = {
    "layer": {"quantization_config": (None, _INT8_CONFIG), "lora_rank": (None,),
              "lora_alpha": (None,), "activity_regularizer": (None,)},
    "object": {"input_axes": (None,), "output_axes": (None,)},   # initializers
    "optimizer": {"ema_momentum": (0.99,), "use_ema": (False,), "clipnorm": (None,),
                  "global_clipnorm": (None,), "clipvalue": (None,),
                  "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,),
                  "gradient_accumulation_steps": (None,)},
    "loss": {"axis": (-1,), "label_smoothing": (0.0,), "ignore_class": (None,),
             "dtype": (None,)},
    "metric": {"threshold": (0.5,)},
}


def _neutral(family, key, value):
    return value in _KERAS_ONLY[family].get(key, ())
# Where our nested objects live in Keras (by config key suffix, Keras's rule).
_MODULES = (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
            ("_constraint", "keras.constraints"))
_FLOAT32 = {"module": "keras", "class_name": "DTypePolicy",
            "config": {"name": "float32"}, "registered_name": None}   # = _policy("float32")
_INT8 = {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy",
         "config": {"mode": "int8", "source_name": "float32"}, "registered_name": None}


def snake_case(name):
    """Keras's naming.to_snake_case: a layer's HDF5 group is named so."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def h5_paths(class_names):
    """The HDF5 group of each of a model's layers (a functional model's
    InputLayer included): "layers/<snake_case of the class>", numbered _1,
    _2 ... within the model as Keras does."""
    used, out = {}, []
    for c in class_names:
        base = snake_case(c)
        n = used.get(base)
        used[base] = 0 if n is None else n + 1
        out.append(f"layers/{base}" if n is None else f"layers/{base}_{n + 1}")
    return out


# ------------------------------------------------------------- Keras -> ours

def _plain(obj, family, fail, where):
    """A Keras serialized object ({module, class_name, config,
    registered_name}) as ours ({class_name, config}); other values as they
    are.  Keras-only keys at their neutral value are dropped."""
    if not (isinstance(obj, dict) and "class_name" in obj):
        return obj
    if obj.get("registered_name") not in (None, obj.get("class_name")) or not str(
            obj.get("module") or "keras").startswith("keras"):
        raise fail(f"{where}: {obj.get('registered_name') or obj.get('class_name')!r} "
                   "is a custom object; only Keras's built-in ones are supported")
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise fail(f"{where}: the config of {obj['class_name']!r} must be an object")
    config = {k: v for k, v in config.items() if not _neutral(family, k, v)}
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = _plain(config["learning_rate"], "object", fail, where)
    return {"class_name": obj["class_name"], "config": config}


def _policy(name):
    """Keras's serialized DTypePolicy of that name."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _dtype(policy, fail, where):
    """Keras's dtype (a name or a policy) -> ours: None, mixed_bfloat16, or
    the quantized Dense policy; anything else is refused."""
    if isinstance(policy, dict):
        name, c = policy.get("class_name"), policy.get("config")
        c = c if isinstance(c, dict) else {}
        if name == "DTypePolicy":
            policy = c.get("name")
        elif name == "QuantizedDTypePolicy" and c.get("mode") == "int8" and \
                c.get("source_name") == "float32":
            return layers.INT8_POLICY
    if policy in (None, "float32", "mixed_bfloat16", layers.INT8_POLICY):
        return None if policy == "float32" else policy
    raise fail(f"{where}: dtype {policy!r:.100} is not supported (float32, "
               "mixed_bfloat16, or int8 after quantize('int8'))")


def _input_shape(config, fail, where):
    """(shape, dtype) of an InputLayer's config: float32, or an integer
    type (token ids)."""
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is not None:
        if not isinstance(shape, list) or not shape:
            raise fail(f"{where}: batch_shape must be a list, got {shape!r:.100}")
        shape = shape[1:]
    shape = config.get("shape") if shape is None else shape
    for key in ("sparse", "ragged", "optional"):
        if config.get(key):
            raise fail(f"{where}: {key}=True inputs are not supported")
    dtype = config.get("dtype")
    if isinstance(dtype, str) and re.fullmatch(r"u?int(8|16|32|64)", dtype):
        return shape, dtype
    _dtype(dtype, fail, where)
    return shape, None


def _layer_item(item, index, fail):
    """(class name, config, name, where) of a supported layer's entry; an
    unsupported or custom class is refused by name."""
    where = f"layers[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("config"), dict):
        raise fail(f"{where} must be an object with a 'config' object, got {item!r:.100}")
    kind, config = item.get("class_name"), item["config"]
    name = config.get("name")
    if not isinstance(name, str):
        raise fail(f"{where}: the layer name must be a string, got {name!r:.100}")
    where = f"layer {name!r} ({kind})"
    if not isinstance(kind, str) or (kind != "InputLayer" and kind not in LAYERS) \
            or item.get("registered_name") not in (None, kind):
        raise fail(f"{where} is not supported: dropout_engine reads Keras files of "
                   f"InputLayer, {', '.join(LAYERS)}")
    return kind, config, name, where


def layer_from_keras(item, index, fail):
    """Our layer for one entry of a Keras Sequential's "layers" list."""
    where = f"layers[{index}]"
    kind, config, name, where = _layer_item(item, index, fail)
    try:
        if kind == "InputLayer":
            shape, dtype = _input_shape(config, fail, where)
            return layers.InputLayer(shape=shape, dtype=dtype, name=name)
        entry = LAYERS[kind]
        kwargs = {k: _plain(v, "object", fail, f"{where} {k}") for k, v in config.items()
                  if not _neutral("layer", k, v)}
        dtype = _dtype(kwargs.pop("dtype", None), fail, where)
        if dtype is not None:
            kwargs["dtype"] = dtype
        return entry.cls.from_config(kwargs)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        raise fail(f"{where}: {e}") from None


def unshare(obj):
    """``obj`` without Keras's "shared_object_id" keys (Keras writes a shared
    object's whole config at each use, tagged with one id)."""
    if isinstance(obj, dict):
        return {k: unshare(v) for k, v in obj.items() if k != "shared_object_id"}
    return [unshare(v) for v in obj] if isinstance(obj, list) else obj


def model_from_keras(config, cls, fail):
    """The model (class ``cls`` or, for ``Model``, the Sequential or
    functional model the file holds; built) a Keras config.json describes
    (without its shared_object_id keys, ``unshare``)."""
    kind = config.get("class_name") if isinstance(config, dict) else config
    if not isinstance(kind, str) or kind not in _MODELS:
        raise fail(f"model class {kind!r:.100} is not supported: dropout_engine reads "
                   "Keras files of Sequential and functional models")
    c = config.get("config")
    if not isinstance(c, dict) or not isinstance(c.get("layers"), list):
        raise fail(f"the {kind} config must be an object with a 'layers' list")
    if c.get("trainable") is False:
        raise fail("trainable=False models are not supported")
    _dtype(c.get("dtype"), fail, "the model")
    if kind == "Functional":
        c = dict(c, layers=_fold_masks(c["layers"], fail))
    for i, item in enumerate(c["layers"]):      # every class known before any is built
        _layer_item(item, i, fail)
    built = [layer_from_keras(item, i, fail) for i, item in enumerate(c["layers"])]
    if getattr(cls, "_kind", None) != _MODELS[kind]:
        if getattr(cls, "_kind", None) is not None:
            raise fail(f"it holds a {kind} model, not a {cls._kind} one")
        cls = cls._kinds[_MODELS[kind]]         # Model: what the file holds
    try:
        if kind == "Functional":
            return cls._from_layers(c, built)
        model = cls(built, name=c.get("name"))
        if not model.built:
            shape = c.get("build_input_shape") or (config.get("build_config") or {}).get(
                "input_shape")
            model.build(shape)
    except (ValueError, TypeError, NotImplementedError, AttributeError) as e:
        raise fail(f"the model cannot be built: {e}") from None
    return model


def _history(t):
    """The keras_history [layer, node, index] of a __keras_tensor__, or None."""
    c = t.get("config") if isinstance(t, dict) else None
    h = c.get("keras_history") if isinstance(c, dict) else None
    return h if isinstance(h, list) and len(h) == 3 and isinstance(h[0], str) else None


def _fold_masks(items, fail):
    """A functional config's layers without the mask Keras writes for an
    Embedding(mask_zero=True): a NotEqual(ids, 0) op passed as the
    ``mask`` of the GlobalAveragePooling1D that reads the Embedding (ours
    takes the mask from the Embedding itself).  Any other NotEqual, or a
    mask passed elsewhere, is refused."""
    entries = [i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]
    by_name = {e["name"]: e for e in entries}
    masks = {}
    for e in entries:
        if e.get("class_name") != "NotEqual":
            continue
        nodes = e.get("inbound_nodes")
        args = nodes[0].get("args") if isinstance(nodes, list) and len(nodes) == 1 \
            and isinstance(nodes[0], dict) else None
        source = _history(args[0]) if isinstance(args, list) and len(args) == 2 \
            and args[1] == 0 and not nodes[0].get("kwargs") else None
        if source is None or (by_name.get(source[0]) or {}).get("class_name") != "InputLayer":
            raise fail(f"layer {e.get('name')!r} (NotEqual) is not supported: only the "
                       "mask of an Embedding(mask_zero=True) on the model's input")
        masks[e["name"]] = source[0]
    out = []
    for e in items:
        if isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] in masks:
            continue
        nodes = e.get("inbound_nodes") if isinstance(e, dict) else None
        kwargs = nodes[0].get("kwargs") if isinstance(nodes, list) and nodes \
            and isinstance(nodes[0], dict) else None
        mask = _history(kwargs.get("mask")) if isinstance(kwargs, dict) else None
        if mask is not None:
            args = nodes[0].get("args")
            inner = _history(args[0]) if isinstance(args, list) and args else None
            emb = by_name.get(inner[0]) if inner else None
            emb_nodes = emb.get("inbound_nodes") if isinstance(emb, dict) else None
            emb_args = emb_nodes[0].get("args") if isinstance(emb_nodes, list) \
                and emb_nodes and isinstance(emb_nodes[0], dict) else None
            emb_source = _history(emb_args[0]) if isinstance(emb_args, list) \
                and emb_args else None
            if not (e.get("class_name") == "GlobalAveragePooling1D" and mask[0] in masks
                    and isinstance(emb, dict) and emb.get("class_name") == "Embedding"
                    and isinstance(emb.get("config"), dict)
                    and emb["config"].get("mask_zero") is True
                    and emb_source is not None and emb_source[0] == masks[mask[0]]):
                raise fail(f"layer {e.get('name')!r}: a mask argument is supported only "
                           "for a GlobalAveragePooling1D reading an "
                           "Embedding(mask_zero=True) of the model's input")
            e = dict(e, inbound_nodes=[dict(nodes[0], kwargs={
                k: v for k, v in kwargs.items() if k != "mask"})])
        out.append(e)
    return out


def compile_from_keras(cc, fail):
    """Our compile config ({optimizer, loss, metrics}) from Keras's."""
    if not isinstance(cc, dict):
        raise fail(f"compile_config must be an object, got {cc!r:.100}")
    for key in ("loss_weights", "weighted_metrics"):
        if cc.get(key) is not None:
            raise fail(f"compile_config: {key} is not supported")
    metrics = cc.get("metrics") or []
    if not isinstance(metrics, list) or any(isinstance(m, (list, dict)) and
                                            "class_name" not in m for m in metrics):
        raise fail("compile_config: metrics must be a flat list (one output)")
    return {"optimizer": _plain(cc.get("optimizer"), "optimizer", fail, "the optimizer"),
            "loss": _plain(cc.get("loss"), "loss", fail, "the loss"),
            "metrics": [_plain(m, "metric", fail, "a metric") for m in metrics]}


# ------------------------------------------------------------- ours -> Keras

def _keras_object(obj, module):
    """Our {class_name, config} as Keras serializes it."""
    if not isinstance(obj, dict):
        return obj
    config = dict(obj["config"])
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = _keras_object(config["learning_rate"],
                                                "keras.optimizers.schedules")
    return {"module": module, "class_name": obj["class_name"], "config": config,
            "registered_name": None}


def _layer_to_keras(layer, config):
    kind = _BY_CLASS.get(type(layer))
    if kind is None:
        raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) has no Keras "
                         "file mapping yet: save the model as '.safetensors'")
    entry = LAYERS[kind]
    out = {}
    for k, v in config.items():
        if k in entry.ours:
            if v != entry.ours[k]:
                raise ValueError(f"Layer '{layer.name}': {k}={v!r} has no Keras "
                                 "equivalent: save the model as '.safetensors'")
        elif k == "dtype" and v == layers.BF16_POLICY:
            pass        # Keras has no bf16 weight-only mode: a float32 layer
        elif k == "dtype":
            out[k] = _INT8 if v == layers.INT8_POLICY else _policy(v)
        elif k != "input_shape":        # the InputLayer carries the shape
            module = next((m for s, m in _MODULES if k.endswith(s)), None)
            out[k] = _keras_object(v, module) if module else v
    if entry.strict:
        out.setdefault("dtype", "float32")
    else:
        out.setdefault("trainable", True)
        out.setdefault("dtype", _FLOAT32)
    return {"module": "keras.layers", "class_name": kind, "config": out,
            "registered_name": None}


def _input_to_keras(model, name):
    shape = [None] + list(model._input_shape)
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": shape, "dtype": model._input_dtype or "float32",
                       "sparse": False, "ragged": False, "name": name,
                       "optional": False}, "registered_name": None}


def model_to_keras(model):
    """The config.json Keras 3 builds ``model`` from (compile_config included)."""
    ours = model.get_config()
    shape = [None] + list(model._input_shape)
    if getattr(model, "_kind", None) == "functional":
        items = []
        for layer, c in zip(model.layers, ours["layers"]):
            item = (_input_to_keras(model, layer.name)
                    if isinstance(layer, layers.InputLayer)
                    else _layer_to_keras(layer, c["config"]))
            items.append(dict(item, name=c["name"], inbound_nodes=c["inbound_nodes"]))
        config = {"module": "keras.src.models.functional", "class_name": "Functional",
                  "config": {"name": model.name, "trainable": True, "layers": items,
                             "input_layers": ours["input_layers"],
                             "output_layers": ours["output_layers"]},
                  "registered_name": "Functional", "build_config": {"input_shape": None}}
    else:
        items = [_input_to_keras(model, ours["layers"][0]["config"]["name"])]
        items += [_layer_to_keras(l, c["config"])
                  for l, c in zip(model.layers, ours["layers"][1:])]
        config = {"module": "keras", "class_name": "Sequential",
                  "config": {"name": model.name, "trainable": True, "dtype": _FLOAT32,
                             "layers": items, "build_input_shape": shape},
                  "registered_name": None, "build_config": {"input_shape": shape}}
    cc = model.get_compile_config()
    if cc is not None:
        loss = model.loss if isinstance(model.loss, str) else \
            _keras_object(cc["loss"], "keras.losses")
        config["compile_config"] = {
            "optimizer": _keras_object(cc["optimizer"], "keras.optimizers"),
            "loss": loss, "loss_weights": None,
            "metrics": [_keras_object(m, "keras.metrics") for m in cc["metrics"]],
            "weighted_metrics": None}
    return config


def class_names(model):
    """The Keras class name of each of the model's layers."""
    return [_BY_CLASS.get(type(l), type(l).__name__) for l in model.layers]


# ---------------------------------------------------------- optimizer state

def optimizer_layout(opt, n_weights):
    """Our optimizer's state in Keras's order: [iterations, learning_rate
    (not with a schedule), slots...], as (names, arrays or None).

    Keras keeps Adam/AdamW's momentum and velocity per variable (m0, v0,
    m1, v1, ...); SGD's momenta (when momentum != 0) and RMSprop's
    velocities, then momenta (momentum > 0), then mean gradients (centered)
    each as one run over the variables.  Ours are per weight [s0, s1, ...].
    """
    flat = opt.variables()
    per = len(flat) // n_weights if n_weights else 0
    slots = [flat[i * per:(i + 1) * per] for i in range(n_weights)]
    if isinstance(opt, optimizers.Adam):
        state = [s[j] for s in slots for j in (0, 1)]
    else:
        if isinstance(opt, optimizers.RMSprop):
            runs = (0,) + ((1,) if opt.momentum > 0 else ()) + ((2,) if opt.centered else ())
        else:
            runs = (0,) if opt.momentum else ()
        state = [s[j] for j in runs for s in slots]
    scheduled = isinstance(opt.get_config()["learning_rate"], dict)
    return (1 if scheduled else 2), state
