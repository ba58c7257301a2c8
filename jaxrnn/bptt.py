"""Hand-derived backpropagation through time for the built-in cells.

Each rule runs the same masked `lax.scan` as `jaxrnn.unroll` and has a
`jax.custom_vjp` whose backward pass is a reverse scan that only carries the
state gradients; the weight gradients are large matmuls after the loop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from jaxrnn.cells import BpttFn, Carry, Params

Array = jax.Array

SAVE_ACTS = False  # experiment switch


class _Rule(NamedTuple):
    forward: Callable[..., Any]
    back: Callable[..., Any]
    grads: Callable[..., Any]


def _add_bias(y: Array, bias: Array) -> Array:
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def _project(params: Params, xs: Array) -> Array:
    return _add_bias(xs @ params["w_x"], params["b"])


def _outer(a: Array, b: Array) -> Array:
    """`sum_{t, b} a[t, b, :]^T b[t, b, :]`: one GEMM over all `T * batch` rows."""
    return jnp.tensordot(a, b, axes=((0, 1), (0, 1)))


def _rows_sum(a: Array) -> Array:
    return jnp.sum(a, axis=(0, 1))


def _input_grads(params: Params, xs: Array, dg: Array) -> tuple[Array, Array, Array]:
    return _outer(xs, dg), _rows_sum(dg), dg @ params["w_x"].T


def _sigmoid_grad(s: Array) -> Array:
    return s * (1 - s)


def _add_to_h(dcarry: Carry, dh: Array) -> Carry:
    if isinstance(dcarry, tuple):
        return (dcarry[0] + dh, *dcarry[1:])
    return dcarry + dh


def _h_of(carry: Carry) -> Array:
    return carry[0] if isinstance(carry, tuple) else carry


# Elman RNN.


def _rnn_rule(nonlinearity: str) -> _Rule:
    activation = {"tanh": jnp.tanh, "relu": jax.nn.relu}[nonlinearity]

    def forward(params, projected, h):
        h = activation(projected + h @ params["w_h"])
        return h, h, (h,)

    def back(params, acts, h_prev, dh):
        (h,) = acts
        if nonlinearity == "tanh":
            dg = dh * (1 - h * h)
        else:
            dg = jnp.where(h > 0, dh, jnp.zeros((), dh.dtype))
        return dg, dg @ params["w_h"].T

    def grads(params, xs, h_prev, acts, dg):
        dw_x, db, dxs = _input_grads(params, xs, dg)
        return {"w_x": dw_x, "w_h": _outer(h_prev, dg), "b": db}, dxs

    return _Rule(forward, back, grads)


# LSTM.


def _lstm_forward(params, projected, carry):
    h, c = carry
    z = projected + h @ params["w_h"]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    si, sf, tg, so = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = sf * c + si * tg
    tc = jnp.tanh(c)
    h = so * tc
    return (h, c), h, (si, sf, tg, so, tc)


def _lstm_back(params, acts, prev, dnew):
    si, sf, tg, so, tc = acts
    _, c_prev = prev
    dh, dc = dnew
    dc = dc + dh * so * (1 - tc * tc)
    dg = jnp.concatenate(
        [
            dc * tg * _sigmoid_grad(si),
            dc * c_prev * _sigmoid_grad(sf),
            dc * si * (1 - tg * tg),
            dh * tc * _sigmoid_grad(so),
        ],
        axis=-1,
    )
    return dg, (dg @ params["w_h"].T, dc * sf)


def _lstm_grads(params, xs, prev, acts, dg):
    dw_x, db, dxs = _input_grads(params, xs, dg)
    return {"w_x": dw_x, "w_h": _outer(prev[0], dg), "b": db}, dxs


# GRU.


def _gru_forward(params, projected, h):
    H = h.shape[-1]
    u = h @ params["w_h"]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H : 2 * H])
    u_n = _add_bias(u[..., 2 * H :], params["b_hn"])
    n = jnp.tanh(projected[..., 2 * H :] + r * u_n)
    h = n + z * (h - n)
    return h, h, (r, z, n, u_n)


def _gru_back(params, acts, h_prev, dh):
    r, z, n, u_n = acts
    da_n = dh * (1 - z) * (1 - n * n)
    dg_h = jnp.concatenate(
        [
            da_n * u_n * _sigmoid_grad(r),
            dh * (h_prev - n) * _sigmoid_grad(z),
            da_n * r,
        ],
        axis=-1,
    )
    return (dg_h, da_n), dh * z + dg_h @ params["w_h"].T


def _gru_grads(params, xs, h_prev, acts, dg):
    dg_h, da_n = dg
    H = da_n.shape[-1]
    dg_x = jnp.concatenate([dg_h[..., : 2 * H], da_n], axis=-1)
    dw_x, db, dxs = _input_grads(params, xs, dg_x)
    dparams = {
        "w_x": dw_x,
        "w_h": _outer(h_prev, dg_h),
        "b": db,
        "b_hn": _rows_sum(dg_h[..., 2 * H :]),
    }
    return dparams, dxs


def _gru_original_forward(params, projected, h):
    H = h.shape[-1]
    w_h = params["w_h"]
    u = h @ w_h[:, : 2 * H]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H:])
    n = jnp.tanh(projected[..., 2 * H :] + (r * h) @ w_h[:, 2 * H :])
    h = n + z * (h - n)
    return h, h, (r, z, n)


def _gru_original_back(params, acts, h_prev, dh):
    r, z, n = acts
    H = h_prev.shape[-1]
    w_h = params["w_h"]
    da_n = dh * (1 - z) * (1 - n * n)
    dq = da_n @ w_h[:, 2 * H :].T
    dg_rz = jnp.concatenate(
        [dq * h_prev * _sigmoid_grad(r), dh * (h_prev - n) * _sigmoid_grad(z)], axis=-1
    )
    dh_prev = dh * z + dq * r + dg_rz @ w_h[:, : 2 * H].T
    return jnp.concatenate([dg_rz, da_n], axis=-1), dh_prev


def _gru_original_grads(params, xs, h_prev, acts, dg):
    r = acts[0]
    H = r.shape[-1]
    dw_x, db, dxs = _input_grads(params, xs, dg)
    dw_h = jnp.concatenate(
        [_outer(h_prev, dg[..., : 2 * H]), _outer(r * h_prev, dg[..., 2 * H :])], axis=1
    )
    return {"w_x": dw_x, "w_h": dw_h, "b": db}, dxs


# The scan and its custom VJP, on time-major (T, B, ...) arrays.


def _hold(valid: Array | None, new: Any, old: Any) -> Any:
    if valid is None:
        return new
    return jax.tree.map(lambda a, b: jnp.where(valid[:, None], a, b), new, old)


def _zero_where_invalid(valid: Array | None, tree: Any) -> Any:
    if valid is None:
        return tree
    return jax.tree.map(lambda a: jnp.where(valid[:, None], a, jnp.zeros((), a.dtype)), tree)


def _forward(rule, reverse, params, xs, carry, valid):
    def body(carry, inputs):
        x, m = inputs
        new_carry, h, acts = rule.forward(params, _project(params, x), carry)
        new_carry = _hold(m, new_carry, carry)
        h = _zero_where_invalid(m, h)
        return new_carry, (h, carry, acts if SAVE_ACTS else None)

    final, (hs, prev, acts) = jax.lax.scan(body, carry, (xs, valid), reverse=reverse)
    return (final, hs), (params, xs, prev, acts, valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _run(rule, reverse, params, xs, carry, valid):
    return _forward(rule, reverse, params, xs, carry, valid)[0]


def _run_bwd(rule, reverse, residuals, cotangents):
    params, xs, prev, acts, valid = residuals
    dfinal, dhs = cotangents
    if acts is None:
        acts = rule.forward(params, _project(params, xs), prev)[2]

    def body(dcarry, inputs):
        acts_t, prev_t, dh_t, m = inputs
        dnew = _zero_where_invalid(m, _add_to_h(dcarry, dh_t))
        dg, dprev = rule.back(params, acts_t, prev_t, dnew)
        return _hold(m, dprev, dcarry), dg

    dcarry, dg = jax.lax.scan(
        body, dfinal, (acts, prev, dhs, valid), reverse=not reverse
    )
    dparams, dxs = rule.grads(params, xs, prev, acts, dg)
    return dparams, dxs, dcarry, None


_run.defvjp(_forward, _run_bwd)


def _public(rule: _Rule, hidden_size_of: Callable[[Carry], int] = None) -> BpttFn:
    @functools.partial(jax.jit, static_argnums=4)
    def bptt(params, xs, carry, lengths, reverse):
        num_steps, batch_shape, input_size = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
        rows = math.prod(batch_shape)
        xs = xs.reshape((num_steps, rows, input_size))
        carry = jax.tree.map(lambda a: a.reshape((rows, a.shape[-1])), carry)
        valid = None
        if lengths is not None:
            steps = jnp.arange(num_steps, dtype=lengths.dtype)
            valid = steps[:, None] < lengths.reshape((1, rows))
            xs = jnp.where(valid[:, :, None], xs, jnp.zeros((), xs.dtype))
        final, hs = _run(rule, reverse, params, xs, carry, valid)
        unflatten = lambda a: a.reshape((*a.shape[:-2], *batch_shape, a.shape[-1]))  # noqa: E731
        return jax.tree.map(unflatten, final), unflatten(hs)

    return bptt


def rnn(nonlinearity: str = "tanh") -> BpttFn:
    return _public(_rnn_rule(nonlinearity))


def lstm() -> BpttFn:
    return _public(_Rule(_lstm_forward, _lstm_back, _lstm_grads))


def gru(reset_after: bool = True) -> BpttFn:
    if reset_after:
        return _public(_Rule(_gru_forward, _gru_back, _gru_grads))
    return _public(_Rule(_gru_original_forward, _gru_original_back, _gru_original_grads))
