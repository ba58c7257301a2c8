"""Recurrent cells: NamedTuples of pure functions over a dict of arrays.

A cell holds no state. `init` makes a params dict from an explicit PRNG key,
`initial_carry` makes the zero state, and `step` advances one time step.
`step` is split in two so that `jaxrnn.unroll` can choose where the input
matmul runs: `project` is the input half of the affine map (it accepts any
number of leading dims, so it can run over a whole sequence at once) and
`recur` is the rest of the step, given the projected input.

Every built-in cell uses fused gates: one input weight `w_x` of shape
`(input_size, G * hidden_size)`, one recurrent weight `w_h` of shape
`(hidden_size, G * hidden_size)` and one bias `b` of shape
`(G * hidden_size,)`, with the gates in PyTorch's order so that weights move
between the two libraries by a transpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import bptt as _bptt

Array = jax.Array
Params = dict[str, Array]
"""A cell's parameters: a flat dict of arrays with documented keys."""
Carry = Any
"""A cell's recurrent state: an array `(*batch, hidden_size)`, or a tuple of them."""
Initializer = Callable[[Array, tuple[int, ...], Any], Array]
"""`init(key, shape, dtype) -> array`, the signature of `jax.nn.initializers`."""


class InitFn(Protocol):
    def __call__(self, key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        """Make parameters.

        Args:
          key: a PRNG key (`jax.random.key(seed)`); the same key gives the same params.
          input_size: the number of input features.
          dtype: a floating dtype for every parameter.

        Returns:
          A dict of arrays; see each cell's docstring for its keys and shapes.
        """


class InitialCarryFn(Protocol):
    def __call__(self, batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        """The all-zeros state, each array of shape `(*batch_shape, hidden_size)`."""


class ProjectFn(Protocol):
    def __call__(self, params: Params, x: Array) -> Array:
        """Input half of the affine map: `(..., input_size) -> (..., G * hidden_size)`."""


class RecurFn(Protocol):
    def __call__(self, params: Params, carry: Carry, projected: Array) -> tuple[Carry, Array]:
        """One step given the projected input `(*batch, G * hidden_size)`.

        Returns `(new_carry, h)` with `h` of shape `(*batch, hidden_size)`.
        """


class StepFn(Protocol):
    def __call__(self, params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        """One time step: `x (*batch, input_size)` to `(new_carry, h (*batch, hidden_size))`."""


class BpttFn(Protocol):
    def __call__(
        self,
        params: Params,
        xs: Array,
        carry: Carry,
        lengths: Array | None,
        reverse: bool,
    ) -> tuple[Carry, Array]:
        """`unroll` over time-major `xs (T, *batch, input_size)`, already checked,
        with a hand-derived backward pass through time (a `jax.custom_vjp`)."""


class CoefficientsFn(Protocol):
    def __call__(self, params: Params, xs: Array) -> tuple[Array, Array]:
        """The coefficients `(a, b)` of `h_t = a_t * h_{t-1} + b_t` for inputs `(..., input_size)`.

        Both have shape `(..., state_size)` (the leading dims of `xs`), real or complex;
        `log_coefficients` returns `(log a, log b)` instead, for positive `a` and `b`.
        """


class OutputFn(Protocol):
    def __call__(self, params: Params, states: Array, xs: Array) -> Array:
        """Outputs `(..., hidden_size)` from states `(..., state_size)` and their inputs."""


class LinearRecurrence(NamedTuple):
    r"""How a cell's state follows a linear recurrence, so `unroll` can scan it in parallel.

    The state `h` (an array `(*batch, state_size)`, real or complex) evolves as

    $$h_t = a_t \odot h_{t-1} + b_t, \qquad y_t = \mathrm{output}(h_t, x_t)$$

    where `a_t` and `b_t` depend on the input `x_t` only, never on `h_{t-1}`.
    Steps compose associatively, `(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2, a_2 b_1 + b_2)`,
    so `jaxrnn.unroll(..., parallel=True)` can run a whole sequence through
    `jax.lax.associative_scan` in `O(log T)` depth. The cell's `recur` must compute the
    same step one at a time.

    Attributes:
      coefficients: `coefficients(params, xs) -> (a, b)` for inputs `xs (..., input_size)`
        with any leading dims; `a` and `b` have shape `(..., state_size)`.
      output: `output(params, states, xs) -> ys`, from states `(..., state_size)` and the
        inputs of the same steps to outputs `(..., hidden_size)`; `None` when the output
        is the state itself.
      to_state: `to_state(carry) -> h`, the carry as the state array `(*batch, state_size)`
        (e.g. a complex array from its real and imaginary parts); `None` when the carry
        is the state.
      to_carry: `to_carry(h) -> carry`, the inverse of `to_state`; `None` when the carry
        is the state.
      log_coefficients: optional, for cells whose `a` and `b` are positive:
        `log_coefficients(params, xs) -> (log a, log b)`. When set, the parallel scan
        combines logarithms (Feng et al. 2024), so products of many decays become sums
        of logs; the `lax.scan` form still uses `coefficients`, which is cheaper.
    """

    coefficients: CoefficientsFn
    output: OutputFn | None = None
    to_state: Callable[[Carry], Array] | None = None
    to_carry: Callable[[Array], Carry] | None = None
    log_coefficients: CoefficientsFn | None = None


class Cell(NamedTuple):
    """A recurrent cell: pure functions plus the sizes they were built for.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> params`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32) -> carry`, all zeros.
      project: `project(params, x) -> projected`, the input half of the affine map;
        `x` may have any leading dims, e.g. `(T, *batch, input_size)`.
      recur: `recur(params, carry, projected) -> (carry, h)`, the rest of one step.
      step: `step(params, carry, x) -> (carry, h)`, equal to `recur` after `project`,
        with its arguments checked.
      hidden_size: the size of `h`.
      name: a short name used in error messages (`"lstm"`, `"gru"`, ...).
      bptt: optional; the same computation as `unroll` with a hand-derived
        backward pass, used by `unroll(..., grad="bptt")`. `None` when the cell
        has none.
      linear: optional; for cells whose state is a linear recurrence in the state
        (`jaxrnn.min_gru`, `jaxrnn.min_lstm`, `jaxrnn.lru`), the `LinearRecurrence`
        that lets `unroll(..., parallel=True)` scan the whole sequence at once. `None`
        for cells with a nonlinear recurrence (`rnn`, `lstm`, `gru`).

    A cell is hashable (so it can be a static argument of `jax.jit`); build it once
    and reuse it rather than calling the constructor inside a jitted function.
    """

    init: InitFn
    initial_carry: InitialCarryFn
    project: ProjectFn
    recur: RecurFn
    step: StepFn
    hidden_size: int
    name: str
    bptt: BpttFn | None = None
    linear: LinearRecurrence | None = None


def default_input_init() -> Initializer:
    """Glorot-uniform, applied to each gate's `(input_size, hidden_size)` block."""
    return jax.nn.initializers.glorot_uniform()


def default_recurrent_init() -> Initializer:
    """Orthogonal, applied to each gate's `(hidden_size, hidden_size)` block."""
    return jax.nn.initializers.orthogonal()


def _gate_blocks(
    initializer: Initializer, key: Array, rows: int, hidden_size: int, gates: int, dtype: Any
) -> Array:
    """`(rows, gates * hidden_size)` made of one initialised block per gate."""
    # QR (orthogonal init) has no half-precision kernel: draw in float32, then cast.
    draw_dtype = dtype if jnp.dtype(dtype).itemsize >= 4 else jnp.float32
    keys = jax.random.split(key, gates)
    blocks = [initializer(k, (rows, hidden_size), draw_dtype) for k in keys]
    return jnp.concatenate(blocks, axis=1).astype(dtype)


def _fused_init(
    hidden_size: int,
    gates: int,
    input_init: Initializer,
    recurrent_init: Initializer,
    bias: Callable[[Any], Array],
) -> InitFn:
    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        key = _checks.prng_key(key)
        input_size = _checks.positive_int(input_size, "input_size")
        dtype = _checks.floating_dtype(dtype)
        key_x, key_h = jax.random.split(key)
        return {
            "w_x": _gate_blocks(input_init, key_x, input_size, hidden_size, gates, dtype),
            "w_h": _gate_blocks(recurrent_init, key_h, hidden_size, hidden_size, gates, dtype),
            "b": bias(dtype),
        }

    return init


def _zeros_carry(hidden_size: int, parts: int) -> InitialCarryFn:
    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        batch_shape = _batch_shape(batch_shape)
        dtype = _checks.floating_dtype(dtype)
        zeros = jnp.zeros((*batch_shape, hidden_size), dtype)
        return zeros if parts == 1 else tuple(zeros for _ in range(parts))

    return initial_carry


def _batch_shape(batch_shape: Any) -> tuple[int, ...]:
    if isinstance(batch_shape, int):
        batch_shape = (batch_shape,)
    try:
        dims = tuple(batch_shape)
    except TypeError as e:
        raise TypeError(f"batch_shape must be a tuple of ints, got {batch_shape!r}") from e
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ValueError(f"batch_shape must be a tuple of non-negative ints, got {dims!r}")
    return dims


def _add_bias(y: Array, bias: Array) -> Array:
    # Explicit reshape: users may run with jax_numpy_rank_promotion="raise".
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def _fused_project(params: Params, x: Array) -> Array:
    return _add_bias(x @ params["w_x"], params["b"])


def _make_cell(
    name: str,
    hidden_size: int,
    init: InitFn,
    initial_carry: InitialCarryFn,
    recur: RecurFn,
    bptt: BpttFn | None = None,
    *,
    project: ProjectFn = _fused_project,
    linear: LinearRecurrence | None = None,
) -> Cell:
    """A `Cell` whose `step` checks its arguments, then runs `recur` after `project`."""

    def step(params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        x = _checks.float_array(x, "x")
        if x.ndim < 1:
            raise ValueError("x must have shape (*batch, input_size), got a scalar")
        _checks.check_params(cell, params, x.shape[-1], x.dtype, source="x")
        carry = _checks.check_carry(cell, carry, x.shape[:-1], x.dtype, source="x")
        return recur(params, carry, project(params, x))

    cell = Cell(
        init=init,
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        hidden_size=hidden_size,
        name=name,
        bptt=bptt,
        linear=linear,
    )
    return cell


_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def rnn(
    hidden_size: int,
    nonlinearity: str = "tanh",
    *,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
) -> Cell:
    r"""The Elman (vanilla) recurrent cell.

    $$h_t = \phi(x_t W_x + h_{t-1} W_h + b), \qquad \phi \in \{\tanh, \mathrm{relu}\}$$

    Params: `w_x (input_size, hidden_size)`, `w_h (hidden_size, hidden_size)`,
    `b (hidden_size,)`. The carry is `h (*batch, hidden_size)`. Equal to
    `torch.nn.RNN` with `b = bias_ih + bias_hh`.

    Args:
      hidden_size: size of the state `h`.
      nonlinearity: `"tanh"` or `"relu"`.
      input_init: initializer for `w_x` (default Glorot uniform).
      recurrent_init: initializer for `w_h` (default orthogonal). The bias starts at zero.

    Returns:
      A `Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.rnn(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> carry, h = cell.step(params, cell.initial_carry((2,)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 8)
    """
    hidden_size = _checks.positive_int(hidden_size, "hidden_size")
    _checks.one_of(nonlinearity, "nonlinearity", tuple(_ACTIVATIONS))
    activation = _ACTIVATIONS[nonlinearity]

    def recur(params: Params, h: Array, projected: Array) -> tuple[Array, Array]:
        h = activation(projected + h @ params["w_h"])
        return h, h

    init = _fused_init(
        hidden_size,
        1,
        input_init or default_input_init(),
        recurrent_init or default_recurrent_init(),
        lambda dtype: jnp.zeros((hidden_size,), dtype),
    )
    return _make_cell(
        f"rnn_{nonlinearity}",
        hidden_size,
        init,
        _zeros_carry(hidden_size, 1),
        recur,
        bptt=_bptt.rnn(nonlinearity),
    )


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
      A `Cell`.

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
    hidden_size = _checks.positive_int(hidden_size, "hidden_size")
    H = hidden_size

    def bias(dtype: Any) -> Array:
        return jnp.zeros((4 * H,), dtype).at[H : 2 * H].set(forget_bias)

    def recur(
        params: Params, carry: tuple[Array, Array], projected: Array
    ) -> tuple[tuple[Array, Array], Array]:
        h, c = carry
        z = projected + h @ params["w_h"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    init = _fused_init(
        H, 4, input_init or default_input_init(), recurrent_init or default_recurrent_init(), bias
    )
    return _make_cell("lstm", H, init, _zeros_carry(H, 2), recur, bptt=_bptt.lstm())


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
      A `Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.gru(hidden_size=8)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> sorted(params)
      ['b', 'b_hn', 'w_h', 'w_x']

    References:
      Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
      Statistical Machine Translation", EMNLP 2014.
    """
    hidden_size = _checks.positive_int(hidden_size, "hidden_size")
    reset_after = _checks.boolean(reset_after, "reset_after")
    H = hidden_size
    fused_init = _fused_init(
        H,
        3,
        input_init or default_input_init(),
        recurrent_init or default_recurrent_init(),
        lambda dtype: jnp.zeros((3 * H,), dtype),
    )

    if reset_after:

        def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
            params = fused_init(key, input_size, dtype)
            return {**params, "b_hn": jnp.zeros((H,), params["b"].dtype)}

        def recur(params: Params, h: Array, projected: Array) -> tuple[Array, Array]:
            u = h @ params["w_h"]
            r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
            z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H : 2 * H])
            n = jnp.tanh(projected[..., 2 * H :] + r * _add_bias(u[..., 2 * H :], params["b_hn"]))
            h = n + z * (h - n)
            return h, h

        return _make_cell("gru", H, init, _zeros_carry(H, 1), recur, bptt=_bptt.gru())

    def recur_original(params: Params, h: Array, projected: Array) -> tuple[Array, Array]:
        w_h = params["w_h"]
        u = h @ w_h[:, : 2 * H]
        r = jax.nn.sigmoid(projected[..., :H] + u[..., :H])
        z = jax.nn.sigmoid(projected[..., H : 2 * H] + u[..., H:])
        n = jnp.tanh(projected[..., 2 * H :] + (r * h) @ w_h[:, 2 * H :])
        h = n + z * (h - n)
        return h, h

    return _make_cell(
        "gru_original",
        H,
        fused_init,
        _zeros_carry(H, 1),
        recur_original,
        bptt=_bptt.gru(reset_after=False),
    )
