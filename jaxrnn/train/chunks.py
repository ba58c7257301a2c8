"""Cutting the time axis into chunks, so that the backward pass keeps one chunk at a time.

`jaxrnn.unroll(..., remat=True)` keeps the recurrent layer's activations to about
`sqrt(T)` steps' worth. What comes after it, typically a dense head and a loss at every
step, still keeps `(T, *batch, C)` logits and their gradient: `map_chunks` runs such a
per-step function a chunk of steps at a time under `jax.checkpoint`, so the logits of
one chunk exist at a time, in the forward pass and again in the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.unroll import segment_size

Array = jax.Array

__all__ = ["map_chunks"]


def map_chunks(fn: Callable[..., Any], *xs: Array, chunk_size: int | None = None) -> Any:
    """Apply `fn` to `xs` a chunk of time steps at a time, recomputing each chunk for gradients.

    It computes, with `k` steps per chunk,

    ```python
    outs = [fn(*(x[t : t + k] for x in xs)) for t in range(0, T, k)]
    return concatenate(outs)           # leaf by leaf, along axis 0
    ```

    which equals `fn(*xs)` when `fn` treats steps independently (a dense head and a
    per-step loss do). Each chunk runs under `jax.checkpoint` inside a
    `jax.lax.map`, so the backward pass keeps only `xs` and recomputes a chunk's
    intermediates when it reaches it: `fn`'s intermediates, such as the logits
    `(k, *batch, C)` of a softmax head, never exist for more than one chunk.

    With `jaxrnn.unroll(..., remat=True)` before it, a train step keeps neither the
    recurrent activations nor the logits at full length: see "Long sequences" on the
    Performance page of the docs for the memory it saves.

    Args:
      fn: a function of `len(xs)` arrays `(k, ...)`, the same `k` steps of each
        `xs`, returning a pytree of arrays `(k, ...)` (one row per step).
      *xs: one or more arrays `(T, ...)`, time on axis 0, all with the same `T`.
      chunk_size: steps per chunk, a positive int (more than `T` means one chunk).
        `None` picks about `sqrt(T)` steps, a divisor of `T` where one is near, as
        `remat` does (fewer, larger chunks run faster; smaller ones keep less).

    Returns:
      `fn`'s pytree of outputs, each leaf `(T, ...)`.

    Raises:
      TypeError: `fn` is not callable, an `xs` is not an array, or `chunk_size` is
        not a positive int.
      ValueError: no `xs`, an `xs` without a time axis, `xs` of different lengths,
        or an output of `fn` whose leading axis is not the chunk's steps.

    Example:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell, head = jr.lstm(16), jr.dense(10)
      >>> params = cell.init(jax.random.key(0), 8)
      >>> head_params = head.init(jax.random.key(1), 16)
      >>> xs, labels = jnp.ones((100, 4, 8)), jnp.zeros((100, 4), jnp.int32)
      >>> def step_losses(hs, labels):  # (k, 4, 16), (k, 4) -> (k, 4)
      ...     logits = head.apply(head_params, hs)
      ...     return jr.sequence_softmax_cross_entropy(
      ...         logits, labels, reduction="none"
      ...     )
      >>> _, hs = jr.unroll(cell, params, xs, remat=True)
      >>> jr.map_chunks(step_losses, hs, labels).shape
      (100, 4)
    """
    checks.function(fn, "fn", "fn(*chunks) -> outputs")
    if not xs:
        raise ValueError("map_chunks needs at least one array xs after fn")
    arrays = []
    for i, x in enumerate(xs):
        if not isinstance(x, jax.Array) and not hasattr(x, "__array__"):
            raise TypeError(f"xs[{i}] must be an array, got {type(x).__name__}")
        x = jnp.asarray(x)
        if x.ndim == 0:
            raise ValueError(f"xs[{i}] must have a time axis (axis 0), got a scalar")
        if arrays and x.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"every xs must have the same number of steps on axis 0: xs[0] has "
                f"{arrays[0].shape[0]}, xs[{i}] has shape {checks.shape_str(x.shape)}"
            )
        arrays.append(x)
    num_steps = arrays[0].shape[0]
    if num_steps == 0:
        return fn(*arrays)
    size = segment_size(num_steps) if chunk_size is None else chunk_size
    size = min(checks.positive_int(size, "chunk_size"), num_steps)

    def checked(*chunk: Array) -> Any:
        out = fn(*chunk)
        steps = chunk[0].shape[0]
        for path, leaf in jax.tree_util.tree_leaves_with_path(out):
            shape = jnp.shape(leaf)
            if not shape or shape[0] != steps:
                raise ValueError(
                    f"fn must return arrays with one row per step (axis 0 of length "
                    f"{steps} for a chunk of {steps} steps); output"
                    f"{jax.tree_util.keystr(path)} has shape {checks.shape_str(shape)}"
                )
        return out

    run = jax.checkpoint(checked)
    count, rest = divmod(num_steps, size)
    chunked = [x[: count * size].reshape(count, size, *x.shape[1:]) for x in arrays]
    out = jax.lax.map(lambda chunk: run(*chunk), chunked)
    out = jax.tree.map(lambda a: a.reshape(count * size, *a.shape[2:]), out)
    if not rest:
        return out
    tail = run(*(x[count * size :] for x in arrays))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, tail)
