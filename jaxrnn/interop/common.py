"""What the PyTorch, Flax and Equinox converters share: recognising a built-in cell by
its step, and checking the arrays, params and carries they are given.

Shapes are written with names for sizes that the arrays themselves fix: in `read`,
the str `"input_size"` in `(input_size, 12)` is read off the first array that has it,
and every later array must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import cells, checks
from jaxrnn.cell import Cell

BUILTIN = {
    cells.RNN_TANH: "rnn_tanh",
    cells.RNN_RELU: "rnn_relu",
    cells.LSTM: "lstm",
    cells.GRU: "gru",
    cells.GRU_ORIGINAL: "gru_original",
}
"""The step of each built-in cell, and the name the converters' tables know it by."""

JAXRNN_FOR = {
    "lstm": "jaxrnn.lstm(H)",
    "gru": "jaxrnn.gru(H)",
    "rnn_tanh": "jaxrnn.rnn(H)",
    "rnn_relu": 'jaxrnn.rnn(H, "relu")',
}
"""How to make, in jaxrnn, each built-in cell that other libraries also have."""

LACKING = {
    "gru_original": "such GRU (reset_after=False, the reset gate applied before the recurrent "
    "matmul); use jaxrnn.gru(H), which applies it after the matmul",
    "rnn_tanh": "plain RNN cell",
    "rnn_relu": "plain RNN cell",
}
"""What a library lacks when it has no counterpart of a built-in cell."""

PARAMS = ("w_x", "w_h", "b", "b_hn")
"""The params of the built-in cells, in the order `cell.init` writes them."""


def builtin(cell: Cell) -> str | None:
    """Which built-in equations `cell` computes, recognised by its step, or `None`."""
    # Compared, not looked up: a step need not be hashable.
    return next((kind for step, kind in BUILTIN.items() if step == cell.step), None)


def check_built_in(
    cell: Any, function: str, supported: Mapping[str, str], library: str, name: str = "cell"
) -> str:
    """The built-in kind of `cell`, or an error unless it is a key of `supported` (kind ->
    the other library's class); `name` is what the caller calls `cell`."""
    kind = builtin(checks.cell(cell, name))
    if kind in supported:
        return kind
    if kind is not None:
        raise ValueError(
            f"{function} cannot convert cell {cell.name!r}: {library} has no {LACKING[kind]}"
        )
    kinds = ", ".join(f"{JAXRNN_FOR[k]} ({cls})" for k, cls in supported.items())
    raise ValueError(
        f"{function} supports the built-in cells {kinds}, recognised by their step; "
        f"cell {cell.name!r} has another step"
    )


def to_numpy(value: Any, name: str) -> np.ndarray:
    """`value` as a NumPy array with a real floating dtype; torch tensors via `.detach()`."""
    if hasattr(value, "detach"):
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as e:
            raise TypeError(
                f"{name} is a tensor of dtype {getattr(value, 'dtype', '?')} that NumPy cannot "
                f"hold; convert it first, e.g. tensor.float()"
            ) from e
    return checks.float_array(value, name, numpy=True)


def check_jax_can_hold(dtype: np.dtype, where: str) -> None:
    """Raise unless JAX stores `dtype` as it is (float64 needs `jax_enable_x64`)."""
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise TypeError(
            f"{where} is {dtype} but JAX would store it as "
            f"{jax.dtypes.canonicalize_dtype(dtype)} because jax_enable_x64 is off; enable it "
            f"(jax.config.update('jax_enable_x64', True)) or pass dtype=jnp.float32"
        )


def as_jax(value: Any, name: str) -> jax.Array:
    """`value` as a JAX array with a real floating dtype; JAX arrays (and tracers) pass as is."""
    if isinstance(value, jax.Array):
        return checks.float_array(value, name)
    arr = to_numpy(value, name)
    check_jax_can_hold(arr.dtype, f"the dtype of {name}")
    return jnp.asarray(arr)


def read(
    values: Mapping[str, Any],
    shapes: Mapping[str, Sequence[int | str]],
    context: str,
    *,
    dtype: Any = None,
    sizes: Mapping[str, tuple[int, str]] | None = None,
    as_array: Callable[[Any, str], Any] = as_jax,
) -> dict[str, Any]:
    """The arrays of one cell: `values` (name in messages -> array-like) as `as_array`
    makes them, of one floating dtype and the shapes `shapes` gives (checked in its
    order; absent arrays skipped), each cast to `dtype` unless it is `None`.

    A str in a shape names a size: `sizes` may give it (name -> (size, where it comes
    from)), else the first array that has it fixes it for the others. `context` says
    what expects the shapes, e.g. "cell 'lstm' (hidden_size=4)".
    """
    arrays = {name: as_array(value, name) for name, value in values.items()}
    checks.same_dtype(arrays, "all arrays of one cell must share a dtype")
    known = dict(sizes or {})
    shapes = {name: shape for name, shape in shapes.items() if name in arrays}
    for name, shape in shapes.items():
        got = tuple(arrays[name].shape)
        want = tuple(known[d][0] if d in known else d for d in shape)
        fits = len(got) == len(want) and all(
            g == w if isinstance(w, int) else g >= 1 for g, w in zip(got, want, strict=True)
        )
        if not fits:
            where = "".join(f" with {d}={size} (from {src})" for d, (size, src) in known.items())
            expected = str(want).replace("'", "")
            raise ValueError(
                f"{name} has shape {checks.shape_str(got)} but {context}{where} expects {expected}"
            )
        for axis, d in enumerate(shape):
            if isinstance(d, str):
                known.setdefault(d, (got[axis], f"{name}.shape[{axis}]"))
    if dtype is None:
        return arrays
    checks.floating_dtype(dtype)
    check_jax_can_hold(np.dtype(jnp.dtype(dtype)), "dtype")
    return {name: arr.astype(dtype) for name, arr in arrays.items()}


def param_shapes(cell: Cell, input_size: int | str = "input_size") -> dict[str, tuple]:
    """The shapes of `cell`'s params in `cell.init`'s order: `w_x (input_size, G * H)`,
    `w_h (H, G * H)`, `b (G * H,)` and, for `gru`, `b_hn (H,)`."""
    template = checks.param_template(cell, 1, jnp.dtype(jnp.float32))
    shapes = {key: template[key].shape for key in PARAMS if key in template}
    return {**shapes, "w_x": (input_size, *shapes["w_x"][1:])}


def check_params(
    cell: Cell,
    params: Any,
    as_array: Callable[[Any, str], Any] = to_numpy,
    path: str = "params",
    sizes: Mapping[str, tuple[int, str]] | None = None,
) -> dict[str, Any]:
    """`params` by key, as `as_array` makes them (NumPy arrays by default), or an error if
    they do not fit `cell`; `path` names them in messages, `sizes` as in `read`."""
    shapes = param_shapes(cell)
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{path} must be the dict that {cell.name}.init returns, got {type(params).__name__}"
        )
    missing = sorted(set(shapes) - set(params))
    extra = sorted(map(str, set(params) - set(shapes)))
    if missing or extra:
        raise ValueError(
            f"{path} do not match {checks.label(cell)}: missing keys {missing}, unexpected keys "
            f"{extra}; expected keys {sorted(shapes)}"
        )
    values = {f"{path}[{key!r}]": params[key] for key in shapes}
    named = dict(zip(values, shapes.values(), strict=True))
    arrays = read(values, named, checks.label(cell), sizes=sizes, as_array=as_array)
    return dict(zip(shapes, arrays.values(), strict=True))


def require_zero(value: Any, name: str, why: str) -> None:
    """Raise unless every entry of the concrete arrays of the pytree `value` is zero; `why`
    says why."""
    try:
        values = [np.asarray(leaf) for leaf in jax.tree.leaves(value)]
    except jax.errors.TracerArrayConversionError as e:
        raise ValueError(
            f"{why}, so {name} must be zero; that cannot be checked on a traced value: "
            f"convert outside jax.jit"
        ) from e
    if any(np.any(leaf != 0) for leaf in values):
        raise ValueError(f"{name} has nonzero values, but {why}")


def split(value: Any, name: str, rule: str, size: int) -> list[tuple[str, Any]]:
    """The `size` parts of the tuple or list `value`, each with its name, or a `TypeError`
    that says `name` `rule`."""
    if not isinstance(value, (tuple, list)) or len(value) != size:
        raise TypeError(f"{name} {rule}, got {checks.describe(value)}")
    return [(f"{name}[{index}]", part) for index, part in enumerate(value)]


def carry_states(
    cell: Cell, carries: Sequence[tuple[str, Any]], order: str = "(h, c)"
) -> list[jax.Array]:
    """The states of the carries of `cell` in `carries` (name, carry), in order: an
    LSTM's pair in the order `order` names, another cell's one array; all `(*batch, H)`,
    of one shape and dtype."""
    lstm, H = builtin(cell) == "lstm", cell.hidden_size
    rule = f"a pair {order}" if lstm else f"one array h (*batch, {H})"
    rule = f"of cell {cell.name!r} must be {rule}"
    labels, parts = order.strip("()").split(", "), []
    for name, carry in carries:
        if lstm:
            pairs = zip(split(carry, name, rule, 2), labels, strict=True)
            parts += [(f"{part} ({label})", value) for (part, value), label in pairs]
        elif isinstance(carry, (tuple, list)):
            raise TypeError(f"{name} {rule}, got {checks.describe(carry)}")
        else:
            parts.append((name, carry))
    states = [as_jax(value, name) for name, value in parts]
    for (name, _), state in zip(parts, states, strict=True):
        if state.ndim < 1 or state.shape[-1] != H:
            raise ValueError(
                f"{name} has shape {checks.shape_str(state.shape)} but must be (*batch, {H}) "
                f"= (*batch, hidden_size)"
            )
        checks.like(state, name, states[0], parts[0][0], "is a state of the same carry")
    return states
