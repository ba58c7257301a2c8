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
`jaxrnn.unroll(..., reverse=True)` runs the `_reverse` half. `from_torch` and
`to_torch` also take a `jaxrnn.bidirectional` layer (both directions of one
layer) and a `jaxrnn.stack` (a whole module); `carry_from_torch` and
`carry_to_torch` convert PyTorch's `h_n`/`c_n`, `(num_layers * num_directions,
*batch, H)` with index `num_directions * layer + direction`, to and from
jaxrnn carries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import checks
from jaxrnn.cell import Cell, Params
from jaxrnn.interop import common
from jaxrnn.layers import Bidirectional, Stack

__all__ = ["carry_from_torch", "carry_to_torch", "from_torch", "to_torch"]


_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


_TORCH_CLASS = {1: "nn.RNN", 3: "nn.GRU", 4: "nn.LSTM"}


_SUFFIX = re.compile(r"_l\d+(_reverse)?")


def _check_cell(cell: Any, function: str) -> int:
    """The gate count of `cell`, or an error if PyTorch has no module like it."""
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), got {type(cell).__name__}"
        )
    if common.builtin(cell) == "gru_original":
        raise ValueError(
            f"{function} cannot convert cell 'gru_original' (jaxrnn.gru(H, reset_after=False)): "
            f"PyTorch has no such GRU, torch.nn.GRU applies the reset gate after the recurrent "
            f"matmul; use jaxrnn.gru(H) (reset_after=True) for PyTorch weights"
        )
    if common.builtin(cell) not in _GATES:
        raise ValueError(
            f"{function} supports the built-in cells jaxrnn.rnn, lstm and gru (torch.nn.RNN, "
            f"nn.LSTM, nn.GRU), recognised by their step; cell {cell.name!r} has another step"
        )
    return _GATES[common.builtin(cell)]


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
        key: common.to_numpy(state_dict[key], f"state_dict[{key!r}]")
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
        common.check_jax_can_hold(target, f"the dtype of state_dict[{first!r}]")
    else:
        checks.floating_dtype(dtype)
        target = np.dtype(jnp.dtype(dtype))
        common.check_jax_can_hold(target, "dtype")
    arrays = {key: arr.astype(target, copy=False) for key, arr in arrays.items()}
    if has_bias[0]:
        b_ih, b_hh = arrays[names["bias_ih"]], arrays[names["bias_hh"]]
    else:
        b_ih = b_hh = np.zeros((GH,), target)

    params = {"w_x": arrays[names["weight_ih"]].T, "w_h": arrays[names["weight_hh"]].T}
    if common.builtin(cell) == "gru":
        folded = np.concatenate([b_hh[: 2 * H], np.zeros((H,), target)])
        params["b"] = _add_exact(b_ih, folded)
        params["b_hn"] = b_hh[2 * H :]
    else:
        params["b"] = _add_exact(b_ih, b_hh)
    return {key: jnp.asarray(value) for key, value in params.items()}


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
    arrays = common.check_params(cell, params)
    H = cell.hidden_size
    bias_hh = np.zeros_like(arrays["b"])
    if common.builtin(cell) == "gru":
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
            kind, size = common.builtin(cell), cell.hidden_size
            if (kind, size) != (common.builtin(reference), reference.hidden_size):
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
    if (common.builtin(fwd), fwd.hidden_size) != (common.builtin(bwd), bwd.hidden_size):
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
                common.require_zero(
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
    arr = common.to_numpy(value, name)
    common.check_jax_can_hold(arr.dtype, f"the dtype of {name}")
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
    lstm = common.builtin(reference) == "lstm"
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
    lstm = common.builtin(reference) == "lstm"
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
            arr = common.to_numpy(value, name)
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
