r"""minGRU and minLSTM: gated cells whose gates read only the input.

Feng et al. (2024) strip the GRU and the LSTM down until no gate depends on the
previous state. What is left is a linear recurrence in the state,
$h_t = a_t \odot h_{t-1} + b_t$, with $a_t$ and $b_t$ functions of $x_t$ alone,
so `jaxrnn.unroll(..., parallel=True)` can run a whole sequence through
`jax.lax.associative_scan`, and the sequential form needs no recurrent matmul.

Both cells have fused params in the library's layout, `w_x (input_size, G * H)`
and `b (G * H,)` (no `w_h`: nothing is recurrent but the state itself), and the
carry `h (*batch, H)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrnn import checks, fused
from jaxrnn.cell import Cell, Initializer, LinearStep, Params

Array = jax.Array

__all__ = ["min_gru", "min_lstm"]


def _g(x: Array) -> Array:
    """The paper's positive activation: `x + 0.5` for `x >= 0`, `sigmoid(x)` below."""
    return jnp.where(x >= 0, jax.nn.relu(x) + 0.5, jax.nn.sigmoid(x))


def _log_g(x: Array) -> Array:
    """`log(_g(x))`, computed without forming `_g(x)` for negative `x`."""
    return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def _cell(name: str, H: int, gates: int, init: Initializer | None, split, log_space: bool):
    """A gated linear cell: `split(projected) -> (d, k_h)` gives the gate logit `d` and
    the candidate's pre-activation; `h = sigmoid(-d) h + sigmoid(d) g(k_h)`, both papers'
    form, with `g` the positive activation in log space and the identity otherwise."""
    candidate = _g if log_space else (lambda k: k)

    def coefficients(params: Params, projected: Array, log: bool = False) -> tuple[Array, Array]:
        d, k_h = split(projected)
        if log:
            return -jax.nn.softplus(d), -jax.nn.softplus(-d) + _log_g(k_h)
        return jax.nn.sigmoid(-d), jax.nn.sigmoid(d) * candidate(k_h)

    step = LinearStep(fused.project, coefficients, log_space=log_space)
    init_fn = fused.init(H, gates, init, recurrent=False)
    return Cell(init_fn, fused.zeros_carry(H), step, H, name if log_space else f"{name}_linear")


def min_gru(
    hidden_size: int, *, log_space: bool = True, input_init: Initializer | None = None
) -> Cell:
    r"""The minimal GRU (minGRU) of Feng et al. (2024).

    With $x_t W_x + b$ split into $k_z$ and $k_h$:

    $$z_t = \sigma(k_z), \qquad \tilde h_t = g(k_h), \qquad
      h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t$$

    so $a_t = 1 - z_t$ and $b_t = z_t \odot \tilde h_t$. With `log_space=True` (the
    paper's log-space version) $g(x) = x + 0.5$ for $x \ge 0$ and $\sigma(x)$ below,
    which keeps $\tilde h_t$ positive, and the parallel scan combines
    $\log a_t = -\mathrm{softplus}(k_z)$ and $\log b_t = -\mathrm{softplus}(-k_z) +
    \log g(k_h)$ in log space. With `log_space=False`, $g$ is the identity (the
    paper's plain minGRU) and the parallel scan runs on $a_t, b_t$ themselves. The
    sequential forms (`step`, `unroll(..., parallel=False)`) use $a_t, b_t$ themselves,
    from the same `coefficients` function.

    Params: `w_x (input_size, 2 * hidden_size)` (blocks $z$, $\tilde h$) and
    `b (2 * hidden_size,)`, zeros at init. The carry and the output are
    `h (*batch, hidden_size)`.

    Args:
      hidden_size: size of the state `h`.
      log_space: the paper's log-space version (positive $\tilde h$, log-space scan).
      input_init: initializer for each block of `w_x` (default Glorot uniform).

    Returns:
      A `Cell` whose step is a `jaxrnn.LinearStep`, so `jaxrnn.unroll` can run it in
      parallel.

    Raises:
      TypeError: `hidden_size` is not an int or `log_space` not a bool.
      ValueError: `hidden_size` is not positive.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.min_gru(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jnp.ones((100, 2, 3))  # (T, batch, I)
      >>> h, hs = jr.unroll(cell, params, xs, parallel=True)
      >>> _, hs_sequential = jr.unroll(cell, params, xs, parallel=False)
      >>> hs.shape, bool(jnp.allclose(hs, hs_sequential))
      ((100, 2, 8), True)

    References:
      Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We Needed?", 2024.
    """
    H = checks.positive_int(hidden_size, "hidden_size")
    log_space = checks.boolean(log_space, "log_space")

    def split(projected: Array) -> tuple[Array, Array]:
        return projected[..., :H], projected[..., H:]  # the update gate's logit k_z, k_h

    return _cell("min_gru", H, 2, input_init, split, log_space)


def min_lstm(
    hidden_size: int, *, log_space: bool = True, input_init: Initializer | None = None
) -> Cell:
    r"""The minimal LSTM (minLSTM) of Feng et al. (2024).

    With $x_t W_x + b$ split into $k_f$, $k_i$ and $k_h$, the forget and input gates
    $f = \sigma(k_f)$, $i = \sigma(k_i)$ are normalised to sum to one, which makes
    the state independent of the time scale:

    $$f'_t = \frac{f}{f + i}, \quad i'_t = \frac{i}{f + i}, \qquad
      h_t = f'_t \odot h_{t-1} + i'_t \odot g(k_h)$$

    computed stably as $f' = \sigma(-d)$, $i' = \sigma(d)$ with
    $d = \mathrm{softplus}(-k_f) - \mathrm{softplus}(-k_i)$, so $\log f' =
    -\mathrm{softplus}(d)$ and $\log i' = -\mathrm{softplus}(-d)$. `log_space`
    chooses $g$ and the scan as for `min_gru`: the paper's positive $g$ and a
    log-space scan (`True`), or the identity and a linear-space scan (`False`).

    Params: `w_x (input_size, 3 * hidden_size)` (blocks $f$, $i$, $\tilde h$) and
    `b (3 * hidden_size,)`, zeros at init. The carry and the output are
    `h (*batch, hidden_size)`.

    Args:
      hidden_size: size of the state `h` (a positive int).
      log_space: `True` for the log-space version, as for `min_gru`.
      input_init: initializer for each of the three blocks of `w_x` (default Glorot
        uniform).

    Returns:
      A `Cell` whose step is a `jaxrnn.LinearStep` (parallel or sequential scan).

    Raises:
      TypeError, ValueError: as `min_gru`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.min_lstm(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> sorted((k, v.shape) for k, v in params.items())
      [('b', (24,)), ('w_x', (3, 24))]
      >>> h, out = cell.step(params, cell.initial_carry(), jnp.ones(3))
      >>> h.shape
      (8,)

    References:
      Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We Needed?", 2024.
    """
    H = checks.positive_int(hidden_size, "hidden_size")
    log_space = checks.boolean(log_space, "log_space")

    def split(projected: Array) -> tuple[Array, Array]:
        k_f, k_i, k_h = projected[..., :H], projected[..., H : 2 * H], projected[..., 2 * H :]
        return jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i), k_h

    return _cell("min_lstm", H, 3, input_init, split, log_space)
