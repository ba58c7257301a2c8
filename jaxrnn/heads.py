"""A dense readout applied to every step of a sequence at once."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import Initializer, Params
from jaxrnn.fused import add_bias

Array = jax.Array


class Dense(NamedTuple):
    """An affine readout `y = h @ w + b`, as pure functions.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> {"w": (input_size, output_size),
        "b": (output_size,)}`.
      apply: `apply(params, hs) -> ys` for `hs (..., input_size)`, any leading dims.
      output_size: the number of output features.
    """

    init: Any
    apply: Any
    output_size: int


def dense(output_size: int, *, kernel_init: Initializer | None = None) -> Dense:
    """A dense head to apply after the scan, to all steps in one matmul.

    Running the readout once over `(T, *batch, H)` instead of inside the scan turns
    `T` small matmuls into one large one. Combined with `jr.unroll` it gives a
    many-to-many model (tagging, language modelling); applied to `jr.last_valid`
    outputs or a final carry it gives a many-to-one model.

    Args:
      output_size: the number of output features (e.g. classes).
      kernel_init: initializer for `w` (default LeCun normal, variance `1 / input_size`).
        The bias starts at zero.

    Returns:
      A `Dense` with `init(key, input_size, dtype=jnp.float32) -> params` and
      `apply(params, hs) -> ys`, `hs (..., input_size)` to `ys (..., output_size)`.

    Raises:
      ValueError: `output_size` is not a positive int; at `apply`, `hs` has the wrong
        number of features for `params`.
      TypeError: `hs` is not floating or its dtype differs from the params'.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell, head = jr.lstm(16), jr.dense(5)
      >>> params = {"cell": cell.init(jax.random.key(0), 3),
      ...           "head": head.init(jax.random.key(1), 16)}
      >>> xs = jnp.ones((10, 2, 3))
      >>> _, hs = jr.unroll(cell, params["cell"], xs)  # (T, batch, H)
      >>> logits = head.apply(params["head"], hs)  # (T, batch, 5)
      >>> logits.shape
      (10, 2, 5)
    """
    output_size = checks.positive_int(output_size, "output_size")
    kernel_init = kernel_init or jax.nn.initializers.lecun_normal()

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        key = checks.prng_key(key)
        input_size = checks.positive_int(input_size, "input_size")
        dtype = checks.floating_dtype(dtype)
        return {
            "w": kernel_init(key, (input_size, output_size), dtype),
            "b": jnp.zeros((output_size,), dtype),
        }

    def apply(params: Params, hs: Array) -> Array:
        hs = checks.float_array(hs, "hs")
        if hs.ndim < 1:
            raise ValueError("hs must have a feature axis, (..., input_size); got a scalar")
        checks.params(layer, params, hs.shape[-1], hs.dtype, source="hs")
        return add_bias(hs @ params["w"], params["b"])

    layer = Dense(init=init, apply=apply, output_size=output_size)
    return layer
