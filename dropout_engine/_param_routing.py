"""scikeras's parameter routing, for the Keras wrappers of ``sklearn``.

A wrapper's parameters are flat names, as scikit-learn wants them (so that
GridSearchCV and clone see every one); a double underscore routes a
parameter to one consumer, and may nest:

    optimizer="adam", optimizer__learning_rate=0.1    -> Adam(learning_rate=0.1)
    callbacks=[A, B], callbacks__1__patience=3        -> [A(), B(patience=3)]
    callbacks=S, callbacks__0=F, callbacks__0__k=2     -> S(F(k=2))  (digits: positional)
    model__units=8, fit__shuffle=False, predict__batch_size=1024

``route`` strips a destination's prefix; ``instantiate`` builds the objects
that a parameter names as classes, with the parameters routed to them.
"""
import inspect

__all__ = ["route", "instantiate", "signature_names"]


def route(params, destination, strict=False):
    """The parameters ``<destination>__name`` as ``name``; with ``strict``,
    not those that route further (``<destination>__a__b``)."""
    prefix = destination + "__"
    out = {}
    for key, value in params.items():
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if not (strict and "__" in rest):
                out[rest] = value
    return out


def instantiate(item, params, what):
    """``item`` with the classes in it built from ``params``.

    Args:
        item: a class (called with the parameters routed to it), a list,
            tuple or dict of items (a bare parameter goes to every item,
            ``<index or key>__name`` to one), or any other object, which is
            returned as it is and must not be given parameters.
        params: the parameters routed to ``item`` (prefix stripped).
        what: the parameter's name, for messages ("optimizer").
    """
    bare = {k: v for k, v in params.items() if "__" not in k}
    if isinstance(item, type):
        args = {k: instantiate(v, route(params, k), f"{what}__{k}")
                for k, v in bare.items()}
        digits = sorted((k for k in args if k.isdigit()), key=int)
        positional = [args.pop(k) for k in digits]
        return item(*positional, **args)
    if isinstance(item, (list, tuple)):
        return type(item)(instantiate(x, {**bare, **route(params, str(i))},
                                      f"{what}__{i}") for i, x in enumerate(item))
    if isinstance(item, dict):
        return {k: instantiate(x, {**bare, **route(params, str(k))}, f"{what}__{k}")
                for k, x in item.items()}
    if params:
        raise TypeError(f"{what}={item!r:.80} is not a class, so it cannot take the "
                        f"routed parameters {sorted(params)}; give the class "
                        f"(e.g. {what}=Adam, {what}__learning_rate=0.01) instead")
    return item


def signature_names(fn):
    """(names fn takes by keyword, whether it takes **kwargs); (None, True)
    when the signature cannot be read (a builtin), so that all is passed."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in sig.parameters.values() if p.kind in kinds}
    return names, any(p.kind == inspect.Parameter.VAR_KEYWORD
                      for p in sig.parameters.values())
