r"""Hand-derived backpropagation through time for any `BpttStep`.

`jaxrnn.unroll(..., grad="bptt")` runs `bptt`: the same masked `jax.lax.scan`
as the autodiff path, over the step's own `forward` (so the same values), as a
`jax.custom_vjp` whose backward pass is the step's hand-derived rules:

1. The forward scan also keeps each step's residuals (what `forward` returns
   beside the carry and the output). The `h` each step started from is read
   off the previous step's output, or the initial carry.
2. The backward pass is a scan in the opposite direction that carries only the
   state gradients; each step calls `step.backward`, whose one matmul is
   $\bar h_{t-1} = \bar z_t W_h^\top$ (with `w_h` transposed once, before the
   loop), and emits what `step.grads` needs.
3. `step.grads` then forms the weight and input gradients with a few large
   matmuls over all `T * batch` rows at once, instead of `T` small ones:
   $\bar W_x = X^\top \bar Z$, $\bar W_h = H_{\text{prev}}^\top \bar Z$,
   $\bar b = \sum \bar z_t$, $\bar X = \bar Z W_x^\top$.

Masking (`lengths`) follows `unroll`: padded inputs are replaced by zeros
before the scan (by ordinary JAX code, so their gradient is exactly zero even
when the padding holds NaN), and with $m_t$ the 0/1 validity of step $t$ the
backward step is

$$\bar h^{\text{new}}_t = m_t \,(\bar h_t + \bar y_t), \qquad
  \bar h_{t-1} = m_t\, \mathrm{backward}(\bar h^{\text{new}}_t) + (1 - m_t)\, \bar h_t.$$

Reverse mode only (`jax.grad`, `jax.vjp`, `jax.hessian`, which is forward over
reverse, works); forward mode (`jax.jvp`, `jax.jacfwd`) raises, as for any
`jax.custom_vjp`: use `grad="autodiff"` there.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import BpttStep, Carry, Params

Array = jax.Array


def _hold(valid: Array | None, new: Any, old: Any) -> Any:
    """`new` where the step is valid, else `old` (leaf by leaf, rows on axis 0)."""
    if valid is None:
        return new
    return jax.tree.map(lambda a, b: jnp.where(valid[:, None], a, b), new, old)


def _zero_invalid(valid: Array | None, tree: Any) -> Any:
    return _hold(valid, tree, jax.tree.map(jnp.zeros_like, tree))


def _add_to_h(dcarry: Carry, dh: Array) -> Carry:
    dh_carry, *rest = jax.tree.leaves(dcarry)
    return jax.tree.unflatten(jax.tree.structure(dcarry), [dh_carry + dh, *rest])


def _previous(hs: Array, h0: Array, valid: Array | None, reverse: bool) -> Array:
    """The `h` each step started from, `(T, rows, H)`, from the outputs and the initial `h`.

    Exact at every valid step; at padded steps (whose gate gradients are zero) it is
    some finite value. Valid steps are a prefix of each sequence, so a valid step's
    predecessor in scan order is valid too, or is none (the initial carry): with
    `reverse`, the last valid step follows padded steps that held the initial carry.
    """
    first = h0[None]
    if not reverse:
        return jnp.concatenate([first, hs[:-1]], axis=0)
    prev = jnp.concatenate([hs[1:], first], axis=0)
    if valid is not None:
        shifted = jnp.concatenate([valid[1:], jnp.zeros_like(valid[:1])], axis=0)
        prev = jnp.where(shifted[:, :, None], prev, first)
    return prev


def _forward(
    step: BpttStep, reverse: bool, params: Params, xs: Array, carry: Carry, valid: Array | None
) -> tuple[tuple[Carry, Array], tuple[Any, ...]]:
    def body(carry: Carry, inputs: tuple[Array, Array | None]) -> tuple[Carry, Any]:
        x, is_valid = inputs
        new_carry, h, residuals = step.forward(params, carry, step.project(params, x), carry)
        return _hold(is_valid, new_carry, carry), (_zero_invalid(is_valid, h), residuals)

    final, (hs, residuals) = jax.lax.scan(body, carry, (xs, valid), reverse=reverse)
    h0 = jax.tree.leaves(carry)[0]
    return (final, hs), (params, xs, h0, hs, residuals, valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _scan(
    step: BpttStep, reverse: bool, params: Params, xs: Array, carry: Carry, valid: Array | None
) -> tuple[Carry, Array]:
    return _forward(step, reverse, params, xs, carry, valid)[0]


def _scan_bwd(
    step: BpttStep, reverse: bool, saved: tuple[Any, ...], cotangents: tuple[Carry, Array]
) -> tuple[Params, Array, Carry, None]:
    params, xs, h0, hs, residuals, valid = saved
    dfinal, dhs = cotangents
    # Transposed once, before the loop: else XLA folds the transpose into every step's
    # matmul, where a transposed operand is slower.
    back_params = {**params, "w_h_t": jax.lax.optimization_barrier(params["w_h"].T)}

    def body(dcarry: Carry, inputs: tuple[Any, ...]) -> tuple[Carry, Any]:
        residuals_t, h_t, dh_t, is_valid = inputs
        dnew = _zero_invalid(is_valid, _add_to_h(dcarry, dh_t))
        emitted, dprev = step.backward(back_params, residuals_t, h_t, dnew)
        return _hold(is_valid, dprev, dcarry), emitted

    dcarry, emitted = jax.lax.scan(body, dfinal, (residuals, hs, dhs, valid), reverse=not reverse)
    h_prev = _previous(hs, h0, valid, reverse)
    dparams, dxs = step.grads(params, xs, h_prev, residuals, emitted)
    return dparams, dxs, dcarry, None  # `valid` is boolean: no cotangent


_scan.defvjp(_forward, _scan_bwd)


@functools.partial(jax.jit, static_argnums=(0, 5))
def bptt(
    step: BpttStep,
    params: Params,
    xs: Array,
    carry: Carry,
    lengths: Array | None,
    reverse: bool,
) -> tuple[Carry, Array]:
    """Unroll `step` over time with its hand-derived backward pass.

    Computes what `jaxrnn.unroll(cell, params, xs, carry, lengths=lengths,
    reverse=reverse)` computes for a cell whose step is `step`; `unroll(...,
    grad="bptt")` calls it after checking its arguments, which this function does not.

    Args:
      step: a `BpttStep`, e.g. `jaxrnn.cells.LSTM`.
      params: the cell's params.
      xs: inputs `(T, *batch, input_size)`, time-major, with `T >= 1`.
      carry: the initial carry, as `cell.initial_carry(batch_shape)` gives it.
      lengths: `None`, or the integer number of valid steps `(*batch,)`.
      reverse: run each sequence from its last valid step down to step 0.

    Returns:
      `(final_carry, hs)` with `hs` of shape `(T, *batch, hidden_size)`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
      >>> def loss(params, grad):
      ...     (h, c), hs = jr.unroll(
      ...         cell, params, xs, lengths=jnp.array([5, 2]), grad=grad
      ...     )
      ...     return jnp.sum(hs**2) + jnp.sum(c)
      >>> by_hand = jax.grad(lambda p: loss(p, "bptt"))(params)
      >>> by_autodiff = jax.grad(lambda p: loss(p, "autodiff"))(params)
      >>> bool(jnp.allclose(by_hand["w_x"], by_autodiff["w_x"], rtol=1e-5, atol=1e-6))
      True
    """
    num_steps, batch_shape, input_size = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
    rows = math.prod(batch_shape)
    xs = xs.reshape((num_steps, rows, input_size))
    carry = jax.tree.map(lambda a: a.reshape((rows, a.shape[-1])), carry)
    valid = None
    if lengths is not None:
        valid = checks.valid_steps(lengths.reshape(rows), num_steps)
        # Outside the custom VJP, so that JAX zeroes the padding's gradient.
        xs = jnp.where(valid[:, :, None], xs, jnp.zeros((), xs.dtype))
    final, hs = _scan(step, reverse, params, xs, carry, valid)

    def unflatten(a: Array) -> Array:
        return a.reshape((*a.shape[:-2], *batch_shape, a.shape[-1]))

    return jax.tree.map(unflatten, final), unflatten(hs)
