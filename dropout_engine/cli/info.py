"""`python -m dropout_engine info model.safetensors`: what a model file holds.

Prints the file's size and format, one row per layer (type, output shape,
activation, dropout rate, weight shapes and dtypes, parameters), the
parameter count, how the model was compiled, and the command-line metadata
(task, target, classes, features with their scaler) when `train` made the
file; other user metadata keys are listed by name and size.  The file is
loaded with ``load_model``'s full validation first.
"""
import json
import os

from ..layers import Dense, Dropout
from ..safetensors import ModelFileError, load_tensors
from ..layers.base import _show
from ..saving import RESERVED_METADATA, load_metadata, load_model
from .preprocess import KEY, Preprocessor


def _layer_rows(model, tensors):
    rows = [("#", "layer", "type", "output", "activation", "dropout", "weights", "params")]
    shapes = model._shapes()
    for i, layer in enumerate(model.layers):
        names = getattr(layer, "weight_names", ())
        weights = ", ".join(
            f"{n} {'x'.join(map(str, t.shape))} {t.dtype}"
            for n in names for t in [tensors[f"weights/{i}/{n}"]]) or "-"
        kind = type(layer).__name__
        if getattr(layer, "quantization_mode", None):
            kind += f" ({layer.quantization_mode})"
        rate = (f"{layer.rate:g}" + (" (weight scaling)" if getattr(
            layer, "scaling", "inverted") == "weight" else "")
            if isinstance(layer, Dropout) else "-")
        rows.append((str(i), layer.name, kind, _show(shapes[i]),
                     getattr(layer, "activation", None) or "-", rate, weights,
                     f"{layer.count_params():,}"))
    return rows


def _table(rows, indent="  "):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _compile_line(meta):
    cc = json.loads(meta.get("compile", "null"))
    if cc is None:
        return "not compiled"
    opt = cc["optimizer"]
    lr = opt.get("config", {}).get("learning_rate")
    lr = f"learning_rate {lr:g}" if isinstance(lr, (int, float)) else \
        f"learning_rate schedule {lr.get('class_name', '?')}" if isinstance(lr, dict) else ""
    loss = cc["loss"]
    loss = loss.get("config", {}).get("name", loss.get("class_name")) \
        if isinstance(loss, dict) else loss
    metrics = ", ".join(m if isinstance(m, str) else m.get("class_name", "?")
                        for m in cc["metrics"]) or "none"
    return (f"{opt.get('class_name')} ({lr}), loss {loss}, metrics {metrics}; "
            f"{meta.get('iterations', '0')} optimizer steps")


def _cli_lines(prep):
    lines = [f"  task:     {prep.task}, target {prep.target!r}"]
    if prep.task == "classification":
        lines.append(f"  classes:  {len(prep.classes)}: {', '.join(prep.classes)}")
    else:
        lines.append(f"  target scaling: mean {prep.target_mean:.6g}, "
                     f"std {prep.target_std:.6g}")
    lines.append(f"  features: {len(prep.features)}, standardized with:")
    lines += _table([("feature", "mean", "std")] + [
        (name, f"{m:.6g}", f"{s:.6g}")
        for name, m, s in zip(prep.features, prep.mean, prep.std)], indent="    ")
    return lines


def _keras_view(path, model):
    """(tensors, metadata) as ours would hold them, of a Keras 3 file."""
    tensors = {f"weights/{i}/{n}": w for i, layer in enumerate(model.layers)
               for n, w in zip(getattr(layer, "weight_names", ()), layer.weights)}
    meta = dict(load_metadata(path), format="keras", version="3")
    try:
        compiled = load_model(path)
    except ModelFileError:        # a compile config we cannot run
        return tensors, meta
    if compiled.compiled:
        meta.update(compile=json.dumps(compiled.get_compile_config()),
                    iterations=str(compiled.optimizer.iterations))
    return tensors, meta


def run(args):
    path = args.model
    model = load_model(path, compile=False)
    try:
        tensors, meta = load_tensors(path)
    except ModelFileError:        # not ours: a Keras 3 file, which load_model read
        tensors, meta = _keras_view(path, model)
    n_params = model.count_params()
    dtypes = sorted({str(t.dtype) for n, t in tensors.items() if n.startswith("weights/")})
    out = [f"file:       {path} ({os.path.getsize(path):,} bytes)",
           f"format:     {meta['format']}, version {meta['version']}",
           f"model:      {model.name!r}, input {_show(model._input_shape)}, "
           f"{len(model.layers)} layers"]
    out += _table(_layer_rows(model, tensors))
    out.append(f"parameters: {n_params:,} ({', '.join(dtypes)}; "
               f"{sum(t.nbytes for n, t in tensors.items() if n.startswith('weights/')):,} "
               f"bytes of weights)")
    n_state = sum(1 for n in tensors if n.startswith("optimizer/"))
    out.append(f"compiled:   {_compile_line(meta)}"
               + (f", {n_state} optimizer state tensors" if n_state else ""))
    user = {k: v for k, v in meta.items() if k not in RESERVED_METADATA}
    if KEY in user:
        out.append(f"command-line metadata ({KEY}):")
        out += _cli_lines(Preprocessor.from_json(user.pop(KEY), path))
    else:
        out.append("command-line metadata: none (not made by `train`)")
    for k, v in user.items():
        out.append(f"metadata:   {k!r} ({len(v)} characters)")
    print("\n".join(out))
    return 0
