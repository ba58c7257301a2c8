r"""The linear recurrence `h_t = a_t * h_{t-1} + b_t`, scanned step by step or in parallel.

A step of a linear recurrence is the affine map `h -> a h + b`, and affine maps
compose: applying `(a_1, b_1)` and then `(a_2, b_2)` is the map
`(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2, a_2 b_1 + b_2)`. That operator is
associative, so all prefixes of a sequence can be computed by
`jax.lax.associative_scan` in `O(log T)` parallel depth instead of `T`
dependent steps. Restarts (segment starts, `resets`) make the operator a
segmented one: a prefix that contains a restart forgets everything before it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrnn import checks

Array = jax.Array

__all__ = ["linear_scan"]


def linear_scan(
    a: Array,
    b: Array,
    initial: Array | None = None,
    *,
    resets: Array | None = None,
    reverse: bool = False,
    parallel: bool = True,
    log_space: bool = False,
) -> Array:
    r"""All states of the linear recurrence `h_t = a_t * h_{t-1} + b_t` (elementwise).

    It is this loop, with `h_{-1} = initial`:

    ```python
    h = initial
    for t in (reversed(range(T)) if reverse else range(T)):
        if resets[t]:
            h = initial
        h = a[t] * h + b[t]
        hs[t] = h
    ```

    With `parallel=True` it runs as one `jax.lax.associative_scan` over the
    segmented operator

    $$(a_1, b_1, r_1) \circ (a_2, b_2, r_2) =
      \begin{cases} (a_2, b_2, 1) & r_2 \\ (a_1 a_2,\ a_2 b_1 + b_2,\ r_1) & \text{else}
      \end{cases}$$

    which gives every prefix as `(A_t, B_t)` with `h_t = A_t h_{s} + B_t`, where
    `h_s = initial` is the state the current segment started from. With
    `parallel=False` it runs as a `jax.lax.scan`. Both give the same values and
    gradients up to round-off.

    With `log_space=True`, `a` and `b` are the logarithms of positive coefficients
    and the scan combines them in log space,
    `(\log A, \log B) \circ (\log a, \log b) = (\log A + \log a,\
    \mathrm{logaddexp}(\log a + \log B, \log b))`, as Feng et al. (2024) do for
    minGRU and minLSTM; `initial` is still a plain (any-signed) state. A `log b`
    of `-inf` (a zero `b`) is allowed.

    Shapes: `T` steps on axis 0, then any state shape `(*batch, S)`.

    Args:
      a: the decay `(T, *batch, S)`, real or complex (its log with `log_space=True`).
      b: the input term `(T, *batch, S)`, same dtype (its log with `log_space=True`).
      initial: the state before the first step, `(*batch, S)`, in the dtype of `a`;
        default zeros. With `log_space=True` it is the state itself, not its log,
        and may have any sign.
      resets: optional boolean `(T, *batch)` or `(T, *batch, S)`; `True` at step `t`
        restarts from `initial` before step `t` (in the order the scan runs).
      reverse: run from the last step to the first.
      parallel: `jax.lax.associative_scan` (`True`) or `jax.lax.scan` (`False`).
      log_space: `a` and `b` are logs of positive coefficients.

    Returns:
      The states `h (T, *batch, S)`, in the dtype of `a` and `b`.

    Raises:
      TypeError: an argument has the wrong dtype.
      ValueError: shapes disagree.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> a = jnp.full((4, 1), 0.5)
      >>> b = jnp.ones((4, 1))
      >>> jr.linear_scan(a, b)[:, 0]                  # 1, 1.5, 1.75, 1.875
      Array([1.   , 1.5  , 1.75 , 1.875], dtype=float32)
      >>> resets = jnp.array([False, False, True, False])
      >>> jr.linear_scan(a, b, resets=resets)[:, 0]
      Array([1. , 1.5, 1. , 1.5], dtype=float32)

    References:
      Blelloch, "Prefix Sums and Their Applications", 1990.
      Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We Needed?", 2024.
    """
    a, b = (jnp.asarray(x) for x in (a, b))
    for name, x in (("a", a), ("b", b)):
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            raise TypeError(f"{name} must have a floating or complex dtype, got {x.dtype}")
    if a.ndim < 1:
        raise ValueError("a and b must have a time axis first, (T, *batch, S); got scalars")
    checks.like(b, "b", a, "a", "is the offset of the same recurrence")
    log_space = checks.boolean(log_space, "log_space")
    if log_space and jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"log_space=True needs real logs a and b, got dtype {a.dtype}")
    if initial is None:
        initial = jnp.zeros(a.shape[1:], a.dtype)
    initial = jnp.asarray(initial)
    checks.like(initial, "initial", a[0], "one step of a", "starts the recurrence")
    if resets is not None:
        resets = jnp.asarray(resets)
        if resets.dtype != jnp.bool_:
            raise TypeError(f"resets must be a boolean array, got dtype {resets.dtype}")
        if resets.shape != a.shape[: resets.ndim] or resets.ndim < 1:
            raise ValueError(
                f"resets must have shape (T, *batch) or (T, *batch, S), a prefix of "
                f"{checks.shape_str(a.shape)}; got {checks.shape_str(resets.shape)}"
            )
    reverse, parallel = checks.boolean(reverse, "reverse"), checks.boolean(parallel, "parallel")
    return _jitted_linear_scan(
        a, b, initial, resets, reverse=reverse, parallel=parallel, log_space=log_space
    )


def _expand(flags: Array, ndim: int) -> Array:
    return flags.reshape(flags.shape + (1,) * (ndim - flags.ndim))


def scan_coefficients(
    a: Array,
    b: Array,
    initial: Array,
    resets: Array | None,
    *,
    reverse: bool,
    parallel: bool,
    log_space: bool,
    unroll: int | bool = 1,
) -> Array:
    """`linear_scan` on checked arrays, with `lax.scan`'s `unroll`; `jaxrnn.unroll` calls it."""
    if resets is not None:
        resets = _expand(resets, a.ndim)
    if not parallel:
        return _sequential(a, b, initial, resets, reverse, log_space, unroll)
    if log_space:

        def combine(first, second):
            la1, lb1, *r1 = first
            la2, lb2, *r2 = second
            la, lb = la1 + la2, jnp.logaddexp(la2 + lb1, lb2)
            if not r2:
                return la, lb
            return (
                jnp.where(r2[0], la2, la),
                jnp.where(r2[0], lb2, lb),
                r1[0] | r2[0],
            )
    else:

        def combine(first, second):
            a1, b1, *r1 = first
            a2, b2, *r2 = second
            a, b = a1 * a2, a2 * b1 + b2
            if not r2:
                return a, b
            return jnp.where(r2[0], a2, a), jnp.where(r2[0], b2, b), r1[0] | r2[0]

    elems = (a, b) if resets is None else (a, b, resets)
    prefix_a, prefix_b = jax.lax.associative_scan(combine, elems, reverse=reverse)[:2]
    initial = initial[None]
    if log_space:
        return jnp.exp(prefix_a) * initial + jnp.exp(prefix_b)
    return prefix_a * initial + prefix_b


def _sequential(
    a: Array,
    b: Array,
    initial: Array,
    resets: Array | None,
    reverse: bool,
    log_space: bool,
    unroll: int | bool,
) -> Array:
    if log_space:
        a, b = jnp.exp(a), jnp.exp(b)

    def body(h: Array, step: tuple[Array, Array, Array | None]) -> tuple[Array, Array]:
        a_t, b_t, reset = step
        if reset is not None:
            h = jnp.where(reset, initial, h)
        h = a_t * h + b_t
        return h, h

    return jax.lax.scan(body, initial, (a, b, resets), reverse=reverse, unroll=unroll)[1]


_jitted_linear_scan = jax.jit(
    scan_coefficients, static_argnames=("reverse", "parallel", "log_space")
)
