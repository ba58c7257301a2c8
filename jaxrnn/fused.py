"""The fused-gate parameter layout that the built-in cells share.

One input weight `w_x (input_size, G * hidden_size)`, one recurrent weight
`w_h (hidden_size, G * hidden_size)` and one bias `b (G * hidden_size,)`, with
the gates in PyTorch's order, so weights move between the libraries by a
transpose; one `(I, G*H)` matmul is faster than `G` small ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import Carry, InitFn, InitialCarryFn, Initializer, Params

Array = jax.Array


def default_input_init() -> Initializer:
    """Glorot-uniform, applied to each gate's `(input_size, hidden_size)` block."""
    return jax.nn.initializers.glorot_uniform()


def default_recurrent_init() -> Initializer:
    """Orthogonal, applied to each gate's `(hidden_size, hidden_size)` block."""
    return jax.nn.initializers.orthogonal()


def gate_blocks(
    initializer: Initializer, key: Array, rows: int, hidden_size: int, gates: int, dtype: Any
) -> Array:
    """`(rows, gates * hidden_size)` made of one initialised block per gate."""
    # QR (orthogonal init) has no half-precision kernel: draw in float32, then cast.
    draw_dtype = dtype if jnp.dtype(dtype).itemsize >= 4 else jnp.float32
    keys = jax.random.split(key, gates)
    blocks = [initializer(k, (rows, hidden_size), draw_dtype) for k in keys]
    return jnp.concatenate(blocks, axis=1).astype(dtype)


def init(
    hidden_size: int,
    gates: int,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias: Callable[[Any], Array] | None = None,
    extra: Callable[[Any], dict[str, Array]] | None = None,
    recurrent: bool = True,
) -> InitFn:
    """`init(key, input_size, dtype)` for the fused layout: `w_x`, `w_h` (none without
    `recurrent`, for cells with no recurrent matmul) and `b`. The initializers default to
    `default_input_init()` and `default_recurrent_init()`, `bias(dtype)` to zeros, and
    `extra(dtype)` adds more arrays."""
    input_init = input_init or default_input_init()
    recurrent_init = (recurrent_init or default_recurrent_init()) if recurrent else None

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        key = checks.prng_key(key)
        input_size = checks.positive_int(input_size, "input_size")
        dtype = checks.floating_dtype(dtype)
        key_x, key_h = jax.random.split(key)
        G, H = gates, hidden_size
        params = {"w_x": gate_blocks(input_init, key_x, input_size, H, G, dtype)}
        if recurrent_init is not None:
            params["w_h"] = gate_blocks(recurrent_init, key_h, H, H, G, dtype)
        params["b"] = jnp.zeros((G * H,), dtype) if bias is None else bias(dtype)
        return params if extra is None else {**params, **extra(dtype)}

    return init


def zeros_carry(hidden_size: int, parts: int = 1) -> InitialCarryFn:
    """`initial_carry` of `parts` zero arrays `(*batch, hidden_size)` (one array if 1)."""

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        batch_shape = checks.batch_shape(batch_shape)
        zeros = jnp.zeros((*batch_shape, hidden_size), checks.floating_dtype(dtype))
        return zeros if parts == 1 else tuple(zeros for _ in range(parts))

    return initial_carry


def add_bias(y: Array, bias: Array) -> Array:
    """`y + bias` with an explicit reshape, so it works with `jax_numpy_rank_promotion="raise"`."""
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def project(params: Params, x: Array) -> Array:
    """`x @ w_x + b`: `(..., input_size) -> (..., G * hidden_size)`."""
    return add_bias(x @ params["w_x"], params["b"])
