r"""Check a gradient against central finite differences, leaf by leaf.

The test the "build your RNN step by step" course teaches: perturb each
parameter by $\pm\varepsilon$, estimate the derivative as
$(J(\theta + \varepsilon e_i) - J(\theta - \varepsilon e_i)) / 2\varepsilon$, and
compare with the gradient by the relative difference

$$\frac{\lVert g - g_{num} \rVert_2}{\lVert g \rVert_2 + \lVert g_{num} \rVert_2}.$$

`gradcheck` does this for any scalar function of a params pytree, in float64,
and reports the difference per leaf together with the element where the two
disagree most, so a wrong gradient points at its own mistake.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import checks


class LeafCheck(NamedTuple):
    r"""The comparison for one leaf of the params pytree.

    Attributes:
      path: the leaf's path in the pytree, keys joined by `/` (e.g. `"cell/w_x"`);
        `"params"` when params is a single array.
      shape: the leaf's shape.
      checked: how many of its elements were compared (all, or `num_samples`).
      relative_error: $\lVert g - g_{num} \rVert / (\lVert g \rVert + \lVert g_{num} \rVert)$
        over the checked elements, 0 when both are zero, NaN if either has a NaN.
      worst_index: the index (into `shape`) of the element with the largest
        $|g - g_{num}|$.
      analytic: the gradient being checked at `worst_index`.
      numeric: the finite-difference estimate at `worst_index`.
      passed: `relative_error <= threshold`.
    """

    path: str
    shape: tuple[int, ...]
    checked: int
    relative_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class GradcheckResult:
    """What `gradcheck` found.

    Attributes:
      passed: whether every leaf's relative difference is within `threshold`.
      leaves: one `LeafCheck` per leaf of params, in pytree order.
      relative_error: the course's single number, the relative difference over
        all checked elements of all leaves together.
      threshold: the threshold the leaves were held to.
      eps: the finite-difference step.

    `str(result)` is a table with one row per leaf.
    """

    passed: bool
    leaves: tuple[LeafCheck, ...]
    relative_error: float
    threshold: float
    eps: float

    @property
    def worst(self) -> LeafCheck:
        """The leaf with the largest relative difference (NaN counts as largest)."""
        return max(self.leaves, key=lambda r: np.nan_to_num(r.relative_error, nan=np.inf))

    def __str__(self) -> str:
        head = (
            f"gradcheck {'passed' if self.passed else 'FAILED'}: largest relative difference "
            f"{self.worst.relative_error:.3g} (threshold {self.threshold:.3g}; central "
            f"differences in float64, eps {self.eps:.3g}; all leaves together "
            f"{self.relative_error:.3g})"
        )
        rows = [("leaf", "shape", "checked", "rel. diff", "worst at", "analytic", "numeric", "")]
        for r in self.leaves:
            shape, at = checks.shape_str(r.shape), checks.shape_str(r.worst_index)
            numbers = f"{r.relative_error:.3e}", at, f"{r.analytic:.10g}", f"{r.numeric:.10g}"
            rows.append((r.path, shape, str(r.checked), *numbers, "ok" if r.passed else "FAIL"))
        widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
        lines = [
            "  ".join([row[0].ljust(widths[0]), *map(str.rjust, row[1:], widths[1:])]).rstrip()
            for row in rows
        ]
        return "\n".join([head, *lines])


def _float64(x: Any, name: str | None = None) -> Any:
    """A float64 NumPy copy of a floating array `x`; anything else as it is, or, for a
    params or grad leaf (`name` given), an error."""
    dtype = np.asarray(x).dtype if name else getattr(x, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return np.array(x, dtype=np.float64)
    if name:
        raise TypeError(f"{name} has dtype {dtype}; it must be floating (pass data via *args)")
    return x


def _relative(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """The course's relative difference; 0 when both are exactly zero (0/0 is agreement)."""
    den = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / den) if den else 0.0


def _worst(g: np.ndarray, numeric: np.ndarray, index: np.ndarray, shape: tuple) -> tuple:
    """Where `|g - numeric|` is largest (a NaN counts as largest), as an index into `shape`
    from the flat `index` of the checked elements, and both values there."""
    if not index.size:
        return (), 0.0, 0.0
    k = int(np.argmax(np.abs(g - numeric)))
    return tuple(int(d) for d in np.unravel_index(index[k], shape)), float(g[k]), float(numeric[k])


def _difference(evaluate: Callable, leaves: list, i: int, j: int, eps: float) -> float:
    """The central difference of `evaluate(leaves)` in element `j` of leaf `i`."""
    plus, minus = leaves[i].copy(), leaves[i].copy()
    plus.flat[j] += eps
    minus.flat[j] -= eps
    f_plus = float(evaluate([*leaves[:i], plus, *leaves[i + 1 :]]))
    f_minus = float(evaluate([*leaves[:i], minus, *leaves[i + 1 :]]))
    # Divided by the step actually taken, which rounding makes differ slightly from 2 * eps.
    return (f_plus - f_minus) / (plus.flat[j] - minus.flat[j])


def gradcheck(
    f: Callable[..., Any],
    params: Any,
    *args: Any,
    eps: float = 1e-6,
    threshold: float = 1e-7,
    num_samples: int | None = None,
    key: jax.Array | None = None,
    grad: Any = None,
) -> GradcheckResult:
    r"""Compare a gradient of `f(params, *args)` with central finite differences.

    For each element $\theta_i$ of each leaf of `params`, the numerical derivative is

    $$g_{num,i} = \frac{f(\theta + \varepsilon e_i) - f(\theta - \varepsilon e_i)}
      {2 \varepsilon},$$

    and each leaf is scored by the course's relative difference
    $\lVert g - g_{num} \rVert / (\lVert g \rVert + \lVert g_{num} \rVert)$
    (0 when both are exactly zero). The gradient $g$ is `jax.grad(f)` unless
    `grad` gives a hand-written one, such as the course's backward pass.

    Everything runs in float64, whatever the inputs' dtype: the floating leaves
    of `params` and `args` are copied to float64 (the inputs are never modified)
    and JAX's 64-bit mode is on for the duration of the call only. So every
    array `f` uses should come in through `params` or `args`, not a closure. `f`
    is compiled with `jax.jit` when it can be traced; a function that converts
    to NumPy (like the `jaxrnn.course` functions) runs eagerly instead, which is
    slower. Each checked element costs two evaluations of `f`; for large params
    pass `num_samples` and a `key` to check a random subset of each leaf.

    A leaf whose true gradient is tiny but not zero can score a large relative
    difference from round-off alone; a leaf that does not affect `f` at all
    scores 0 (both sides are exactly zero).

    Args:
      f: a function `f(params, *args) -> scalar`.
      params: a pytree of floating arrays (NumPy or JAX), the point to check at.
        Non-floating leaves are rejected, not skipped: pass integer data
        through `args`.
      *args: further arguments of `f`, held fixed; floating arrays among them
        are passed as float64 copies, everything else as given.
      eps: the finite-difference step. The course uses 1e-7 with the same
        threshold; in float64 that step lets round-off in `f` alone reach the
        threshold on small gradients (correct LSTM gradients of a cross-entropy
        loss measured up to 1.5e-7 per leaf over 8 seeds), while 1e-6 kept them
        below 2e-8 and its truncation error, of order `eps**2`, stays far below.
      threshold: the largest relative difference a leaf may have and pass. A
        correct float64 gradient usually scores 1e-10 to 1e-8 with the default
        `eps`; one with a real mistake, orders of magnitude more.
      num_samples: check at most this many randomly chosen elements per leaf
        (all of them when a leaf is that small). Needs `key`.
      key: a PRNG key choosing the sampled elements; only with `num_samples`.
      grad: the gradient to check instead of `jax.grad(f)`: either a function
        `grad(params, *args)` returning a pytree shaped like `params`, or that
        pytree itself.

    Returns:
      A `GradcheckResult`; `str()` of it is a table with one row per leaf.

    Raises:
      TypeError: `f` is not callable, a params leaf is not floating, an option
        has the wrong type, or `jax.grad` cannot trace `f` and no `grad` is given.
      ValueError: `params` has no leaves, `eps`, `threshold` or `num_samples` is
        not positive, `num_samples` and `key` are not given together, `f` does
        not return a scalar, or `grad` is not shaped like `params`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> from jaxrnn.gradient_check import gradcheck
      >>> cell = jr.lstm(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> xs = jax.random.normal(jax.random.key(1), (6, 2, 3))   # (T, batch, input)
      >>> def loss(params, xs):
      ...     _, hs = jr.unroll(cell, params, xs)
      ...     return jnp.mean(hs**2)
      >>> result = gradcheck(loss, params, xs)
      >>> result.passed, [leaf.path for leaf in result.leaves]
      (True, ['b', 'w_h', 'w_x'])
      >>> def nudge(g):  # a wrong gradient: 1e-3 more at a leaf's first entry
      ...     return g.at[(0,) * g.ndim].add(1e-3)
      >>> wrong = jax.tree.map(nudge, jax.grad(loss)(params, xs))
      >>> bad = gradcheck(loss, params, xs, grad=wrong)
      >>> bad.passed, bad.worst.worst_index in {(0,), (0, 0)}
      (False, True)
    """
    checks.function(f, "f", "f(params, *args) -> scalar")
    eps = checks.number(eps, "eps", lambda v: v > 0, "a finite number > 0")
    threshold = checks.number(threshold, "threshold", lambda v: v > 0, "a finite number > 0")
    if (num_samples is None) != (key is None):
        raise ValueError(
            "num_samples needs key=jax.random.key(seed) to choose which elements to check, "
            "and key is only used with num_samples"
        )
    if num_samples is not None:
        num_samples, key = checks.positive_int(num_samples, "num_samples"), checks.prng_key(key)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not flat:
        raise ValueError("params has no leaves to check")
    names = [jax.tree_util.keystr(p, simple=True, separator="/") or "params" for p, _ in flat]
    bases = [_float64(leaf, f"params leaf {names[k]!r}") for k, (_, leaf) in enumerate(flat)]
    args = jax.tree.map(_float64, args)

    def loss(leaves: list) -> Any:
        return f(jax.tree_util.tree_unflatten(treedef, leaves), *args)

    with jax.enable_x64(True):
        evaluate = jax.jit(loss)
        try:
            value = evaluate(bases)
        except jax.errors.JAXTypeError:  # f turns a traced value into NumPy or Python:
            evaluate = loss  # it runs eagerly, but cannot be compiled
            value = evaluate(bases)
        if np.ndim(value):
            raise ValueError(f"f must return a scalar loss, got shape {np.shape(value)}")
        if grad is None:
            try:
                grad = jax.tree_util.tree_unflatten(treedef, jax.grad(loss)(bases))
            except jax.errors.JAXTypeError as e:
                raise TypeError(
                    "jax.grad cannot trace f (it turns a traced value into NumPy or Python); "
                    "pass the gradient to check as grad="
                ) from e
        elif callable(grad):
            grad = grad(jax.tree_util.tree_unflatten(treedef, [b.copy() for b in bases]), *args)
        grad, got = jax.tree_util.tree_flatten(grad)
        if got != treedef:
            raise ValueError(f"grad must have the structure of params, {treedef}; got {got}")
        rows, compared = [], []
        for i, (name, base, g) in enumerate(zip(names, bases, grad, strict=True)):
            g = _float64(g, f"grad leaf {name!r}")
            if g.shape != base.shape:
                raise ValueError(f"grad leaf {name!r} has shape {g.shape} but params {base.shape}")
            index = np.arange(base.size)
            if num_samples is not None and base.size > num_samples:
                chosen = jax.random.choice(jax.random.fold_in(key, i), index, (num_samples,), False)
                index = np.sort(np.asarray(chosen))
            g = g.ravel()[index]
            numeric = np.array([_difference(evaluate, bases, i, j, eps) for j in index])
            error, worst = _relative(g, numeric), _worst(g, numeric, index, base.shape)
            rows.append(LeafCheck(name, base.shape, index.size, error, *worst, error <= threshold))
            compared.append((g, numeric))
    overall = _relative(*(np.concatenate(side) for side in zip(*compared, strict=True)))
    return GradcheckResult(all(row.passed for row in rows), tuple(rows), overall, threshold, eps)
