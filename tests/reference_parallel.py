"""Float64 NumPy references for the linear-recurrence cells, written from the papers.

Plain NumPy, per-gate slices, complex arithmetic for the LRU, a Python loop over
time; nothing here calls the library's cells.
"""

from collections.abc import Callable

import jax
import numpy as np

import jaxrnn as jr


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def g(x):
    """Feng et al.'s positive activation for the log-space cells."""
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def min_gru_step(candidate):
    def step(p, h, x):
        H = h.shape[-1]
        k = x @ p["w_x"] + p["b"]
        z = sigmoid(k[..., :H])
        h = (1 - z) * h + z * candidate(k[..., H:])
        return h, h

    return step


def min_lstm_step(candidate):
    def step(p, h, x):
        H = h.shape[-1]
        k = x @ p["w_x"] + p["b"]
        f, i = sigmoid(k[..., :H]), sigmoid(k[..., H : 2 * H])
        h = f / (f + i) * h + i / (f + i) * candidate(k[..., 2 * H :])
        return h, h

    return step


def lru_step(p, carry, x):
    h = carry[0] + 1j * carry[1]
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    B = p["b_re"] + 1j * p["b_im"]
    C = p["c_re"] + 1j * p["c_im"]
    h = lam * h + np.exp(p["gamma_log"]) * (x @ B)
    y = (h @ C).real + x @ p["d"]
    return (h.real, h.imag), y


def identity(x):
    return x


# name -> (constructor of a cell with hidden size H, NumPy step)
CELLS: dict[str, tuple[Callable[[int], jr.Cell], Callable]] = {
    "min_gru": (lambda H: jr.min_gru(H), min_gru_step(g)),
    "min_gru_linear": (lambda H: jr.min_gru(H, log_space=False), min_gru_step(identity)),
    "min_lstm": (lambda H: jr.min_lstm(H), min_lstm_step(g)),
    "min_lstm_linear": (lambda H: jr.min_lstm(H, log_space=False), min_lstm_step(identity)),
    "lru": (lambda H: jr.lru(H, state_size=H + 2), lru_step),
}


def to_numpy(tree):
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), tree)


def unroll(name, params, xs, carry):
    """`(final_carry, hs)` of cell `name` over time-major `xs`, in float64 NumPy."""
    step = CELLS[name][1]
    p, carry = to_numpy(params), to_numpy(carry)
    hs = []
    for x in np.asarray(xs, np.float64):
        carry, h = step(p, carry, x)
        hs.append(h)
    return carry, np.stack(hs)
