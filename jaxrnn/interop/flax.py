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

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import Cell, Params
from jaxrnn.interop import common

__all__ = ["from_flax", "from_flax_carry", "to_flax", "to_flax_carry"]

# Flax class -> {jaxrnn param: the layers it is split into, in order}: one layer per gate,
# each holding `hidden_size` columns (or bias entries) of the param, or one holding it whole.
# Kernels come from `w_x` and `w_h`, biases from `b` and `b_hn`.
_LSTM_X = ("ii", "if", "ig", "io")
_LSTM_H = ("hi", "hf", "hg", "ho")
_GRU_X = ("ir", "iz", "in")
_FUSED = {"w_x": ("dense_i",), "b": ("dense_i",), "w_h": ("dense_h",)}
FLAX: dict[str, dict[str, tuple[str, ...]]] = {
    "linen.LSTMCell": {"w_x": _LSTM_X, "w_h": _LSTM_H, "b": _LSTM_H},
    "linen.OptimizedLSTMCell": {"w_x": _LSTM_X, "w_h": _LSTM_H, "b": _LSTM_H},
    "nnx.LSTMCell": {"w_x": ("ii", "if_", "ig", "io"), "w_h": _LSTM_H, "b": _LSTM_H},
    "nnx.OptimizedLSTMCell": {"w_x": ("dense_i",), "w_h": ("dense_h",), "b": ("dense_h",)},
    "linen.GRUCell": {"w_x": _GRU_X, "b": _GRU_X, "w_h": ("hr", "hz", "hn"), "b_hn": ("hn",)},
    "nnx.GRUCell": _FUSED,  # no b_hn: its candidate has no recurrent bias
    "linen.SimpleCell": {"w_x": ("i",), "b": ("i",), "w_h": ("h",)},
    "nnx.SimpleCell": _FUSED,
}
CLASSES = {  # the default (linen) first
    "lstm": ("linen.LSTMCell", "linen.OptimizedLSTMCell", "nnx.LSTMCell", "nnx.OptimizedLSTMCell"),
    "gru": ("linen.GRUCell", "nnx.GRUCell"),
    "rnn_tanh": ("linen.SimpleCell", "nnx.SimpleCell"),
    "rnn_relu": ("linen.SimpleCell", "nnx.SimpleCell"),
}
SUPPORTED = {kind: ", ".join(classes) for kind, classes in CLASSES.items()}
FOREIGN = {  # Flax cells whose maths no jaxrnn cell has, by their layer names
    frozenset({"if", "in", "hf", "hn"}): "flax.linen.MGUCell (one gate fewer than a GRU)",
    frozenset({"ih", "hh"}): "flax.linen.ConvLSTMCell (its kernels are convolutions)",
}


def _entries(flax_class: str) -> list[tuple[str, str, str]]:
    """`(layer, leaf, param)` for each array of `flax_class`, in the table's order."""
    return [
        (layer, "kernel" if param.startswith("w_") else "bias", param)
        for param, layers in FLAX[flax_class].items()
        for layer in layers
    ]


def _match(cell: Cell, kind: str, tree: Mapping[str, Any], path: str) -> str:
    """The Flax class for `cell` whose param names `tree` has, or an error saying what differs."""

    def names(flax_class: str) -> set[tuple[str, str]]:
        return {(layer, leaf) for layer, leaf, _ in _entries(flax_class)}

    got = {(str(layer), str(leaf)) for layer, sub in tree.items() for leaf in sub}
    # The first class with these names, preferring those of `kind`.
    owner = next((cls for cls in (*CLASSES[kind], *FLAX) if names(cls) == got), None)
    if owner in CLASSES[kind]:
        return owner
    closest = max(CLASSES[kind], key=lambda flax_class: len(names(flax_class) & got))
    hint = ""
    if owner is not None:
        to = next(common.JAXRNN_FOR[k] for k, classes in CLASSES.items() if owner in classes)
        hint = f"; these are the params of a flax.{owner}, which converts with {to}"
    if foreign := FOREIGN.get(frozenset(layer for layer, _ in got)):
        hint = f"; these look like the params of a {foreign}, which no jaxrnn cell computes"

    def paths(pairs: set[tuple[str, str]]) -> list[str]:
        return [f"[{layer!r}][{leaf!r}]" for layer, leaf in sorted(pairs)]

    raise ValueError(
        f"{path} does not have the params of a {' or '.join('flax.' + c for c in CLASSES[kind])} "
        f"for cell {cell.name!r}: compared with flax.{closest}, missing "
        f"{paths(names(closest) - got)}, unexpected {paths(got - names(closest))}{hint}"
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
      >>> # flax.linen.GRUCell(features=H): its variables["params"]
      >>> flax_params = {
      ...     "ir": dense(I, True), "iz": dense(I, True), "in": dense(I, True),
      ...     "hr": dense(H, False), "hz": dense(H, False), "hn": dense(H, True),
      ... }
      >>> params = jr.interop.from_flax(jr.gru(H), flax_params)
      >>> {k: v.shape for k, v in params.items()}
      {'w_x': (3, 12), 'w_h': (4, 12), 'b': (12,), 'b_hn': (4,)}
      >>> bool(np.all(params["w_x"][:, H : 2 * H] == flax_params["iz"]["kernel"]))
      True
    """
    kind = common.check_built_in(cell, "from_flax", SUPPORTED, "Flax")
    if not isinstance(flax_params, Mapping):
        raise TypeError(
            f"flax_params must be a dict of a Flax cell's params (variables['params']), "
            f"got {type(flax_params).__name__}"
        )
    tree, path = flax_params, "flax_params"
    for wrapper in ("params", "cell"):  # cell.init(...) and nn.RNN(cell).init(...) wrap them
        if set(tree) == {wrapper} and isinstance(tree[wrapper], Mapping):
            tree, path = tree[wrapper], f"{path}[{wrapper!r}]"
    for layer, sub in tree.items():
        if not isinstance(sub, Mapping):
            raise TypeError(
                f"{path}[{layer!r}] must be a dict of arrays such as {{'kernel': ...}} (one "
                f"Dense layer of a Flax cell), got {type(sub).__name__}"
            )
    flax_class = _match(cell, kind, tree, path)
    shapes, layers = common.param_shapes(cell), FLAX[flax_class]
    values, parts = {}, {}
    for layer, leaf, param in _entries(flax_class):
        name = f"{path}[{layer!r}][{leaf!r}]"
        values[name] = tree[layer][leaf]
        # Each of a param's layers holds an equal part of its last axis: a gate, or all of it.
        parts[name] = (*shapes[param][:-1], shapes[param][-1] // len(layers[param]))
    context = f"{checks.label(cell)} read as a flax.{flax_class}"
    arrays = iter(common.read(values, parts, context, dtype=dtype).values())
    params = {
        param: jnp.concatenate([next(arrays) for _ in layers[param]], axis=-1) for param in layers
    }
    if "b_hn" in shapes and "b_hn" not in params:  # nnx.GRUCell: no recurrent candidate bias
        params["b_hn"] = jnp.zeros(shapes["b_hn"], params["w_x"].dtype)
    return {param: params[param] for param in shapes}


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
      >>> # for flax.linen.LSTMCell(features=4)
      >>> flax_params = jr.interop.to_flax(cell, params)
      >>> sorted(flax_params)
      ['hf', 'hg', 'hi', 'ho', 'if', 'ig', 'ii', 'io']
      >>> {k: v.shape for k, v in flax_params["hf"].items()}
      {'kernel': (4, 4), 'bias': (4,)}
      >>> bool((flax_params["if"]["kernel"] == params["w_x"][:, 4:8]).all())
      True
      >>> variables = {"params": flax_params}  # the Flax cell's variables
      >>> back = jr.interop.from_flax(cell, variables)
      >>> all(bool((back[k] == params[k]).all()) for k in params)
      True
    """
    classes = CLASSES[common.check_built_in(cell, "to_flax", SUPPORTED, "Flax")]
    if kind is not None and not isinstance(kind, str):
        raise TypeError(
            f"kind must be a str naming a Flax cell class such as 'linen.GRUCell' or "
            f"'nnx.GRUCell', got {type(kind).__name__} {kind!r}"
        )
    flax_class = classes[0] if kind is None else kind.removeprefix("flax.")
    checks.one_of(flax_class, "kind", classes)
    arrays = common.check_params(cell, params, common.as_jax)
    if "b_hn" in arrays and "b_hn" not in FLAX[flax_class]:
        common.require_zero(
            arrays["b_hn"],
            "params['b_hn']",
            f"flax.{flax_class} has no recurrent bias in its candidate, "
            f"n = tanh(x W_in + b_in + r * (h W_hn)); use kind='linen.GRUCell'",
        )
    flax_params: dict[str, dict[str, jax.Array]] = {}
    for param, layers in FLAX[flax_class].items():
        leaf = "kernel" if param.startswith("w_") else "bias"
        for layer, part in zip(layers, jnp.split(arrays[param], len(layers), axis=-1), strict=True):
            flax_params.setdefault(layer, {})[leaf] = part
    return flax_params


def _swap(cell: Cell, carry: Any, name: str, order: str, function: str) -> Any:
    """`carry` checked, with an LSTM's two states swapped; `order` names them as given."""
    kind = common.check_built_in(cell, function, SUPPORTED, "Flax")
    states = common.carry_states(cell, [(name, carry)], order)
    return (states[1], states[0]) if kind == "lstm" else states[0]


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
        a single array (others), an array is not floating, or `c` and `h` differ
        in dtype.
      ValueError: `cell` has no Flax counterpart, a state's last axis is not `H`,
        or `c` and `h` differ in shape.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> c, h = jnp.zeros((2, 4)), jnp.ones((2, 4))       # flax LSTMCell's (c, h)
      >>> carry = jr.interop.from_flax_carry(jr.lstm(4), (c, h))
      >>> bool((carry[0] == h).all()), bool((carry[1] == c).all())
      (True, True)
    """
    return _swap(cell, flax_carry, "flax_carry", "(c, h)", "from_flax_carry")


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
        array (others), an array is not floating, or `h` and `c` differ in dtype.
      ValueError: `cell` has no Flax counterpart, a state's last axis is not `H`,
        or `h` and `c` differ in shape.

    Examples:
      >>> import jaxrnn as jr
      >>> cell = jr.lstm(4)
      >>> h, c = cell.initial_carry(batch_shape=(2,))
      >>> flax_carry = jr.interop.to_flax_carry(cell, (h, c + 1.0))
      >>> float(flax_carry[0][0, 0]), float(flax_carry[1][0, 0])     # (c, h)
      (1.0, 0.0)
    """
    return _swap(cell, carry, "carry", "(h, c)", "to_flax_carry")
