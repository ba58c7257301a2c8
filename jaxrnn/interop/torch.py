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
from jaxrnn.cell import Cell
from jaxrnn.interop import common
from jaxrnn.layers import Bidirectional, Stack

__all__ = ["carry_from_torch", "carry_to_torch", "from_torch", "to_torch"]

# Built-in kind -> (PyTorch class, gates). The gates are in jaxrnn's order, each weight is
# the transpose of jaxrnn's, and b = bias_ih + bias_hh, except that nn.GRU keeps the
# candidate's part of bias_hh apart, as b_hn.
TORCH = {
    "rnn_tanh": ("nn.RNN", 1),
    "rnn_relu": ("nn.RNN", 1),
    "lstm": ("nn.LSTM", 4),
    "gru": ("nn.GRU", 3),
}
SUPPORTED = {kind: f"torch.{cls}" for kind, (cls, _) in TORCH.items()}
SUFFIX = re.compile(r"_l(\d+)(_reverse)?")
KEY = re.compile(r"(?:weight|bias)_(?:ih|hh)_l(\d+)(_reverse)?")


def _layout(layer: Any, function: str, suffix: Any = "_l0") -> list[list[tuple[Cell, str]]]:
    """The cells of each layer, one per direction, with the suffix of their keys, as one
    PyTorch module runs them; an error unless one `nn.RNN`, `nn.LSTM` or `nn.GRU` matches
    `layer`: one kind of cell and hidden size throughout, every layer bidirectional or
    none, their two outputs concatenated where another layer reads them."""
    match = SUFFIX.fullmatch(suffix) if isinstance(suffix, str) else None
    if match is None:
        error = ValueError if isinstance(suffix, str) else TypeError
        raise error(
            f"suffix must be a str '_l<layer>' or '_l<layer>_reverse' (PyTorch's naming, e.g. "
            f"'_l0', '_l1', '_l0_reverse'), got {type(suffix).__name__} {suffix!r}"
        )
    if not isinstance(layer, (Cell, Bidirectional, Stack)):
        raise TypeError(
            f"layer_or_cell must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)), a bidirectional "
            f"layer (jaxrnn.bidirectional) or a stack (jaxrnn.stack); got {type(layer).__name__}"
        )
    stack = isinstance(layer, Stack)
    if stack and layer.residual:
        raise ValueError(
            f"{function} cannot convert a stack with residual=True: PyTorch's modules have no "
            f"residual connections. Convert its layers one by one instead"
        )
    if stack and suffix != "_l0":
        raise ValueError(
            f"{function} of a stack reads layer i from the keys '_l<i>' (and '_l<i>_reverse'), "
            f"so suffix must be left at its default '_l0'; got {suffix!r}"
        )
    if isinstance(layer, Bidirectional) and match[2]:
        raise ValueError(
            f"{function} of a bidirectional layer reads both directions, so suffix names the "
            f"layer, e.g. '_l0' (for '_l0' and '_l0_reverse'); got {suffix!r}"
        )
    layers = layer.layers if stack else [layer]
    rows, seen = [], []
    for index, item in enumerate(layers):
        name, base = (f"layers[{index}]", f"_l{index}") if stack else ("layer_or_cell", suffix)
        parts = [(item, name, base)]
        if isinstance(item, Bidirectional):
            parts = [(item.fwd, f"{name}.fwd", base), (item.bwd, f"{name}.bwd", base + "_reverse")]
            if item.merge != "concat" and index < len(layers) - 1:
                raise ValueError(
                    f"{name} is bidirectional with merge={item.merge!r}, but PyTorch's next "
                    f"layer reads both directions concatenated; use merge='concat'"
                )
        way = ("unidirectional", "bidirectional")[len(parts) - 1]
        for cell, part_name, _ in parts:
            kind = common.check_built_in(cell, function, SUPPORTED, "PyTorch", part_name)
            what = f"cell {cell.name!r} (hidden_size={cell.hidden_size}) in a {way} layer"
            seen.append(((kind, cell.hidden_size, len(parts)), f"{part_name} has {what}"))
            if seen[-1][0] != seen[0][0]:
                raise ValueError(
                    f"{function} needs one kind of cell and hidden size in every layer, all "
                    f"bidirectional or none, as in one PyTorch module; {seen[0][1]} but "
                    f"{seen[-1][1]}"
                )
        rows.append([(cell, part_suffix) for cell, _, part_suffix in parts])
    return rows


def _cell_from_torch(
    cell: Cell, state_dict: Mapping[str, Any], suffix: str, dtype: Any, sizes: Any
) -> dict[str, jax.Array]:
    if f"weight_hr{suffix}" in state_dict:
        raise ValueError(
            f"state_dict has 'weight_hr{suffix}': an nn.LSTM with proj_size > 0, which jaxrnn's "
            f"lstm does not have"
        )
    parts = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    if not any(part + suffix in state_dict for part in parts[2:]):
        parts = parts[:2]  # bias=False
    for key in (part + suffix for part in parts):
        if key not in state_dict:
            raise ValueError(
                f"state_dict has no key {key!r} (suffix={suffix!r}); keys present: "
                f"{sorted(map(str, state_dict))}"
            )
    kind, H = common.builtin(cell), cell.hidden_size
    gates = TORCH[kind][1]
    GH = gates * H
    # weight_hh first: its shape tells the most.
    want = dict(weight_hh=(GH, H), weight_ih=(GH, "input_size"), bias_ih=(GH,), bias_hh=(GH,))
    name = {part: f"state_dict[{part + suffix!r}]" for part in want}
    values = {name[part]: state_dict[part + suffix] for part in parts}
    context = f"cell {cell.name!r} (hidden_size={H}, {gates} gate{'s' * (gates > 1)})"
    shapes = {name[part]: shape for part, shape in want.items()}
    try:
        arrays = common.read(values, shapes, context, dtype=dtype, sizes=sizes)
    except ValueError as error:  # a shape: say which module a wrong weight_hh would fit
        shape = tuple(np.shape(state_dict["weight_hh" + suffix]))
        size = shape[-1] if shape else 0
        owner = {(g * size, size): cls for cls, g in TORCH.values()}.get(shape)
        if owner and size and shape != want["weight_hh"]:
            error = f"{error} (weight_hh looks like a torch {owner} with hidden_size={size})"
        raise ValueError(str(error)) from None
    w_ih, w_hh, *biases = arrays.values()
    b_ih, b_hh = biases or [jnp.zeros(GH, w_ih.dtype)] * 2
    recurrent = b_hh.at[-H:].set(0) if kind == "gru" else b_hh
    # Where nothing is added, b_ih as it is: `x + 0.0` would turn -0.0 into +0.0.
    params = {"w_x": w_ih.T, "w_h": w_hh.T, "b": jnp.where(recurrent == 0, b_ih, b_ih + recurrent)}
    return {**params, "b_hn": b_hh[-H:]} if kind == "gru" else params


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
      TypeError: `layer_or_cell` is not a cell, bidirectional layer or stack (or
        holds something other than cells), `suffix` is not a str, `state_dict` is
        not a mapping, a value is not a floating array, the arrays' dtypes differ,
        or the dtype needs `jax_enable_x64`.
      ValueError: a cell has no PyTorch counterpart, `suffix` is malformed, a key
        is missing, or a shape disagrees with `H`, the gate count or, for a layer
        of a stack, the outputs of the layer before; for a layer also: it matches
        no single PyTorch module, the state dict has another number of layers or
        directions, or a `suffix` is given to a stack.

    Examples:
      >>> import numpy as np, jaxrnn as jr
      >>> H, I = 4, 3
      >>> rng = np.random.default_rng(0)
      >>> # torch.nn.LSTM(I, H).state_dict(), as NumPy arrays
      >>> state_dict = {
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
      >>> net = jr.stack([jr.lstm(H)])  # a torch.nn.LSTM(I, H, num_layers=1)
      >>> sorted(jr.interop.from_torch(net, state_dict)["layers"][0])
      ['b', 'w_h', 'w_x']
    """
    rows = _layout(layer_or_cell, "from_torch", suffix)
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to arrays (module.state_dict()), "
            f"got {type(state_dict).__name__}"
        )
    keys = {(int(m[1]), bool(m[2])) for m in map(KEY.fullmatch, map(str, state_dict)) if m}
    module = (max(index for index, _ in keys) + 1, any(r for _, r in keys)) if keys else None
    if isinstance(layer_or_cell, Stack) and module not in (None, (len(rows), len(rows[0]) == 2)):
        raise ValueError(
            f"state_dict holds a module with num_layers={module[0]} and bidirectional="
            f"{module[1]}, but the stack has {len(rows)} layers and bidirectional="
            f"{len(rows[0]) == 2}"
        )
    layers, inputs, sizes = [], {}, None
    for index, row in enumerate(rows):
        parts = []
        for cell, part_suffix in row:
            parts.append(_cell_from_torch(cell, state_dict, part_suffix, dtype, sizes))
            name = f"state_dict['weight_ih{part_suffix}']"
            inputs[name] = parts[-1]["w_x"]
            sizes = sizes or {"input_size": (inputs[name].shape[0], f"{name}.shape[1]")}
        layers.append(parts[0] if len(parts) == 1 else {"fwd": parts[0], "bwd": parts[1]})
        features = len(row) * row[0][0].hidden_size
        sizes = {"input_size": (features, f"the outputs of layers[{index}]")}
    found = checks.same_dtype(inputs, "all arrays of one module must share a dtype")
    if not isinstance(layer_or_cell, Stack):
        return layers[0]
    # PyTorch starts from zeros when no h_0 is given, as a fresh learned carry does.
    carries = [item.initial_carry((), found) for item in layer_or_cell.layers]
    learn = layer_or_cell.learn_initial_carry
    return {"initial_carry": carries, "layers": layers} if learn else {"layers": layers}


def _check_keys(value: Any, path: str, keys: list[str], what: str) -> None:
    if not isinstance(value, Mapping) or sorted(map(str, value)) != keys:
        error = ValueError if isinstance(value, Mapping) else TypeError
        raise error(
            f"{path} must be the dict that {what}, with keys {keys}; got {checks.describe(value)}"
        )


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
      TypeError: `layer_or_cell` is not a cell, bidirectional layer or stack (or
        holds something other than cells), `suffix` is not a str, `params` does
        not have the structure `layer_or_cell.init` gives (dicts, and for a stack
        a list with one entry per layer), an array is not floating, or the
        arrays' dtypes differ.
      ValueError: a cell has no PyTorch counterpart, `suffix` is malformed, or a
        key or shape of `params` does not fit its cell (or, for a layer of a
        stack, the outputs of the layer before); for a layer also: it matches no
        single PyTorch module, or a learned initial carry is not zero.

    Examples:
      >>> import jax, numpy as np, jaxrnn as jr
      >>> cell = jr.gru(hidden_size=4)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> state = jr.interop.to_torch(cell, params, suffix="_l0")
      >>> {k: v.shape for k, v in state.items()}
      {'weight_ih_l0': (12, 3), 'weight_hh_l0': (12, 4), 'bias_ih_l0': (12,),
       'bias_hh_l0': (12,)}
      >>> back = jr.interop.from_torch(cell, state)
      >>> all(bool(np.array_equal(back[k], params[k])) for k in params)
      True
      >>> # torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
      >>> net = jr.stack([jr.bidirectional(cell, cell)] * 2)
      >>> net_params = net.init(jax.random.key(0), input_size=3)
      >>> state = jr.interop.to_torch(net, net_params)
      >>> state["weight_ih_l1_reverse"].shape
      (12, 8)
    """
    rows = _layout(layer_or_cell, "to_torch", suffix)
    entries = [("params", params)]
    if isinstance(layer_or_cell, Stack):
        learn = layer_or_cell.learn_initial_carry
        keys = ["initial_carry", "layers"] if learn else ["layers"]
        what = f"stack(...).init returns (learn_initial_carry={learn})"
        _check_keys(params, "params", keys, what)
        rule = f"must be a list of {len(rows)} entries, one per layer"
        entries = common.split(params["layers"], "params['layers']", rule, len(rows))
        why = "a PyTorch module starts from zeros; pass its initial state as h_0 instead"
        for index, carry in enumerate(params.get("initial_carry", [])):
            common.require_zero(carry, f"params['initial_carry'][{index}]", why)
    state, inputs, sizes = {}, {}, None
    for index, (row, (path, entry)) in enumerate(zip(rows, entries, strict=True)):
        parts = [(path, entry)]
        if len(row) == 2:
            _check_keys(entry, path, ["bwd", "fwd"], "bidirectional(...).init returns")
            parts = [(f"{path}[{way!r}]", entry[way]) for way in ("fwd", "bwd")]
        for (cell, part_suffix), (path, entry) in zip(row, parts, strict=True):
            arrays = common.check_params(cell, entry, path=path, sizes=sizes)
            inputs[f"{path}['w_x']"] = arrays["w_x"]
            sizes = sizes or {"input_size": (arrays["w_x"].shape[0], f"{path}['w_x'].shape[0]")}
            bias_hh = np.zeros_like(arrays["b"])
            if "b_hn" in arrays:
                bias_hh[-cell.hidden_size :] = arrays["b_hn"]
            weights = {"weight_ih": arrays["w_x"].T, "weight_hh": arrays["w_h"].T}
            for key, value in {**weights, "bias_ih": arrays["b"], "bias_hh": bias_hh}.items():
                state[key + part_suffix] = np.array(value, order="C")  # fresh, for torch.from_numpy
        features = len(row) * row[0][0].hidden_size
        sizes = {"input_size": (features, f"the outputs of layers[{index}]")}
    checks.same_dtype(inputs, "all params must share one dtype")
    return state


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
      TypeError: `layer_or_cell` is not a cell or layer, a state is not a
        floating array, or `h_n` and `c_n` differ in dtype.
      ValueError: the layer has no PyTorch counterpart, a shape disagrees with
        `L * D` and `H`, `c_n` is missing for an LSTM or given for another cell,
        or `h_n` and `c_n` differ in shape.

    Examples:
      >>> import numpy as np, jaxrnn as jr
      >>> net = jr.stack([jr.bidirectional(jr.gru(4), jr.gru(4))] * 2)
      >>> h_n = np.arange(2 * 2 * 3 * 4, dtype=np.float32)
      >>> h_n = h_n.reshape(4, 3, 4)  # (L*D, N, H)
      >>> carries = jr.interop.carry_from_torch(net, h_n)
      >>> len(carries), carries[1][0].shape                        # layer 1, forward
      (2, (3, 4))
      >>> bool((carries[1][1] == h_n[3]).all())                    # layer 1, backward
      True
    """
    rows = _layout(layer_or_cell, "carry_from_torch")
    cell, count = rows[0][0][0], sum(map(len, rows))
    lstm, H = common.builtin(cell) == "lstm", cell.hidden_size
    if lstm == (c_n is None):
        rule = "given for an LSTM" if lstm else f"None for cell {cell.name!r}, whose carry is h"
        got = "None" if c_n is None else checks.describe(c_n)
        raise ValueError(f"c_n must be {rule}; got {got}")
    given = [("h_n", h_n), ("c_n", c_n)][: 1 + lstm]
    states = [common.as_jax(value, name) for name, value in given]
    for (name, _), state in zip(given, states, strict=True):
        if state.ndim < 2 or state.shape[0] != count or state.shape[-1] != H:
            raise ValueError(
                f"{name} has shape {checks.shape_str(state.shape)} but must be ({count}, "
                f"*batch, {H}) = (num_layers * num_directions, *batch, hidden_size)"
            )
        checks.like(state, name, states[0], "h_n", "is the other state of the same module")
    flat = iter([tuple(s[i] for s in states) if lstm else states[0][i] for i in range(count)])
    layers = [next(flat) if len(row) == 1 else (next(flat), next(flat)) for row in rows]
    return layers if isinstance(layer_or_cell, Stack) else layers[0]


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
        structure, or a state is not a floating array or differs from the others
        in dtype.
      ValueError: the layer has no PyTorch counterpart, or a state's shape is not
        `(*batch, H)` or differs from the others.

    Examples:
      >>> import jaxrnn as jr
      >>> net = jr.stack([jr.lstm(4), jr.lstm(4), jr.lstm(4)])
      >>> h_n, c_n = jr.interop.carry_to_torch(net, net.initial_carry((2,)))
      >>> h_n.shape, c_n.shape                                     # (L*D, N, H)
      ((3, 2, 4), (3, 2, 4))
    """
    rows = _layout(layer_or_cell, "carry_to_torch")
    parts = [("carry", carry)]
    if isinstance(layer_or_cell, Stack):
        rule = f"must be a list of {len(rows)} carries, one per layer of the stack"
        parts = common.split(carry, "carry", rule, len(rows))
    if len(rows[0]) == 2:
        rule = "must be a pair (fwd_carry, bwd_carry) for a bidirectional layer"
        parts = [part for name, pair in parts for part in common.split(pair, name, rule, 2)]
    cell = rows[0][0][0]
    states = common.carry_states(cell, parts)
    if common.builtin(cell) == "lstm":
        return np.stack(states[0::2]), np.stack(states[1::2])
    return np.stack(states)
