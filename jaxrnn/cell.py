r"""The cell contract: a `Cell` is `init`, `initial_carry` and `step`, plus its sizes.

```python
params = cell.init(key, input_size, dtype)           # any pytree of arrays
carry = cell.initial_carry(batch_shape, dtype)       # any pytree of arrays
carry, y = cell.step(params, carry, x)               # one time step
```

That is all a cell must define; any function `step(params, carry, x)` will do.
What else a cell can do fast is a property of its step, so it can never drift
from the equations it accelerates. A step may be one of three structured forms,
each callable as `step(params, carry, x)` and each computing that call from its
own parts:

- `Step(project, recur)`: the input half of the affine map, `project`, can run
  over a whole sequence at once before the time loop (hoisting), and `recur`
  takes the carry twice, as the state it updates and as what its recurrent
  weights `read` (recurrent dropout masks `read` only).
- `BpttStep(project, forward, backward, grads)`: the same, with a hand-derived
  backward pass; its `recur` *is* `forward`, whose residuals the backward uses.
- `LinearStep(project, coefficients, ...)`: a state that follows
  $h_t = a_t \odot h_{t-1} + b_t$ with coefficients from the input alone; its
  `recur` is that recurrence, so a parallel scan over the same coefficients
  computes the same thing.

Replacing a cell's `step` (`cell._replace(step=my_step)`) replaces all of its
capabilities with it: `jaxrnn.unroll` runs exactly the step the cell holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array
Params = Any
"""A cell's parameters: any pytree of arrays (dicts with documented keys for the built-ins)."""
Carry = Any
"""A cell's recurrent state: any pytree of arrays, each `(*batch, ...)`."""
Initializer = Callable[[Array, tuple[int, ...], Any], Array]
"""`init(key, shape, dtype) -> array`, the signature of `jax.nn.initializers`."""


class InitFn(Protocol):
    def __call__(self, key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        """Make parameters from a PRNG key, for inputs of `input_size` features, in `dtype`."""


class InitialCarryFn(Protocol):
    def __call__(self, batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        """The all-zeros state for a batch of shape `batch_shape`, in `dtype`."""


class StepFn(Protocol):
    def __call__(self, params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        """One time step: `x (*batch, input_size)` to `(new_carry, y (*batch, hidden_size))`."""


class Cell(NamedTuple):
    """A recurrent cell: three pure functions plus the sizes they were built for.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> params`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32) -> carry`, all zeros.
      step: `step(params, carry, x) -> (carry, y)`, one time step on `x (*batch, I)`
        giving `y (*batch, hidden_size)`. A plain function, or a `Step`, `BpttStep` or
        `LinearStep`, which add hoisting, a hand-derived backward or a parallel scan.
        It does not check its arguments: `jaxrnn.unroll` and the layers do, once.
      hidden_size: the size of `y`.
      name: a short name for messages (`"lstm"`, `"my_cell"`, ...); nothing
        dispatches on it.

    A cell is hashable (so it can be a static argument of `jax.jit`); build it once
    and reuse it rather than calling the constructor inside a jitted function.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> def step(params, h, x):
      ...     h = jnp.tanh(x @ params["w"] + h @ params["u"])
      ...     return h, h
      >>> def init(key, input_size, dtype=jnp.float32):
      ...     w = jax.random.normal(key, (input_size, 4), dtype) / input_size**0.5
      ...     return {"w": w, "u": jnp.zeros((4, 4), dtype)}
      >>> def zeros(batch_shape=(), dtype=jnp.float32):
      ...     return jnp.zeros((*batch_shape, 4), dtype)
      >>> cell = jr.Cell(
      ...     init=init, initial_carry=zeros, step=step, hidden_size=4, name="tiny"
      ... )
      >>> params = cell.init(jax.random.key(0), 3)
      >>> h, hs = jr.unroll(cell, params, jnp.ones((5, 2, 3)))
      >>> hs.shape
      (5, 2, 4)
    """

    init: InitFn
    initial_carry: InitialCarryFn
    step: StepFn
    hidden_size: int
    name: str


def _call(step: Any, params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
    return step.recur(params, carry, step.project(params, x), carry)


@dataclasses.dataclass(frozen=True)
class Step:
    """A step split into an input projection and a recurrence: `recur(p, c, project(p, x), c)`.

    Attributes:
      project: `project(params, x) -> projected` for `x (..., input_size)` with any
        leading dims, so `jaxrnn.unroll(..., hoist=True)` can run it over the whole
        sequence `(T, *batch, I)` before the time loop.
      recur: `recur(params, carry, projected, read) -> (carry, y)`, the rest of the step.
        `read` is the carry as the recurrent weights see it: the carry itself, or under
        recurrent dropout the carry times a mask. Use `carry` for the state that is
        updated (e.g. the LSTM's `c`, the GRU's interpolation) and `read` for what
        enters a recurrent matmul.
    """

    project: Callable[[Params, Array], Any]
    recur: Callable[[Params, Carry, Any, Carry], tuple[Carry, Array]]

    __call__ = _call


@dataclasses.dataclass(frozen=True)
class BpttStep:
    """A `Step` with a hand-derived backward pass, for `jaxrnn.unroll(..., grad="bptt")`.

    Its recurrence is `forward`: the step that runs and the step whose residuals the
    backward pass reads are one function. The output `y` must be the carry's first
    array `h` (its whole carry, when the carry is one array).

    Attributes:
      project: as for `Step`.
      forward: `forward(params, carry, projected, read) -> (carry, y, residuals)`.
      backward: `backward(params, residuals, y, dcarry) -> (emitted, dcarry_prev)`: from a
        step's residuals, its output and the gradient of the carry it made (the output's
        gradient included in `h`'s) to the gradient of the carry it started from, and
        what `grads` needs of the step. `params` also holds `"w_h_t"`, `w_h` transposed.
      grads: `grads(params, xs, h_prev, residuals, emitted) -> (dparams, dxs)`: parameter
        and input gradients from all steps at once, each argument stacked `(T, rows, ...)`;
        `h_prev` is the `h` each step started from, built from the outputs (a cell that
        keeps it in its residuals anyway, as the GRU does, reads it there, and XLA then
        drops the unused copy).
    """

    project: Callable[[Params, Array], Array]
    forward: Callable[[Params, Carry, Array, Carry], tuple[Carry, Array, Any]]
    backward: Callable[[Params, Any, Array, Carry], tuple[Any, Carry]]
    grads: Callable[[Params, Array, Array, Any, Any], tuple[Params, Array]]

    def recur(self, params: Params, carry: Carry, projected: Array, read: Carry) -> Any:
        return self.forward(params, carry, projected, read)[:2]

    __call__ = _call


@dataclasses.dataclass(frozen=True)
class LinearStep:
    r"""A step whose state follows a linear recurrence, so `unroll` can scan it in parallel.

    $$h_t = a_t \odot h_{t-1} + b_t, \qquad y_t = \mathrm{output}(h_t, \mathrm{projected}_t)$$

    with `(a_t, b_t) = coefficients(params, project(params, x_t))`, functions of the
    input alone. Steps compose associatively, so `jaxrnn.unroll(..., parallel=True)`
    runs a whole sequence through `jax.lax.associative_scan` in `O(log T)` depth; the
    step itself (`recur`) is the same recurrence one step at a time.

    Attributes:
      project: as for `Step`.
      coefficients: `coefficients(params, projected) -> (a, b)`, each `(..., S)` for
        projected inputs with any leading dims, real or complex. With `log_space` it
        also takes a keyword `log` and, when it is `True`, returns `(log a, log b)` of
        positive coefficients instead: one function, so both forms share their maths.
      output: `output(params, states, projected) -> y`; `None` when `y` is the state.
      to_state: `to_state(carry) -> h`, the carry as one state array (e.g. complex from
        a real pair); `None` when the carry is the state.
      to_carry: the inverse of `to_state`; `None` when the carry is the state.
      log_space: `coefficients` can return logs, and the parallel scan combines those
        in log space (Feng et al. 2024); the sequential forms use `a` and `b`.
    """

    project: Callable[[Params, Array], Array]
    coefficients: Callable[[Params, Array], tuple[Array, Array]]
    output: Callable[[Params, Array, Array], Array] | None = None
    to_state: Callable[[Carry], Array] | None = None
    to_carry: Callable[[Array], Carry] | None = None
    log_space: bool = False

    def state(self, carry: Carry) -> Array:
        return carry if self.to_state is None else self.to_state(carry)

    def carry(self, state: Array, like: Carry) -> Carry:
        carry = state if self.to_carry is None else self.to_carry(state)
        return jax.tree.map(lambda new, old: new.astype(old.dtype), carry, like)

    def outputs(self, params: Params, states: Array, projected: Array, dtype: Any) -> Array:
        ys = states if self.output is None else self.output(params, states, projected)
        return ys.astype(dtype)

    def linear(self, params: Params, projected: Array) -> tuple[Array, Array]:
        """`(a, b)` themselves, not their logs."""
        if self.log_space:
            return self.coefficients(params, projected, log=False)
        return self.coefficients(params, projected)

    def recur(self, params: Params, carry: Carry, projected: Array, read: Carry) -> Any:
        a, b = self.linear(params, projected)
        state = a * self.state(carry).astype(a.dtype) + b
        return self.carry(state, carry), self.outputs(params, state, projected, projected.dtype)

    __call__ = _call


def has_projection(step: Any) -> bool:
    """Whether `step` is split into `project` and `recur` (any of the three forms)."""
    return isinstance(step, (Step, BpttStep, LinearStep))
