"""Float64 NumPy steps of the built-in cells, written from the equations.

These are deliberately separate from the library: plain NumPy, per-gate
slices; `test_battery.py` loops them over time.
"""

from collections.abc import Callable

import numpy as np

import jaxrnn as jr


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def rnn_step(activation):
    def step(p, h, x):
        h = activation(x @ p["w_x"] + h @ p["w_h"] + p["b"])
        return h, h

    return step


def lstm_step(p, carry, x):
    h, c = carry
    H = h.shape[-1]
    z = x @ p["w_x"] + h @ p["w_h"] + p["b"]
    i, f, g, o = (z[..., k * H : (k + 1) * H] for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return (h, c), h


def gru_step(p, h, x):
    H = h.shape[-1]
    a = x @ p["w_x"] + p["b"]
    u = h @ p["w_h"]
    r = sigmoid(a[..., :H] + u[..., :H])
    z = sigmoid(a[..., H : 2 * H] + u[..., H : 2 * H])
    n = np.tanh(a[..., 2 * H :] + r * (u[..., 2 * H :] + p["b_hn"]))
    h = (1 - z) * n + z * h
    return h, h


def gru_original_step(p, h, x):
    H = h.shape[-1]
    a = x @ p["w_x"] + p["b"]
    w_h = p["w_h"]
    r = sigmoid(a[..., :H] + h @ w_h[:, :H])
    z = sigmoid(a[..., H : 2 * H] + h @ w_h[:, H : 2 * H])
    n = np.tanh(a[..., 2 * H :] + (r * h) @ w_h[:, 2 * H :])
    h = (1 - z) * n + z * h
    return h, h


# name -> (constructor of a cell with hidden size H, NumPy step)
CELLS: dict[str, tuple[Callable[[int], jr.Cell], Callable]] = {
    "rnn_tanh": (lambda H: jr.rnn(H), rnn_step(np.tanh)),
    "rnn_relu": (lambda H: jr.rnn(H, nonlinearity="relu"), rnn_step(lambda z: np.maximum(z, 0))),
    "lstm": (lambda H: jr.lstm(H), lstm_step),
    "gru": (lambda H: jr.gru(H), gru_step),
    "gru_original": (lambda H: jr.gru(H, reset_after=False), gru_original_step),
}
