"""Move weights between jaxrnn cells and PyTorch, Flax and Equinox recurrent cells.

Each library has a `from_*` function that returns params for a jaxrnn cell and a
`to_*` function that lays them out for the other library, so a trained model
moves in either direction and gives the same outputs. `from_x(cell, to_x(cell,
params))` gives back `params` bit for bit.

## PyTorch

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
`jaxrnn.unroll(..., reverse=True)` runs the `_reverse` half. `from_torch` and
`to_torch` also take a `jaxrnn.bidirectional` layer (both directions of one
layer) and a `jaxrnn.stack` (a whole module); `carry_from_torch` and
`carry_to_torch` convert PyTorch's `h_n`/`c_n`, `(num_layers * num_directions,
*batch, H)` with index `num_directions * layer + direction`, to and from
jaxrnn carries.

## Flax

Flax's cells keep one `Dense` (linen) or `Linear` (nnx) layer per gate or per
side, each a dict with a `kernel` laid out for `x @ kernel` and, for some, a
`bias`, with jaxrnn's gate order. Writing `[a, b]` for a concatenation along
the last axis and `a.kernel` for `flax_params["a"]["kernel"]`:

- `linen.LSTMCell` and `linen.OptimizedLSTMCell` (one layout) to `lstm(H)`:
  `w_x = [ii, if, ig, io].kernel`, `w_h = [hi, hf, hg, ho].kernel`,
  `b = [hi, hf, hg, ho].bias`; `nnx.LSTMCell` the same with `if_` for `if`.
- `nnx.OptimizedLSTMCell` to `lstm(H)`: `w_x = dense_i.kernel`,
  `w_h = dense_h.kernel`, `b = dense_h.bias`.
- `linen.GRUCell` to `gru(H)`: `w_x = [ir, iz, in].kernel`,
  `b = [ir, iz, in].bias`, `w_h = [hr, hz, hn].kernel`, `b_hn = hn.bias`.
- `nnx.GRUCell` to `gru(H)`: `w_x = dense_i.kernel`, `b = dense_i.bias`,
  `w_h = dense_h.kernel`, `b_hn = 0` (it has no recurrent candidate bias).
- `linen.SimpleCell` to `rnn(H)`: `w_x = i.kernel`, `b = i.bias`,
  `w_h = h.kernel`; `nnx.SimpleCell`: `dense_i` for `i`, `dense_h` for `h`.

Every entry is a copy or a slice, so nothing is rounded. Flax's LSTM carry is
`(c, h)` where jaxrnn's is `(h, c)`: `from_flax_carry` and `to_flax_carry` swap
them. Flax's GRU is jaxrnn's `gru(H)` (`reset_after=True`); `nnx.GRUCell` has no
`b_hn`, so only params whose `b_hn` is zero go back to it. The defaults
`gate_fn=sigmoid` and `activation_fn=tanh` are assumed (a `SimpleCell` with
`activation_fn=relu` is `rnn(H, "relu")`); they are not part of the params, so
they cannot be checked. `linen.MGUCell`, `ConvLSTMCell` and `SimpleCell(residual=True)`
have no jaxrnn counterpart.

## Equinox

`equinox.nn.LSTMCell` and `equinox.nn.GRUCell` store weights for `W @ x`, with
jaxrnn's gate order and carry order `(h, c)`: `w_x = weight_ih.T`,
`w_h = weight_hh.T`, `b = bias` and for the GRU `b_hn = bias_n`, whose maths is
jaxrnn's `gru(H)`. A cell built with `use_bias=False` has zero biases.

Neither flax nor equinox is imported here: Flax params are nested dicts of
arrays, and an Equinox cell is read by attribute (`to_equinox` uses the
`equinox` module that made the cell it is given). The Flax and Equinox
converters use only `jax.numpy` slices, concatenations and transposes, so they
also run under `jax.jit` and `jax.grad`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import cells, checks
from jaxrnn.cell import Cell, Params
from jaxrnn.layers import Bidirectional, Stack

__all__ = [
    "carry_from_torch",
    "carry_to_torch",
    "from_equinox",
    "from_flax",
    "from_flax_carry",
    "from_torch",
    "to_equinox",
    "to_flax",
    "to_flax_carry",
    "to_torch",
]

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
_BUILTIN = {
    cells.RNN_TANH: "rnn_tanh",
    cells.RNN_RELU: "rnn_relu",
    cells.LSTM: "lstm",
    cells.GRU: "gru",
    cells.GRU_ORIGINAL: "gru_original",
}


def _builtin(cell: Cell) -> str | None:
    """Which built-in equations `cell` computes, recognised by its step, or `None`."""
    try:
        return _BUILTIN.get(cell.step)
    except TypeError:  # an unhashable step is not a built-in one
        return None


_TORCH_CLASS = {1: "nn.RNN", 3: "nn.GRU", 4: "nn.LSTM"}
_SUFFIX = re.compile(r"_l\d+(_reverse)?")


def _check_cell(cell: Any, function: str) -> int:
    """The gate count of `cell`, or an error if PyTorch has no module like it."""
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), got {type(cell).__name__}"
        )
    if _builtin(cell) == "gru_original":
        raise ValueError(
            f"{function} cannot convert cell 'gru_original' (jaxrnn.gru(H, reset_after=False)): "
            f"PyTorch has no such GRU, torch.nn.GRU applies the reset gate after the recurrent "
            f"matmul; use jaxrnn.gru(H) (reset_after=True) for PyTorch weights"
        )
    if _builtin(cell) not in _GATES:
        raise ValueError(
            f"{function} supports the built-in cells jaxrnn.rnn, lstm and gru (torch.nn.RNN, "
            f"nn.LSTM, nn.GRU), recognised by their step; cell {cell.name!r} has another step"
        )
    return _GATES[_builtin(cell)]


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
    layer_or_cell: Cell | Bidirectional | Stack,
    state_dict: Mapping[str, Any],
    suffix: str = "_l0",
    *,
    dtype: Any = None,
) -> Any:
    """Params for a cell, bidirectional layer or stack from a PyTorch recurrent module.

    For a cell, this reads one layer direction, named by `suffix`; a
    `Bidirectional` layer reads both directions of the layer `suffix` names
    (`"_l1"` reads `_l1` and `_l1_reverse`) into `{"fwd": ..., "bwd": ...}`; a
    `Stack` reads a whole `nn.LSTM/GRU/RNN(num_layers=L, bidirectional=...)`,
    layer `i` from `_l{i}` (and `_l{i}_reverse`), into `{"layers": [...]}`, the
    structure `stack.init` gives. A stack must look like one PyTorch module: one
    kind of cell and hidden size throughout, every layer bidirectional (merge
    `"concat"`) or none, and `residual=False`. With `learn_initial_carry=True`
    its `params["initial_carry"]` are zeros, PyTorch's default initial state.
    The cell's rule follows.

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
      layer_or_cell: `jaxrnn.rnn(H, "tanh" | "relu")`, `jaxrnn.lstm(H)` or
        `jaxrnn.gru(H)` (`reset_after=True`), matching the module's class and
        `nonlinearity`; or a `jaxrnn.bidirectional` layer or `jaxrnn.stack` of them.
      state_dict: a mapping with `weight_ih{suffix}` `(G * H, I)`,
        `weight_hh{suffix}` `(G * H, H)` and, unless the module has no biases,
        `bias_ih{suffix}` and `bias_hh{suffix}` `(G * H,)`. Values may be NumPy
        arrays, anything `np.asarray` accepts, or torch tensors (`module.state_dict()`
        itself); all must share one floating dtype.
      suffix: which layer and direction: `"_l0"`, `"_l1"`, `"_l0_reverse"`, ...
        For a bidirectional layer only the layer, `"_l<layer>"`; a stack needs
        the default.
      dtype: the dtype of the returned params; `None` keeps the arrays' dtype.
        Each array is cast before the biases are summed, as `module.to(dtype)`
        would.

    Returns:
      A params dict for a cell: `w_x (I, G * H)`, `w_h (H, G * H)`, `b (G * H,)`,
      and for `gru` also `b_hn (H,)`, as JAX arrays; for a layer, the structure
      its `init` returns, with such dicts as leaves.

    Raises:
      TypeError: `cell` is not a `Cell`, `state_dict` is not a mapping, a value
        is not a floating array, the arrays' dtypes differ, or the dtype needs
        `jax_enable_x64`.
      ValueError: `cell` has no PyTorch counterpart, `suffix` is malformed, a key
        is missing, or a shape disagrees with `cell.hidden_size` and the gate count;
        for a layer also: it matches no single PyTorch module, the state dict has
        another number of layers or directions, or a `suffix` is given to a stack.

    Examples:
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
      >>> net = jr.stack([jr.lstm(H)])            # a whole torch.nn.LSTM(I, H, num_layers=1)
      >>> sorted(jr.interop.from_torch(net, state_dict)["layers"][0])
      ['b', 'w_h', 'w_x']
    """
    if isinstance(layer_or_cell, (Bidirectional, Stack)):
        return _layer_from_torch(layer_or_cell, state_dict, suffix, dtype)
    cell = layer_or_cell
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
            f"state_dict[{names['weight_hh']!r}] has shape {checks.shape_str(w_hh.shape)} but "
            f"{context} expects {checks.shape_str((GH, H))} = (gates * hidden_size, "
            f"hidden_size){hint}"
        )
    if w_ih.ndim != 2 or w_ih.shape[0] != GH or w_ih.shape[1] < 1:
        raise ValueError(
            f"state_dict[{names['weight_ih']!r}] has shape {checks.shape_str(w_ih.shape)} but "
            f"{context} expects ({GH}, input_size) = (gates * hidden_size, input_size)"
        )
    for part in ("bias_ih", "bias_hh"):
        key = names[part]
        if key in arrays and arrays[key].shape != (GH,):
            raise ValueError(
                f"state_dict[{key!r}] has shape {checks.shape_str(arrays[key].shape)} but "
                f"{context} expects ({GH},) = (gates * hidden_size,)"
            )

    if dtype is None:
        target = w_ih.dtype
        _check_jax_can_hold(target, f"the dtype of state_dict[{first!r}]")
    else:
        checks.floating_dtype(dtype)
        target = np.dtype(jnp.dtype(dtype))
        _check_jax_can_hold(target, "dtype")
    arrays = {key: arr.astype(target, copy=False) for key, arr in arrays.items()}
    if has_bias[0]:
        b_ih, b_hh = arrays[names["bias_ih"]], arrays[names["bias_hh"]]
    else:
        b_ih = b_hh = np.zeros((GH,), target)

    params = {"w_x": arrays[names["weight_ih"]].T, "w_h": arrays[names["weight_hh"]].T}
    if _builtin(cell) == "gru":
        folded = np.concatenate([b_hh[: 2 * H], np.zeros((H,), target)])
        params["b"] = _add_exact(b_ih, folded)
        params["b_hn"] = b_hh[2 * H :]
    else:
        params["b"] = _add_exact(b_ih, b_hh)
    return {key: jnp.asarray(value) for key, value in params.items()}


def _check_params(
    cell: Cell, params: Any, as_array: Callable[[Any, str], Any] = _to_numpy
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


def to_torch(
    layer_or_cell: Cell | Bidirectional | Stack, params: Any, suffix: str = "_l0"
) -> dict[str, np.ndarray]:
    """A PyTorch state dict from the params of a cell, bidirectional layer or stack.

    A cell gives one layer direction, named by `suffix`; a `Bidirectional`
    layer both directions of the layer `suffix` names (`"_l0"` gives `_l0` and
    `_l0_reverse`); a `Stack` a whole module's state dict, layer `i` under
    `_l{i}`, which loads into `nn.LSTM/GRU/RNN(I, H, num_layers=L,
    bidirectional=...)` with `strict=True`. The stack must look like one
    PyTorch module (see `from_torch`); its learned initial carries, if any, must
    be zero (pass them as `h_0` with `carry_to_torch` otherwise). For a cell:

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
      layer_or_cell: `jaxrnn.rnn(H, ...)`, `jaxrnn.lstm(H)` or `jaxrnn.gru(H)`
        (`reset_after=True`), or a `jaxrnn.bidirectional` layer or `jaxrnn.stack` of them.
      params: the params as `layer_or_cell.init` makes them; for a cell
        `w_x (I, G * H)`, `w_h (H, G * H)`, `b (G * H,)` and for `gru` `b_hn (H,)`,
        one floating dtype.
      suffix: the layer and direction to name: `"_l0"`, `"_l1"`, `"_l0_reverse"`, ...
        For a bidirectional layer only the layer; a stack needs the default.

    Returns:
      `{weight_ih{suffix}: (G * H, I), weight_hh{suffix}: (G * H, H),
      bias_ih{suffix}: (G * H,), bias_hh{suffix}: (G * H,)}` as NumPy arrays in
      the params' dtype, for every layer and direction of a layer.

    Raises:
      TypeError: `cell` is not a `Cell`, `params` is not a dict of floating
        arrays, or its arrays' dtypes differ.
      ValueError: `cell` has no PyTorch counterpart, `suffix` is malformed, or a
        key or shape of `params` does not fit `cell`; for a layer also: it matches
        no single PyTorch module, or a learned initial carry is not zero.

    Examples:
      >>> import jax, numpy as np, jaxrnn as jr
      >>> cell = jr.gru(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> state = jr.interop.to_torch(cell, params, suffix="_l0")
      >>> {k: v.shape for k, v in state.items()}
      {'weight_ih_l0': (12, 3), 'weight_hh_l0': (12, 4), 'bias_ih_l0': (12,), 'bias_hh_l0': (12,)}
      >>> back = jr.interop.from_torch(cell, state)
      >>> all(bool(np.array_equal(back[k], params[k])) for k in params)
      True
      >>> net = jr.stack([jr.bidirectional(cell, cell)] * 2)  # nn.GRU(3, 4, 2, bidirectional=True)
      >>> state = jr.interop.to_torch(net, net.init(jax.random.key(0), input_size=3))
      >>> state["weight_ih_l1_reverse"].shape
      (12, 8)
    """
    if isinstance(layer_or_cell, (Bidirectional, Stack)):
        return _layer_to_torch(layer_or_cell, params, suffix)
    cell = layer_or_cell
    _check_cell(cell, "to_torch")
    suffix = _check_suffix(suffix)
    arrays = _check_params(cell, params)
    H = cell.hidden_size
    bias_hh = np.zeros_like(arrays["b"])
    if _builtin(cell) == "gru":
        bias_hh[2 * H :] = arrays["b_hn"]
    return {
        f"weight_ih{suffix}": np.array(arrays["w_x"].T, order="C"),
        f"weight_hh{suffix}": np.array(arrays["w_h"].T, order="C"),
        f"bias_ih{suffix}": np.array(arrays["b"]),
        f"bias_hh{suffix}": bias_hh,
    }


# --- PyTorch multi-layer and bidirectional modules --------------------------------------------

_TORCH_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?")


def _torch_layout(layer: Any, function: str) -> tuple[tuple[Cell | Bidirectional, ...], int]:
    """The layers of `layer` as a PyTorch module runs them, and its number of directions.

    An error unless one `nn.RNN`, `nn.LSTM` or `nn.GRU` matches `layer`: one kind of
    cell with one hidden size throughout, every layer bidirectional or none, and a
    bidirectional layer's two outputs concatenated where another layer reads them.
    """
    if isinstance(layer, Cell):
        _check_cell(layer, function)
        return (layer,), 1
    if isinstance(layer, Bidirectional):
        _check_bidirectional(layer, function, "layer_or_cell")
        return (layer,), 2
    if not isinstance(layer, Stack):
        raise TypeError(
            f"layer_or_cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), a bidirectional "
            f"layer (jaxrnn.bidirectional) or a stack (jaxrnn.stack); got {type(layer).__name__}"
        )
    if layer.residual:
        raise ValueError(
            f"{function} cannot convert a stack with residual=True: PyTorch's recurrent "
            f"modules have no residual connections, so the same weights would give other "
            f"outputs. Convert its layers one by one instead"
        )
    first = layer.layers[0]
    directions = 2 if isinstance(first, Bidirectional) else 1
    reference = first if isinstance(first, Cell) else first.fwd
    for index, item in enumerate(layer.layers):
        if isinstance(item, Bidirectional) != (directions == 2):
            raise ValueError(
                f"{function} needs every layer of a stack bidirectional or none, as in one "
                f"PyTorch module; layers[0] is {_kind(first)} but layers[{index}] is "
                f"{_kind(item)}"
            )
        if isinstance(item, Bidirectional):
            _check_bidirectional(item, function, f"layers[{index}]")
            if item.merge != "concat" and index < len(layer.layers) - 1:
                raise ValueError(
                    f"layers[{index}] is bidirectional with merge={item.merge!r}, but PyTorch's "
                    f"next layer reads both directions concatenated; use merge='concat'"
                )
        for cell in _layer_cells(item):
            _check_cell(cell, function)
            if (_builtin(cell), cell.hidden_size) != (_builtin(reference), reference.hidden_size):
                raise ValueError(
                    f"{function} needs one kind of cell with one hidden size in every layer, as "
                    f"in one PyTorch module; layers[0] has cell {reference.name!r} with "
                    f"hidden_size={reference.hidden_size} but layers[{index}] has "
                    f"{cell.name!r} with hidden_size={cell.hidden_size}"
                )
    return layer.layers, directions


def _check_bidirectional(layer: Bidirectional, function: str, name: str) -> None:
    fwd, bwd = layer.fwd, layer.bwd
    _check_cell(fwd, function)
    _check_cell(bwd, function)
    if (_builtin(fwd), fwd.hidden_size) != (_builtin(bwd), bwd.hidden_size):
        raise ValueError(
            f"{name} runs cell {fwd.name!r} (hidden_size={fwd.hidden_size}) forwards and "
            f"{bwd.name!r} (hidden_size={bwd.hidden_size}) backwards, but a bidirectional "
            f"PyTorch module has one kind and size in both directions"
        )


def _kind(layer: Cell | Bidirectional) -> str:
    return "bidirectional" if isinstance(layer, Bidirectional) else f"the cell {layer.name!r}"


def _layer_cells(layer: Cell | Bidirectional) -> tuple[Cell, ...]:
    return (layer,) if isinstance(layer, Cell) else (layer.fwd, layer.bwd)


def _layer_index(suffix: Any, function: str) -> int:
    """The layer number of a bidirectional layer's `suffix`, `'_l<layer>'`."""
    suffix = _check_suffix(suffix)
    if suffix.endswith("_reverse"):
        raise ValueError(
            f"{function} of a bidirectional layer reads both directions of one layer, so "
            f"suffix names the layer, e.g. '_l0' (for '_l0' and '_l0_reverse'); got {suffix!r}"
        )
    return int(suffix[2:])


def _stack_suffix(suffix: Any, function: str) -> None:
    if not (isinstance(suffix, str) and suffix == "_l0"):
        raise ValueError(
            f"{function} of a stack maps a whole module, layer i to the keys '_l<i>' (and "
            f"'_l<i>_reverse'), so suffix must be left at its default '_l0'; got {suffix!r}"
        )


def _check_torch_keys(state_dict: Mapping[str, Any], num_layers: int, directions: int) -> None:
    """An error unless `state_dict`'s recurrent keys are those of `num_layers` layers."""
    found: dict[tuple[int, bool], str] = {}
    for key in map(str, state_dict):
        match = _TORCH_KEY.fullmatch(key)
        if match:
            found.setdefault((int(match[2]), match[3] is not None), key)
    layers = sorted({index for index, _ in found})
    if layers and layers[-1] >= num_layers:
        extra = found.get((layers[-1], False)) or found[(layers[-1], True)]
        raise ValueError(
            f"state_dict has keys of layer {layers[-1]} (e.g. {extra!r}) but the stack has "
            f"{num_layers} layer{'s' * (num_layers > 1)}; a module with num_layers="
            f"{layers[-1] + 1} needs a stack of {layers[-1] + 1} layers"
        )
    for index in range(num_layers):
        reverse = found.get((index, True))
        if directions == 1 and reverse is not None:
            raise ValueError(
                f"state_dict has {reverse!r}: a bidirectional module, but the stack's layers "
                f"are cells; use jaxrnn.bidirectional layers (expected 1 direction, got 2)"
            )
        if directions == 2 and (index, False) in found and reverse is None:
            raise ValueError(
                f"state_dict has no key 'weight_ih_l{index}_reverse': the stack is "
                f"bidirectional but the module is not (expected 2 directions, got 1)"
            )


def _renamed(error: Exception, path: str) -> Exception:
    """`error` with the argument `params` it names renamed `path`, e.g. `params['layers'][1]`."""
    message = str(error)
    if message.startswith("params"):
        message = path + message[len("params") :]
    return type(error)(message.replace(" params[", f" {path}["))


def _bidirectional_from_torch(
    layer: Bidirectional, state_dict: Mapping[str, Any], index: int, dtype: Any
) -> dict[str, Params]:
    key = f"weight_ih_l{index}_reverse"
    if f"weight_ih_l{index}" in state_dict and key not in state_dict:
        raise ValueError(
            f"state_dict has no key {key!r}: the layer is bidirectional but the module is "
            f"not (expected 2 directions, got 1); keys present: {sorted(map(str, state_dict))}"
        )
    return {
        "fwd": from_torch(layer.fwd, state_dict, f"_l{index}", dtype=dtype),
        "bwd": from_torch(layer.bwd, state_dict, f"_l{index}_reverse", dtype=dtype),
    }


def _layer_from_torch(
    layer: Bidirectional | Stack, state_dict: Mapping[str, Any], suffix: Any, dtype: Any
) -> Any:
    layers, directions = _torch_layout(layer, "from_torch")
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to arrays (module.state_dict()), "
            f"got {type(state_dict).__name__}"
        )
    if isinstance(layer, Bidirectional):
        return _bidirectional_from_torch(
            layer, state_dict, _layer_index(suffix, "from_torch"), dtype
        )
    _stack_suffix(suffix, "from_torch")
    _check_torch_keys(state_dict, len(layers), directions)
    params: list[Any] = []
    dtype0 = None
    for index, item in enumerate(layers):
        if isinstance(item, Cell):
            entry: Any = from_torch(item, state_dict, f"_l{index}", dtype=dtype)
            w_x = entry["w_x"]
        else:
            entry = _bidirectional_from_torch(item, state_dict, index, dtype)
            w_x = entry["fwd"]["w_x"]
            if entry["bwd"]["w_x"].dtype != w_x.dtype:
                raise TypeError(
                    f"state_dict['weight_ih_l{index}_reverse'] has dtype "
                    f"{entry['bwd']['w_x'].dtype} but state_dict['weight_ih_l{index}'] has "
                    f"dtype {w_x.dtype}; all arrays must share a dtype"
                )
        if index > 0:
            want = _out(layers[index - 1])
            if w_x.shape[0] != want:
                raise ValueError(
                    f"state_dict['weight_ih_l{index}'] has shape "
                    f"{checks.shape_str(w_x.shape[::-1])} but layers[{index}] reads the "
                    f"{want} features of layers[{index - 1}]: expected "
                    f"({w_x.shape[1]}, {want})"
                )
            if w_x.dtype != dtype0:
                raise TypeError(
                    f"state_dict['weight_ih_l{index}'] has dtype {w_x.dtype} but "
                    f"state_dict['weight_ih_l0'] has dtype {dtype0}; all arrays must share a dtype"
                )
        else:
            dtype0 = w_x.dtype
        params.append(entry)
    result: dict[str, Any] = {"layers": params}
    if layer.learn_initial_carry:
        # PyTorch starts from zeros when no h_0 is given, as a fresh learned carry does.
        result["initial_carry"] = [item.initial_carry((), dtype0) for item in layers]
    return result


def _out(layer: Cell | Bidirectional) -> int:
    return layer.hidden_size if isinstance(layer, Cell) else layer.output_size


def _layer_to_torch(
    layer: Bidirectional | Stack, params: Any, suffix: Any
) -> dict[str, np.ndarray]:
    layers, _ = _torch_layout(layer, "to_torch")
    if isinstance(layer, Bidirectional):
        return _bidirectional_to_torch(layer, params, _layer_index(suffix, "to_torch"), "params")
    _stack_suffix(suffix, "to_torch")
    keys = ["initial_carry", "layers"] if layer.learn_initial_carry else ["layers"]
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be the dict that stack(...).init returns, with keys {keys}; "
            f"got {type(params).__name__}"
        )
    if sorted(map(str, params)) != keys:
        raise ValueError(
            f"params must have keys {keys} (the stack has learn_initial_carry="
            f"{layer.learn_initial_carry}); got keys {sorted(map(str, params))}"
        )
    entries = params["layers"]
    if not isinstance(entries, (list, tuple)) or len(entries) != len(layers):
        got = f"a {type(entries).__name__}" + (
            f" of {len(entries)}" if isinstance(entries, (list, tuple)) else ""
        )
        raise ValueError(
            f"params['layers'] must be a list of {len(layers)} entries, one per layer; got {got}"
        )
    if layer.learn_initial_carry:
        for index, carry in enumerate(params["initial_carry"]):
            for leaf in jax.tree.leaves(carry):
                _require_zero(
                    leaf,
                    f"params['initial_carry'][{index}]",
                    "a PyTorch module has no initial state of its own (it starts from zeros); "
                    "pass it as h_0 with carry_to_torch instead",
                )
    state: dict[str, np.ndarray] = {}
    dtype = None
    for index, (item, entry) in enumerate(zip(layers, entries, strict=True)):
        path = f"params['layers'][{index}]"
        if isinstance(item, Cell):
            try:
                part = to_torch(item, entry, f"_l{index}")
            except (TypeError, ValueError) as error:
                raise _renamed(error, path) from None
        else:
            part = _bidirectional_to_torch(item, entry, index, path)
        w = part[f"weight_ih_l{index}"]
        if index > 0 and w.shape[1] != _out(layers[index - 1]):
            raise ValueError(
                f"{path} reads {w.shape[1]} features (its w_x has shape "
                f"{checks.shape_str(w.shape[::-1])}) but layers[{index - 1}] outputs "
                f"{_out(layers[index - 1])}"
            )
        if dtype is not None and w.dtype != dtype:
            raise TypeError(
                f"{path} has dtype {w.dtype} but params['layers'][0] has dtype {dtype}; all "
                f"params must share one dtype"
            )
        dtype = w.dtype
        state.update(part)
    return state


def _bidirectional_to_torch(
    layer: Bidirectional, params: Any, index: int, path: str
) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or set(params) != {"fwd", "bwd"}:
        got = sorted(map(str, params)) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"{path} must be the dict that bidirectional(...).init returns, with keys "
            f"['bwd', 'fwd']; got {got}"
        )
    state = {}
    for part, cell, suffix in (
        ("fwd", layer.fwd, f"_l{index}"),
        ("bwd", layer.bwd, f"_l{index}_reverse"),
    ):
        try:
            state.update(to_torch(cell, params[part], suffix))
        except (TypeError, ValueError) as error:
            raise _renamed(error, f"{path}[{part!r}]") from None
    fwd, bwd = state[f"weight_ih_l{index}"], state[f"weight_ih_l{index}_reverse"]
    if fwd.shape != bwd.shape or fwd.dtype != bwd.dtype:
        raise ValueError(
            f"{path}['fwd'] and {path}['bwd'] must have one input size and dtype; their w_x "
            f"are {checks.shape_str(fwd.shape[::-1])} {fwd.dtype} and "
            f"{checks.shape_str(bwd.shape[::-1])} {bwd.dtype}"
        )
    return state


def _torch_state(value: Any, name: str) -> jax.Array:
    arr = _to_numpy(value, name)
    _check_jax_can_hold(arr.dtype, f"the dtype of {name}")
    return jnp.asarray(arr)


def carry_from_torch(layer_or_cell: Cell | Bidirectional | Stack, h_n: Any, c_n: Any = None) -> Any:
    """A jaxrnn carry from PyTorch's final (or initial) states `h_n` and `c_n`.

    PyTorch stacks the states of every layer and direction on a leading axis,
    index `num_directions * layer + direction` (direction 1 is `_reverse`). This
    splits them: a cell gets entry 0, a bidirectional layer the pair
    `(entries 0, 1)`, and a stack a list with one carry per layer. Use it to start
    a jaxrnn layer from a PyTorch `h_0` (and `c_0`), or to compare final states.

    Shapes: `L` layers, `D` directions (2 for a bidirectional layer or a stack
    of them, else 1), `H` the hidden size; `*batch` is `(N,)`, or `()` for
    PyTorch's unbatched input.

    Args:
      layer_or_cell: a cell, bidirectional layer or stack that `from_torch` accepts.
      h_n: `(L * D, *batch, H)`, the hidden states; a NumPy array or torch tensor.
      c_n: for an LSTM the cell states, `(L * D, *batch, H)`; otherwise `None`.

    Returns:
      A cell's carry (`h (*batch, H)`, or `(h, c)` for `lstm`), a bidirectional
      layer's `(fwd_carry, bwd_carry)`, or a stack's list of per-layer carries,
      as JAX arrays.

    Raises:
      TypeError: `layer_or_cell` is not a cell or layer, or a state is not a
        floating array.
      ValueError: the layer has no PyTorch counterpart, a shape disagrees with
        `L * D` and `H`, `c_n` is missing for an LSTM or given for another cell,
        or `h_n` and `c_n` differ in shape or dtype.

    Examples:
      >>> import numpy as np, jaxrnn as jr
      >>> net = jr.stack([jr.bidirectional(jr.gru(4), jr.gru(4))] * 2)
      >>> h_n = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(4, 3, 4)  # (L*D, N, H)
      >>> carries = jr.interop.carry_from_torch(net, h_n)
      >>> len(carries), carries[1][0].shape                        # layer 1, forward
      (2, (3, 4))
      >>> bool((carries[1][1] == h_n[3]).all())                    # layer 1, backward
      True
    """
    layers, directions = _torch_layout(layer_or_cell, "carry_from_torch")
    reference = _layer_cells(layers[0])[0]
    H, count = reference.hidden_size, len(layers) * directions
    lstm = _builtin(reference) == "lstm"
    names = ("h_n", "c_n") if lstm else ("h_n",)
    if lstm and c_n is None:
        raise ValueError("c_n must be given for an LSTM, (L * D, *batch, hidden_size); got None")
    if not lstm and c_n is not None:
        raise ValueError(
            f"c_n must be None for cell {reference.name!r}, whose carry is h alone; got "
            f"{type(c_n).__name__}"
        )
    states = []
    for name, value in zip(names, (h_n, c_n), strict=False):
        arr = _torch_state(value, name)
        if arr.ndim < 2 or arr.shape[0] != count or arr.shape[-1] != H:
            raise ValueError(
                f"{name} has shape {checks.shape_str(arr.shape)} but must be "
                f"({count}, *batch, {H}) = (num_layers * num_directions, *batch, hidden_size) "
                f"with {len(layers)} layer{'s' * (len(layers) > 1)} and {directions} "
                f"direction{'s' * (directions > 1)}"
            )
        states.append(arr)
    if lstm and (states[0].shape != states[1].shape or states[0].dtype != states[1].dtype):
        raise ValueError(
            f"h_n and c_n must have one shape and dtype, got {checks.shape_str(states[0].shape)} "
            f"{states[0].dtype} and {checks.shape_str(states[1].shape)} {states[1].dtype}"
        )

    def cell_carry(entry: int) -> Any:
        return (states[0][entry], states[1][entry]) if lstm else states[0][entry]

    carries = [
        cell_carry(index) if directions == 1 else (cell_carry(2 * index), cell_carry(2 * index + 1))
        for index in range(len(layers))
    ]
    return carries if isinstance(layer_or_cell, Stack) else carries[0]


def carry_to_torch(layer_or_cell: Cell | Bidirectional | Stack, carry: Any) -> Any:
    """PyTorch's `h_n` (and `c_n`) from a jaxrnn carry; the inverse of `carry_from_torch`.

    Stacks every layer's and direction's state on a leading axis at index
    `num_directions * layer + direction`, the layout of PyTorch's `h_0`/`h_n`,
    so the result can start a PyTorch module (`module(x, h_0)`, or
    `(h_0, c_0)` for an LSTM) or be compared with its final states.

    Args:
      layer_or_cell: a cell, bidirectional layer or stack that `from_torch` accepts.
      carry: the carry of `layer_or_cell`: a cell's `h (*batch, H)` or
        `(h, c)`, a bidirectional layer's `(fwd_carry, bwd_carry)`, or a stack's
        list of per-layer carries, all arrays one shape and dtype.

    Returns:
      `(h_n, c_n)` for an LSTM, else `h_n`: NumPy arrays `(L * D, *batch, H)`.

    Raises:
      TypeError: `layer_or_cell` is not a cell or layer, `carry` has the wrong
        structure, or a state is not a floating array.
      ValueError: the layer has no PyTorch counterpart, or a state's shape is not
        `(*batch, H)` or differs from the others.

    Examples:
      >>> import jaxrnn as jr
      >>> net = jr.stack([jr.lstm(4), jr.lstm(4), jr.lstm(4)])
      >>> h_n, c_n = jr.interop.carry_to_torch(net, net.initial_carry((2,)))
      >>> h_n.shape, c_n.shape                                     # (L*D, N, H)
      ((3, 2, 4), (3, 2, 4))
    """
    layers, directions = _torch_layout(layer_or_cell, "carry_to_torch")
    reference = _layer_cells(layers[0])[0]
    H = reference.hidden_size
    lstm = _builtin(reference) == "lstm"
    if isinstance(layer_or_cell, Stack):
        if not isinstance(carry, (list, tuple)) or len(carry) != len(layers):
            raise TypeError(
                f"carry must be a list of {len(layers)} carries, one per layer of the stack; "
                f"got {_describe_carry(carry)}"
            )
        per_layer = [(f"carry[{index}]", part) for index, part in enumerate(carry)]
    else:
        per_layer = [("carry", carry)]
    cells = []
    for path, part in per_layer:
        if directions == 2:
            if not isinstance(part, (list, tuple)) or len(part) != 2:
                raise TypeError(
                    f"{path} must be a pair (fwd_carry, bwd_carry) for a bidirectional layer; "
                    f"got {_describe_carry(part)}"
                )
            cells += [(f"{path}[0]", part[0]), (f"{path}[1]", part[1])]
        else:
            cells.append((path, part))
    h_states, c_states = [], []
    shape = dtype = None
    first = ""
    for path, part in cells:
        if lstm:
            if not isinstance(part, (list, tuple)) or len(part) != 2:
                raise TypeError(
                    f"{path} of cell 'lstm' must be a pair (h, c); got {_describe_carry(part)}"
                )
            pairs = [(f"{path}[0] (h)", part[0], h_states), (f"{path}[1] (c)", part[1], c_states)]
        else:
            if isinstance(part, (list, tuple)):
                raise TypeError(
                    f"{path} of cell {reference.name!r} must be one array h (*batch, {H}); "
                    f"got {_describe_carry(part)}"
                )
            pairs = [(path, part, h_states)]
        for name, value, into in pairs:
            arr = _to_numpy(value, name)
            if arr.ndim < 1 or arr.shape[-1] != H:
                raise ValueError(
                    f"{name} has shape {checks.shape_str(arr.shape)} but must be "
                    f"(*batch, {H}) = (*batch, hidden_size)"
                )
            if shape is None:
                shape, dtype, first = arr.shape, arr.dtype, name
            elif arr.shape != shape or arr.dtype != dtype:
                raise ValueError(
                    f"{name} has shape {checks.shape_str(arr.shape)} and dtype {arr.dtype} but "
                    f"{first} has {checks.shape_str(shape)} and {dtype}; every state must share "
                    f"one shape and dtype"
                )
            into.append(arr)
    h_n = np.stack(h_states)
    return (h_n, np.stack(c_states)) if lstm else h_n


def _describe_carry(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    if hasattr(value, "shape"):
        return f"an array of shape {checks.shape_str(value.shape)}"
    return f"a {type(value).__name__}"


# --- shared by Flax and Equinox ---------------------------------------------------------------


def _as_jax(value: Any, name: str) -> jax.Array:
    """`value` as a JAX array with a real floating dtype; JAX arrays (and tracers) pass as is."""
    if isinstance(value, jax.Array):
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise TypeError(
                f"{name} must have a real floating dtype (float32, float64, bfloat16, float16), "
                f"got {value.dtype}"
            )
        return value
    arr = _to_numpy(value, name)
    _check_jax_can_hold(arr.dtype, f"the dtype of {name}")
    return jnp.asarray(arr)


def _same_dtype(arrays: Mapping[str, Any]) -> Any:
    return checks.same_dtype(arrays, "all arrays of one cell must share a dtype")


def _target_dtype(dtype: Any, found: Any) -> Any:
    if dtype is None:
        return found
    checks.floating_dtype(dtype)
    target = np.dtype(jnp.dtype(dtype))
    _check_jax_can_hold(target, "dtype")
    return target


def _require_zero(value: jax.Array, name: str, why: str) -> None:
    try:
        values = np.asarray(value)
    except jax.errors.TracerArrayConversionError as e:
        raise ValueError(
            f"{why}, so {name} must be zero; that cannot be checked on a traced value: "
            f"convert outside jax.jit"
        ) from e
    if np.any(values != 0):
        raise ValueError(f"{name} has nonzero values, but {why}")


def _check_built_in(cell: Any, function: str, supported: Mapping[str, str], library: str) -> None:
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), got {type(cell).__name__}"
        )
    if _builtin(cell) == "gru_original":
        raise ValueError(
            f"{function} cannot convert cell 'gru_original' (jaxrnn.gru(H, reset_after=False)): "
            f"{library}'s GRU applies the reset gate after the recurrent matmul, "
            f"n = tanh(x W_in + b_in + r * (h W_hn + b_hn)); use jaxrnn.gru(H) (reset_after=True)"
        )
    if _builtin(cell) not in supported:
        kinds = ", ".join(f"{_JAXRNN_FOR.get(k, k)} ({cls})" for k, cls in supported.items())
        raise ValueError(
            f"{function} supports the built-in cells {kinds}, recognised by their step; "
            f"cell {cell.name!r} has another step"
        )


# --- Flax -------------------------------------------------------------------------------------

# One entry per array of a Flax cell: (module, leaf, jaxrnn param, gate). A gate index
# is the block of `hidden_size` columns (or bias entries) of the fused param it fills;
# None means the array is the whole param.
_FlaxEntry = tuple[str, str, str, "int | None"]


def _per_gate(modules: Sequence[str], leaf: str, param: str) -> tuple[_FlaxEntry, ...]:
    return tuple((module, leaf, param, gate) for gate, module in enumerate(modules))


def _linen_lstm(forget: str) -> tuple[_FlaxEntry, ...]:
    return (
        *_per_gate(("ii", forget, "ig", "io"), "kernel", "w_x"),
        *_per_gate(("hi", "hf", "hg", "ho"), "kernel", "w_h"),
        *_per_gate(("hi", "hf", "hg", "ho"), "bias", "b"),
    )


_NNX_FUSED: tuple[_FlaxEntry, ...] = (
    ("dense_i", "kernel", "w_x", None),
    ("dense_i", "bias", "b", None),
    ("dense_h", "kernel", "w_h", None),
)

_FLAX_LAYOUTS: dict[str, tuple[_FlaxEntry, ...]] = {
    "linen.LSTMCell": _linen_lstm("if"),
    "linen.OptimizedLSTMCell": _linen_lstm("if"),
    "nnx.LSTMCell": _linen_lstm("if_"),
    "nnx.OptimizedLSTMCell": (
        ("dense_i", "kernel", "w_x", None),
        ("dense_h", "kernel", "w_h", None),
        ("dense_h", "bias", "b", None),
    ),
    "linen.GRUCell": (
        *_per_gate(("ir", "iz", "in"), "kernel", "w_x"),
        *_per_gate(("ir", "iz", "in"), "bias", "b"),
        *_per_gate(("hr", "hz", "hn"), "kernel", "w_h"),
        ("hn", "bias", "b_hn", None),
    ),
    "nnx.GRUCell": _NNX_FUSED,  # no b_hn: its candidate has no recurrent bias
    "linen.SimpleCell": (
        ("i", "kernel", "w_x", None),
        ("i", "bias", "b", None),
        ("h", "kernel", "w_h", None),
    ),
    "nnx.SimpleCell": _NNX_FUSED,
}

_FLAX_KINDS: dict[str, tuple[str, ...]] = {  # the default (linen) first
    "lstm": ("linen.LSTMCell", "linen.OptimizedLSTMCell", "nnx.LSTMCell", "nnx.OptimizedLSTMCell"),
    "gru": ("linen.GRUCell", "nnx.GRUCell"),
    "rnn_tanh": ("linen.SimpleCell", "nnx.SimpleCell"),
    "rnn_relu": ("linen.SimpleCell", "nnx.SimpleCell"),
}
_PARAM_ORDER = ["w_x", "w_h", "b", "b_hn"]  # as cell.init writes them
_JAXRNN_FOR = {
    "lstm": "jaxrnn.lstm(H)",
    "gru": "jaxrnn.gru(H)",
    "rnn_tanh": "jaxrnn.rnn(H)",
    "rnn_relu": 'jaxrnn.rnn(H, "relu")',
}

# Flax cells whose maths no jaxrnn cell has, recognised by their param names.
_FLAX_FOREIGN = {
    frozenset({"if", "in", "hf", "hn"}): (
        "flax.linen.MGUCell, which has one gate fewer than a GRU and no jaxrnn counterpart"
    ),
    frozenset({"ih", "hh"}): (
        "flax.linen.ConvLSTMCell, whose kernels are convolutions: no jaxrnn counterpart"
    ),
}


def _flax_kinds(cell: Any, function: str) -> tuple[str, ...]:
    supported = {
        "lstm": "flax LSTMCell, OptimizedLSTMCell",
        "gru": "flax GRUCell",
        "rnn_tanh": "flax SimpleCell",
        "rnn_relu": "flax SimpleCell(activation_fn=relu)",
    }
    _check_built_in(cell, function, supported, "Flax")
    return _FLAX_KINDS[_builtin(cell)]


def _entries(layout: Sequence[_FlaxEntry]) -> set[tuple[str, str]]:
    return {(module, leaf) for module, leaf, _, _ in layout}


def _paths(entries: set[tuple[str, str]]) -> list[str]:
    return [f"[{module!r}][{leaf!r}]" for module, leaf in sorted(entries)]


def _unwrap_flax(flax_params: Any) -> tuple[Mapping[str, Any], str]:
    """The cell's own params dict out of Flax variables, and the path that reached it."""
    if not isinstance(flax_params, Mapping):
        raise TypeError(
            f"flax_params must be a dict of a Flax cell's params (variables['params']), "
            f"got {type(flax_params).__name__}"
        )
    tree, path = flax_params, "flax_params"
    for wrapper in ("params", "cell"):  # cell.init(...) and nn.RNN(cell).init(...) wrap them
        if set(tree) == {wrapper} and isinstance(tree[wrapper], Mapping):
            tree, path = tree[wrapper], f"{path}[{wrapper!r}]"
    for module, sub in tree.items():
        if not isinstance(sub, Mapping):
            raise TypeError(
                f"{path}[{module!r}] must be a dict of arrays such as {{'kernel': ...}} (one "
                f"Dense layer of a Flax cell), got {type(sub).__name__}"
            )
    return tree, path


def _match_flax_layout(cell: Cell, tree: Mapping[str, Any], path: str) -> str:
    """The Flax cell kind whose param names `tree` has, or an error saying what differs."""
    kinds = _FLAX_KINDS[_builtin(cell)]
    got = {(str(module), str(leaf)) for module, sub in tree.items() for leaf in sub}
    for kind in kinds:
        if _entries(_FLAX_LAYOUTS[kind]) == got:
            return kind
    closest = max(kinds, key=lambda kind: len(_entries(_FLAX_LAYOUTS[kind]) & got))
    want = _entries(_FLAX_LAYOUTS[closest])
    hint = ""
    others: dict[str, str] = {}  # Flax class -> the jaxrnn cell it converts to
    for name, other in _FLAX_KINDS.items():
        for kind in other:
            if name != _builtin(cell) and _entries(_FLAX_LAYOUTS[kind]) == got:
                others.setdefault(kind, _JAXRNN_FOR[name])
    if others:
        which = " or ".join(
            f"a flax.{kind}, which converts with {to}" for kind, to in others.items()
        )
        hint = f"; these are the params of {which}"
    foreign = _FLAX_FOREIGN.get(frozenset(module for module, _ in got))
    if foreign:
        hint = f"; these look like the params of a {foreign}"
    names = " or ".join(f"flax.{kind}" for kind in dict.fromkeys(kinds))
    raise ValueError(
        f"{path} does not have the params of a {names} for cell {cell.name!r}: compared with "
        f"flax.{closest}, missing {_paths(want - got)}, unexpected {_paths(got - want)}{hint}"
    )


def from_flax(cell: Cell, flax_params: Mapping[str, Any], *, dtype: Any = None) -> Params:
    """Params for `cell` from the params of a Flax recurrent cell.

    Reads a `flax.linen` or `flax.nnx` `LSTMCell`, `OptimizedLSTMCell`, `GRUCell`
    or `SimpleCell` (which of them is told by the names in `flax_params`) and
    concatenates its per-gate kernels and biases into jaxrnn's fused params, in
    the same gate order (see the module docstring for the table). Nothing is
    summed or rounded, and only `jax.numpy` concatenations are used, so this
    also runs under `jax.jit` and `jax.grad`. The carry converts separately,
    with `from_flax_carry`.

    The Flax cell must use its default `gate_fn` (sigmoid) and `activation_fn`
    (tanh, or relu for `jaxrnn.rnn(H, "relu")`) and, for `SimpleCell`,
    `residual=False`: these are not in the params, so they cannot be checked.

    With `H = cell.hidden_size` and `I` the input size, read off the kernels.

    Args:
      cell: `jaxrnn.lstm(H)` (Flax `LSTMCell` or `OptimizedLSTMCell`),
        `jaxrnn.gru(H)` (`GRUCell`) or `jaxrnn.rnn(H, "tanh" | "relu")` (`SimpleCell`),
        with `H` the Flax cell's `features` (linen) or `hidden_features` (nnx).
      flax_params: the cell's params as nested dicts of arrays: linen's
        `variables["params"]`, the variables themselves (`{"params": ...}`), the
        variables of `nn.RNN(cell)` (`{"params": {"cell": ...}}`), or nnx's
        `nnx.state(cell, nnx.Param).to_pure_dict()`. Linen `LSTMCell`:
        `ii, if, ig, io` each `{"kernel": (I, H)}` and `hi, hf, hg, ho` each
        `{"kernel": (H, H), "bias": (H,)}`. Linen `GRUCell`: `ir, iz, in` each
        `{"kernel": (I, H), "bias": (H,)}`, `hr, hz` each `{"kernel": (H, H)}`,
        `hn` `{"kernel": (H, H), "bias": (H,)}`. Linen `SimpleCell`:
        `i` `{"kernel": (I, H), "bias": (H,)}`, `h` `{"kernel": (H, H)}`. nnx's
        fused cells: `dense_i` `{"kernel": (I, G * H)}` and `dense_h`
        `{"kernel": (H, G * H)}`, the bias on `dense_h` (`OptimizedLSTMCell`) or
        `dense_i` (`GRUCell`, `SimpleCell`). All arrays share one floating dtype.
      dtype: the dtype of the returned params; `None` keeps the arrays' dtype.

    Returns:
      A params dict for `cell`: `w_x (I, G * H)`, `w_h (H, G * H)`, `b (G * H,)`,
      and for `gru` also `b_hn (H,)` (zeros from an `nnx.GRUCell`), as JAX arrays.

    Raises:
      TypeError: `cell` is not a `Cell`, `flax_params` is not a dict of dicts of
        floating arrays, the arrays' dtypes differ, or a dtype needs `jax_enable_x64`.
      ValueError: `cell` has no Flax counterpart, the names in `flax_params` are
        not those of a matching Flax cell (the message says what is missing and
        extra, and which Flax cell the params belong to when it can tell), or a
        shape disagrees with `cell.hidden_size`.

    Examples:
      >>> import numpy as np, jaxrnn as jr
      >>> H, I = 4, 3
      >>> rng = np.random.default_rng(0)
      >>> def dense(rows, bias):
      ...     layer = {"kernel": rng.standard_normal((rows, H), dtype=np.float32)}
      ...     if bias:
      ...         layer["bias"] = rng.standard_normal(H, dtype=np.float32)
      ...     return layer
      >>> flax_params = {                  # flax.linen.GRUCell(features=H), variables["params"]
      ...     "ir": dense(I, True), "iz": dense(I, True), "in": dense(I, True),
      ...     "hr": dense(H, False), "hz": dense(H, False), "hn": dense(H, True),
      ... }
      >>> params = jr.interop.from_flax(jr.gru(H), flax_params)
      >>> {k: v.shape for k, v in params.items()}
      {'w_x': (3, 12), 'w_h': (4, 12), 'b': (12,), 'b_hn': (4,)}
      >>> bool(np.all(params["w_x"][:, H : 2 * H] == flax_params["iz"]["kernel"]))
      True
    """
    _flax_kinds(cell, "from_flax")
    tree, path = _unwrap_flax(flax_params)
    kind = _match_flax_layout(cell, tree, path)
    layout = _FLAX_LAYOUTS[kind]
    names = {(m, leaf): f"{path}[{m!r}][{leaf!r}]" for m, leaf, _, _ in layout}
    arrays = {key: _as_jax(tree[key[0]][key[1]], names[key]) for key in names}
    found = _same_dtype({names[key]: arr for key, arr in arrays.items()})

    H = cell.hidden_size
    first = layout[0][:2]  # always a piece of w_x
    x_kernel = arrays[first]
    if x_kernel.ndim != 2 or x_kernel.shape[0] < 1:
        raise ValueError(
            f"{names[first]} has shape {checks.shape_str(x_kernel.shape)} but must be "
            f"(input_size, {'hidden_size' if layout[0][3] is not None else 'gates * hidden_size'})"
        )
    input_size = int(x_kernel.shape[0])
    template = checks.param_template(cell, input_size, jnp.dtype(jnp.float32))
    context = f"cell {cell.name!r} (hidden_size={H}) read as a flax.{kind}"
    for module, leaf, param, gate in layout:
        want = tuple(template[param].shape)
        if gate is not None:
            want = (*want[:-1], H)
        got = arrays[module, leaf].shape
        if tuple(got) != want:
            raise ValueError(
                f"{names[module, leaf]} has shape {checks.shape_str(got)} but {context} with "
                f"input_size={input_size} (from {names[first]}.shape[0]) expects "
                f"{checks.shape_str(want)}"
            )

    target = _target_dtype(dtype, found)
    pieces: dict[str, dict[int | None, jax.Array]] = {}
    for module, leaf, param, gate in layout:
        pieces.setdefault(param, {})[gate] = arrays[module, leaf].astype(target)
    params = {}
    for param in sorted(template, key=_PARAM_ORDER.index):
        want = template[param]
        parts = pieces.get(param)
        if parts is None:  # b_hn of an nnx.GRUCell, whose candidate has no recurrent bias
            params[param] = jnp.zeros(want.shape, target)
        elif None in parts:
            params[param] = parts[None]
        else:
            params[param] = jnp.concatenate([parts[g] for g in sorted(parts)], axis=-1)
    return params


def _flax_kind(cell: Cell, kind: Any) -> str:
    kinds = _FLAX_KINDS[_builtin(cell)]
    if kind is None:
        return kinds[0]
    if not isinstance(kind, str):
        raise TypeError(
            f"kind must be a str naming a Flax cell class such as 'linen.GRUCell' or "
            f"'nnx.GRUCell', got {type(kind).__name__} {kind!r}"
        )
    name = kind.removeprefix("flax.")
    if name not in kinds:
        options = ", ".join(repr(k) for k in kinds)
        raise ValueError(
            f"kind must name a Flax cell class that cell {cell.name!r} converts to, one of "
            f"{options}; got {kind!r}"
        )
    return name


def to_flax(cell: Cell, params: Params, kind: str | None = None) -> dict[str, dict[str, jax.Array]]:
    """The params of a Flax recurrent cell, from a jaxrnn cell's params.

    The inverse of `from_flax`: slices the fused `w_x`, `w_h`, `b` (and `b_hn`)
    into the per-gate layers of the Flax cell named by `kind`.
    `from_flax(cell, to_flax(cell, params, kind))` equals `params` bit for bit,
    and so does `to_flax(cell, from_flax(cell, flax_params), kind)` with
    `flax_params`. Only `jax.numpy` slices are used, so this also runs under
    `jax.jit` and `jax.grad`.

    The result is the cell's own params dict. For linen, wrap it as the cell's
    variables, `{"params": flax_params}`, or as the variables of
    `nn.RNN(flax_cell)`, `{"params": {"cell": flax_params}}`. For nnx, write it
    into a module with `nnx.replace_by_pure_dict` and `nnx.update`. The carry
    converts separately, with `to_flax_carry`.

    Args:
      cell: `jaxrnn.lstm(H)`, `jaxrnn.gru(H)` or `jaxrnn.rnn(H, "tanh" | "relu")`.
      params: the cell's params as `cell.init` makes them: `w_x (I, G * H)`,
        `w_h (H, G * H)`, `b (G * H,)` and for `gru` `b_hn (H,)`, one floating dtype.
      kind: the Flax class to lay the params out for: `"linen.LSTMCell"`,
        `"linen.OptimizedLSTMCell"`, `"nnx.LSTMCell"` or `"nnx.OptimizedLSTMCell"`
        for `lstm`; `"linen.GRUCell"` or `"nnx.GRUCell"` for `gru`;
        `"linen.SimpleCell"` or `"nnx.SimpleCell"` for `rnn`. A `"flax."` prefix
        is allowed. `None` picks the `linen` class (both linen LSTM classes share
        one layout).

    Returns:
      A dict of layer name to `{"kernel": ..., "bias": ...}` (see `from_flax`
      for the names and shapes), JAX arrays in the params' dtype.

    Raises:
      TypeError: `cell` is not a `Cell`, `params` is not a dict of floating
        arrays, its arrays' dtypes differ, or `kind` is not a str.
      ValueError: `cell` has no Flax counterpart, `kind` does not name a Flax
        class for `cell`, a key or shape of `params` does not fit `cell`, or
        `kind` is `"nnx.GRUCell"` and `b_hn` is not zero (that cell has no
        recurrent candidate bias).

    Examples:
      >>> import jax, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> flax_params = jr.interop.to_flax(cell, params)  # for flax.linen.LSTMCell(features=4)
      >>> sorted(flax_params)
      ['hf', 'hg', 'hi', 'ho', 'if', 'ig', 'ii', 'io']
      >>> {k: v.shape for k, v in flax_params["hf"].items()}
      {'kernel': (4, 4), 'bias': (4,)}
      >>> bool((flax_params["if"]["kernel"] == params["w_x"][:, 4:8]).all())
      True
      >>> back = jr.interop.from_flax(cell, {"params": flax_params})  # the cell's variables
      >>> all(bool((back[k] == params[k]).all()) for k in params)
      True
    """
    _flax_kinds(cell, "to_flax")
    name = _flax_kind(cell, kind)
    layout = _FLAX_LAYOUTS[name]
    arrays = _check_params(cell, params, _as_jax)
    if "b_hn" in arrays and all(param != "b_hn" for _, _, param, _ in layout):
        _require_zero(
            arrays["b_hn"],
            "params['b_hn']",
            f"flax.{name} has no recurrent bias in its candidate, "
            f"n = tanh(x W_in + b_in + r * (h W_hn)); use kind='linen.GRUCell'",
        )
    H = cell.hidden_size
    flax_params: dict[str, dict[str, jax.Array]] = {}
    for module, leaf, param, gate in layout:
        arr = arrays[param]
        flax_params.setdefault(module, {})[leaf] = (
            arr if gate is None else arr[..., gate * H : (gate + 1) * H]
        )
    return flax_params


def _flax_state(value: Any, name: str, hidden_size: int) -> jax.Array:
    arr = checks.float_array(value, name)
    if arr.ndim < 1 or arr.shape[-1] != hidden_size:
        raise ValueError(
            f"{name} has shape {checks.shape_str(arr.shape)} but must be "
            f"(*batch, {hidden_size}) = (*batch, hidden_size)"
        )
    return arr


def _convert_carry(cell: Cell, carry: Any, name: str, order: str) -> Any:
    """`carry` checked, with an LSTM's two states swapped; `order` names them as given."""
    H = cell.hidden_size
    if _builtin(cell) != "lstm":
        if isinstance(carry, (tuple, list)):
            raise TypeError(
                f"{name} of cell {cell.name!r} must be one array h (*batch, {H}), "
                f"got a {type(carry).__name__} of {len(carry)}"
            )
        return _flax_state(carry, name, H)
    if not isinstance(carry, (tuple, list)) or len(carry) != 2:
        got = f"a {type(carry).__name__}" + (
            f" of {len(carry)}" if isinstance(carry, (tuple, list)) else ""
        )
        raise TypeError(f"{name} of cell 'lstm' must be a pair {order}, got {got}")
    first, second = order.strip("()").split(", ")
    a = _flax_state(carry[0], f"{name}[0] ({first})", H)
    b = _flax_state(carry[1], f"{name}[1] ({second})", H)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(
            f"{name}[0] ({first}) and {name}[1] ({second}) must have one shape and dtype, got "
            f"{checks.shape_str(a.shape)} {a.dtype} and {checks.shape_str(b.shape)} {b.dtype}"
        )
    return (b, a)


def from_flax_carry(cell: Cell, flax_carry: Any) -> Any:
    """A jaxrnn carry from a Flax cell's carry: an LSTM's `(c, h)` becomes `(h, c)`.

    Flax's LSTM cells carry `(c, h)`, jaxrnn's `lstm` carries `(h, c)`; the GRU
    and simple cells carry `h` in both libraries, which passes through checked.

    Args:
      cell: `jaxrnn.lstm(H)`, `jaxrnn.gru(H)` or `jaxrnn.rnn(H, ...)`.
      flax_carry: for `lstm` a pair `(c, h)`, each `(*batch, H)`; otherwise
        `h (*batch, H)`. As Flax's `initialize_carry` or a step returns it.

    Returns:
      The carry for `jaxrnn.unroll` and `cell.step`: `(h, c)` for `lstm`, else `h`.

    Raises:
      TypeError: `cell` is not a `Cell`, `flax_carry` is not a pair (lstm) or
        a single array (others), or an array is not floating.
      ValueError: `cell` has no Flax counterpart, or a state's last axis is not
        `H`, or `c` and `h` differ in shape or dtype.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> c, h = jnp.zeros((2, 4)), jnp.ones((2, 4))       # flax LSTMCell's (c, h)
      >>> carry = jr.interop.from_flax_carry(jr.lstm(4), (c, h))
      >>> bool((carry[0] == h).all()), bool((carry[1] == c).all())
      (True, True)
    """
    _flax_kinds(cell, "from_flax_carry")
    return _convert_carry(cell, flax_carry, "flax_carry", "(c, h)")


def to_flax_carry(cell: Cell, carry: Any) -> Any:
    """A Flax cell's carry from a jaxrnn carry: an LSTM's `(h, c)` becomes `(c, h)`.

    The inverse of `from_flax_carry`: use it to hand a jaxrnn carry to a Flax
    cell or to `nn.RNN(..., initial_carry=...)`, or to compare final carries.

    Args:
      cell: `jaxrnn.lstm(H)`, `jaxrnn.gru(H)` or `jaxrnn.rnn(H, ...)`.
      carry: for `lstm` a pair `(h, c)`, each `(*batch, H)`; otherwise
        `h (*batch, H)`.

    Returns:
      The Flax carry: `(c, h)` for `lstm`, else `h`.

    Raises:
      TypeError: `cell` is not a `Cell`, `carry` is not a pair (lstm) or a single
        array (others), or an array is not floating.
      ValueError: `cell` has no Flax counterpart, or a state's last axis is not
        `H`, or `h` and `c` differ in shape or dtype.

    Examples:
      >>> import jaxrnn as jr
      >>> cell = jr.lstm(4)
      >>> h, c = cell.initial_carry(batch_shape=(2,))
      >>> flax_carry = jr.interop.to_flax_carry(cell, (h, c + 1.0))
      >>> float(flax_carry[0][0, 0]), float(flax_carry[1][0, 0])     # (c, h)
      (1.0, 0.0)
    """
    _flax_kinds(cell, "to_flax_carry")
    return _convert_carry(cell, carry, "carry", "(h, c)")


# --- Equinox ----------------------------------------------------------------------------------

_EQUINOX_CLASS = {"lstm": "LSTMCell", "gru": "GRUCell"}
_EQUINOX_ARRAYS = {
    "lstm": ("weight_ih", "weight_hh", "bias"),
    "gru": ("weight_ih", "weight_hh", "bias", "bias_n"),
}


def _check_equinox(cell: Any, module: Any, name: str, function: str) -> None:
    """An error unless `module` is the equinox.nn cell that `cell` converts to."""
    supported = {"lstm": "equinox.nn.LSTMCell", "gru": "equinox.nn.GRUCell"}
    if isinstance(cell, Cell) and _builtin(cell) in ("rnn_tanh", "rnn_relu"):
        raise ValueError(
            f"{function} cannot convert cell {cell.name!r}: equinox.nn has no plain RNN cell, "
            f"only LSTMCell and GRUCell"
        )
    _check_built_in(cell, function, supported, "Equinox")
    # A module that is an equinox cell was made by an imported equinox, so this needs no import.
    eqx = sys.modules.get("equinox")
    classes = {} if eqx is None else {"lstm": eqx.nn.LSTMCell, "gru": eqx.nn.GRUCell}
    kind = next((k for k, cls in classes.items() if isinstance(module, cls)), None)
    if kind is None:
        raise TypeError(
            f"{name} must be an equinox.nn.LSTMCell or equinox.nn.GRUCell, "
            f"got {type(module).__module__}.{type(module).__qualname__}"
        )
    if kind != _builtin(cell):
        raise ValueError(
            f"cell {cell.name!r} converts to and from {supported[_builtin(cell)]}, but {name} "
            f"is an equinox.nn.{_EQUINOX_CLASS[kind]}; use {_JAXRNN_FOR[kind]} for it"
        )
    if module.hidden_size != cell.hidden_size:
        raise ValueError(
            f"{name} has hidden_size={module.hidden_size} but cell {cell.name!r} has "
            f"hidden_size={cell.hidden_size}"
        )


def from_equinox(cell: Cell, eqx_cell: Any, *, dtype: Any = None) -> Params:
    """Params for `cell` from an `equinox.nn.LSTMCell` or `equinox.nn.GRUCell`.

    Equinox stores weights for `W @ x` with jaxrnn's gate order (`i, f, g, o`;
    `r, z, n`), so `w_x = weight_ih.T`, `w_h = weight_hh.T`, `b = bias` and, for
    the GRU, `b_hn = bias_n`. Equinox's GRU computes
    `n = tanh(x W_in + b_in + r * (h W_hn + b_hn))`, which is `jaxrnn.gru(H)`
    exactly, and its LSTM carries `(h, c)` as jaxrnn does, so a carry needs no
    conversion. A cell built with `use_bias=False` gives zero biases. The arrays
    are read by attribute (equinox is not imported) and only transposed, so this
    also runs under `jax.jit` and `jax.grad` (e.g. inside `eqx.filter_grad`).

    Args:
      cell: `jaxrnn.lstm(H)` for an `equinox.nn.LSTMCell`, `jaxrnn.gru(H)` for an
        `equinox.nn.GRUCell`, with `H` the Equinox cell's `hidden_size`.
      eqx_cell: the Equinox cell, with `weight_ih (G * H, I)`,
        `weight_hh (G * H, H)`, `bias (G * H,)` or `None`, and for the GRU
        `bias_n (H,)` or `None`, all one floating dtype.
      dtype: the dtype of the returned params; `None` keeps the arrays' dtype.

    Returns:
      A params dict for `cell`: `w_x (I, G * H)`, `w_h (H, G * H)`, `b (G * H,)`,
      and for `gru` also `b_hn (H,)`, as JAX arrays.

    Raises:
      TypeError: `cell` is not a `Cell`, `eqx_cell` is not an Equinox LSTM or GRU
        cell, its arrays are not floating or differ in dtype, or a dtype needs
        `jax_enable_x64`.
      ValueError: `cell` has no Equinox counterpart or is the other kind of cell,
        or a size or an array's shape disagrees.

    Examples:
      >>> import jax, equinox as eqx, jaxrnn as jr
      >>> eqx_cell = eqx.nn.GRUCell(input_size=3, hidden_size=4, key=jax.random.key(0))
      >>> params = jr.interop.from_equinox(jr.gru(4), eqx_cell)
      >>> {k: v.shape for k, v in params.items()}
      {'w_x': (3, 12), 'w_h': (4, 12), 'b': (12,), 'b_hn': (4,)}
      >>> bool((params["w_h"] == eqx_cell.weight_hh.T).all())
      True
    """
    _check_equinox(cell, eqx_cell, "eqx_cell", "from_equinox")
    H = cell.hidden_size
    GH = {"lstm": 4, "gru": 3}[_builtin(cell)] * H
    I = eqx_cell.input_size
    shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H), "bias": (GH,), "bias_n": (H,)}
    meaning = {
        "weight_ih": "(gates * hidden_size, input_size)",
        "weight_hh": "(gates * hidden_size, hidden_size)",
        "bias": "(gates * hidden_size,)",
        "bias_n": "(hidden_size,)",
    }
    arrays = {}
    for attr in _EQUINOX_ARRAYS[_builtin(cell)]:
        value = getattr(eqx_cell, attr)
        if value is None and attr.startswith("bias"):
            continue  # use_bias=False
        arr = _as_jax(value, f"eqx_cell.{attr}")
        if tuple(arr.shape) != shapes[attr]:
            raise ValueError(
                f"eqx_cell.{attr} has shape {checks.shape_str(arr.shape)} but an "
                f"equinox.nn.{_EQUINOX_CLASS[_builtin(cell)]} with input_size={I} and "
                f"hidden_size={H} has {checks.shape_str(shapes[attr])} = {meaning[attr]}"
            )
        arrays[f"eqx_cell.{attr}"] = arr
    target = _target_dtype(dtype, _same_dtype(arrays))
    arrays = {key.removeprefix("eqx_cell."): arr.astype(target) for key, arr in arrays.items()}
    params = {
        "w_x": arrays["weight_ih"].T,
        "w_h": arrays["weight_hh"].T,
        "b": arrays.get("bias", jnp.zeros((GH,), target)),
    }
    if _builtin(cell) == "gru":
        params["b_hn"] = arrays.get("bias_n", jnp.zeros((H,), target))
    return params


def to_equinox(cell: Cell, params: Params, like: Any) -> Any:
    """An Equinox cell like `like`, holding a jaxrnn cell's params.

    The inverse of `from_equinox`: returns a copy of `like` (an
    `equinox.nn.LSTMCell` or `equinox.nn.GRUCell` of the same sizes, e.g. a
    freshly initialised one) with `weight_ih = w_x.T`, `weight_hh = w_h.T`,
    `bias = b` and for the GRU `bias_n = b_hn`, swapped in with
    `equinox.tree_at`. The new cell holds the params' dtype.
    `from_equinox(cell, to_equinox(cell, params, like))` equals `params` bit for bit.

    Args:
      cell: `jaxrnn.lstm(H)` or `jaxrnn.gru(H)`.
      params: the cell's params as `cell.init` makes them: `w_x (I, G * H)`,
        `w_h (H, G * H)`, `b (G * H,)` and for `gru` `b_hn (H,)`, one floating dtype.
      like: an `equinox.nn.LSTMCell` (for `lstm`) or `equinox.nn.GRUCell` (for
        `gru`) with `input_size=I` and `hidden_size=H`; its arrays are not read.
        With `use_bias=False` it has no biases, so `b` (and `b_hn`) must be zero.

    Returns:
      A new Equinox cell of `like`'s class with the params' arrays.

    Raises:
      TypeError: `cell` is not a `Cell`, `like` is not an Equinox LSTM or GRU
        cell, or `params` is not a dict of floating arrays of one dtype.
      ValueError: `cell` has no Equinox counterpart or is the other kind of cell,
        a size or a shape of `params` disagrees with `cell` or `like`, or `like`
        has no biases and the params' biases are not zero.

    Examples:
      >>> import jax, equinox as eqx, jaxrnn as jr
      >>> cell = jr.lstm(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> like = eqx.nn.LSTMCell(input_size=3, hidden_size=4, key=jax.random.key(1))
      >>> eqx_cell = jr.interop.to_equinox(cell, params, like)
      >>> bool((eqx_cell.weight_ih == params["w_x"].T).all())
      True
      >>> h, c = eqx_cell(jax.numpy.ones(3), (jax.numpy.zeros(4), jax.numpy.zeros(4)))
    """
    _check_equinox(cell, like, "like", "to_equinox")
    arrays = _check_params(cell, params, _as_jax)
    input_size = arrays["w_x"].shape[0]
    if input_size != like.input_size:
        raise ValueError(
            f"params['w_x'] has shape {checks.shape_str(arrays['w_x'].shape)}, input_size "
            f"{input_size}, but like has input_size={like.input_size}; build like with "
            f"input_size={input_size}"
        )
    values = {"weight_ih": arrays["w_x"].T, "weight_hh": arrays["w_h"].T, "bias": arrays["b"]}
    if _builtin(cell) == "gru":
        values["bias_n"] = arrays["b_hn"]
    for attr, param in (("bias", "b"), ("bias_n", "b_hn")):
        if attr in values and getattr(like, attr) is None:
            _require_zero(
                values.pop(attr), f"params[{param!r}]", f"like has no {attr} (use_bias=False)"
            )
    eqx = sys.modules["equinox"]
    names = list(values)
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], like, list(values.values()))
