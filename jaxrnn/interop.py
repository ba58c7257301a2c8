"""Move weights between jaxrnn cells and PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU`.

PyTorch stores one layer direction of a recurrent module under four names that
end in a suffix, `_l{layer}` or `_l{layer}_reverse`:

| PyTorch key          | shape             | jaxrnn param                          |
|----------------------|-------------------|---------------------------------------|
| `weight_ih{suffix}`  | `(G * H, I)`      | `w_x = weight_ih.T`, `(I, G * H)`     |
| `weight_hh{suffix}`  | `(G * H, H)`      | `w_h = weight_hh.T`, `(H, G * H)`     |
| `bias_ih{suffix}`    | `(G * H,)`        | `b = bias_ih + bias_hh`               |
| `bias_hh{suffix}`    | `(G * H,)`        | (GRU: `b_hn = bias_hh[2H:]`)          |

with `G` gates (1 for `nn.RNN`, 4 for `nn.LSTM`, 3 for `nn.GRU`) in the same
order in both libraries, `H` the hidden size and `I` the input size. The two
biases of `nn.RNN` and `nn.LSTM` are always summed, so they fold into one `b`.
`nn.GRU` multiplies the candidate's recurrent bias by the reset gate, so that
part stays separate: `b = bias_ih + [bias_hh_r, bias_hh_z, 0]`,
`b_hn = bias_hh_n`. jaxrnn's `gru(H, reset_after=False)` has no PyTorch
counterpart.

Everything here works on NumPy arrays, so torch is not needed to convert:
`torch.save` a state dict's `.numpy()` arrays, or pass the state dict itself
(tensors are converted with `.detach().cpu().numpy()` without importing torch).
A multi-layer or bidirectional module is one cell per layer and direction;
`jaxrnn.unroll(..., reverse=True)` runs the `_reverse` half.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn.cells import Cell, Params

__all__ = ["from_torch", "to_torch"]

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
_TORCH_CLASS = {1: "nn.RNN", 3: "nn.GRU", 4: "nn.LSTM"}
_SUFFIX = re.compile(r"_l\d+(_reverse)?")


def _check_cell(cell: Any, function: str) -> int:
    """The gate count of `cell`, or an error if PyTorch has no module like it."""
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), got {type(cell).__name__}"
        )
    if cell.name == "gru_original":
        raise ValueError(
            f"{function} cannot convert cell 'gru_original' (jaxrnn.gru(H, reset_after=False)): "
            f"PyTorch has no such GRU, torch.nn.GRU applies the reset gate after the recurrent "
            f"matmul; use jaxrnn.gru(H) (reset_after=True) for PyTorch weights"
        )
    if cell.name not in _GATES:
        kinds = ", ".join(repr(k) for k in _GATES)
        raise ValueError(
            f"{function} supports the built-in cells whose cell.name is one of {kinds} "
            f"(torch.nn.RNN, nn.LSTM, nn.GRU); got cell.name {cell.name!r}"
        )
    return _GATES[cell.name]


def _check_suffix(suffix: Any) -> str:
    if not isinstance(suffix, str):
        raise TypeError(
            f"suffix must be a str such as '_l0', '_l1' or '_l0_reverse', "
            f"got {type(suffix).__name__} {suffix!r}"
        )
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(
            f"suffix must be '_l<layer>' or '_l<layer>_reverse' (PyTorch's naming, e.g. '_l0', "
            f"'_l1', '_l0_reverse'), got {suffix!r}"
        )
    return suffix


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """`value` as a NumPy array with a real floating dtype; torch tensors via `.detach()`."""
    if hasattr(value, "detach"):
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as e:
            raise TypeError(
                f"{name} is a tensor of dtype {getattr(value, 'dtype', '?')} that NumPy cannot "
                f"hold; convert it first, e.g. tensor.float()"
            ) from e
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}") from e
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a real floating dtype (float32, float64, bfloat16, float16), "
            f"got {arr.dtype}"
        )
    return arr


def _check_jax_can_hold(dtype: np.dtype, where: str) -> None:
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise TypeError(
            f"{where} is {dtype} but JAX would store it as "
            f"{jax.dtypes.canonicalize_dtype(dtype)} because jax_enable_x64 is off; enable it "
            f"(jax.config.update('jax_enable_x64', True)) or pass dtype=jnp.float32"
        )


def _add_exact(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # `x + 0.0` turns -0.0 into +0.0; keeping `x` where `y` is zero makes
    # from_torch(to_torch(params)) bit-identical, and changes no other value.
    return np.where(y == 0, x, x + y)


def _shape_hint(weight_hh: np.ndarray) -> str:
    rows, cols = weight_hh.shape
    if cols and rows % cols == 0 and rows // cols in _TORCH_CLASS:
        gates = rows // cols
        return f" (weight_hh looks like a torch {_TORCH_CLASS[gates]} with hidden_size={cols})"
    return ""


def from_torch(
    cell: Cell, state_dict: Mapping[str, Any], suffix: str = "_l0", *, dtype: Any = None
) -> Params:
    """Params for `cell` from one layer direction of a PyTorch recurrent module.

    Reads `weight_ih{suffix}`, `weight_hh{suffix}`, `bias_ih{suffix}` and
    `bias_hh{suffix}` from `state_dict` (other keys are ignored, so a whole
    module's state dict can be passed once per layer and direction) and lays
    them out as `cell.init` would: `w_x = weight_ih.T`, `w_h = weight_hh.T`,
    `b = bias_ih + bias_hh` for `rnn` and `lstm`; for `gru`,
    `b = bias_ih + [bias_hh_r, bias_hh_z, 0]` and `b_hn = bias_hh_n`. A module
    built with `bias=False` has no bias keys; the biases are then zeros.

    With `G` the gate count (1 rnn, 4 lstm, 3 gru), `H = cell.hidden_size` and
    `I` the input size, which is read off `weight_ih`.

    Args:
      cell: `jaxrnn.rnn(H, "tanh" | "relu")`, `jaxrnn.lstm(H)` or `jaxrnn.gru(H)`
        (`reset_after=True`), matching the module's class and `nonlinearity`.
      state_dict: a mapping with `weight_ih{suffix}` `(G * H, I)`,
        `weight_hh{suffix}` `(G * H, H)` and, unless the module has no biases,
        `bias_ih{suffix}` and `bias_hh{suffix}` `(G * H,)`. Values may be NumPy
        arrays, anything `np.asarray` accepts, or torch tensors (`module.state_dict()`
        itself); all must share one floating dtype.
      suffix: which layer and direction: `"_l0"`, `"_l1"`, `"_l0_reverse"`, ...
      dtype: the dtype of the returned params; `None` keeps the arrays' dtype.
        Each array is cast before the biases are summed, as `module.to(dtype)`
        would.

    Returns:
      A params dict for `cell`: `w_x (I, G * H)`, `w_h (H, G * H)`, `b (G * H,)`,
      and for `gru` also `b_hn (H,)`, as JAX arrays.

    Raises:
      TypeError: `cell` is not a `Cell`, `state_dict` is not a mapping, a value
        is not a floating array, the arrays' dtypes differ, or the dtype needs
        `jax_enable_x64`.
      ValueError: `cell` has no PyTorch counterpart, `suffix` is malformed, a key
        is missing, or a shape disagrees with `cell.hidden_size` and the gate count.

    Example:
      >>> import numpy as np, jaxrnn as jr
      >>> H, I = 4, 3
      >>> rng = np.random.default_rng(0)
      >>> state_dict = {                       # torch.nn.LSTM(I, H).state_dict(), as NumPy
      ...     "weight_ih_l0": rng.standard_normal((4 * H, I), dtype=np.float32),
      ...     "weight_hh_l0": rng.standard_normal((4 * H, H), dtype=np.float32),
      ...     "bias_ih_l0": rng.standard_normal(4 * H, dtype=np.float32),
      ...     "bias_hh_l0": rng.standard_normal(4 * H, dtype=np.float32),
      ... }
      >>> params = jr.interop.from_torch(jr.lstm(H), state_dict)
      >>> {k: v.shape for k, v in sorted(params.items())}
      {'b': (16,), 'w_h': (4, 16), 'w_x': (3, 16)}
      >>> bool(np.all(params["w_x"] == state_dict["weight_ih_l0"].T))
      True
    """
    gates = _check_cell(cell, "from_torch")
    suffix = _check_suffix(suffix)
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to arrays (module.state_dict()), "
            f"got {type(state_dict).__name__}"
        )
    H, GH = cell.hidden_size, gates * cell.hidden_size
    context = f"cell {cell.name!r} (hidden_size={H}, {gates} gate{'s' * (gates > 1)})"
    names = {part: f"{part}{suffix}" for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def missing(key: str) -> ValueError:
        return ValueError(
            f"state_dict has no key {key!r} (suffix={suffix!r}); keys present: "
            f"{sorted(map(str, state_dict))}"
        )

    for part in ("weight_ih", "weight_hh"):
        if names[part] not in state_dict:
            raise missing(names[part])
    has_bias = [names[p] in state_dict for p in ("bias_ih", "bias_hh")]
    if any(has_bias) and not all(has_bias):
        raise missing(names["bias_hh"] if has_bias[0] else names["bias_ih"])
    if f"weight_hr{suffix}" in state_dict:
        raise ValueError(
            f"state_dict has 'weight_hr{suffix}': an nn.LSTM with proj_size > 0, which jaxrnn's "
            f"lstm does not have"
        )

    arrays = {
        key: _to_numpy(state_dict[key], f"state_dict[{key!r}]")
        for key in names.values()
        if key in state_dict
    }
    first = names["weight_ih"]
    for key, arr in arrays.items():
        if arr.dtype != arrays[first].dtype:
            raise TypeError(
                f"state_dict[{key!r}] has dtype {arr.dtype} but state_dict[{first!r}] has "
                f"dtype {arrays[first].dtype}; all arrays of one layer must share a dtype"
            )

    w_ih, w_hh = arrays[names["weight_ih"]], arrays[names["weight_hh"]]
    if w_hh.ndim != 2 or w_hh.shape != (GH, H):
        hint = _shape_hint(w_hh) if w_hh.ndim == 2 else ""
        raise ValueError(
            f"state_dict[{names['weight_hh']!r}] has shape {_checks.shape_str(w_hh.shape)} but "
            f"{context} expects {_checks.shape_str((GH, H))} = (gates * hidden_size, "
            f"hidden_size){hint}"
        )
    if w_ih.ndim != 2 or w_ih.shape[0] != GH or w_ih.shape[1] < 1:
        raise ValueError(
            f"state_dict[{names['weight_ih']!r}] has shape {_checks.shape_str(w_ih.shape)} but "
            f"{context} expects ({GH}, input_size) = (gates * hidden_size, input_size)"
        )
    for part in ("bias_ih", "bias_hh"):
        key = names[part]
        if key in arrays and arrays[key].shape != (GH,):
            raise ValueError(
                f"state_dict[{key!r}] has shape {_checks.shape_str(arrays[key].shape)} but "
                f"{context} expects ({GH},) = (gates * hidden_size,)"
            )

    if dtype is None:
        target = w_ih.dtype
        _check_jax_can_hold(target, f"the dtype of state_dict[{first!r}]")
    else:
        _checks.floating_dtype(dtype)
        target = np.dtype(jnp.dtype(dtype))
        _check_jax_can_hold(target, "dtype")
    arrays = {key: arr.astype(target, copy=False) for key, arr in arrays.items()}
    if has_bias[0]:
        b_ih, b_hh = arrays[names["bias_ih"]], arrays[names["bias_hh"]]
    else:
        b_ih = b_hh = np.zeros((GH,), target)

    params = {"w_x": arrays[names["weight_ih"]].T, "w_h": arrays[names["weight_hh"]].T}
    if cell.name == "gru":
        folded = np.concatenate([b_hh[: 2 * H], np.zeros((H,), target)])
        params["b"] = _add_exact(b_ih, folded)
        params["b_hn"] = b_hh[2 * H :]
    else:
        params["b"] = _add_exact(b_ih, b_hh)
    return {key: jnp.asarray(value) for key, value in params.items()}


def _check_params(cell: Cell, params: Any) -> dict[str, np.ndarray]:
    """`params` as NumPy arrays, or an error if they do not fit `cell`."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be the dict that {cell.name}.init returns, got {type(params).__name__}"
        )
    if "w_x" not in params:
        raise ValueError(f"params has no key 'w_x'; keys present: {sorted(map(str, params))}")
    w_x = _to_numpy(params["w_x"], "params['w_x']")
    if w_x.ndim != 2 or w_x.shape[0] < 1:
        raise ValueError(
            f"params['w_x'] has shape {_checks.shape_str(w_x.shape)} but must be "
            f"(input_size, gates * hidden_size)"
        )
    expected = _checks.param_template(cell, int(w_x.shape[0]), jnp.dtype(jnp.float32))
    context = f"cell {cell.name!r} (hidden_size={cell.hidden_size})"
    missing = sorted(set(expected) - set(params))
    extra = sorted(map(str, set(params) - set(expected)))
    if missing or extra:
        raise ValueError(
            f"params do not match {context}: missing keys {missing}, unexpected keys {extra}; "
            f"expected keys {sorted(expected)}"
        )
    arrays = {key: _to_numpy(params[key], f"params[{key!r}]") for key in expected}
    for key, want in expected.items():
        got = arrays[key]
        if got.shape != want.shape:
            raise ValueError(
                f"params[{key!r}] has shape {_checks.shape_str(got.shape)} but {context} with "
                f"input_size={w_x.shape[0]} (from params['w_x'].shape[0]) expects "
                f"{_checks.shape_str(want.shape)}"
            )
        if got.dtype != w_x.dtype:
            raise TypeError(
                f"params[{key!r}] has dtype {got.dtype} but params['w_x'] has dtype "
                f"{w_x.dtype}; all params must share one dtype"
            )
    return arrays


def to_torch(cell: Cell, params: Params, suffix: str = "_l0") -> dict[str, np.ndarray]:
    """One layer direction of a PyTorch state dict, from a cell's params.

    The inverse of `from_torch`: `weight_ih = w_x.T`, `weight_hh = w_h.T`,
    `bias_ih = b` and `bias_hh` all zeros, except for `gru` where its candidate
    part `bias_hh[2H:]` is `b_hn`. `from_torch(cell, to_torch(cell, params))`
    equals `params` bit for bit. The arrays are fresh, C-contiguous and
    writable, so `torch.from_numpy` takes them as they are:

    ```python
    module = torch.nn.LSTM(input_size, hidden_size)  # bias=True (the default)
    state = jaxrnn.interop.to_torch(cell, params)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    ```

    For several layers or both directions, merge the dicts
    (`{**to_torch(fwd, p_fwd, "_l0"), **to_torch(bwd, p_bwd, "_l0_reverse")}`)
    before loading, or load each with `strict=False`. The target module needs
    `bias=True`: a `bias=False` module cannot hold `b`. `torch.from_numpy` does
    not take bfloat16; cast such params to float32 first.

    Args:
      cell: `jaxrnn.rnn(H, ...)`, `jaxrnn.lstm(H)` or `jaxrnn.gru(H)` (`reset_after=True`).
      params: the cell's params as `cell.init` makes them: `w_x (I, G * H)`,
        `w_h (H, G * H)`, `b (G * H,)` and for `gru` `b_hn (H,)`, one floating dtype.
      suffix: the layer and direction to name: `"_l0"`, `"_l1"`, `"_l0_reverse"`, ...

    Returns:
      `{weight_ih{suffix}: (G * H, I), weight_hh{suffix}: (G * H, H),
      bias_ih{suffix}: (G * H,), bias_hh{suffix}: (G * H,)}` as NumPy arrays in
      the params' dtype.

    Raises:
      TypeError: `cell` is not a `Cell`, `params` is not a dict of floating
        arrays, or its arrays' dtypes differ.
      ValueError: `cell` has no PyTorch counterpart, `suffix` is malformed, or a
        key or shape of `params` does not fit `cell`.

    Example:
      >>> import jax, numpy as np, jaxrnn as jr
      >>> cell = jr.gru(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> state = jr.interop.to_torch(cell, params, suffix="_l0")
      >>> {k: v.shape for k, v in state.items()}
      {'weight_ih_l0': (12, 3), 'weight_hh_l0': (12, 4), 'bias_ih_l0': (12,), 'bias_hh_l0': (12,)}
      >>> back = jr.interop.from_torch(cell, state)
      >>> all(bool(np.array_equal(back[k], params[k])) for k in params)
      True
    """
    _check_cell(cell, "to_torch")
    suffix = _check_suffix(suffix)
    arrays = _check_params(cell, params)
    H = cell.hidden_size
    bias_hh = np.zeros_like(arrays["b"])
    if cell.name == "gru":
        bias_hh[2 * H :] = arrays["b_hn"]
    return {
        f"weight_ih{suffix}": np.array(arrays["w_x"].T, order="C"),
        f"weight_hh{suffix}": np.array(arrays["w_h"].T, order="C"),
        f"bias_ih{suffix}": np.array(arrays["b"]),
        f"bias_hh{suffix}": bias_hh,
    }
