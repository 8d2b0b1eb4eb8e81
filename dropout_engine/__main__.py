"""``python -m dropout_engine``: the command line (``dropout_engine.cli``):
``train``, ``predict``, ``info`` and ``demo``; ``--help`` lists them."""
import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
