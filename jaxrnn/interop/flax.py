"""Move weights between jaxrnn cells and Flax's recurrent cells (`flax.linen`, `flax.nnx`).


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

Neither flax nor equinox is imported here: Flax params are nested dicts of
arrays, and an Equinox cell is read by attribute (`to_equinox` uses the
`equinox` module that made the cell it is given). The Flax and Equinox
converters use only `jax.numpy` slices, concatenations and transposes, so they
also run under `jax.jit` and `jax.grad`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import Cell, Params
from jaxrnn.interop import common

__all__ = ["from_flax", "from_flax_carry", "to_flax", "to_flax_carry"]

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
    common.check_built_in(cell, function, supported, "Flax")
    return _FLAX_KINDS[common.builtin(cell)]


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
    kinds = _FLAX_KINDS[common.builtin(cell)]
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
            if name != common.builtin(cell) and _entries(_FLAX_LAYOUTS[kind]) == got:
                others.setdefault(kind, common.JAXRNN_FOR[name])
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
    arrays = {key: common.as_jax(tree[key[0]][key[1]], names[key]) for key in names}
    found = common.same_dtype({names[key]: arr for key, arr in arrays.items()})

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

    target = common.target_dtype(dtype, found)
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
    kinds = _FLAX_KINDS[common.builtin(cell)]
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
    arrays = common.check_params(cell, params, common.as_jax)
    if "b_hn" in arrays and all(param != "b_hn" for _, _, param, _ in layout):
        common.require_zero(
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
    if common.builtin(cell) != "lstm":
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
