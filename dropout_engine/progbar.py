"""``dropout_engine.progbar.Progbar``, kept importable: the progress bar
lives in ``dropout_engine.callbacks.progbar`` beside its callback."""
from .callbacks.progbar import Progbar

__all__ = ["Progbar"]
