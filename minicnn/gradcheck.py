"""Numerical gradients: the referee for every hand-written backward pass.

For a function f with output y and an upstream gradient dout, the directional derivative
L = sum(f(x) * dout) has dL/dx = "the backward pass applied to dout". Centered differences

    dL/dx_i ~= (L(x + h e_i) - L(x - h e_i)) / (2h)

have error O(h^2) plus round-off O(eps / h); in float64 with h = 1e-5 that is about 1e-10
relative, so a correct backward pass agrees to ~1e-8 and a wrong one is off by O(1).
"""
import numpy as np


def numerical_gradient(f, x, dout, h=1e-5):
    """d sum(f(x) * dout) / dx by centered differences. ``f`` must not keep x; x is float64."""
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        plus = np.sum(f(x) * dout)
        flat_x[i] = old - h
        minus = np.sum(f(x) * dout)
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b):
    """||a - b|| / max(||a||, ||b||): 0 when equal, about 1 when unrelated."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / scale)
