"""numpy references for the C kernels (float64 where precision matters).

Sections: GEMM, activations, dropout/RNG, dense forward/backward, losses,
optimizers.  Each is plain numpy that a reader can check by eye.
"""
import numpy as np

# ----------------------------------------------------------------- GEMM
def gemm(a, b, trans_a=False, trans_b=False, c=None):
    """op(a) @ op(b) (+ c) in float64, op = transpose when asked."""
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    out = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return out if c is None else out + np.asarray(c, np.float64)


def gemm_error_bound(a, b, trans_a=False, trans_b=False):
    """Per-element bound on float32 rounding of op(a) @ op(b): a few ulps
    times sqrt(k) times the sum of |products| (sqrt(k): rounding errors of a
    sum of k terms add like a random walk)."""
    a64 = np.abs(np.asarray(a, np.float64))
    b64 = np.abs(np.asarray(b, np.float64))
    k = a64.shape[0] if trans_a else a64.shape[1]
    mags = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return 4 * np.finfo(np.float32).eps * np.sqrt(k) * mags + 1e-30


# ---------------------------------------------------------- activations


# ------------------------------------------------------------ dropout/RNG


# ----------------------------------------------------- dense fwd / bwd


# ------------------------------------------------- losses / optimizers
