r"""Hand-derived backpropagation through time for the built-in cells.

`jaxrnn.unroll(..., grad="bptt")` calls `cell.bptt`, one of the rules made
here. A rule computes exactly what the autodiff path computes (the same masked
`jax.lax.scan`, the same operations in the same order, so the same values) and
is a `jax.custom_vjp` whose backward pass is derived by hand:

1. The forward scan also saves what each step's backward needs: its gate
   activations, and the part of the carry it started from that cannot be read off
   the outputs ($c_{t-1}$ for the LSTM, $h_{t-1}$ for the GRU). The $h_{t-1}$ that
   the weight gradient needs is the previous step's output (or the initial carry).
2. The backward pass is a scan in the opposite direction that carries only the
   state gradients ($\bar h$, and $\bar c$ for the LSTM). Its one matmul per step
   is $\bar h_{t-1} = \bar z_t W_h^\top$; it emits the pre-activation gate
   gradients $\bar z_t$ of every step, stacked into $\bar Z$ of shape
   `(T, *batch, G * H)`.
3. The weight and input gradients are then a few large matmuls over all
   `T * batch` rows at once, instead of `T` small ones inside the loop:

$$\bar W_x = X^\top \bar Z, \qquad \bar W_h = H_{\text{prev}}^\top \bar Z, \qquad
  \bar b = \textstyle\sum_{t, \text{batch}} \bar z_t, \qquad \bar X = \bar Z W_x^\top$$

where $X$ stacks the inputs $x_t$ and $H_{\text{prev}}$ the states $h_{t-1}$ that
each step started from.

Masking (`lengths`) follows `unroll`: padded inputs are replaced by zeros
before the cell (by ordinary JAX code, so their gradient is exactly zero even
when the padding holds NaN), and with $m_t$ the 0/1 validity of step $t$ the
backward step is

$$\bar h^{\text{new}}_t = m_t \,(\bar h_t + \bar y_t), \qquad
  \bar h_{t-1} = m_t\, \mathrm{cell}^\top(\bar h^{\text{new}}_t) + (1 - m_t)\, \bar h_t$$

where $\bar h_t$ is the gradient flowing into the carry after step $t$ and
$\bar y_t$ the gradient of the output at $t$ (the same for $\bar c$, which has
no output term). Each sequence's valid steps contribute to the weight
gradients; padded steps give $\bar z_t = 0$ exactly. `reverse=True` runs the
forward scan from the last step down and the backward scan upwards.

What is saved was chosen by measurement (2-core CPU, jax 0.10.2, LSTM
B=64 T=200 I=128 H=256, train step): recomputing the gates in the backward
pass from the saved states with two large matmuls instead of saving them made
the step about 2x slower; projecting the inputs before the forward loop
instead of inside it was 5-20% slower, as for `unroll`. Each array saved per step
costs one small copy per step (about 25 µs each for `(64, 256)` float32), so the
LSTM saves neither $\tanh(c_t)$ (recomputed, elementwise) nor $h_{t-1}$, and the
backward loop multiplies by a $W_h^\top$ transposed once before the loop (a
transposed operand in every step's matmul measured about 10% slower there). Saving
the fused pre-activations instead of the four gates made no measurable difference.

Only reverse-mode differentiation is defined (`jax.grad`, `jax.vjp`, and
`jax.grad` of `jax.grad`); forward mode (`jax.jvp`, `jax.jacfwd`) raises, as for
any `jax.custom_vjp`. Use `grad="autodiff"` for those.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks

if TYPE_CHECKING:
    from jaxrnn.cells import BpttFn, Carry, Params

Array = jax.Array
_Acts = tuple[Array, ...]
"""What one step saves for the backward pass, each `(*rows, hidden_size)`."""


class _Rule(NamedTuple):
    """A cell's forward step, backward step and weight gradients.

    `forward(params, projected, carry) -> (new_carry, h, acts)`: one step from the
    projected input `x @ w_x + b`, with what the backward step needs.
    `back(params, acts, h, dnew) -> (emitted, dcarry)`: from the step's saved
    `acts`, its output `h` and the gradient of the new carry (output gradient
    included) to the gradient of the carry the step started from, and the gate
    gradients to keep for the weight gradients. `params` also holds `w_h_t`,
    `w_h` transposed.
    `grads(params, xs, h_prev, acts, emitted) -> (dparams, dxs)`: weight and input
    gradients from all steps at once, each argument stacked `(T, rows, ...)`;
    `h_prev` is the `h` each step started from.
    """

    forward: Callable[[Params, Array, Carry], tuple[Carry, Array, _Acts]]
    back: Callable[[Params, _Acts, Array, Carry], tuple[Any, Carry]]
    grads: Callable[[Params, Array, Array, _Acts, Any], tuple[Params, Array]]


def _add_bias(y: Array, bias: Array) -> Array:
    # Explicit reshape: users may run with jax_numpy_rank_promotion="raise".
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def _project(params: Params, x: Array) -> Array:
    return _add_bias(x @ params["w_x"], params["b"])


def _outer(a: Array, b: Array) -> Array:
    """`a^T b` over all `T * rows` rows of `a (T, rows, m)` and `b (T, rows, n)`: `(m, n)`."""
    return jnp.tensordot(a, b, axes=((0, 1), (0, 1)))


def _rows_sum(a: Array) -> Array:
    return jnp.sum(a, axis=(0, 1))


def _input_grads(params: Params, xs: Array, dz: Array) -> tuple[Array, Array, Array]:
    """`(dw_x, db, dxs)` from the pre-activation gradients of the input affine map."""
    return _outer(xs, dz), _rows_sum(dz), dz @ params["w_x"].T


def _sigmoid_grad(s: Array) -> Array:
    """The derivative of the sigmoid, from its output."""
    return s * (1 - s)


# Elman RNN.


def _rnn_rule(nonlinearity: str) -> _Rule:
    activation = {"tanh": jnp.tanh, "relu": jax.nn.relu}[nonlinearity]

    def forward(params: Params, projected: Array, h: Array) -> tuple[Array, Array, _Acts]:
        h = activation(projected + h @ params["w_h"])
        return h, h, ()

    def back(params: Params, acts: _Acts, h: Array, dh: Array) -> tuple[Array, Array]:
        if nonlinearity == "tanh":
            dz = dh * (1 - h * h)
        else:
            dz = jnp.where(h > 0, dh, jnp.zeros((), dh.dtype))
        return dz, dz @ params["w_h_t"]

    def grads(
        params: Params, xs: Array, h_prev: Array, acts: _Acts, dz: Array
    ) -> tuple[Params, Array]:
        dw_x, db, dxs = _input_grads(params, xs, dz)
        return {"w_x": dw_x, "w_h": _outer(h_prev, dz), "b": db}, dxs

    return _Rule(forward, back, grads)


# LSTM.


def _lstm_forward(
    params: Params, projected: Array, carry: tuple[Array, Array]
) -> tuple[tuple[Array, Array], Array, _Acts]:
    h, c_prev = carry
    z = projected + h @ params["w_h"]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c_prev + i * g
    h = o * jnp.tanh(c)
    return (h, c), h, (i, f, g, o, c_prev)


def _lstm_back(
    params: Params, acts: _Acts, h: Array, dnew: tuple[Array, Array]
) -> tuple[Array, tuple[Array, Array]]:
    i, f, g, o, c_prev = acts
    tanh_c = jnp.tanh(f * c_prev + i * g)
    dh, dc = dnew
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    dz = jnp.concatenate(
        [
            dc * g * _sigmoid_grad(i),
            dc * c_prev * _sigmoid_grad(f),
            dc * i * (1 - g * g),
            dh * tanh_c * _sigmoid_grad(o),
        ],
        axis=-1,
    )
    return dz, (dz @ params["w_h_t"], dc * f)


def _lstm_grads(
    params: Params, xs: Array, h_prev: Array, acts: _Acts, dz: Array
) -> tuple[Params, Array]:
    dw_x, db, dxs = _input_grads(params, xs, dz)
    return {"w_x": dw_x, "w_h": _outer(h_prev, dz), "b": db}, dxs


# GRU, reset gate after the recurrent matmul (PyTorch, cuDNN).


def _gru_forward(params: Params, projected: Array, h: Array) -> tuple[Array, Array, _Acts]:
    H = h.shape[-1]
    u = h @ params["w_h"]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H : 2 * H])
    u_n = _add_bias(u[..., 2 * H :], params["b_hn"])
    n = jnp.tanh(projected[..., 2 * H :] + r * u_n)
    h_new = n + z * (h - n)
    return h_new, h_new, (r, z, n, u_n, h)


def _gru_back(
    params: Params, acts: _Acts, h: Array, dh: Array
) -> tuple[tuple[Array, Array], Array]:
    r, z, n, u_n, h_prev = acts
    da_n = dh * (1 - z) * (1 - n * n)
    du = jnp.concatenate(
        [da_n * u_n * _sigmoid_grad(r), dh * (h_prev - n) * _sigmoid_grad(z), da_n * r], axis=-1
    )
    return (du, da_n), dh * z + du @ params["w_h_t"]


def _gru_grads(
    params: Params, xs: Array, h_prev: Array, acts: _Acts, emitted: tuple[Array, Array]
) -> tuple[Params, Array]:
    du, da_n = emitted
    h_prev = acts[-1]  # exactly the carry each step started from, as the backward used
    H = da_n.shape[-1]
    # The r and z gates see x and h through the same pre-activation; n does not.
    da = jnp.concatenate([du[..., : 2 * H], da_n], axis=-1)
    dw_x, db, dxs = _input_grads(params, xs, da)
    dparams = {
        "w_x": dw_x,
        "w_h": _outer(h_prev, du),
        "b": db,
        "b_hn": _rows_sum(du[..., 2 * H :]),
    }
    return dparams, dxs


# GRU, reset gate before the recurrent matmul (the original formulation).


def _gru_original_forward(params: Params, projected: Array, h: Array) -> tuple[Array, Array, _Acts]:
    H = h.shape[-1]
    w_h = params["w_h"]
    u = h @ w_h[:, : 2 * H]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H:])
    n = jnp.tanh(projected[..., 2 * H :] + (r * h) @ w_h[:, 2 * H :])
    h_new = n + z * (h - n)
    return h_new, h_new, (r, z, n, h)


def _gru_original_back(params: Params, acts: _Acts, h: Array, dh: Array) -> tuple[Array, Array]:
    r, z, n, h_prev = acts
    H = h_prev.shape[-1]
    w_h_t = params["w_h_t"]
    da_n = dh * (1 - z) * (1 - n * n)
    dq = da_n @ w_h_t[2 * H :]
    da_rz = jnp.concatenate(
        [dq * h_prev * _sigmoid_grad(r), dh * (h_prev - n) * _sigmoid_grad(z)], axis=-1
    )
    dh_prev = dh * z + dq * r + da_rz @ w_h_t[: 2 * H]
    return jnp.concatenate([da_rz, da_n], axis=-1), dh_prev


def _gru_original_grads(
    params: Params, xs: Array, h_prev: Array, acts: _Acts, da: Array
) -> tuple[Params, Array]:
    r, h_prev = acts[0], acts[-1]
    H = r.shape[-1]
    dw_x, db, dxs = _input_grads(params, xs, da)
    dw_h = jnp.concatenate(
        [_outer(h_prev, da[..., : 2 * H]), _outer(r * h_prev, da[..., 2 * H :])], axis=1
    )
    return {"w_x": dw_x, "w_h": dw_h, "b": db}, dxs


# The scan and its custom VJP, on time-major arrays with one batch dim, `rows`.


def _hold(valid: Array | None, new: Any, old: Any) -> Any:
    """`new` where the step is valid, else `old` (leaf by leaf, rows on axis 0)."""
    if valid is None:
        return new
    return jax.tree.map(lambda a, b: jnp.where(valid[:, None], a, b), new, old)


def _zero_invalid(valid: Array | None, tree: Any) -> Any:
    if valid is None:
        return tree
    return jax.tree.map(lambda a: jnp.where(valid[:, None], a, jnp.zeros((), a.dtype)), tree)


def _add_to_h(dcarry: Carry, dh: Array) -> Carry:
    if isinstance(dcarry, tuple):
        return (dcarry[0] + dh, *dcarry[1:])
    return dcarry + dh


def _previous(hs: Array, h0: Array, valid: Array | None, reverse: bool) -> Array:
    """The `h` each step started from, `(T, rows, H)`, from the outputs and the initial `h`.

    Exact at every valid step; at padded steps (whose gate gradients are zero) it is
    some finite value. Valid steps are a prefix of each sequence, so a valid step's
    predecessor in scan order is valid too, or is none (the initial carry): with
    `reverse`, the last valid step follows padded steps that held the initial carry.
    """
    first = h0[None]
    if reverse:
        prev = jnp.concatenate([hs[1:], first], axis=0)
        if valid is not None:
            shifted = jnp.concatenate([valid[1:], jnp.zeros_like(valid[:1])], axis=0)
            prev = jnp.where(shifted[:, :, None], prev, first)
        return prev
    # Forward: the predecessor of a valid step t >= 1 is the valid step t - 1.
    return jnp.concatenate([first, hs[:-1]], axis=0)


def _forward(
    rule: _Rule,
    reverse: bool,
    params: Params,
    xs: Array,
    carry: Carry,
    valid: Array | None,
) -> tuple[tuple[Carry, Array], tuple[Any, ...]]:
    def body(carry: Carry, inputs: tuple[Array, Array | None]) -> tuple[Carry, Any]:
        x, is_valid = inputs
        new_carry, h, acts = rule.forward(params, _project(params, x), carry)
        new_carry = _hold(is_valid, new_carry, carry)
        return new_carry, (_zero_invalid(is_valid, h), acts)

    final, (hs, acts) = jax.lax.scan(body, carry, (xs, valid), reverse=reverse)
    h0 = carry[0] if isinstance(carry, tuple) else carry
    return (final, hs), (params, xs, h0, hs, acts, valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _scan(
    rule: _Rule,
    reverse: bool,
    params: Params,
    xs: Array,
    carry: Carry,
    valid: Array | None,
) -> tuple[Carry, Array]:
    return _forward(rule, reverse, params, xs, carry, valid)[0]


def _scan_bwd(
    rule: _Rule, reverse: bool, residuals: tuple[Any, ...], cotangents: tuple[Carry, Array]
) -> tuple[Params, Array, Carry, None]:
    params, xs, h0, hs, acts, valid = residuals
    dfinal, dhs = cotangents
    # Transposed once, before the loop: else XLA folds the transpose into every step's
    # matmul, and a transposed operand is slower there (measured).
    back_params = {**params, "w_h_t": jax.lax.optimization_barrier(params["w_h"].T)}

    def body(dcarry: Carry, inputs: tuple[Any, ...]) -> tuple[Carry, Any]:
        acts_t, h_t, dh_t, is_valid = inputs
        dnew = _zero_invalid(is_valid, _add_to_h(dcarry, dh_t))
        emitted, dprev = rule.back(back_params, acts_t, h_t, dnew)
        return _hold(is_valid, dprev, dcarry), emitted

    dcarry, emitted = jax.lax.scan(body, dfinal, (acts, hs, dhs, valid), reverse=not reverse)
    dparams, dxs = rule.grads(params, xs, _previous(hs, h0, valid, reverse), acts, emitted)
    # `valid` is boolean: its cotangent is symbolically zero.
    return dparams, dxs, dcarry, None


_scan.defvjp(_forward, _scan_bwd)


def _bptt_fn(rule: _Rule, name: str) -> BpttFn:
    @functools.partial(jax.jit, static_argnums=4)
    def bptt(
        params: Params, xs: Array, carry: Carry, lengths: Array | None, reverse: bool
    ) -> tuple[Carry, Array]:
        num_steps, batch_shape, input_size = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
        rows = math.prod(batch_shape)
        xs = xs.reshape((num_steps, rows, input_size))
        carry = jax.tree.map(lambda a: a.reshape((rows, a.shape[-1])), carry)
        valid = None
        if lengths is not None:
            steps = jnp.arange(num_steps, dtype=lengths.dtype)
            valid = steps[:, None] < lengths.reshape((1, rows))
            # Outside the custom VJP, so that JAX zeroes the padding's gradient.
            xs = jnp.where(valid[:, :, None], xs, jnp.zeros((), xs.dtype))
        final, hs = _scan(rule, reverse, params, xs, carry, valid)

        def unflatten(a: Array) -> Array:
            return a.reshape((*a.shape[:-2], *batch_shape, a.shape[-1]))

        return jax.tree.map(unflatten, final), unflatten(hs)

    bptt.__doc__ = f"""Unroll the {name} cell over time with a hand-derived backward pass.

    Computes what `jaxrnn.unroll(cell, params, xs, carry, lengths=lengths,
    reverse=reverse)` computes; `unroll(..., grad="bptt")` calls it after checking
    its arguments, which this function does not do.

    Args:
      params: the cell's params.
      xs: inputs `(T, *batch, input_size)`, time-major.
      carry: the initial carry, as `cell.initial_carry(batch_shape)` gives it.
      lengths: `None`, or the integer number of valid steps `(*batch,)`.
      reverse: run each sequence from its last valid step down to step 0.

    Returns:
      `(final_carry, hs)` with `hs` of shape `(T, *batch, hidden_size)`.
    """
    return bptt


def rnn(nonlinearity: str = "tanh") -> BpttFn:
    r"""The hand-derived backward pass of `jaxrnn.rnn(hidden_size, nonlinearity)`.

    Forward, per step: $a_t = x_t W_x + h_{t-1} W_h + b$ and $h_t = \phi(a_t)$.
    The step saves nothing but its output $h_t$. Backward, with $\bar h_t$ the gradient of
    $h_t$ (from the output at $t$ and from step $t + 1$):

    $$\bar a_t = \bar h_t \odot \phi'(a_t), \qquad \phi'(a_t) = 1 - h_t^2 \;(\tanh)
      \;\text{ or }\; [h_t > 0] \;(\mathrm{relu}), \qquad
      \bar h_{t-1} \mathrel{+}= \bar a_t W_h^\top$$

    and after the loop, with $\bar A$ the stacked $\bar a_t$:
    $\bar W_x = X^\top \bar A$, $\bar W_h = H_{\text{prev}}^\top \bar A$,
    $\bar b = \sum \bar a_t$, $\bar X = \bar A W_x^\top$.

    Args:
      nonlinearity: `"tanh"` or `"relu"`, as given to `jaxrnn.rnn`.

    Returns:
      A `bptt(params, xs, carry, lengths, reverse) -> (carry, hs)` function for
      `Cell.bptt`.

    Raises:
      ValueError: `nonlinearity` is neither `"tanh"` nor `"relu"`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.rnn(hidden_size=8)        # its bptt is jaxrnn.bptt.rnn("tanh")
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
      >>> def loss(params, grad):
      ...     return jnp.sum(jr.unroll(cell, params, xs, grad=grad)[1] ** 2)
      >>> by_hand = jax.grad(lambda p: loss(p, "bptt"))(params)
      >>> by_autodiff = jax.grad(lambda p: loss(p, "autodiff"))(params)
      >>> bool(jnp.allclose(by_hand["w_h"], by_autodiff["w_h"], rtol=1e-5, atol=1e-6))
      True
    """
    _checks.one_of(nonlinearity, "nonlinearity", ("tanh", "relu"))
    return _bptt_fn(_rnn_rule(nonlinearity), f"rnn_{nonlinearity}")


def lstm() -> BpttFn:
    r"""The hand-derived backward pass of `jaxrnn.lstm(hidden_size)`.

    Forward, per step: $z = x_t W_x + h_{t-1} W_h + b$ split into $z_i, z_f, z_g,
    z_o$; $i = \sigma(z_i)$, $f = \sigma(z_f)$, $g = \tanh(z_g)$, $o = \sigma(z_o)$;
    $c_t = f \odot c_{t-1} + i \odot g$ and $h_t = o \odot \tanh(c_t)$. The step
    saves $i, f, g, o$ and $c_{t-1}$ ($\tanh c_t$ is recomputed). Backward,
    with $\bar h_t$, $\bar c_t$ the gradients of the state after step $t$:

    $$\begin{aligned}
      \hat c &= \bar c_t + \bar h_t \odot o \odot (1 - \tanh^2 c_t) \\
      \bar z_i &= \hat c \odot g \odot i (1 - i), \qquad
      \bar z_f = \hat c \odot c_{t-1} \odot f (1 - f) \\
      \bar z_g &= \hat c \odot i \odot (1 - g^2), \qquad
      \bar z_o = \bar h_t \odot \tanh(c_t) \odot o (1 - o) \\
      \bar c_{t-1} &= \hat c \odot f, \qquad \bar h_{t-1} \mathrel{+}= \bar z_t W_h^\top
    \end{aligned}$$

    with $\bar z_t = [\bar z_i, \bar z_f, \bar z_g, \bar z_o]$; after the loop
    $\bar W_x = X^\top \bar Z$, $\bar W_h = H_{\text{prev}}^\top \bar Z$,
    $\bar b = \sum \bar z_t$, $\bar X = \bar Z W_x^\top$.

    Returns:
      A `bptt(params, xs, carry, lengths, reverse) -> (carry, hs)` function for
      `Cell.bptt`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=8)       # its bptt is jaxrnn.bptt.lstm()
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
      >>> lengths = jnp.array([5, 2])
      >>> def loss(params, grad):
      ...     (h, c), hs = jr.unroll(cell, params, xs, lengths=lengths, grad=grad)
      ...     return jnp.sum(hs**2) + jnp.sum(c)
      >>> by_hand = jax.grad(lambda p: loss(p, "bptt"))(params)
      >>> by_autodiff = jax.grad(lambda p: loss(p, "autodiff"))(params)
      >>> bool(jnp.allclose(by_hand["w_x"], by_autodiff["w_x"], rtol=1e-5, atol=1e-6))
      True
    """
    return _bptt_fn(_Rule(_lstm_forward, _lstm_back, _lstm_grads), "lstm")


def gru(reset_after: bool = True) -> BpttFn:
    r"""The hand-derived backward pass of `jaxrnn.gru(hidden_size, reset_after=...)`.

    Forward, per step, with $a = x_t W_x + b$ split into $a_r, a_z, a_n$:
    $r = \sigma(a_r + u_r)$, $z = \sigma(a_z + u_z)$ and
    $h_t = (1 - z) \odot n + z \odot h_{t-1}$. Backward, with $\bar h_t$ the
    gradient of $h_t$, the gates $r$, $z$ share

    $$\bar a_n = \bar h_t \odot (1 - z) \odot (1 - n^2), \qquad
      \bar z_z = \bar h_t \odot (h_{t-1} - n) \odot z (1 - z).$$

    `reset_after=True`: $u = h_{t-1} W_h$, $\tilde u_n = u_n + b_{hn}$ and
    $n = \tanh(a_n + r \odot \tilde u_n)$; the step saves $r, z, n, \tilde u_n$ and
    $h_{t-1}$. The gradients of the recurrent and the input pre-activations
    differ in the $n$ block:

    $$\bar z_r = \bar a_n \odot \tilde u_n \odot r (1 - r), \qquad
      \bar u_t = [\bar z_r, \bar z_z, \bar a_n \odot r], \qquad
      \bar a_t = [\bar z_r, \bar z_z, \bar a_n], \qquad
      \bar h_{t-1} \mathrel{+}= \bar h_t \odot z + \bar u_t W_h^\top$$

    and after the loop $\bar W_h = H_{\text{prev}}^\top \bar U$,
    $\bar b_{hn} = \sum \bar a_n \odot r$, $\bar W_x = X^\top \bar A$,
    $\bar b = \sum \bar a_t$, $\bar X = \bar A W_x^\top$.

    `reset_after=False`: $W_h = [W_{h,rz} \mid W_{h,n}]$, $u = h_{t-1} W_{h,rz}$,
    $q = r \odot h_{t-1}$ and $n = \tanh(a_n + q W_{h,n})$; the step saves
    $r, z, n$ and $h_{t-1}$. Two matmuls per backward step:

    $$\bar q = \bar a_n W_{h,n}^\top, \qquad
      \bar z_r = \bar q \odot h_{t-1} \odot r (1 - r), \qquad
      \bar h_{t-1} \mathrel{+}= \bar h_t \odot z + \bar q \odot r
        + [\bar z_r, \bar z_z] W_{h,rz}^\top$$

    and after the loop, with $\bar a_t = [\bar z_r, \bar z_z, \bar a_n]$:
    $\bar W_{h,rz} = H_{\text{prev}}^\top [\bar Z_r, \bar Z_z]$,
    $\bar W_{h,n} = Q^\top \bar A_n$, $\bar W_x = X^\top \bar A$,
    $\bar b = \sum \bar a_t$, $\bar X = \bar A W_x^\top$.

    Args:
      reset_after: the variant, as given to `jaxrnn.gru`.

    Returns:
      A `bptt(params, xs, carry, lengths, reverse) -> (carry, hs)` function for
      `Cell.bptt`.

    Raises:
      TypeError: `reset_after` is not a bool.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.gru(hidden_size=8)        # its bptt is jaxrnn.bptt.gru()
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
      >>> def loss(params, grad):
      ...     return jnp.sum(jr.unroll(cell, params, xs, reverse=True, grad=grad)[1] ** 2)
      >>> by_hand = jax.grad(lambda p: loss(p, "bptt"))(params)
      >>> by_autodiff = jax.grad(lambda p: loss(p, "autodiff"))(params)
      >>> bool(jnp.allclose(by_hand["b_hn"], by_autodiff["b_hn"], rtol=1e-5, atol=1e-6))
      True
    """
    if _checks.boolean(reset_after, "reset_after"):
        return _bptt_fn(_Rule(_gru_forward, _gru_back, _gru_grads), "gru")
    rule = _Rule(_gru_original_forward, _gru_original_back, _gru_original_grads)
    return _bptt_fn(rule, "gru_original")
