"""numpy references for the C kernels (float64 where precision matters).

Sections: GEMM, activations, dropout/RNG, dense forward/backward, losses,
optimizers.  Each is plain numpy that a reader can check by eye.
"""
import numpy as np

# ----------------------------------------------------------------- GEMM


# ---------------------------------------------------------- activations


# ------------------------------------------------------------ dropout/RNG


# ----------------------------------------------------- dense fwd / bwd


# ------------------------------------------------- losses / optimizers
