"""Run a cell over a sequence with `jax.lax.scan`, or `jax.lax.associative_scan`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.bptt import bptt
from jaxrnn.cell import BpttStep, Carry, Cell, LinearStep, Params, has_projection
from jaxrnn.linear_scan import scan_coefficients

Array = jax.Array


def default_hoist() -> bool:
    """Whether `unroll` projects all inputs before the scan on the current backend.

    On CPU the input matmul runs inside the loop, one step at a time, which the
    benchmarks page measured faster with XLA:CPU; on GPU and TPU it is hoisted out
    as one large matmul, as cuDNN does.

    Returns:
      `False` on CPU, `True` on GPU and TPU (read from `jax.default_backend()`).

    Examples:
      >>> import jax, jaxrnn as jr
      >>> jr.default_hoist() == (jax.default_backend() != "cpu")
      True
    """
    return jax.default_backend() != "cpu"


def default_parallel() -> bool:
    """Whether `unroll` runs linear-recurrence cells with an associative scan on this backend.

    A cell whose step is a `jaxrnn.LinearStep` can run a sequence step by step
    (`jax.lax.scan`, `T` dependent steps) or as one `jax.lax.associative_scan`
    (about twice the work, in `O(log T)` rounds). The sequential scan is the CPU
    default, where the benchmarks page measured it faster; the associative scan is
    the GPU and TPU default, where one round costs about as much as one step (not
    measured here: no GPU was available).

    Returns:
      `True` unless `jax.default_backend()` is `"cpu"`.

    Examples:
      >>> import jaxrnn as jr
      >>> jr.default_parallel() == jr.default_hoist()   # the same backends, for now
      True
    """
    return jax.default_backend() != "cpu"


def unroll(
    cell: Cell,
    params: Params,
    xs: Array,
    carry: Carry | None = None,
    *,
    lengths: Array | None = None,
    mask: Array | None = None,
    resets: Array | None = None,
    reverse: bool = False,
    time_axis: int = 0,
    unroll: int | bool = 1,
    remat: bool = False,
    hoist: bool | None = None,
    grad: str = "autodiff",
    parallel: bool | None = None,
) -> tuple[Carry, Array]:
    """Run `cell` over the time axis of `xs`.

    Without `lengths` it is this loop, compiled as one `jax.lax.scan`:

    ```python
    hs = []
    for t in (reversed(range(T)) if reverse else range(T)):
        carry, h = cell.step(params, carry, xs[t])
        hs.append(h)               # stored at position t
    return carry, stack(hs)
    ```

    Shapes use `T` for time, `*batch` for any number of batch dims (including
    none), `I` for `input_size` and `H` for `cell.hidden_size`.

    With `lengths`, sequence `b` is valid for steps `0 .. lengths[b] - 1`. Steps
    at or past its length leave the carry unchanged and emit zeros, so the
    returned carry is each sequence's carry after its own last valid step
    (the initial carry when its length is 0). Padded inputs are replaced by
    zeros before the cell sees them, so padding may hold anything, even NaN,
    without reaching values or gradients; the gradient with respect to a
    padded input is exactly zero. With `reverse=True` each sequence runs from
    its last valid step down to step 0; outputs stay aligned with the inputs
    and padding stays at the end, so a backward direction over a padded batch
    needs no flipping by hand.

    `mask` generalises `lengths` to steps skipped anywhere in a sequence: a
    step whose mask is `False` holds the carry and emits zeros, exactly like
    padding. `resets` restarts the carry from the initial carry (the `carry`
    argument) at flagged steps: several short sequences packed into one row,
    or episode boundaries in reinforcement learning. `resets[t]` marks the
    first step of a new segment; with `reverse=True` each segment runs from
    its own last step back to its first, so the reversed pass never crosses
    a boundary either. Resets flagged at masked steps still restart the
    carry; resets past a sequence's length change nothing.

    Concrete `lengths` outside `[0, T]` raise a `ValueError`. Under `jax.jit`
    the values cannot be checked: a length above `T` then behaves as `T` and a
    negative length as 0.

    Args:
      cell: a `Cell`, e.g. `jaxrnn.lstm(256)`.
      params: the cell's params, as `cell.init` returned them.
      xs: inputs `(T, *batch, I)`, or with time on `time_axis`. Must share the
        params' floating dtype.
      carry: initial state as `cell.initial_carry(batch_shape)` gives it
        (default: zeros).
      lengths: optional integer array `(*batch,)`, the number of valid steps of
        each sequence.
      mask: optional boolean array `(T, *batch)` (time on `time_axis`); `False`
        skips a step. Combines with `lengths`.
      resets: optional boolean array `(T, *batch)` (time on `time_axis`); `True`
        restarts the carry from the initial carry before that step.
      reverse: run from the last (valid) step to the first.
      time_axis: the axis of `xs` (and of the returned `hs`) that is time. Any
        axis but the last, which holds the features.
      unroll: how many steps each scan iteration runs (`lax.scan`'s `unroll`);
        `True` unrolls fully. Changes speed and compile time, never values.
      remat: keep the carry only every ~sqrt(T) steps for the backward pass and
        recompute the steps in between (`jax.checkpoint` over segments of about
        `sqrt(T)` steps, a divisor of `T` where one is near), trading one extra
        forward pass for memory. Values and gradients are unchanged.
      hoist: project all inputs with one large matmul before the scan (`True`)
        or inside each step (`False`). `None` uses `default_hoist()`: inside
        the loop on CPU, where it measured faster, hoisted on GPU and TPU.
      grad: how reverse-mode gradients are computed: `"autodiff"` (JAX
        differentiates the scan) or `"bptt"` (the hand-derived backprop through
        time of a cell whose step is a `jaxrnn.BpttStep`; `unroll`, `remat` and
        `hoist` do not apply). Both give the same gradients up to round-off.
      parallel: for cells whose state is a linear recurrence (`cell.step` is a
        `jaxrnn.LinearStep`:
        `jaxrnn.min_gru`, `jaxrnn.min_lstm`, `jaxrnn.lru`), whether the recurrence
        `h_t = a_t * h_{t-1} + b_t` runs as one `jax.lax.associative_scan` over
        time (`True`) or as a `jax.lax.scan` (`False`). Either way the
        coefficients `a`, `b` of all steps are computed first, in one matmul,
        with `lengths`, `mask`, `resets`, `reverse` and the initial carry folded
        into them; both forms give the same values and gradients up to
        round-off. `None` uses `default_parallel()`. Such cells ignore `remat`
        and `hoist` (each step stores only `a` and `b`), and `unroll` applies to
        the `lax.scan` form. `True` with any other cell raises a `ValueError`.

    Returns:
      `(carry, hs)`: the final carry, and `hs` of shape `(T, *batch, H)` (with
      time on `time_axis`).

    Raises:
      TypeError: `xs`, `carry` or `lengths` has the wrong dtype, or an option
        has the wrong type.
      ValueError: shapes disagree with each other or with `params`, an option
        has an unknown value, or `parallel=True` meets a cell without a `LinearStep`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=16)
      >>> params = cell.init(jax.random.key(0), input_size=4)
      >>> xs = jnp.ones((10, 2, 4))                       # (T, batch, I)
      >>> (h, c), hs = jr.unroll(cell, params, xs, lengths=jnp.array([10, 3]))
      >>> hs.shape, h.shape
      ((10, 2, 16), (2, 16))
      >>> bool(jnp.all(hs[3:, 1] == 0))                    # padding emits zeros
      True
    """
    checks.cell(cell)
    seq = checks.sequence(cell, params, xs, carry, time_axis, lengths, mask, resets)
    options = {"reverse": reverse, "unroll": unroll, "remat": remat, "hoist": hoist}
    carry, hs = unroll_checked(cell, params, seq, options | {"grad": grad, "parallel": parallel})
    return carry, jnp.moveaxis(hs, 0, seq.time_axis)


def unroll_checked(
    cell: Cell, params: Params, seq: checks.Run, options: Mapping[str, Any]
) -> tuple[Carry, Array]:
    """`unroll` on inputs that the caller checked with `jaxrnn.checks.sequence`.

    A layer's `apply` checks its inputs once, then runs each cell inside it through
    `unroll_checked`, which checks only the options and that the cell's step keeps the
    contract. `seq.xs` is time-major `(T, *batch, I)`, `seq.carry` None for the cell's
    initial carry; `options` holds any of `unroll`'s keyword options (`reverse`,
    `unroll`, `remat`, `hoist`, `grad`, `parallel`), with its defaults for the others.
    Returns `(carry, hs (T, *batch, H))`.
    """
    xs, carry, lengths, mask, resets = seq.xs, seq.carry, seq.lengths, seq.mask, seq.resets
    reverse = checks.boolean(options.get("reverse", False), "reverse")
    remat = checks.boolean(options.get("remat", False), "remat")
    unroll, hoist = options.get("unroll", 1), options.get("hoist")
    grad, parallel = options.get("grad", "autodiff"), options.get("parallel")
    if not isinstance(unroll, bool):
        unroll = checks.positive_int(unroll, "unroll")
    hoist = checks.boolean(default_hoist() if hoist is None else hoist, "hoist")
    checks.one_of(grad, "grad", ("autodiff", "bptt"))
    step = cell.step
    linear = isinstance(step, LinearStep)
    if parallel is None:
        parallel = linear and default_parallel()
    elif (parallel := checks.boolean(parallel, "parallel")) and not linear:
        raise ValueError(
            f"parallel=True needs a cell whose step is a jaxrnn.LinearStep (e.g. "
            f"jaxrnn.min_gru, jaxrnn.min_lstm, jaxrnn.lru); cell {cell.name!r} has a "
            f"nonlinear recurrence, so use parallel=False or None"
        )
    if grad == "bptt" and not isinstance(step, BpttStep):
        raise ValueError(
            f"grad='bptt' needs a cell whose step is a jaxrnn.BpttStep (a hand-derived "
            f"backward, as jaxrnn.rnn, lstm and gru have); cell {cell.name!r} has none, so "
            f"use grad='autodiff'"
        )
    if grad == "bptt" and (mask is not None or resets is not None):
        raise ValueError("grad='bptt' supports lengths but not mask or resets; use grad='autodiff'")
    if carry is None:
        carry = checks.initial_carry(cell, xs.shape[1:-1], xs.dtype)
    checks.step(cell, params, carry, jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype))

    # Eager calls go through a jitted function, cached on the cell, so that a second call
    # does not trace again. Inside a transformation it is traced in place, so a cell may
    # close over traced values (a dropout mask, a hypernetwork's output).
    if grad == "bptt" and xs.shape[0] > 0:
        try:
            return bptt(step, params, xs, carry, lengths, reverse)
        except TypeError as error:
            if "custom_vjp" not in str(error):
                raise
            raise TypeError(
                "grad='bptt' is a reverse-mode rule (a jax.custom_vjp): forward-mode "
                "differentiation (jax.jvp, jax.jacfwd) cannot go through it; use "
                "grad='autodiff' there"
            ) from error
    seq = seq._replace(carry=carry, time_axis=None)
    static = _Static(reverse, unroll, remat, hoist, parallel)
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((params, seq)))
    return (_run if traced else _jitted_run)(cell, params, seq, static)


class _Static(NamedTuple):
    """The options that shape the computation (static under `jax.jit`)."""

    reverse: bool
    unroll: int | bool
    remat: bool
    hoist: bool
    parallel: bool


def _run(cell: Cell, params: Params, seq: checks.Run, static: _Static) -> tuple[Carry, Array]:
    xs, carry, lengths, resets = seq.xs, seq.carry, seq.lengths, seq.resets
    valid = checks.valid_steps(lengths, xs.shape[0], seq.mask)
    if resets is not None:
        resets = checks.valid_steps(lengths, xs.shape[0], resets)
        if static.reverse:
            # A segment starting at step t ends there when running backwards: restart
            # the carry after step t, that is before step t - 1.
            resets = jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])])
    if valid is not None:
        # Zero the padding before the cell: holding the carry with `where` alone
        # still lets NaN padding turn the parameter gradients into NaN.
        xs = _hold_where_invalid(valid, xs, jnp.zeros((), xs.dtype))
    run = _linear if isinstance(cell.step, LinearStep) else _scan
    return run(cell.step, params, xs, carry, (valid, resets), static)


_jitted_run = jax.jit(_run, static_argnums=(0, 3))


def _hold_where_invalid(valid: Array | None, new: Any, old: Any) -> Any:
    """`new` where `valid (T or 1, *batch)`, else `old`, leaf by leaf (`old` may be a scalar)."""
    if valid is None:
        return new

    def pick(n: Array, o: Array) -> Array:
        return jnp.where(valid.reshape(valid.shape + (1,) * (n.ndim - valid.ndim)), n, o)

    return jax.tree.map(pick, new, old)


def _linear(
    step: LinearStep, params: Params, xs: Array, carry: Carry, flags: Any, static: _Static
) -> tuple[Carry, Array]:
    """The coefficients of all steps, then one scan (associative with `parallel`)."""
    valid, resets = flags
    projected = step.project(params, xs)
    log_space = step.log_space and static.parallel
    if log_space:
        a, b = step.coefficients(params, projected, log=True)
    else:
        a, b = step.linear(params, projected)
    if valid is not None:
        # An invalid step is the identity map h -> 1 * h + 0.
        one, zero = (0.0, -jnp.inf) if log_space else (1.0, 0.0)
        a = _hold_where_invalid(valid, a, jnp.asarray(one, a.dtype))
        b = _hold_where_invalid(valid, b, jnp.asarray(zero, b.dtype))
    initial = step.state(carry).astype(a.dtype)
    states = scan_coefficients(
        a, b, initial, resets, reverse=static.reverse, parallel=static.parallel,
        log_space=log_space, unroll=static.unroll,
    )  # fmt: skip
    final = initial if states.shape[0] == 0 else states[0 if static.reverse else -1]
    hs = step.outputs(params, states, projected, xs.dtype)
    if valid is not None:
        hs = _hold_where_invalid(valid, hs, jnp.zeros((), hs.dtype))
    return step.carry(final, carry), hs


def _scan(
    step: Any, params: Params, xs: Array, carry: Carry, flags: Any, static: _Static
) -> tuple[Carry, Array]:
    """One `lax.scan` of the step (segments of it under `jax.checkpoint` with `remat`);
    `flags` are the `(valid, resets)` of each step."""
    valid, resets = flags
    hoist = static.hoist and has_projection(step)
    inputs = step.project(params, xs) if hoist else xs

    initial_carry = carry

    def body(carry: Carry, step_inputs: tuple[Array, Any, Any]) -> tuple[Carry, Array]:
        x, is_valid, reset = step_inputs
        if reset is not None:
            carry = _hold_where_invalid(reset, initial_carry, carry)
        # `x` is already projected when hoisted; else the step is called as it is.
        new_carry, h = step.recur(params, carry, x, carry) if hoist else step(params, carry, x)
        new_carry = _hold_where_invalid(is_valid, new_carry, carry)
        return new_carry, _hold_where_invalid(is_valid, h, jnp.zeros((), h.dtype))

    reverse, unroll = static.reverse, static.unroll
    if static.remat:
        return _segmented_scan(body, carry, (inputs, valid, resets), reverse, unroll)
    return jax.lax.scan(body, carry, (inputs, valid, resets), reverse=reverse, unroll=unroll)


def _segmented_scan(
    body: Any, carry: Carry, inputs: Any, reverse: bool, unroll: int | bool
) -> tuple[Carry, Array]:
    """`lax.scan(body, ...)` that stores the carry only every ~sqrt(T) steps for the backward.

    The steps are cut into segments of `k` steps (`segment_size`); an outer scan
    runs each segment under `jax.checkpoint`, so the backward pass keeps the carry
    at segment boundaries and recomputes one segment at a time: about `2 sqrt(T)`
    steps' activations live at once instead of `T` (checkpointing every step
    alone still stores each step's carry). Leftover steps (`T mod k`) run as a
    plain scan after the segments (before them in reverse).
    """
    num_steps = jax.tree.leaves(inputs)[0].shape[0]
    size = segment_size(num_steps)
    count, rest = divmod(num_steps, size)

    def run(carry: Carry, xs: Any) -> tuple[Carry, Array]:
        return jax.lax.scan(body, carry, xs, reverse=reverse, unroll=unroll)

    segment = jax.checkpoint(run)
    head = jax.tree.map(lambda a: a[: count * size].reshape(count, size, *a.shape[1:]), inputs)
    tail = jax.tree.map(lambda a: a[count * size :], inputs)
    if reverse and rest:
        carry, tail_hs = run(carry, tail)
    carry, head_hs = jax.lax.scan(segment, carry, head, reverse=reverse)
    hs = head_hs.reshape(count * size, *head_hs.shape[2:])
    if not rest:
        return carry, hs
    if not reverse:
        carry, tail_hs = run(carry, tail)
    return carry, jnp.concatenate([hs, tail_hs])


def segment_size(num_steps: int) -> int:
    """Steps per chunk: a divisor of `num_steps` near its square root if one is close.

    `k` steps per chunk keep `T / k` values between chunks (the carry at each chunk
    boundary, for `unroll`'s remat) plus one chunk's `k` steps of intermediates, least
    at `k = sqrt(T)`. A divisor avoids leftover steps, which cost copies of the whole
    input and output sequences (slicing, then concatenating). A divisor is taken when
    `k + T / k` stays within 10% of its least value `2 sqrt(T)`; else `isqrt(T)` with
    leftover steps (for a prime `T`, say).
    """
    root = max(1, math.isqrt(num_steps))
    best = min(
        (d for d in range(1, 2 * root + 1) if num_steps % d == 0),
        key=lambda d: d + num_steps // d,
    )
    if best + num_steps // best <= 1.1 * 2 * math.sqrt(num_steps):
        return best
    return root
