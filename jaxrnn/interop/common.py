"""What the PyTorch, Flax and Equinox converters share: recognising a built-in cell by
its step, and checking the arrays they are given."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def builtin(cell: Cell) -> str | None:
    """Which built-in equations `cell` computes, recognised by its step, or `None`."""
    try:
        return BUILTIN.get(cell.step)
    except TypeError:  # an unhashable step is not a built-in one
        return None


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
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise TypeError(
            f"{where} is {dtype} but JAX would store it as "
            f"{jax.dtypes.canonicalize_dtype(dtype)} because jax_enable_x64 is off; enable it "
            f"(jax.config.update('jax_enable_x64', True)) or pass dtype=jnp.float32"
        )


JAXRNN_FOR = {
    "lstm": "jaxrnn.lstm(H)",
    "gru": "jaxrnn.gru(H)",
    "rnn_tanh": "jaxrnn.rnn(H)",
    "rnn_relu": 'jaxrnn.rnn(H, "relu")',
}

# Flax cells whose maths no jaxrnn cell has, recognised by their param names.


def as_jax(value: Any, name: str) -> jax.Array:
    """`value` as a JAX array with a real floating dtype; JAX arrays (and tracers) pass as is."""
    if isinstance(value, jax.Array):
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise TypeError(
                f"{name} must have a real floating dtype (float32, float64, bfloat16, float16), "
                f"got {value.dtype}"
            )
        return value
    arr = to_numpy(value, name)
    check_jax_can_hold(arr.dtype, f"the dtype of {name}")
    return jnp.asarray(arr)


def same_dtype(arrays: Mapping[str, Any]) -> Any:
    return checks.same_dtype(arrays, "all arrays of one cell must share a dtype")


def target_dtype(dtype: Any, found: Any) -> Any:
    if dtype is None:
        return found
    checks.floating_dtype(dtype)
    target = np.dtype(jnp.dtype(dtype))
    check_jax_can_hold(target, "dtype")
    return target


def require_zero(value: jax.Array, name: str, why: str) -> None:
    try:
        values = np.asarray(value)
    except jax.errors.TracerArrayConversionError as e:
        raise ValueError(
            f"{why}, so {name} must be zero; that cannot be checked on a traced value: "
            f"convert outside jax.jit"
        ) from e
    if np.any(values != 0):
        raise ValueError(f"{name} has nonzero values, but {why}")


def check_built_in(cell: Any, function: str, supported: Mapping[str, str], library: str) -> None:
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), got {type(cell).__name__}"
        )
    if builtin(cell) == "gru_original":
        raise ValueError(
            f"{function} cannot convert cell 'gru_original' (jaxrnn.gru(H, reset_after=False)): "
            f"{library}'s GRU applies the reset gate after the recurrent matmul, "
            f"n = tanh(x W_in + b_in + r * (h W_hn + b_hn)); use jaxrnn.gru(H) (reset_after=True)"
        )
    if builtin(cell) not in supported:
        kinds = ", ".join(f"{JAXRNN_FOR.get(k, k)} ({cls})" for k, cls in supported.items())
        raise ValueError(
            f"{function} supports the built-in cells {kinds}, recognised by their step; "
            f"cell {cell.name!r} has another step"
        )


def check_params(
    cell: Cell, params: Any, as_array: Callable[[Any, str], Any] = to_numpy
) -> dict[str, Any]:
    """`params` as `as_array` makes them (NumPy arrays by default), or an error if they
    do not fit `cell`."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be the dict that {cell.name}.init returns, got {type(params).__name__}"
        )
    if "w_x" not in params:
        raise ValueError(f"params has no key 'w_x'; keys present: {sorted(map(str, params))}")
    w_x = as_array(params["w_x"], "params['w_x']")
    if w_x.ndim != 2 or w_x.shape[0] < 1:
        raise ValueError(
            f"params['w_x'] has shape {checks.shape_str(w_x.shape)} but must be "
            f"(input_size, gates * hidden_size)"
        )
    expected = checks.param_template(cell, int(w_x.shape[0]), jnp.dtype(jnp.float32))
    context = f"cell {cell.name!r} (hidden_size={cell.hidden_size})"
    missing = sorted(set(expected) - set(params))
    extra = sorted(map(str, set(params) - set(expected)))
    if missing or extra:
        raise ValueError(
            f"params do not match {context}: missing keys {missing}, unexpected keys {extra}; "
            f"expected keys {sorted(expected)}"
        )
    arrays = {key: as_array(params[key], f"params[{key!r}]") for key in expected}
    for key, want in expected.items():
        got = arrays[key]
        if got.shape != want.shape:
            raise ValueError(
                f"params[{key!r}] has shape {checks.shape_str(got.shape)} but {context} with "
                f"input_size={w_x.shape[0]} (from params['w_x'].shape[0]) expects "
                f"{checks.shape_str(want.shape)}"
            )
        if got.dtype != w_x.dtype:
            raise TypeError(
                f"params[{key!r}] has dtype {got.dtype} but params['w_x'] has dtype "
                f"{w_x.dtype}; all params must share one dtype"
            )
    return arrays
