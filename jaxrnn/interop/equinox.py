"""Move weights between jaxrnn cells and `equinox.nn.LSTMCell` and `equinox.nn.GRUCell`.

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

import sys
from typing import Any

import jax.numpy as jnp

from jaxrnn.cell import Cell, Params
from jaxrnn.interop import common

__all__ = ["from_equinox", "to_equinox"]

# Built-in kind -> equinox.nn class, with jaxrnn's gates in jaxrnn's order.
EQUINOX = {"lstm": "LSTMCell", "gru": "GRUCell"}
# jaxrnn param -> the Equinox attribute that holds its transpose (Equinox computes W @ x).
ATTRIBUTES = {"w_x": "weight_ih", "w_h": "weight_hh", "b": "bias", "b_hn": "bias_n"}
SUPPORTED = {kind: f"equinox.nn.{cls}" for kind, cls in EQUINOX.items()}


def _check_equinox(cell: Any, module: Any, name: str, function: str) -> str:
    """The kind of `cell`, or an error unless `module` is the equinox.nn cell it converts to."""
    kind = common.check_built_in(cell, function, SUPPORTED, "equinox.nn")
    # A module that is an equinox cell was made by an imported equinox, so this needs no import.
    eqx = sys.modules.get("equinox")
    found = [k for k, cls in EQUINOX.items() if eqx and isinstance(module, getattr(eqx.nn, cls))]
    if not found:
        raise TypeError(
            f"{name} must be an equinox.nn.LSTMCell or equinox.nn.GRUCell, "
            f"got {type(module).__module__}.{type(module).__qualname__}"
        )
    if found[0] != kind:
        raise ValueError(
            f"cell {cell.name!r} converts to and from {SUPPORTED[kind]}, but {name} is an "
            f"{SUPPORTED[found[0]]}; use {common.JAXRNN_FOR[found[0]]} for it"
        )
    if module.hidden_size != cell.hidden_size:
        raise ValueError(
            f"{name} has hidden_size={module.hidden_size} but cell {cell.name!r} has "
            f"hidden_size={cell.hidden_size}"
        )
    return kind


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
      >>> key = jax.random.key(0)
      >>> eqx_cell = eqx.nn.GRUCell(input_size=3, hidden_size=4, key=key)
      >>> params = jr.interop.from_equinox(jr.gru(4), eqx_cell)
      >>> {k: v.shape for k, v in params.items()}
      {'w_x': (3, 12), 'w_h': (4, 12), 'b': (12,), 'b_hn': (4,)}
      >>> bool((params["w_h"] == eqx_cell.weight_hh.T).all())
      True
    """
    kind = _check_equinox(cell, eqx_cell, "eqx_cell", "from_equinox")
    shapes, H = common.param_shapes(cell, eqx_cell.input_size), cell.hidden_size
    names = {param: f"eqx_cell.{ATTRIBUTES[param]}" for param in shapes}
    values = {names[param]: getattr(eqx_cell, ATTRIBUTES[param]) for param in shapes}
    eqx_shapes = {names[param]: shape[::-1] for param, shape in shapes.items()}
    context = f"an {SUPPORTED[kind]} with input_size={eqx_cell.input_size} and hidden_size={H}"
    # A cell made with use_bias=False has None for its biases.
    values = {name: value for name, value in values.items() if value is not None}
    arrays = common.read(values, eqx_shapes, context, dtype=dtype)
    dtype = arrays[names["w_x"]].dtype
    return {
        param: arrays[names[param]].T if names[param] in arrays else jnp.zeros(shape, dtype)
        for param, shape in shapes.items()
    }


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
    sizes = {"input_size": (like.input_size, "like.input_size")}
    arrays = common.check_params(cell, params, common.as_jax, sizes=sizes)
    values = {}
    for param, arr in arrays.items():
        attr = ATTRIBUTES[param]
        if getattr(like, attr) is None:
            common.require_zero(arr, f"params[{param!r}]", f"like has no {attr} (use_bias=False)")
        else:
            values[attr] = arr.T
    eqx = sys.modules["equinox"]
    return eqx.tree_at(lambda m: [getattr(m, a) for a in values], like, list(values.values()))
