"""Input validation shared by the public functions.

Every check runs on static information (shapes, dtypes, pytree structure)
before anything is traced, so a mistake surfaces as a `ValueError` or
`TypeError` that names the argument, what was expected and what was given,
never as an XLA shape error deep inside `lax.scan`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxrnn.cells import Cell


def positive_int(value: Any, name: str) -> int:
    """`value` as an int, or a clear error if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def one_of(value: Any, name: str, choices: Sequence[Any]) -> Any:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def floating_dtype(dtype: Any, name: str = "dtype") -> jnp.dtype:
    """The canonical dtype for `dtype`, which must be a real floating type."""
    try:
        canonical = jnp.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{name} must be a floating dtype, got {dtype!r}") from e
    if not jnp.issubdtype(canonical, jnp.floating):
        raise TypeError(f"{name} must be a floating dtype (e.g. jnp.float32), got {canonical}")
    return jax.dtypes.canonicalize_dtype(canonical)


def prng_key(key: Any, name: str = "key") -> jax.Array:
    """Accept a typed key (`jax.random.key`) or a raw uint32 key (`PRNGKey`)."""
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    shape = getattr(key, "shape", None)
    dtype = getattr(key, "dtype", None)
    raise TypeError(
        f"{name} must be a single PRNG key from jax.random.key(seed) or "
        f"jax.random.PRNGKey(seed); got {type(key).__name__} with shape {shape} and dtype {dtype}"
    )


def float_array(x: Any, name: str) -> jax.Array:
    """`x` as a JAX array, which must have a real floating dtype."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        arr = jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from e
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a real floating dtype (float32, float64, bfloat16, float16), "
            f"got {arr.dtype}; cast it first, e.g. {name}.astype(jnp.float32)"
        )
    return arr


def shape_str(shape: Sequence[int]) -> str:
    return str(tuple(int(d) for d in shape))


def _cache_key(cell: Cell) -> Cell | None:
    try:
        hash(cell)
    except TypeError:
        return None
    return cell


@functools.lru_cache(maxsize=256)
def _param_template(cell: Cell, input_size: int, dtype: jnp.dtype) -> Any:
    return jax.eval_shape(
        functools.partial(cell.init, input_size=input_size, dtype=dtype), jax.random.key(0)
    )


def param_template(cell: Cell, input_size: int, dtype: jnp.dtype) -> Any:
    """Shapes and dtypes `cell.init` gives for `input_size` and `dtype`."""
    if _cache_key(cell) is None:
        return _param_template.__wrapped__(cell, input_size, dtype)
    return _param_template(cell, input_size, dtype)


def check_params(cell: Cell, params: Any, input_size: int, dtype: jnp.dtype, source: str) -> None:
    """Raise unless `params` has exactly the layout `cell.init(key, input_size, dtype)` gives.

    `source` names where `input_size` and `dtype` came from (e.g. "xs").
    """
    expected = param_template(cell, input_size, dtype)
    context = f"cell {cell.name!r} (hidden_size={cell.hidden_size})"
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be the dict that {cell.name}.init returns, got {type(params).__name__}"
        )
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(
            f"params do not match {context}: missing keys {missing}, unexpected keys {extra}; "
            f"expected keys {sorted(expected)}"
        )
    for name in expected:
        if (
            getattr(params[name], "shape", None) is None
            or getattr(params[name], "dtype", None) is None
        ):
            raise TypeError(f"params[{name!r}] must be an array, got {type(params[name]).__name__}")
    made_for = _inferred_input_size(cell, params, input_size, dtype)
    if made_for is not None and made_for != input_size:
        raise ValueError(
            f"{source} has input_size {input_size} ({source}.shape[-1]) but params were made "
            f"for input_size {made_for} ({context})"
        )
    for name, want in expected.items():
        got = params[name]
        got_shape, got_dtype = got.shape, got.dtype
        if tuple(got_shape) != tuple(want.shape):
            raise ValueError(
                f"params[{name!r}] has shape {shape_str(got_shape)} but {context} with "
                f"input_size={input_size} (from {source}.shape[-1]) expects {shape_str(want.shape)}"
            )
        if got_dtype != want.dtype:
            raise TypeError(
                f"params[{name!r}] has dtype {got_dtype} but {source} has dtype {dtype}; params, "
                f"{source} and carry must share one floating dtype (cast one of them explicitly)"
            )


def _inferred_input_size(
    cell: Cell, params: dict[str, Any], input_size: int, dtype: jnp.dtype
) -> int | None:
    """The input size `params` were made for, read off the dims that depend on it."""
    this = param_template(cell, input_size, dtype)
    other = param_template(cell, input_size + 1, dtype)
    for name in this:
        for axis, (a, b) in enumerate(zip(this[name].shape, other[name].shape, strict=True)):
            shape = params[name].shape
            if a != b and len(shape) == len(this[name].shape):
                return int(shape[axis]) - (a - input_size)
    return None


def _describe(tree: Any) -> str:
    if isinstance(tree, (tuple, list)):
        kind = type(tree).__name__
        return f"a {kind} of {len(tree)} ({', '.join(_describe(t) for t in tree)})"
    if hasattr(tree, "shape"):
        return f"an array of shape {shape_str(tree.shape)}"
    return f"a {type(tree).__name__}"


def check_carry(
    cell: Cell, carry: Any, batch_shape: tuple[int, ...], dtype: jnp.dtype, source: str = "xs"
) -> Any:
    """`carry` with every leaf as an array, or an error if it does not match the cell."""
    expected = jax.eval_shape(
        functools.partial(cell.initial_carry, batch_shape=batch_shape, dtype=dtype)
    )
    want_tree = jax.tree_util.tree_structure(expected)
    got_tree = jax.tree_util.tree_structure(carry)
    if got_tree != want_tree:
        raise ValueError(
            f"carry must have the structure of {cell.name}.initial_carry(...), "
            f"{_describe(expected)}; got {_describe(carry)}"
        )
    leaves, _ = jax.tree_util.tree_flatten_with_path(carry)
    want_leaves = jax.tree_util.tree_leaves(expected)
    checked = []
    for (path, leaf), want in zip(leaves, want_leaves, strict=True):
        name = "carry" + jax.tree_util.keystr(path)
        arr = float_array(leaf, name)
        if arr.shape != want.shape:
            raise ValueError(
                f"{name} has shape {shape_str(arr.shape)} but expected {shape_str(want.shape)}: "
                f"batch shape {shape_str(batch_shape)} from {source}, then the state size of "
                f"cell {cell.name!r} (hidden_size={cell.hidden_size})"
            )
        if arr.dtype != want.dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but {source} and params have dtype {want.dtype}; "
                f"cast the carry explicitly"
            )
        checked.append(arr)
    return jax.tree_util.tree_unflatten(got_tree, checked)


def check_lengths(lengths: Any, batch_shape: tuple[int, ...], num_steps: int) -> jax.Array:
    """`lengths` as an integer array of shape `batch_shape`.

    Concrete values are checked against `[0, num_steps]`; traced values cannot be.
    """
    arr = jnp.asarray(lengths)
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(
            f"lengths must have an integer dtype (e.g. int32), got {arr.dtype}; "
            f"lengths counts the valid steps of each sequence"
        )
    if arr.shape != tuple(batch_shape):
        raise ValueError(
            f"lengths has shape {shape_str(arr.shape)} but must have the batch shape of xs, "
            f"{shape_str(batch_shape)} (xs.shape without the time and feature axes)"
        )
    if not isinstance(arr, jax.core.Tracer) and arr.size:
        values = np.asarray(
            arr
        )  # NumPy, so that a concrete array closed over by jit stays concrete
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > num_steps:
            raise ValueError(
                f"lengths must lie in [0, T] with T={num_steps} steps in xs; "
                f"got values from {low} to {high}"
            )
    return arr


def step_flags(flags: Any, name: str, time_axis: int, shape: tuple[int, ...]) -> jax.Array:
    """A boolean per step and sequence, moved to time-major `shape` = `(T, *batch)`."""
    arr = jnp.asarray(flags)
    if arr.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    expected = list(shape[1:])
    expected.insert(time_axis, shape[0])
    if arr.shape != tuple(expected):
        raise ValueError(
            f"{name} has shape {shape_str(arr.shape)} but must have the shape of xs without "
            f"its feature axis, {shape_str(expected)}"
        )
    return jnp.moveaxis(arr, time_axis, 0)


def time_major(xs: Any, time_axis: Any) -> tuple[jax.Array, int]:
    """Checked `xs` with time moved to axis 0, and `time_axis` as a non-negative int."""
    xs = float_array(xs, "xs")
    if xs.ndim < 2:
        raise ValueError(
            f"xs must have at least 2 dims, (T, *batch, input_size) with time on time_axis; "
            f"got shape {shape_str(xs.shape)}. For a single sequence without batch "
            f"use shape (T, input_size)."
        )
    if isinstance(time_axis, bool) or not isinstance(time_axis, int):
        raise TypeError(f"time_axis must be an int, got {time_axis!r}")
    if not -xs.ndim <= time_axis < xs.ndim or time_axis % xs.ndim == xs.ndim - 1:
        raise ValueError(
            f"time_axis must be an axis of xs other than the last (features); xs has "
            f"{xs.ndim} dims so time_axis must lie in [{-xs.ndim}, {xs.ndim - 2}], "
            f"got {time_axis}"
        )
    time_axis %= xs.ndim
    return jnp.moveaxis(xs, time_axis, 0), time_axis
