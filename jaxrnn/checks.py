"""Input validation shared by the public functions.

Every check runs on static information (shapes, dtypes, pytree structure)
before anything is traced, so a mistake surfaces as a `ValueError` or
`TypeError` that names the argument, what was expected and what was given,
never as an XLA shape error deep inside `lax.scan`.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.cell import Cell

Shape = tuple[int, ...]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value: Any, name: str) -> int:
    """`value` as an int, or a clear error if it is not an int > 0."""
    return _int_from(value, name, 1, "a positive int")


def non_negative_int(value: Any, name: str) -> int:
    """`value` as an int, or a clear error if it is not an int >= 0."""
    return _int_from(value, name, 0, "a non-negative int")


def _int_from(value: Any, name: str, low: int, what: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be {what}, got {value}")
    return int(value)


def function(value: Any, name: str, signature: str) -> Any:
    """`value`, or a `TypeError` unless it is callable; `signature` shows how it is called."""
    if not callable(value):
        raise TypeError(f"{name} must be a function {signature}, got {type(value).__name__}")
    return value


def number(value: Any, name: str, within: Any = None, what: str = "a finite number") -> float:
    """`value` as a float, or a clear error unless it is a finite real number for which
    `within(value)` holds; `what` says what it must be."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or (within is not None and not within(value)):
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def one_of(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """`value`, which must be one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def boolean(value: Any, name: str) -> bool:
    """`value` as a bool; a Python or NumPy bool only, so that 0 and 1 are refused."""
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
    """A typed key: `jax.random.key(seed)` as it is, a raw uint32 key (`PRNGKey`) wrapped."""
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    shape, dtype = getattr(key, "shape", None), getattr(key, "dtype", None)
    raise TypeError(
        f"{name} must be a single PRNG key from jax.random.key(seed) or jax.random.PRNGKey(seed); "
        f"got {type(key).__name__} with shape {shape} and dtype {dtype}"
    )


def _array(x: Any, name: str, kind: Any, what: str, numpy: bool = False) -> Any:
    """`x` as a JAX array (with `numpy`, a NumPy one) whose dtype is a `kind` (e.g.
    `jnp.floating`); `what` says which dtype it must have."""
    if x is None or isinstance(x, (str, bytes, dict)):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        arr = np.asarray(x) if numpy else jnp.asarray(x)
    except jax.errors.TracerArrayConversionError:
        raise  # JAX's own message says why a traced value cannot become NumPy
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from e
    if not jnp.issubdtype(arr.dtype, kind):
        raise TypeError(f"{name} must have {what}, got {arr.dtype}")
    return arr


def float_array(x: Any, name: str, numpy: bool = False) -> Any:
    """`x` as a JAX array (a NumPy array with `numpy`, which keeps float64 without x64),
    which must have a real floating dtype."""
    what = f"a real floating dtype (e.g. float32; cast with {name}.astype(jnp.float32))"
    return _array(x, name, jnp.floating, what, numpy)


def integer_array(x: Any, name: str, what: str) -> jax.Array:
    """`x` as a JAX array with an integer dtype; `what` says what it holds."""
    return _array(x, name, jnp.integer, f"an integer dtype (e.g. int32) since it holds {what}")


def same_dtype(arrays: Any, why: str) -> Any:
    """The one dtype of `arrays` (a mapping name -> array), or a `TypeError` naming the
    first that differs; `why` says why they must agree."""
    (first, reference), *rest = arrays.items()
    for name, arr in rest:
        if arr.dtype != reference.dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but {first} has dtype {reference.dtype}; {why}"
            )
    return reference.dtype


def like(x: jax.Array, name: str, other: jax.Array, other_name: str, why: str) -> None:
    """Raise unless `x` has the shape and dtype of `other`; `why` says why it must."""
    if x.shape != other.shape:
        raise ValueError(
            f"{name} {why}, so it must have the shape of {other_name}, "
            f"{shape_str(other.shape)}; got {shape_str(x.shape)}"
        )
    same_dtype({other_name: other, name: x}, f"{name} {why}; cast one of them explicitly")


def shape_str(shape: Sequence[int]) -> str:
    """`shape` as messages print it: a tuple of Python ints, e.g. `(2, 3)`."""
    return str(tuple(int(d) for d in shape))


def _shape(name: str, shape: Sequence[int], want: Sequence[int], but: str) -> None:
    """Raise unless `shape` is `want`, saying "`name` has shape ... but `but` `want`"."""
    if tuple(shape) != tuple(want):
        raise ValueError(f"{name} has shape {shape_str(shape)} but {but} {shape_str(want)}")


def batch_shape(batch_shape: Any) -> Shape:
    """`batch_shape` as a tuple of non-negative ints (an int is one dim)."""
    dims = (batch_shape,) if _is_int(batch_shape) else batch_shape
    if not isinstance(dims, Sequence):
        raise TypeError(f"batch_shape must be a tuple of ints, got {batch_shape!r}")
    if not all(_is_int(d) and d >= 0 for d in dims):
        raise ValueError(f"batch_shape must be a tuple of non-negative ints, got {dims!r}")
    return tuple(int(d) for d in dims)


def cell(value: Any, name: str = "cell") -> Cell:
    """`value`, which must be a `Cell`."""
    if not isinstance(value, Cell):
        raise TypeError(f"{name} must be a jaxrnn Cell (e.g. lstm(8)), got {type(value).__name__}")
    return value


def label(owner: Any) -> str:
    """How messages name a cell or a layer."""
    if hasattr(owner, "hidden_size") and hasattr(owner, "name"):
        return f"cell {owner.name!r} (hidden_size={owner.hidden_size})"
    return f"the {type(owner).__name__.lower()} layer"


def describe(tree: Any) -> str:
    """A short description of a pytree's structure, for messages."""
    if isinstance(tree, (tuple, list)):
        return f"a {type(tree).__name__} of {len(tree)} ({', '.join(map(describe, tree))})"
    if isinstance(tree, dict):
        return f"a dict with keys {sorted(map(str, tree))}"
    if hasattr(tree, "shape"):
        return f"an array of shape {shape_str(tree.shape)}"
    return f"a {type(tree).__name__}"


_SHAPES: dict[Any, Any] = {}


def shapes(fn: Any, *args: Any, key: Any = None) -> Any:
    """`jax.eval_shape(fn, *args)`, remembered by `key` (default: `fn`) and the shapes and
    dtypes of `args`, so that checking every eager call does not trace `fn` every time."""
    leaves, tree = jax.tree.flatten(args)
    structs = tuple(jax.ShapeDtypeStruct(np.shape(a), getattr(a, "dtype", None)) for a in leaves)
    abstract_args = jax.tree.unflatten(tree, structs)
    cache_key = (fn if key is None else key, tree, structs)
    try:
        hash(cache_key)
    except TypeError:  # e.g. a cell holding a list
        return jax.eval_shape(fn, *abstract_args)
    if cache_key not in _SHAPES:
        if len(_SHAPES) >= 1024:
            _SHAPES.clear()
        _SHAPES[cache_key] = jax.eval_shape(fn, *abstract_args)
    return _SHAPES[cache_key]


def param_template(cell: Cell, input_size: int, dtype: Any) -> Any:
    """Shapes and dtypes `cell.init` gives for `input_size` and `dtype`."""
    init = functools.partial(cell.init, input_size=input_size, dtype=dtype)
    return shapes(init, jax.random.key(0), key=(cell.init, input_size, jnp.dtype(dtype)))


def _paths(tree: Any) -> dict[str, Any]:
    """The leaves of `tree` (None counts as one) by their path, e.g. `"['w_x']"`."""
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def params(
    cell: Cell, params: Any, input_size: int, dtype: Any, source: str = "xs", path: str = "params"
) -> None:
    """Raise unless `params` has the layout `cell.init(key, input_size, dtype)` gives.

    Compared leaf by leaf, by pytree path; `source` names where `input_size` and
    `dtype` came from (e.g. "xs"), `path` what `params` is called where it was given.
    """
    expected = _paths(param_template(cell, input_size, dtype))
    got, context = _paths(params), label(cell)
    if got.keys() != expected.keys():
        missing = [path + p for p in expected if p not in got]
        extra = [path + p for p in got if p not in expected]
        layout = ", ".join(f"{path}{p} {shape_str(a.shape)}" for p, a in expected.items())
        raise ValueError(
            f"{path} do not match the params that {context} makes: missing {missing}, "
            f"unexpected {extra}; expected {layout}"
        )
    maker = f"{context} with input_size={input_size} (from {source}.shape[-1])"
    for key, want in expected.items():
        leaf = got[key]
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(f"{path}{key} must be an array, got {type(leaf).__name__}")
        if leaf.shape != want.shape:
            made_for = _made_for(cell, key, leaf.shape, want.shape, input_size, dtype)
            if made_for is not None:
                raise ValueError(
                    f"{source} has input_size {input_size} ({source}.shape[-1]) but {path} were "
                    f"made for input_size {made_for} ({context}; read off {path}{key})"
                )
        _leaf(path + key, leaf, want, maker, source, dtype)


def _made_for(cell: Cell, key: str, got: Any, want: Any, input_size: int, dtype: Any) -> int | None:
    """The input size a params leaf at path `key` was made for, given its shape `got` where
    `input_size` gives `want`: read off an axis that grows with the input size; None where no
    such axis differs or the cell cannot tell."""
    try:
        other = _paths(param_template(cell, input_size + 1, dtype))[key].shape
    except (TypeError, ValueError, KeyError):  # e.g. a residual stack made for one input size
        return None
    if len(got) == len(want):
        for n, a, b in zip(got, want, other, strict=True):
            if a != b and n != a:
                return int(n) - (a - input_size)
    return None


def _leaf(name: str, leaf: Any, want: Any, maker: str, source: str, dtype: Any) -> None:
    """Raise unless `leaf` has the shape and dtype of `want`, what `maker` makes for `source`
    of dtype `dtype`."""
    _shape(name, leaf.shape, want.shape, f"{maker} expects")
    if leaf.dtype != want.dtype:
        raise TypeError(
            f"{name} has dtype {leaf.dtype} but {source} has dtype {jnp.dtype(dtype)}, for which "
            f"{maker} makes {want.dtype}; cast one of them explicitly"
        )


def initial_carry(cell: Cell, batch_shape: Shape, dtype: Any) -> Any:
    """`cell.initial_carry(batch_shape, dtype)`, checked to honour `dtype`."""
    carry = cell.initial_carry(batch_shape, dtype)
    for key, leaf in _paths(carry).items():
        got = getattr(leaf, "dtype", None)
        if got is not None and jnp.issubdtype(got, jnp.floating) and got != dtype:
            raise TypeError(
                f"{label(cell)}: initial_carry(batch_shape, dtype={dtype}) returned carry{key} of "
                f"dtype {got}; it must make its floating arrays in the dtype it is given"
            )
    return carry


def carry(
    cell: Cell, carry: Any, batch_shape: Shape, dtype: Any, source: str = "xs", path: str = "carry"
) -> Any:
    """`carry` with every leaf as an array, or an error if it does not match the cell."""
    make = functools.partial(initial_carry, cell, batch_shape, dtype)
    expected = shapes(make, key=(cell.initial_carry, tuple(batch_shape), jnp.dtype(dtype)))
    if jax.tree.structure(carry) != jax.tree.structure(expected):
        raise ValueError(
            f"{path} must have the structure of the initial_carry(...) of {label(cell)}, "
            f"{describe(expected)}; got {describe(carry)}"
        )
    maker = f"{label(cell)} with batch shape {shape_str(batch_shape)} (from {source})"

    def check(keys: Any, leaf: Any, want: Any) -> jax.Array:
        name = path + jax.tree_util.keystr(keys)
        arr = float_array(leaf, name) if want.dtype == jnp.dtype(dtype) else jnp.asarray(leaf)
        _leaf(name, arr, want, maker, source, dtype)
        return arr

    return jax.tree_util.tree_map_with_path(check, carry, expected)


def step(cell: Cell, params: Any, carry: Any, x: Any) -> None:
    """Raise unless `cell.step` keeps the carry's structure, shapes and dtypes and
    returns `y (*batch, hidden_size)` in the input's dtype (checked on shapes only)."""
    contract = f"cell {cell.name!r} breaks the contract step(params, carry, x) -> (carry, y)"
    out = shapes(cell.step, params, carry, x)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{contract}: step must return a pair (carry, y), got {describe(out)}")
    new_carry, y = out
    before, tree = jax.tree_util.tree_flatten_with_path(jax.eval_shape(lambda: carry))
    after, new_tree = jax.tree.flatten(new_carry)
    if new_tree != tree:
        raise ValueError(
            f"{contract}: the carry it returns is {describe(new_carry)}, not {describe(carry)}"
        )
    for (keys, old), new in zip(before, after, strict=True):
        if (old.shape, old.dtype) != (new.shape, new.dtype):
            raise ValueError(
                f"{contract}: carry{jax.tree_util.keystr(keys)} went in as {shape_str(old.shape)} "
                f"{old.dtype} and came out as {shape_str(new.shape)} {new.dtype}"
            )
    want = (*x.shape[:-1], cell.hidden_size)
    if not hasattr(y, "shape"):
        raise TypeError(f"{contract}: y must be one array (*batch, hidden_size), got {describe(y)}")
    if tuple(y.shape) != want or y.dtype != x.dtype:
        raise ValueError(
            f"{contract}: y must have shape (*batch, hidden_size) = {shape_str(want)} and the "
            f"input's dtype {x.dtype}; got {shape_str(y.shape)} {y.dtype}"
        )


def lengths(lengths: Any, batch_shape: Shape, num_steps: int, source: str = "xs") -> jax.Array:
    """`lengths` as an integer array of shape `batch_shape`, the batch shape of `source`.

    Concrete values are checked against `[0, num_steps]`; traced values cannot be.
    """
    arr = integer_array(lengths, "lengths", "the number of valid steps of each sequence")
    _shape("lengths", arr.shape, batch_shape, f"must have the batch shape of {source},")
    if not isinstance(arr, jax.core.Tracer) and arr.size:
        values = np.asarray(arr)  # NumPy: a concrete array closed over by jit stays concrete
        if values.min() < 0 or values.max() > num_steps:
            raise ValueError(
                f"lengths must lie in [0, T] with T={num_steps} steps in {source}; "
                f"got values from {values.min()} to {values.max()}"
            )
    return arr


def valid_steps(lengths: Any, num_steps: int, mask: Any = None) -> Any:
    """`(T, *batch)` booleans: whether step `t` of sequence `b` is before its length and
    kept by `mask (T, *batch)`; None with neither `lengths (*batch)` nor `mask`."""
    if lengths is None:
        return mask
    valid = jax.lax.broadcasted_iota(lengths.dtype, (num_steps, *lengths.shape), 0) < lengths[None]
    return valid if mask is None else valid & mask


def step_flags(flags: Any, name: str, time_axis: int, shape: Shape) -> jax.Array:
    """A boolean per step and sequence, moved to time-major `shape` = `(T, *batch)`."""
    arr = jnp.asarray(flags)
    if arr.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    expected = (*shape[1 : time_axis + 1], shape[0], *shape[time_axis + 1 :])
    _shape(name, arr.shape, expected, "must have the shape of xs without its feature axis,")
    return jnp.moveaxis(arr, time_axis, 0)


def time_dim(time_axis: Any, ndim: int, name: str, last: bool = False) -> int:
    """`time_axis` as a non-negative axis of an array `name` with `ndim` dims; the last
    axis (features, classes) is allowed only with `last`."""
    if not _is_int(time_axis):
        raise TypeError(f"time_axis must be an int, got {type(time_axis).__name__} {time_axis!r}")
    top = ndim - 1 if last else ndim - 2  # without `last`, the last axis holds the features
    if not -ndim <= time_axis <= top or time_axis % ndim > top:
        raise ValueError(
            f"time_axis must be an axis of {name}{'' if last else ' other than the last'}; "
            f"{name} has {ndim} dims so time_axis must lie in [{-ndim}, {top}], got {time_axis}"
        )
    return int(time_axis) % ndim


def sequences(x: Any, name: str, layout: str = "(T, *batch, input_size)") -> jax.Array:
    """`x` as a floating array of sequences; `layout` names its axes for the message."""
    if (x := float_array(x, name)).ndim < 2:
        raise ValueError(f"{name} must have at least 2 dims, {layout}; got shape {x.shape}")
    return x


def time_major(xs: Any, time_axis: Any) -> tuple[jax.Array, int]:
    """Checked `xs` with time moved to axis 0, and `time_axis` as a non-negative int."""
    xs = sequences(xs, "xs")
    axis = time_dim(time_axis, xs.ndim, "xs")
    return jnp.moveaxis(xs, axis, 0), axis


class Run(NamedTuple):
    """Checked inputs of a run over time: `xs` time-major `(T, *batch, I)`, the axis time
    came on, and the optional carry, `lengths (*batch)`, `mask` and `resets (T, *batch)`."""

    xs: jax.Array
    time_axis: int
    carry: Any
    lengths: jax.Array | None
    mask: jax.Array | None
    resets: jax.Array | None


def sequence(
    owner: Any,
    params_: Any,
    xs: Any,
    carry_: Any,
    time_axis: Any,
    lengths_: Any = None,
    mask: Any = None,
    resets: Any = None,
) -> Run:
    """What a public function that runs `owner` (a cell or a layer) over `xs` checks."""
    xs, time_axis = time_major(xs, time_axis)
    num_steps, batch, dtype = xs.shape[0], xs.shape[1:-1], xs.dtype
    params(owner, params_, xs.shape[-1], dtype)
    if carry_ is not None:
        carry_ = carry(owner, carry_, batch, dtype)
    if lengths_ is not None:
        lengths_ = lengths(lengths_, batch, num_steps)
    if mask is not None:
        mask = step_flags(mask, "mask", time_axis, (num_steps, *batch))
    if resets is not None:
        resets = step_flags(resets, "resets", time_axis, (num_steps, *batch))
    return Run(xs, time_axis, carry_, lengths_, mask, resets)
