"""``model.summary()`` laid out as Keras 3 prints it (keras.src.utils.
summary_utils.print_summary, which renders a rich table), without rich.

The columns, their widths (``line_length`` defaults to 88 for a chain, 108
with the "Connected to" column of a DAG, at most the terminal's width - 4;
``positions`` split it), the word wrapping of long cells and the box
characters are rich's for that table, so the text is Keras's own for the
same model; where the output's encoding has no box characters, rich's
ASCII box is used, as rich does.  Then the parameter counts: total,
trainable, non-trainable (an int8 model's kernels and scales, BN's moving
statistics), and once
the optimizer has stepped, its own (its state, the iteration counter and
the learning rate: Keras's ``optimizer.variables``); each with its size.
"""
import os
import re
import shutil
import sys

# rich.box.HEAVY_HEAD and rich.box.ASCII: (top, header, header rule, row,
# row rule, bottom), each (left, fill, cross, right).
_HEAVY_HEAD = ("┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "├─┼┤", "└─┴┘")
_ASCII = ("+--+", "| ||", "|-+|", "| ||", "|-+|", "+--+")
_ELLIPSIS = "…"
_WORD = re.compile(r"\s*\S+\s*")


def _ratio_reduce(total, values):
    """rich._ratio.ratio_reduce with equal ratios: take ``total`` off the
    values, spread as evenly as rounding allows, left to right."""
    out, left, n = [], total, len(values)
    for v in values:
        cut = min(v, round(left / n))
        out.append(v - cut)
        left -= cut
        n -= 1
    return out


def _wrap(text, width, justify):
    """rich's Text.wrap of ``text`` in ``width`` cells (words kept whole,
    overflow "ellipsis"), justified "left", "right" or "center"."""
    lines = []
    for line in text.split("\n"):
        breaks, offset = [], 0
        for m in _WORD.finditer(line):
            word = m.group(0)
            size = len(word.rstrip())
            if width - offset >= size:
                offset += len(word)
            elif size > width or (offset and m.start()):
                if m.start():
                    breaks.append(m.start())
                offset = len(word)
        pieces = [line[a:b] for a, b in zip([0] + breaks, breaks + [len(line)])]
        for piece in pieces:
            if len(piece) > width:               # rstrip_end
                trailing = len(piece) - len(piece.rstrip())
                piece = piece[:len(piece) - min(trailing, len(piece) - width)]
            if justify != "left":
                piece = piece.rstrip()
            if len(piece) > width:
                piece = piece[:width - 1] + _ELLIPSIS
            if justify == "center":
                left = (width - len(piece)) // 2
                piece = " " * left + piece
            lines.append(piece.rjust(width) if justify == "right" else piece.ljust(width))
    return lines


def _console_width():
    """The width rich's Console sees (the first of stdin, stdout, stderr
    that is a terminal, then $COLUMNS, else 80): the table is cropped to it,
    as rich crops a table wider than its console."""
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


def _box():
    enc = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(_HEAVY_HEAD).encode(enc)
        return _HEAVY_HEAD
    except (UnicodeEncodeError, LookupError):
        return _ASCII


def _table(header, justify, rows, widths, box):
    """The lines of rich's Table(show_lines=True) with fixed ``widths``
    (padding included) and ``box``."""
    def rule(chars):
        left, fill, cross, right = chars
        return left + cross.join(fill * w for w in widths) + right

    def row(cells, chars, bottom=False):
        wrapped = [_wrap(c, w - 2, j) for c, w, j in zip(cells, widths, justify)]
        height = max(len(c) for c in wrapped)
        if bottom:       # rich aligns header cells to the bottom, others to the top
            wrapped = [[" " * (w - 2)] * (height - len(c)) + c
                       for c, w in zip(wrapped, widths)]
        out = []
        for i in range(height):
            parts = [" " + (c[i] if i < len(c) else " " * (w - 2)) + " "
                     for c, w in zip(wrapped, widths)]
            out.append(chars[0] + chars[2].join(parts) + chars[3])
        return out

    lines = [rule(box[0])] + row(header, box[1], bottom=True) + [rule(box[2])]
    for i, cells in enumerate(rows):
        if i:
            lines.append(rule(box[4]))
        lines += row(cells, box[3])
    lines.append(rule(box[5]))
    return lines


def readable_size(n):
    """Keras's readable_memory_size: "316.00 B", "1.25 KB", ..."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n / 1024 < 1:
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PB"


def _optimizer_params(model):
    """(count, bytes) of Keras's optimizer.variables once it has stepped:
    the state arrays, the int32 iteration counter, the float32 learning
    rate (none for a schedule)."""
    opt = model.optimizer if model.compiled else None
    if opt is None or opt.iterations == 0:
        return None
    state = opt.variables()
    scalars = 1 if opt._schedule is not None else 2
    return (sum(s.size for s in state) + scalars,
            sum(s.nbytes for s in state) + 4 * scalars)


def print_summary(model, rows, sequential_like, line_length=None, positions=None,
                  print_fn=None, show_trainable=False, layer_range=None):
    """Print (or pass to ``print_fn``, once, as Keras does) the summary.
    rows: per layer (name, class name, output shape text, params text,
    connections text, trainable flag text)."""
    if sequential_like:
        default, positions = 88, positions or [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
        justify = ["left", "left", "right"]
    else:
        default, positions = 108, positions or [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        justify = ["left", "left", "right", "left"]
    if show_trainable:
        default += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        justify.append("center")
    line_length = line_length or min(default, shutil.get_terminal_size().columns - 4)
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    # rich: each column is its width plus a space either side, the table
    # line_length with its borders; what does not fit comes off evenly.
    padded = [w + 2 for w in widths]
    excess = sum(padded) - (line_length - len(widths) - 1)
    if excess > 0:
        padded = _ratio_reduce(excess, padded)
    lo, hi = _layer_range(rows, layer_range)
    cells = []
    for name, kind, shape, params, connected, trainable in rows[lo:hi]:
        c = [f"{name} ({kind})", shape, params]
        if not sequential_like:
            c.append(connected)
        if show_trainable:
            c.append(trainable)
        cells.append(c)
    width = _console_width()
    lines = [f'Model: "{model.name}"']
    lines += [line[:width] for line in _table(header, justify, cells, padded, _box())]
    trainable, frozen = _weight_split(model)
    opt = _optimizer_params(model)
    total = sum(w.size for w in trainable + frozen) + (opt[0] if opt else 0)
    nbytes = _stored_bytes(model)
    size = sum(map(nbytes, trainable + frozen)) + (opt[1] if opt else 0)
    lines.append(f" Total params: {total:,} ({readable_size(size)})")
    for what, ws in (("Trainable", trainable), ("Non-trainable", frozen)):
        lines.append(f" {what} params: {sum(w.size for w in ws):,} "
                     f"({readable_size(sum(map(nbytes, ws)))})")
    if opt:
        lines.append(f" Optimizer params: {opt[0]:,} ({readable_size(opt[1])})")
    text = "\n".join(lines) + "\n"
    if print_fn is None:
        sys.stdout.write(text)
    else:
        print_fn(text)


def _stored_bytes(model):
    """The bytes a weight takes as the model stores it: a kernel quantized
    to bfloat16 is 2 a parameter (``kernel`` shows it widened to float32)."""
    halved = {id(layer.kernel) for layer in model._layers
              if getattr(layer, "_bf16", None) is not None}
    return lambda w: w.nbytes // 2 if id(w) in halved else w.nbytes


def _weight_split(model):
    """(trainable, non-trainable) weights: an int8 Dense's kernel and
    kernel_scale and BatchNormalization's moving statistics are not trained
    (Keras's)."""
    frozen = [w for layer in model._layers
              if getattr(layer, "_quantized_kernel", None) is not None
              for w in (layer.kernel, layer.kernel_scale) if w is not None]
    ids = {id(w) for w in frozen}
    frozen += [w for w in model.non_trainable_weights if id(w) not in ids]
    ids = {id(w) for w in frozen}
    return [w for w in model.weights if id(w) not in ids], frozen


def _layer_range(rows, layer_range):
    """Keras's get_layer_index_bound_by_layer_name over the rows' names."""
    if layer_range is None:
        return 0, len(rows)
    if not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2:
        raise ValueError("layer_range must be a list or tuple of length 2. Received: "
                         f"layer_range = {layer_range}")
    if not all(isinstance(r, str) for r in layer_range):
        raise ValueError(f"layer_range should contain string type only. Received: "
                         f"{layer_range}")
    lower = [i for i, r in enumerate(rows) if re.match(layer_range[0], r[0])]
    upper = [i for i, r in enumerate(rows) if re.match(layer_range[1], r[0])]
    if not lower or not upper:
        raise ValueError("Passed layer_names do not match the layer names in the "
                         f"model. Received: {layer_range}")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1
