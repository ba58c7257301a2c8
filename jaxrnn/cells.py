r"""The classic cells, Elman RNN, LSTM and GRU, each written once as a `BpttStep`.

Each cell's equations are one `forward` function: the step that `jaxrnn.unroll`
runs, the step whose residuals the hand-derived backward pass
(`unroll(..., grad="bptt")`) reads, and the step behind `jaxrnn.course`. Next
to it sit the per-step `backward` rule and the weight gradients over all steps
(`grads`); `jaxrnn.bptt` runs them, and the test suite checks them against
`jax.grad`.

Every built-in cell uses fused gates (`jaxrnn.fused`): `w_x (I, G*H)`,
`w_h (H, G*H)` and `b (G*H,)`, with the gates in PyTorch's order. The steps are
module constants (`RNN_TANH`, `RNN_RELU`, `LSTM`, `GRU`, `GRU_ORIGINAL`), so
`cell.step is jaxrnn.cells.LSTM` says that a cell computes exactly the LSTM,
whatever its name or initialisation; `jaxrnn.interop` recognises cells that way.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks, fused
from jaxrnn.cell import BpttStep, Cell, Initializer, Params

Array = jax.Array
Pair = tuple[Array, Array]


def _outer(a: Array, b: Array) -> Array:
    """`a^T b` over all `T * rows` rows of `a (T, rows, m)` and `b (T, rows, n)`: `(m, n)`."""
    return jnp.tensordot(a, b, axes=((0, 1), (0, 1)))


def _sigmoid_grad(s: Array) -> Array:
    """The derivative of the sigmoid, from its output."""
    return s * (1 - s)


def _input_grads(params: Params, xs: Array, h_prev: Array, dz: Array, du: Array) -> Any:
    """Gradients of `x @ w_x + b` (from `dz`) and `h_prev @ w_h` (from `du`), and of `xs`."""
    dparams = {"w_x": _outer(xs, dz), "w_h": _outer(h_prev, du), "b": jnp.sum(dz, axis=(0, 1))}
    return dparams, dz @ params["w_x"].T


# Elman RNN: h = phi(x W_x + h W_h + b).


def _rnn_forward(phi: Any) -> Any:
    def forward(params: Params, h: Array, projected: Array, read: Array) -> Any:
        h = phi(projected + read @ params["w_h"])
        return h, h, ()

    return forward


def _rnn_backward(derivative: Any) -> Any:
    def backward(params: Params, residuals: Any, h: Array, dh: Array) -> Pair:
        dz = derivative(h, dh)
        return dz, dz @ params["w_h_t"]

    return backward


def _rnn_grads(params: Params, xs: Array, h_prev: Array, residuals: Any, dz: Array) -> Any:
    return _input_grads(params, xs, h_prev, dz, dz)


RNN_TANH = BpttStep(
    fused.project, _rnn_forward(jnp.tanh), _rnn_backward(lambda h, dh: dh * (1 - h * h)), _rnn_grads
)
# `where`, not a product: a non-finite gradient at an inactive unit stays out, as in relu's own.
RNN_RELU = BpttStep(
    fused.project,
    _rnn_forward(jax.nn.relu),
    _rnn_backward(lambda h, dh: jnp.where(h > 0, dh, jnp.zeros((), dh.dtype))),
    _rnn_grads,
)


# LSTM.


def _lstm_forward(params: Params, carry: Pair, projected: Array, read: Pair) -> Any:
    _, c_prev = carry
    z = projected + read[0] @ params["w_h"]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c_prev + i * g
    h = o * jnp.tanh(c)
    return (h, c), h, (i, f, g, o, c_prev)


def _lstm_backward(params: Params, residuals: Any, h: Array, dnew: Pair) -> Any:
    i, f, g, o, c_prev = residuals
    tanh_c = jnp.tanh(f * c_prev + i * g)  # recomputed: cheaper than saving it per step
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


LSTM = BpttStep(fused.project, _lstm_forward, _lstm_backward, _rnn_grads)


# GRU, reset gate after the recurrent matmul (PyTorch, cuDNN).


def _gru_forward(params: Params, h: Array, projected: Array, read: Array) -> Any:
    H = h.shape[-1]
    u = read @ params["w_h"]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H : 2 * H])
    u_n = fused.add_bias(u[..., 2 * H :], params["b_hn"])
    n = jnp.tanh(projected[..., 2 * H :] + r * u_n)
    h_new = n + z * (h - n)
    return h_new, h_new, (r, z, n, u_n, h)


def _gru_backward(params: Params, residuals: Any, h: Array, dh: Array) -> Any:
    r, z, n, u_n, h_prev = residuals
    da_n = dh * (1 - z) * (1 - n * n)
    du = jnp.concatenate(
        [da_n * u_n * _sigmoid_grad(r), dh * (h_prev - n) * _sigmoid_grad(z), da_n * r], axis=-1
    )
    return (du, da_n), dh * z + du @ params["w_h_t"]


def _gru_grads(params: Params, xs: Array, h_prev: Array, residuals: Any, emitted: Pair) -> Any:
    du, da_n = emitted
    H = da_n.shape[-1]
    # The r and z gates see x and h through one pre-activation; n does not.
    da = jnp.concatenate([du[..., : 2 * H], da_n], axis=-1)
    dparams, dxs = _input_grads(params, xs, residuals[-1], da, du)
    return {**dparams, "b_hn": jnp.sum(du[..., 2 * H :], axis=(0, 1))}, dxs


GRU = BpttStep(fused.project, _gru_forward, _gru_backward, _gru_grads)


# GRU, reset gate before the recurrent matmul (the original formulation).


def _gru_original_forward(params: Params, h: Array, projected: Array, read: Array) -> Any:
    H = h.shape[-1]
    w_h = params["w_h"]
    u = read @ w_h[:, : 2 * H]
    r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
    z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H:])
    n = jnp.tanh(projected[..., 2 * H :] + (r * read) @ w_h[:, 2 * H :])
    h_new = n + z * (h - n)
    return h_new, h_new, (r, z, n, h)


def _gru_original_backward(params: Params, residuals: Any, h: Array, dh: Array) -> Any:
    r, z, n, h_prev = residuals
    H = h_prev.shape[-1]
    w_h_t = params["w_h_t"]
    da_n = dh * (1 - z) * (1 - n * n)
    dq = da_n @ w_h_t[2 * H :]
    da_rz = jnp.concatenate(
        [dq * h_prev * _sigmoid_grad(r), dh * (h_prev - n) * _sigmoid_grad(z)], axis=-1
    )
    dh_prev = dh * z + dq * r + da_rz @ w_h_t[: 2 * H]
    return jnp.concatenate([da_rz, da_n], axis=-1), dh_prev


def _gru_original_grads(params: Params, xs: Array, h_prev: Array, residuals: Any, da: Array) -> Any:
    r, h_prev = residuals[0], residuals[-1]
    H = r.shape[-1]
    dparams, dxs = _input_grads(params, xs, h_prev, da, da[..., : 2 * H])
    dw_h_n = _outer(r * h_prev, da[..., 2 * H :])
    return {**dparams, "w_h": jnp.concatenate([dparams["w_h"], dw_h_n], axis=1)}, dxs


GRU_ORIGINAL = BpttStep(
    fused.project, _gru_original_forward, _gru_original_backward, _gru_original_grads
)


def rnn(
    hidden_size: int,
    nonlinearity: str = "tanh",
    *,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
) -> Cell:
    r"""The Elman (vanilla) recurrent cell.

    $$h_t = \phi(x_t W_x + h_{t-1} W_h + b), \qquad \phi \in \{\tanh, \mathrm{relu}\}$$

    Backward (`grad="bptt"`), with $\bar h_t$ the gradient reaching $h_t$:
    $\bar a_t = \bar h_t \odot \phi'(a_t)$ (read off $h_t$: $1 - h_t^2$ or
    $[h_t > 0]$), $\bar h_{t-1} \mathrel{+}= \bar a_t W_h^\top$; after the loop
    $\bar W_x = X^\top \bar A$, $\bar W_h = H_{\text{prev}}^\top \bar A$,
    $\bar b = \sum_t \bar a_t$, $\bar X = \bar A W_x^\top$.

    Params: `w_x (input_size, hidden_size)`, `w_h (hidden_size, hidden_size)`,
    `b (hidden_size,)`. The carry is `h (*batch, hidden_size)`. Equal to
    `torch.nn.RNN` with `b = bias_ih + bias_hh`.

    Args:
      hidden_size: size of the state `h`.
      nonlinearity: `"tanh"` or `"relu"`.
      input_init: initializer for `w_x` (default Glorot uniform).
      recurrent_init: initializer for `w_h` (default orthogonal). The bias starts at zero.

    Returns:
      A `Cell` whose step is `jaxrnn.cells.RNN_TANH` or `RNN_RELU`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.rnn(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> carry, h = cell.step(params, cell.initial_carry((2,)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 8)
    """
    H = checks.positive_int(hidden_size, "hidden_size")
    checks.one_of(nonlinearity, "nonlinearity", ("tanh", "relu"))
    init = fused.init(H, 1, input_init, recurrent_init)
    step = RNN_TANH if nonlinearity == "tanh" else RNN_RELU
    return Cell(init, fused.zeros_carry(H), step, H, f"rnn_{nonlinearity}")


def lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
) -> Cell:
    r"""The long short-term memory cell (Hochreiter & Schmidhuber 1997).

    With $z = x_t W_x + h_{t-1} W_h + b$ split into four gates $i, f, g, o$
    (PyTorch's order):

    $$c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \qquad
      h_t = \sigma(o) \odot \tanh(c_t)$$

    Backward (`grad="bptt"`): the step saves $i, f, g, o$ (after their nonlinearities)
    and $c_{t-1}$. With $\hat c = \bar c_t + \bar h_t \odot o \odot (1 - \tanh^2 c_t)$:
    $\bar z_i = \hat c\, g\, i(1-i)$, $\bar z_f = \hat c\, c_{t-1} f(1-f)$,
    $\bar z_g = \hat c\, i (1 - g^2)$, $\bar z_o = \bar h_t \tanh(c_t)\, o(1-o)$,
    $\bar c_{t-1} = \hat c\, f$ and $\bar h_{t-1} \mathrel{+}= \bar z_t W_h^\top$; the
    weight gradients follow after the loop as for `rnn`.

    Params: `w_x (input_size, 4 * hidden_size)`, `w_h (hidden_size, 4 * hidden_size)`,
    `b (4 * hidden_size,)`. The carry is the tuple `(h, c)`, each
    `(*batch, hidden_size)`. Equal to `torch.nn.LSTM` with `b = bias_ih + bias_hh`.

    Args:
      hidden_size: size of `h` and `c`.
      forget_bias: initial value of the forget gate's bias; 1.0 keeps memory at the
        start of training (Jozefowicz et al. 2015). Other biases start at zero.
      input_init: initializer for each gate's block of `w_x` (default Glorot uniform).
      recurrent_init: initializer for each gate's block of `w_h` (default orthogonal).

    Returns:
      A `Cell` whose step is `jaxrnn.cells.LSTM`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> (h, c), out = cell.step(params, cell.initial_carry(), jnp.ones(3))
      >>> h.shape, c.shape
      ((8,), (8,))

    References:
      Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997.
      Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent
      Network Architectures", ICML 2015.
    """
    H = checks.positive_int(hidden_size, "hidden_size")

    def bias(dtype: Any) -> Array:
        return jnp.zeros((4 * H,), dtype).at[H : 2 * H].set(forget_bias)

    init = fused.init(H, 4, input_init, recurrent_init, bias)
    return Cell(init, fused.zeros_carry(H, 2), LSTM, H, "lstm")


def gru(
    hidden_size: int,
    *,
    reset_after: bool = True,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
) -> Cell:
    r"""The gated recurrent unit (Cho et al. 2014).

    With gates in PyTorch's order $r, z, n$ and $x_t W_x + b$ split into
    $a_r, a_z, a_n$, and $h_{t-1} W_h$ split into $u_r, u_z, u_n$:

    $$r = \sigma(a_r + u_r), \quad z = \sigma(a_z + u_z), \quad
      h_t = (1 - z) \odot n + z \odot h_{t-1}$$

    `reset_after=True` (default; PyTorch, cuDNN and Keras' default) applies the
    reset gate after the recurrent matmul, $n = \tanh(a_n + r \odot (u_n + b_{hn}))$.
    `reset_after=False` is the original formulation, which resets the state before
    the matmul, $n = \tanh(a_n + (r \odot h_{t-1}) W_{h,n})$.

    Backward (`grad="bptt"`): with $\bar a_n = \bar h_t (1 - z)(1 - n^2)$ and
    $\bar z_z = \bar h_t (h_{t-1} - n)\, z(1-z)$, `reset_after=True` gives
    $\bar z_r = \bar a_n \tilde u_n\, r(1-r)$ (with $\tilde u_n = u_n + b_{hn}$) and
    $\bar h_{t-1} \mathrel{+}= \bar h_t z + [\bar z_r, \bar z_z, \bar a_n r] W_h^\top$;
    `reset_after=False` gives $\bar q = \bar a_n W_{h,n}^\top$,
    $\bar z_r = \bar q\, h_{t-1}\, r(1-r)$ and
    $\bar h_{t-1} \mathrel{+}= \bar h_t z + \bar q r + [\bar z_r, \bar z_z] W_{h,rz}^\top$.

    Params: `w_x (input_size, 3 * hidden_size)`, `w_h (hidden_size, 3 * hidden_size)`,
    `b (3 * hidden_size,)` and, with `reset_after=True`, `b_hn (hidden_size,)` (the
    recurrent bias of the candidate, which sits inside the reset product and so
    cannot fold into `b`). The carry is `h (*batch, hidden_size)`. With
    `reset_after=True` this equals `torch.nn.GRU` with
    `b = bias_ih + [bias_hh_r, bias_hh_z, 0]` and `b_hn = bias_hh_n`.

    Args:
      hidden_size: size of the state `h`.
      reset_after: where the reset gate acts (see above).
      input_init: initializer for each gate's block of `w_x` (default Glorot uniform).
      recurrent_init: initializer for each gate's block of `w_h` (default orthogonal).
        Biases start at zero.

    Returns:
      A `Cell` whose step is `jaxrnn.cells.GRU` or `GRU_ORIGINAL`.

    Examples:
      >>> import jax, jaxrnn as jr
      >>> params = jr.gru(hidden_size=8).init(jax.random.key(0), input_size=3)
      >>> sorted(params)
      ['b', 'b_hn', 'w_h', 'w_x']

    References:
      Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
      Statistical Machine Translation", EMNLP 2014.
    """
    H = checks.positive_int(hidden_size, "hidden_size")
    reset_after = checks.boolean(reset_after, "reset_after")
    if reset_after:
        b_hn = lambda dtype: {"b_hn": jnp.zeros((H,), dtype)}  # noqa: E731
        init = fused.init(H, 3, input_init, recurrent_init, extra=b_hn)
        return Cell(init, fused.zeros_carry(H), GRU, H, "gru")
    init = fused.init(H, 3, input_init, recurrent_init)
    return Cell(init, fused.zeros_carry(H), GRU_ORIGINAL, H, "gru_original")
