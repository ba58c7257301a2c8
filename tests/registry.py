"""One registry of every cell the battery checks: the built-ins and three cells written
here the documented way (the 13-line Elman RNN of docs/cells.md, a nonlinear one with
nested params, a linear one).

Each entry is a constructor of a cell with hidden size `H` and a float64 NumPy step
written from the equations. Adding a cell here gives it every check of
`test_battery.py`.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import reference
import reference_parallel

import jaxrnn as jr


class Entry(NamedTuple):
    make: Callable[[int], jr.Cell]
    numpy_step: Callable


def elman(hidden_size):
    """h' = tanh(x @ w_x + h @ w_h): the first cell of "Writing your own cell", as it stands."""

    def init(key, input_size, dtype=jnp.float32):
        k_x, k_h = jax.random.split(key)
        normal = jax.nn.initializers.lecun_normal()
        w_x = normal(k_x, (input_size, hidden_size), dtype)
        w_h = normal(k_h, (hidden_size, hidden_size), dtype)
        return {"w_x": w_x, "w_h": w_h}

    def step(params, h, x):
        h = jnp.tanh(x @ params["w_x"] + h @ params["w_h"])
        return h, h

    def zeros(batch_shape=(), dtype=jnp.float32):
        return jnp.zeros((*batch_shape, hidden_size), dtype)

    return jr.Cell(init, zeros, step, hidden_size, name="elman")


def elman_numpy(p, h, x):
    h = np.tanh(x @ p["w_x"] + h @ p["w_h"])
    return h, h


def layer_norm_lstm(hidden_size: int) -> jr.Cell:
    """An LSTM with per-gate layer normalisation (Ba et al. 2016), params nested."""
    H = hidden_size

    def init(key, input_size, dtype=jnp.float32):
        k_x, k_h = jax.random.split(key)
        # Drawn in float32 (QR has no half-precision kernel), then cast.
        w_x = jax.nn.initializers.glorot_uniform()(k_x, (input_size, 4 * H))
        w_h = jax.nn.initializers.orthogonal()(k_h, (H, 4 * H))
        return {
            "lstm": {"w_x": w_x.astype(dtype), "w_h": w_h.astype(dtype)},
            "norm": {"gain": jnp.ones((4, H), dtype), "bias": jnp.zeros((4, H), dtype)},
        }

    def step(params, carry, x):
        h, c = carry
        z = x @ params["lstm"]["w_x"] + h @ params["lstm"]["w_h"]
        z = z.reshape((*z.shape[:-1], 4, H))
        z = (z - z.mean(-1, keepdims=True)) * jax.lax.rsqrt(z.var(-1, keepdims=True) + 1e-5)
        ones = (1,) * (z.ndim - 2)
        norm = params["norm"]
        z = z * norm["gain"].reshape((*ones, 4, H)) + norm["bias"].reshape((*ones, 4, H))
        i, f, g, o = (z[..., k, :] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    def initial_carry(batch_shape=(), dtype=jnp.float32):
        zeros = jnp.zeros((*batch_shape, H), dtype)
        return zeros, zeros

    return jr.Cell(init, initial_carry, step, H, "layer_norm_lstm")


def layer_norm_lstm_numpy(p, carry, x):
    h, c = carry
    H = h.shape[-1]
    z = x @ p["lstm"]["w_x"] + h @ p["lstm"]["w_h"]
    z = z.reshape((*z.shape[:-1], 4, H))
    z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5)
    z = z * p["norm"]["gain"] + p["norm"]["bias"]
    sig = reference.sigmoid
    i, f, g, o = (z[..., k, :] for k in range(4))
    c = sig(f) * c + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    return (h, c), h


def leaky(hidden_size: int) -> jr.Cell:
    """A linear cell with a learned per-unit decay: h = sigmoid(d) * h + (x @ w + b)."""
    H = hidden_size

    def init(key, input_size, dtype=jnp.float32):
        return {
            "w": jax.nn.initializers.glorot_uniform()(key, (input_size, H), dtype),
            "b": jnp.zeros((H,), dtype),
            "decay": jnp.linspace(-1.0, 2.0, H, dtype=dtype),
        }

    def project(params, x):
        return x @ params["w"] + params["b"].reshape((1,) * (x.ndim - 1) + (H,))

    def coefficients(params, projected):
        decay = jax.nn.sigmoid(params["decay"]).reshape((1,) * (projected.ndim - 1) + (H,))
        return jnp.broadcast_to(decay, projected.shape), projected

    def initial_carry(batch_shape=(), dtype=jnp.float32):
        return jnp.zeros((*batch_shape, H), dtype)

    return jr.Cell(init, initial_carry, jr.LinearStep(project, coefficients), H, "leaky")


def leaky_numpy(p, h, x):
    h = reference.sigmoid(p["decay"]) * h + x @ p["w"] + p["b"]
    return h, h


CELLS: dict[str, Entry] = {
    **{name: Entry(*entry) for name, entry in reference.CELLS.items()},
    **{name: Entry(*entry) for name, entry in reference_parallel.CELLS.items()},
    "elman": Entry(elman, elman_numpy),
    "layer_norm_lstm": Entry(layer_norm_lstm, layer_norm_lstm_numpy),
    "leaky": Entry(leaky, leaky_numpy),
}
BUILT_INS = [*reference.CELLS, *reference_parallel.CELLS]


@functools.cache
def cell(name: str, hidden_size: int) -> jr.Cell:
    """Cell `name` of hidden size `hidden_size`, built once: a cell is a static argument of
    `unroll`'s jitted run, so reusing it lets tests share compilations."""
    return CELLS[name].make(hidden_size)


@functools.cache
def initial_params(name, hidden_size, input_size, dtype):
    """`init`'s params of `cell(name, hidden_size)` in `dtype`, drawn once."""
    return cell(name, hidden_size).init(jax.random.key(0), input_size, dtype)


def setup(name, batch_shape, dtype, num_steps, hidden_size, input_size, scale=0.2, seed=0):
    """`cell, params, carry, xs`: the cell, its params plus noise, so that every term of the
    equations (biases, gains) is exercised, a random carry and `xs (num_steps,
    *batch_shape, input_size)`.

    The noise is NumPy's: eager `jax.random` would compile anew for every shape.
    """
    rng = np.random.default_rng(seed)

    def noisy(a, scale):
        noise = scale * rng.standard_normal(a.shape)
        return jnp.asarray((np.asarray(a, np.float64) + noise).astype(a.dtype))

    the_cell = cell(name, hidden_size)
    params = initial_params(name, hidden_size, input_size, dtype)
    params = jax.tree.map(lambda a: noisy(a, scale), params)
    carry = jax.tree.map(lambda a: noisy(a, 0.5), the_cell.initial_carry(batch_shape, dtype))
    xs = rng.standard_normal((num_steps, *batch_shape, input_size))
    return the_cell, params, carry, jnp.asarray(xs.astype(dtype))


def numpy_step(name, params, carry, x):
    """One float64 NumPy step of cell `name`."""
    to64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)  # noqa: E731
    return CELLS[name].numpy_step(to64(params), to64(carry), np.asarray(x, np.float64))
