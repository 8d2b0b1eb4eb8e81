"""The Keras-style ``get(identifier)`` / ``serialize(obj)`` that every
configurable family (losses, metrics, optimizers, initializers,
regularizers, constraints) shares: an identifier is an instance, a name,
or a ``{"class_name": ..., "config": {...}}`` dict."""


def serialize(obj):
    return None if obj is None else {"class_name": type(obj).__name__,
                                     "config": obj.get_config()}


def resolve(identifier, what, base, names, *, optional=False, fold_case=False,
            make=None):
    """The object ``identifier`` stands for.

    Args:
        what: the family's name for messages ('loss').
        base: the family's base class (instances pass through).
        names: name -> class; class names are accepted too.
        optional: None resolves to None.
        fold_case: match names case-insensitively ('Adam').
        make: ``make(cls, name)`` builds from a name (default ``cls()``).
    """
    if identifier is None and optional:
        return None
    if isinstance(identifier, base):
        return identifier
    classes = {c.__name__: c for c in names.values()}
    if isinstance(identifier, str):
        cls = names.get(identifier.lower() if fold_case else identifier) \
            or classes.get(identifier)
        if cls is not None:
            return make(cls, identifier) if make else cls()
    elif isinstance(identifier, dict) and identifier.get("class_name") in classes:
        config = identifier.get("config", {})
        if not isinstance(config, dict):
            raise ValueError(f"{what} config must be a dict, got {config!r:.100}")
        return classes[identifier["class_name"]].from_config(config)
    raise ValueError(f"Unknown {what} {identifier!r:.100}; expected "
                     f"{'None, ' if optional else ''}one of {sorted(names)}, a config "
                     f"dict or a {base.__module__}.{base.__name__}")
