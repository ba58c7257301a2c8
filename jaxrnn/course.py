r"""The "build your RNN step by step" course, name for name, on the library's cells.

The classic NumPy exercise builds a recurrent network by hand: a cell forward, a
loop over time, then the backward passes. This module speaks its language
exactly (the same function names, argument orders, features-first arrays, params
dict keys, caches and gradient dicts), so code written for the course runs here
unchanged, but every forward step is the library's own cell
(`jaxrnn.rnn`, `jaxrnn.lstm`) rather than a second implementation:

- inputs: course `xt (n_x, m)` is the cell's `x (m, n_x)` = `xt.T`; a sequence
  `x (n_x, m, T_x)` is `xs (T_x, m, n_x)` = `x.transpose(2, 1, 0)`;
- states: `a_prev (n_a, m)` is the carry `h (m, n_a)` = `a_prev.T` (and `c_prev.T`);
- RNN params: `Wax (n_a, n_x)`, `Waa (n_a, n_a)`, `ba (n_a, 1)` are
  `w_x = Wax.T`, `w_h = Waa.T`, `b = ba[:, 0]`;
- LSTM params: `Wi, Wf, Wc, Wo`, each `(n_a, n_a + n_x)`, are the fused gates
  i, f, g, o: `W[:, :n_a].T` is a gate's block of `w_h`, `W[:, n_a:].T` its block
  of `w_x`;
- output layer: `Wya` (RNN) or `Wy` (LSTM) `(n_y, n_a)` and `by (n_y, 1)` are a
  separate head, `w_y = Wya.T`, `b_y = by[:, 0]`.

`to_cell_params` and `from_cell_params` convert between the two, exactly.

The backward functions are written out by hand from the chain rule, as in the
course, and computed with `jax.numpy`; each equals `jax.vjp` of its forward (the
tests check this to 1e-10 in float64, and against finite differences).

Arrays: every function accepts NumPy arrays (or anything `np.asarray` takes)
and returns NumPy arrays, the course's world. All arrays passed to one call
must share one real floating dtype, which the results keep: float64 in,
float64 out (the function turns on JAX's 64-bit mode for its own duration
only, `with jax.enable_x64(True)`, and off for other dtypes; the global flag is
never changed), float32 in, float32 out. Being NumPy functions, they run
eagerly and cannot be traced by `jax.jit` or `jax.grad`; for that, use
`to_cell_params` and the main API.

Where the widely copied 2018 version of the notebook differs from the maths
(this module follows the maths):

- Its printed LSTM gate-derivative equations (8)-(10) apply each gate's
  activation derivative to only the second term of a sum; it must multiply the
  whole of $dc = dc_{next} + \Gamma_o (1 - \tanh^2 c_{next})\, da_{next}$ times
  the gate's other factor. Equation (8) also has an extra factor $\tilde c$ and
  writes $1 - \tanh^2 \tilde c$ for $1 - \tilde c^2$ ($\tilde c$ is already a
  tanh), and (10) writes $\tilde c_{prev}$ where $c_{prev}$ is meant. Its
  printed expected outputs came from correct code (this module reproduces
  them), so a literal transcription of the printed equations misses them.
- Its equations for $da_{prev}$ and $dx_t$ slice the weights by rows
  (`W_f[:n_a, :]`, `W_f[n_a:, :]`); the split is by columns,
  `Wf[:, :n_a]` (hidden part) and `Wf[:, n_a:]` (input part).
- Its docstring gives `dc_prev` the shape `(n_a, m, T_x)`; it is `(n_a, m)`.
- Many copied `lstm_backward` solutions pass `da[:, :, t]` alone to the cell
  backward, dropping the gradient that reaches $a^{\langle t \rangle}$ through
  step $t + 1$; the right upstream gradient is `da[:, :, t] + da_prevt`.
- Its `lstm_backward` example runs the forward over 7 steps but passes `da`
  with 4; the backward then walks the first 4 caches only, which is exact for
  a loss that depends on those 4 hidden states (the later steps would add
  zeros). This module does the same and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from jaxrnn import cells, checks
from jaxrnn.cell import BpttStep, Cell, Params
from jaxrnn.cells import lstm, rnn

Array = jax.Array
Gradients = dict[str, np.ndarray]
"""A dict of NumPy arrays keyed by the course's gradient names (`dxt`, `dWax`, ...)."""

RNN_KEYS = ("Wax", "Waa", "Wya", "ba", "by")
"""The course's RNN parameter keys."""
LSTM_KEYS = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")
"""The course's LSTM parameter keys."""

_DIMS = {
    "Wax": ("n_a", "n_x"), "Waa": ("n_a", "n_a"), "Wya": ("n_y", "n_a"), "ba": ("n_a", "1"),
    "Wy": ("n_y", "n_a"), "by": ("n_y", "1"),
    **{f"W{g}": ("n_a", "n_a + n_x") for g in "fico"},
    **{f"b{g}": ("n_a", "1") for g in "fico"},
}  # fmt: skip

# The library's fused gate order is i, f, g, o; the course calls them Wi, Wf, Wc, Wo.
_LSTM_GATE_ORDER = "ifco"
_LSTM_PARAM_GRADS = tuple(f"d{w}{g}" for w in "Wb" for g in "fico")

RNN_CELL_GRADIENTS = ("dxt", "da_prev", "dWax", "dWaa", "dba")
"""The keys `rnn_cell_backward` returns, in order."""
RNN_GRADIENTS = ("dx", "da0", "dWax", "dWaa", "dba")
"""The keys `rnn_backward` returns, in order."""
LSTM_CELL_GRADIENTS = ("dxt", "da_prev", "dc_prev", *_LSTM_PARAM_GRADS)
"""The keys `lstm_cell_backward` returns, in order."""
LSTM_GRADIENTS = ("dx", "da0", *_LSTM_PARAM_GRADS)
"""The keys `lstm_backward` returns, in order."""


class CellParams(NamedTuple):
    """The library's view of a course parameter dict (see `to_cell_params`).

    Attributes:
      cell: `jaxrnn.rnn(n_a)` (tanh) or `jaxrnn.lstm(n_a)`.
      params: the cell's fused params, `{"w_x": (n_x, G * n_a), "w_h": (n_a, G * n_a),
        "b": (G * n_a,)}` with `G = 1` (RNN) or `4` (LSTM, gates i, f, g, o).
      head: the output layer in the library's layout, `{"w_y": (n_a, n_y), "b_y": (n_y,)}`,
        so that the logits of hidden states `h (..., n_a)` are `h @ w_y + b_y`.
    """

    cell: Cell
    params: Params
    head: dict[str, Any]


class _Kind(NamedTuple):
    """What tells the course's two networks apart; every loop and check is shared."""

    name: str  # "rnn" or "lstm", as in the course's function names
    keys: tuple[str, ...]  # the params dict; keys[0] is the weight that fixes n_a and n_x
    head: str  # the output weight
    rule: BpttStep  # the library's step: forward, per-step backward, weight gradients
    make: Callable[[int], Cell]
    stacked: bool  # gates act on [a_prev; xt], with one weight per gate (the LSTM)
    states: tuple[str, ...]  # the carry, by course name
    residuals: tuple[str, ...]  # course names of the rule's residuals
    cache: tuple[str, ...]  # the arrays of a cell cache, in order, before the params
    param_grads: tuple[str, ...]


# One cell object per size, so jit caches and the param-template cache are reused.
_RNN = _Kind(
    "rnn", RNN_KEYS, "Wya", cells.RNN_TANH, functools.cache(rnn), False, ("a",), (),
    ("a_next", "a_prev", "xt"), RNN_GRADIENTS[2:],
)  # fmt: skip
_LSTM = _Kind(
    "lstm", LSTM_KEYS, "Wy", cells.LSTM, functools.cache(lstm), True, ("a", "c"),
    ("it", "ft", "cct", "ot", "c_prev"),
    ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot", "xt"), _LSTM_PARAM_GRADS,
)  # fmt: skip


# ----------------------------------------------------------------------------- checks


def _array(x: Any, name: str, dims: Sequence[str], *, keep_jax: bool = False) -> Any:
    """`x` as a NumPy array (or a JAX array if `keep_jax`) of rank `len(dims)`."""
    if x is None or isinstance(x, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be an array of shape ({', '.join(dims)}), got {type(x)}")
    x = checks.float_array(x, name, numpy=not (keep_jax and isinstance(x, jax.Array)))
    if x.ndim != len(dims):
        hint = ""
        if len(dims) == 2 and dims[1] == "1" and x.ndim == 1:
            hint = f"; a bias is a column, reshape it with {name}.reshape(-1, 1)"
        raise ValueError(
            f"{name} must have {len(dims)} dims ({', '.join(dims)}), "
            f"got shape {checks.shape_str(x.shape)}{hint}"
        )
    return x


def _expect_shape(name: str, x: Any, shape: tuple[int, ...], why: str) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(
            f"{name} has shape {checks.shape_str(x.shape)} but expected "
            f"{checks.shape_str(shape)}: {why}"
        )


def _same_dtype(arrays: Mapping[str, Any]) -> Any:
    why = "every array passed to one course function must share one floating dtype"
    return checks.same_dtype(arrays, why)


def _keys(value: Any, keys: Sequence[str], name: str, what: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict with {what}, got {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    extra = sorted(str(k) for k in value if k not in keys)
    if missing or extra:
        raise ValueError(f"{name} must have exactly {what}; missing {missing}, unexpected {extra}")


def _parameters(
    kind: _Kind, parameters: Any, name: str, keep_jax: bool = False
) -> tuple[dict[str, Any], int, int]:
    """The checked course params of `kind` (keys, shapes, one dtype) and `(n_a, n_x)`."""
    _keys(parameters, kind.keys, name, f"the {kind.name.upper()} keys {', '.join(kind.keys)}")
    p = {k: _array(parameters[k], f"{name}[{k!r}]", _DIMS[k], keep_jax=keep_jax) for k in kind.keys}
    first = kind.keys[0]
    n_a, width = p[first].shape
    n_x = width - n_a if kind.stacked else width
    source = f"{name}[{first!r}] of shape {checks.shape_str(p[first].shape)}"
    if n_x < 1:
        dims = ", ".join(_DIMS[first])
        raise ValueError(f"{source} gives n_x = {n_x}; it must be ({dims}) with n_x >= 1")
    n_y = p[kind.head].shape[0]
    sizes = {"n_a": n_a, "n_x": n_x, "n_a + n_x": n_a + n_x, "n_y": n_y, "1": 1}
    why = f"n_a = {n_a} and n_x = {n_x} from {source}, n_y = {n_y} from {name}[{kind.head!r}]"
    for k in kind.keys:
        shape = tuple(sizes[d] for d in _DIMS[k])
        _expect_shape(f"{name}[{k!r}]", p[k], shape, f"({', '.join(_DIMS[k])}) with {why}")
    _same_dtype({f"{name}[{k!r}]": v for k, v in p.items()})
    return p, n_a, n_x


def _checked(
    kind: _Kind, arrays: Mapping[str, Any], parameters: Any, pname: str, x_dims: Sequence[str]
) -> tuple[list[np.ndarray], dict[str, np.ndarray], Any]:
    """The arrays (the input first, then `(n_a, m)` states), params and the one dtype."""
    (x_name, x), *states = (
        (name, _array(v, name, x_dims if k == 0 else ("n_a", "m")))
        for k, (name, v) in enumerate(arrays.items())
    )
    p, n_a, n_x = _parameters(kind, parameters, pname)
    weight = f"{pname}[{kind.keys[0]!r}]"
    if x.shape[0] != n_x:
        raise ValueError(
            f"{x_name} has {x.shape[0]} features ({x_name}.shape[0]; shape "
            f"{checks.shape_str(x.shape)}) but {weight} of shape "
            f"{checks.shape_str(p[kind.keys[0]].shape)} gives n_x = {n_x}"
        )
    m = x.shape[1]
    for name, state in states:
        why = f"(n_a, m) with n_a = {n_a} from {weight} and m = {m} from {x_name}"
        _expect_shape(name, state, (n_a, m), why)
    dtype = _same_dtype({x_name: x, **dict(states), weight: p[kind.keys[0]]})
    return [x, *(s for _, s in states)], p, dtype


def _tuple(value: Any, name: str, length: int, layout: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != length:
        got = type(value).__name__
        if isinstance(value, (tuple, list)):
            got = f"a {got} of length {len(value)}"
        raise TypeError(f"{name} must be the {length}-tuple {layout}; got {got}")
    return tuple(value)


def _cache(kind: _Kind, cache: Any, name: str) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of a checked cell-forward cache, by course name, and its params."""
    layout = f"({', '.join(kind.cache)}, parameters) from {kind.name}_cell_forward"
    *arrays, parameters = _tuple(cache, name, len(kind.cache) + 1, layout)
    order = (len(arrays) - 1, *range(len(arrays) - 1))  # xt (the input) first, for `_checked`
    labelled = {f"{name}[{k}] ({kind.cache[k]})": arrays[k] for k in order}
    checked, p, _ = _checked(kind, labelled, parameters, f"{name}[{len(arrays)}]", ("n_x", "m"))
    return dict(zip((kind.cache[k] for k in order), checked, strict=True)), p


def _precision(dtype: Any) -> Any:
    """JAX's 64-bit mode on for float64 inputs, off otherwise, for one call's duration."""
    return jax.enable_x64(np.dtype(dtype) == np.float64)


# ------------------------------------------------------------------------- converters


def _xp(arrays: Any) -> Any:
    return jnp if any(isinstance(x, jax.Array) for x in jax.tree.leaves(arrays)) else np


def _to_cell(kind: _Kind, p: Mapping[str, Any]) -> CellParams:
    """Checked course params as fused ones: per gate, `w_h` gets `W_h.T`, `w_x` gets `W_x.T`."""
    xp, n_a = _xp(p), p[kind.keys[0]].shape[0]
    if kind.stacked:  # [a_prev; xt]: a weight's first n_a columns are recurrent
        gates = [(p[f"W{g}"][:, :n_a], p[f"W{g}"][:, n_a:], p[f"b{g}"]) for g in _LSTM_GATE_ORDER]
    else:
        gates = [(p["Waa"], p["Wax"], p["ba"])]
    params = {
        "w_x": xp.concatenate([w_x.T for _, w_x, _ in gates], axis=1),
        "w_h": xp.concatenate([w_h.T for w_h, _, _ in gates], axis=1),
        "b": xp.concatenate([b[:, 0] for _, _, b in gates]),
    }
    head = {"w_y": xp.array(p[kind.head].T), "b_y": xp.array(p["by"][:, 0])}
    return CellParams(kind.make(n_a), params, head)


def _to_course(kind: _Kind, w_x: Any, w_h: Any, b: Any) -> dict[str, Any]:
    """The inverse of `_to_cell` for the fused params or their gradients (no head)."""
    xp = _xp((w_x, w_h, b))
    gates = zip(
        *(xp.split(w, 4 if kind.stacked else 1, axis=-1) for w in (w_h, w_x, b)), strict=True
    )
    if not kind.stacked:
        ((g_h, g_x, g_b),) = gates
        return {"Wax": g_x.T, "Waa": g_h.T, "ba": g_b[:, None]}
    course = {}
    for gate, (g_h, g_x, g_b) in zip(_LSTM_GATE_ORDER, gates, strict=True):
        course[f"W{gate}"] = xp.concatenate([g_h.T, g_x.T], axis=1)
        course[f"b{gate}"] = g_b[:, None]
    return course


def to_cell_params(parameters: Mapping[str, npt.ArrayLike]) -> CellParams:
    r"""Map a course parameter dict to a library cell, its fused params and an output head.

    The kind is read off the keys: `Wax, Waa, Wya, ba, by` is the course's tanh RNN,
    `Wf, bf, Wi, bi, Wc, bc, Wo, bo, Wy, by` its LSTM. The maps are transposes,
    slices and concatenations, so `from_cell_params` inverts them exactly:

    - RNN: `w_x = Wax.T`, `w_h = Waa.T`, `b = ba[:, 0]`.
    - LSTM: the gates act on $[a_{prev}; x_t]$, so the first `n_a` columns of each
      course weight are its recurrent part and the rest its input part. With the
      library's gate order i, f, g, o (course `Wi, Wf, Wc, Wo`),
      `w_x = [Wi[:, n_a:].T, Wf[:, n_a:].T, Wc[:, n_a:].T, Wo[:, n_a:].T]` along
      axis 1, `w_h` the same with `[:, :n_a]`, and `b = [bi, bf, bc, bo]` flattened.
    - Head: `w_y = Wya.T` (or `Wy.T`), `b_y = by[:, 0]`.

    NumPy inputs give NumPy copies; if any array is a JAX array (traced ones
    included), the maps run in `jax.numpy`, so they can sit inside `jax.jit` or
    `jax.grad`.

    Args:
      parameters: a course parameter dict (see `rnn_cell_forward` and
        `lstm_cell_forward` for the keys and shapes), one floating dtype throughout.

    Returns:
      A `CellParams(cell, params, head)`: `cell` is `jaxrnn.rnn(n_a)` or
      `jaxrnn.lstm(n_a)`, `params` its fused params, `head` the output layer
      `{"w_y": (n_a, n_y), "b_y": (n_y,)}`.

    Raises:
      TypeError: `parameters` is not a dict, or its arrays are not floating or
        do not share one dtype.
      ValueError: keys are missing or unexpected, or shapes disagree.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(0)
      >>> n_x, n_a, n_y = 3, 5, 2
      >>> parameters = {k: rng.standard_normal(s) for k, s in [
      ...     ("Wax", (n_a, n_x)), ("Waa", (n_a, n_a)), ("Wya", (n_y, n_a)),
      ...     ("ba", (n_a, 1)), ("by", (n_y, 1))]}
      >>> cell, params, head = course.to_cell_params(parameters)
      >>> cell.name, params["w_x"].shape, head["w_y"].shape
      ('rnn_tanh', (3, 5), (5, 2))
      >>> back = course.from_cell_params(params, head)
      >>> all(np.array_equal(back[k], parameters[k]) for k in parameters)
      True
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"parameters must be a course parameter dict, got {type(parameters).__name__}"
        )
    for kind in (_LSTM, _RNN):
        if set(parameters) & (set(kind.keys) - {"by"}):
            p, _, _ = _parameters(kind, parameters, "parameters", keep_jax=True)
            return _to_cell(kind, p)
    raise ValueError(
        f"parameters must hold the course's RNN keys ({', '.join(RNN_KEYS)}) or LSTM keys "
        f"({', '.join(LSTM_KEYS)}); got keys {sorted(str(k) for k in parameters)}"
    )


def from_cell_params(params: Mapping[str, Any], head: Mapping[str, Any]) -> dict[str, Any]:
    """Map a library cell's fused params and an output head back to a course dict.

    The exact inverse of `to_cell_params`. The kind is read off the shapes:
    `w_h (n_a, n_a)` is a one-gate RNN, `w_h (n_a, 4 * n_a)` an LSTM. The
    course's RNN is the tanh one; params of `jaxrnn.rnn(n_a, "relu")` have the
    same layout, so they convert too, but the course functions will run them as
    tanh.

    Args:
      params: `{"w_x": (n_x, G * n_a), "w_h": (n_a, G * n_a), "b": (G * n_a,)}` with
        `G` = 1 or 4, as `jaxrnn.rnn(n_a).init` or `jaxrnn.lstm(n_a).init` return.
      head: `{"w_y": (n_a, n_y), "b_y": (n_y,)}`.

    Returns:
      The course dict: keys `Wax, Waa, Wya, ba, by` (RNN) or
      `Wf, bf, Wi, bi, Wc, bc, Wo, bo, Wy, by` (LSTM). NumPy copies for NumPy
      inputs, JAX arrays if any input is one.

    Raises:
      TypeError: an argument is not a dict, or arrays are not floating or do
        not share one dtype.
      ValueError: keys are missing or unexpected, shapes disagree, or the
        layout is not a one-gate RNN or an LSTM (a GRU has no course version).

    Examples:
      >>> import jax, numpy as np, jaxrnn as jr
      >>> from jaxrnn import course
      >>> params = jr.lstm(4).init(jax.random.key(0), input_size=3)
      >>> head = {"w_y": np.zeros((4, 2), np.float32), "b_y": np.zeros(2, np.float32)}
      >>> parameters = course.from_cell_params(jax.tree.map(np.asarray, params), head)
      >>> parameters["Wf"].shape, parameters["bf"].shape, parameters["Wy"].shape
      ((4, 7), (4, 1), (2, 4))
    """
    dims = {"w_x": ("n_x", "G * n_a"), "w_h": ("n_a", "G * n_a"), "b": ("G * n_a",),
            "w_y": ("n_a", "n_y"), "b_y": ("n_y",)}  # fmt: skip
    layout = {"params": (params, ("w_x", "w_h", "b")), "head": (head, ("w_y", "b_y"))}
    for arg, (value, keys) in layout.items():
        _keys(value, keys, arg, f"the keys {', '.join(keys)}")
    arrays = {
        f"{arg}[{k!r}]": _array(value[k], f"{arg}[{k!r}]", dims[k], keep_jax=True)
        for arg, (value, keys) in layout.items()
        for k in keys
    }
    _same_dtype(arrays)
    w_x, w_h, b, w_y, b_y = arrays.values()
    n_a, width = w_h.shape
    gates = width // n_a if n_a else 0
    if gates not in (1, 4) or width != gates * n_a:
        raise ValueError(
            f"params['w_h'] has shape {checks.shape_str(w_h.shape)}; the course has a "
            f"one-gate RNN (n_a, n_a) and an LSTM (n_a, 4 * n_a) only (a GRU's (n_a, 3 * n_a) "
            f"has no course version)"
        )
    why = f"n_a = {n_a} and {gates} gate(s) from params['w_h'] of shape {w_h.shape}"
    _expect_shape("params['w_x']", w_x, (w_x.shape[0], width), f"(n_x, G * n_a) with {why}")
    _expect_shape("params['b']", b, (width,), f"(G * n_a,) with {why}")
    n_y = w_y.shape[1]
    _expect_shape("head['w_y']", w_y, (n_a, n_y), f"(n_a, n_y) with {why}")
    _expect_shape("head['b_y']", b_y, (n_y,), f"(n_y,) with n_y = {n_y} from head['w_y']")
    kind = _LSTM if gates == 4 else _RNN
    course = {**_to_course(kind, w_x, w_h, b), kind.head: w_y.T, "by": b_y[:, None]}
    xp = _xp(arrays)
    return {k: xp.array(course[k]) for k in kind.keys}


# ---------------------------------------------------------------------------- forward


def _carry(states: Sequence[Array]) -> Any:
    """Course `(n_a, m)` states as the rule's carry: `h`, or `(h, c)`."""
    return states[0].T if len(states) == 1 else tuple(s.T for s in states)


@functools.partial(jax.jit, static_argnums=0)
def _step(kind: _Kind, p: dict[str, Array], xt: Array, prev: tuple[Array, ...]) -> Any:
    """One step of `kind.rule` in the course's layout: new states, `yt` and the residuals."""
    params = _to_cell(kind, p).params
    carry = _carry(prev)
    new, h, residuals = kind.rule.forward(params, carry, kind.rule.project(params, xt.T), carry)
    yt = jax.nn.softmax(p[kind.head] @ h.T + p["by"], axis=0)
    named = {k: r.T for k, r in zip(kind.residuals, residuals, strict=True)}
    return tuple(s.T for s in jax.tree.leaves(new)), yt, named


def _cell_forward(kind: _Kind, p: dict, xt: np.ndarray, prev: tuple[np.ndarray, ...]) -> tuple:
    """`(*next states, yt_pred, cache)` of one checked step, NumPy out."""
    new, yt, named = jax.tree.map(np.array, _step(kind, p, xt, prev))  # writable copies
    named.update(xt=xt)
    for state, before, after in zip(kind.states, prev, new, strict=True):
        named.update({f"{state}_prev": before, f"{state}_next": after})
    return (*new, yt, (*(named[k] for k in kind.cache), p))


def _checked_cell_forward(kind: _Kind, inputs: Mapping[str, Any], parameters: Any) -> tuple:
    (xt, *prev), p, dtype = _checked(kind, inputs, parameters, "parameters", ("n_x", "m"))
    with _precision(dtype):
        return _cell_forward(kind, p, xt, tuple(prev))


def _forward(kind: _Kind, x: Any, a0: Any, parameters: Any) -> tuple:
    """`(a, y, *c, (caches, x))`: `_cell_forward` over time, the memory starting at 0."""
    (x, a0), p, dtype = _checked(
        kind, {"x": x, "a0": a0}, parameters, "parameters", ("n_x", "m", "T_x")
    )
    if x.shape[2] < 1:
        raise ValueError(f"x must have at least one time step, got shape {x.shape}")
    prev = (a0, *(np.zeros_like(a0) for _ in kind.states[1:]))
    steps = []
    with _precision(dtype):
        for t in range(x.shape[2]):
            steps.append(_cell_forward(kind, p, x[:, :, t], prev))
            prev = steps[-1][: len(kind.states)]
    *outputs, caches = zip(*steps, strict=True)  # (*states, y) per step, then the cache
    a, *c, y = (np.stack(output, axis=2) for output in outputs)
    return (a, y, *c, (list(caches), x))


# --------------------------------------------------------------------------- backward


@functools.partial(jax.jit, static_argnums=0)
def _step_grads(kind: _Kind, p: dict, named: dict, upstream: tuple[Array, ...]) -> Gradients:
    """`kind.rule`'s backward and weight gradients for one step, keyed as the course's."""
    params = _to_cell(kind, p).params
    residuals = tuple(named[k].T for k in kind.residuals)
    back = {**params, "w_h_t": params["w_h"].T}
    emitted, dprev = kind.rule.backward(back, residuals, named["a_next"].T, _carry(upstream))
    one = functools.partial(jax.tree.map, lambda a: a[None])  # a stack of one step
    xs, h_prev = named["xt"].T[None], named["a_prev"].T[None]
    g, dxs = kind.rule.grads(params, xs, h_prev, one(residuals), one(emitted))
    grads = {f"d{s}_prev": d.T for s, d in zip(kind.states, jax.tree.leaves(dprev), strict=True)}
    course = _to_course(kind, g["w_x"], g["w_h"], g["b"])
    return {"dxt": dxs[0].T, **grads, **{f"d{k}": v for k, v in course.items()}}


def _cell_backward(kind: _Kind, upstream: Mapping[str, Any], cache: Any) -> Gradients:
    named, p = _cache(kind, cache, "cache")
    checked = []
    for k, (name, value) in enumerate(upstream.items()):  # da_next, dc_next: cache[0], cache[1]
        like, like_name = named[name[1:]], f"cache[{k}] ({name[1:]})"
        checked.append(_array(value, name, ("n_a", "m")))
        _expect_shape(name, checked[-1], like.shape, f"(n_a, m), the shape of {like_name}")
        _same_dtype({like_name: like, name: checked[-1]})
    with _precision(named["xt"].dtype):
        grads = _step_grads(kind, p, named, tuple(checked))
        keys = ("dxt", *(f"d{s}_prev" for s in kind.states), *kind.param_grads)
        return {k: np.array(grads[k]) for k in keys}  # in order: JAX returns dicts sorted


def _backward(kind: _Kind, da: Any, caches: Any) -> Gradients:
    """Walk the caches from step `T_x - 1` down to 0, summing the weight gradients."""
    layout = f"(list_of_caches, x) from {kind.name}_forward"
    steps, _ = _tuple(caches, "caches", 2, layout)
    if not isinstance(steps, (list, tuple)) or not steps:
        raise TypeError(
            f"caches[0] must be the non-empty list of step caches from {kind.name}_forward, "
            f"got {type(steps).__name__}"
        )
    da = _array(da, "da", ("n_a", "m", "T_x"))
    T_x = da.shape[2]
    if not 1 <= T_x <= len(steps):
        raise ValueError(
            f"da has {T_x} time steps (da.shape[2]) but caches holds {len(steps)}; the "
            f"backward walks steps T_x - 1 down to 0 of the forward, so 1 <= T_x <= {len(steps)}"
        )
    unpacked = [_cache(kind, steps[t], f"caches[0][{t}]") for t in range(T_x)]
    a1 = unpacked[0][0]["a_next"]
    why = f"(n_a, m, T_x) with (n_a, m) = {a1.shape} from the hidden states in caches"
    _expect_shape("da", da, (*a1.shape, T_x), why)
    _same_dtype({"caches[0][0][0] (a_next)": a1, "da": da})
    with _precision(da.dtype):
        dprev = tuple(jnp.zeros(da.shape[:2], da.dtype) for _ in kind.states)
        dx, totals = [None] * T_x, None
        for t in reversed(range(T_x)):
            named, p = unpacked[t]
            g = _step_grads(kind, p, named, (da[:, :, t] + dprev[0], *dprev[1:]))
            dx[t], dprev = g["dxt"], tuple(g[f"d{s}_prev"] for s in kind.states)
            step = {k: g[k] for k in kind.param_grads}
            totals = step if totals is None else jax.tree.map(jnp.add, totals, step)
        grads = {"dx": jnp.stack(dx, axis=2), "da0": dprev[0], **totals}
        return {k: np.array(grads[k]) for k in ("dx", "da0", *kind.param_grads)}


# ------------------------------------------------------------------------- the course


def rnn_cell_forward(
    xt: npt.ArrayLike, a_prev: npt.ArrayLike, parameters: Mapping[str, npt.ArrayLike]
) -> tuple[np.ndarray, np.ndarray, tuple]:
    r"""One step of the tanh RNN cell and its softmax output, in the course's layout.

    $$a^{\langle t \rangle} = \tanh(W_{aa} a^{\langle t-1 \rangle} + W_{ax} x^{\langle t \rangle}
      + b_a), \qquad
      \hat y^{\langle t \rangle} = \mathrm{softmax}(W_{ya} a^{\langle t \rangle} + b_y)$$

    with the softmax over the `n_y` classes (axis 0). The hidden state is
    `jaxrnn.rnn(n_a).step` applied to `xt.T` and `a_prev.T` with the params from
    `to_cell_params`.

    Args:
      xt: the input at step t, `(n_x, m)`.
      a_prev: the hidden state at step t-1, `(n_a, m)`.
      parameters: a dict with `Wax (n_a, n_x)`, `Waa (n_a, n_a)`, `Wya (n_y, n_a)`,
        `ba (n_a, 1)` and `by (n_y, 1)`.

    Returns:
      `(a_next, yt_pred, cache)`: `a_next (n_a, m)`, `yt_pred (n_y, m)` and
      `cache = (a_next, a_prev, xt, parameters)`, all NumPy arrays in the inputs'
      dtype (`parameters` as a dict of NumPy arrays).

    Raises:
      TypeError: an input is not a floating array, or the dtypes differ.
      ValueError: ranks or shapes disagree (the message names the argument).

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> random = np.random.RandomState(1)  # the draws of the course's np.random.seed(1)
      >>> xt, a_prev = random.randn(3, 10), random.randn(5, 10)
      >>> shapes = {"Waa": (5, 5), "Wax": (5, 3), "Wya": (2, 5), "ba": (5, 1), "by": (2, 1)}
      >>> parameters = {k: random.randn(*s) for k, s in shapes.items()}
      >>> a_next, yt_pred, cache = course.rnn_cell_forward(xt, a_prev, parameters)
      >>> a_next[4][:4]  # the course's expected output
      array([0.59584544, 0.18141802, 0.61311866, 0.99808218])
      >>> yt_pred.shape, len(cache), bool(np.allclose(yt_pred.sum(axis=0), 1.0))
      ((2, 10), 4, True)
    """
    return _checked_cell_forward(_RNN, {"xt": xt, "a_prev": a_prev}, parameters)


def rnn_forward(
    x: npt.ArrayLike, a0: npt.ArrayLike, parameters: Mapping[str, npt.ArrayLike]
) -> tuple[np.ndarray, np.ndarray, tuple[list[tuple], np.ndarray]]:
    r"""Run the tanh RNN over a whole sequence: `rnn_cell_forward` in a loop over time.

    For $t = 1, \dots, T_x$: $a^{\langle t \rangle}, \hat y^{\langle t \rangle} =
    \mathrm{cell}(x^{\langle t \rangle}, a^{\langle t-1 \rangle})$, starting from
    $a^{\langle 0 \rangle}$ = `a0`. Each step is one (jit-compiled) call of
    `jaxrnn.rnn(n_a).step`. The same model in one line of the main API is
    `jaxrnn.unroll(cell, params, x.transpose(2, 1, 0), a0.T)`.

    Args:
      x: the inputs, `(n_x, m, T_x)` with `T_x >= 1`.
      a0: the initial hidden state, `(n_a, m)`.
      parameters: the RNN dict, as for `rnn_cell_forward`.

    Returns:
      `(a, y_pred, caches)`: hidden states `a (n_a, m, T_x)`, predictions
      `y_pred (n_y, m, T_x)`, and `caches = (list_of_caches, x)` with one
      `rnn_cell_forward` cache per step. NumPy arrays in the inputs' dtype.

    Raises:
      TypeError: an input is not a floating array, or the dtypes differ.
      ValueError: ranks or shapes disagree.

    Examples:
      >>> import jax, numpy as np, jaxrnn as jr
      >>> from jaxrnn import course
      >>> cell = jr.rnn(5)
      >>> params = jax.tree.map(np.asarray, cell.init(jax.random.key(0), input_size=3))
      >>> head = {"w_y": np.zeros((5, 2), np.float32), "b_y": np.zeros(2, np.float32)}
      >>> parameters = course.from_cell_params(params, head)  # float32, as the cell's
      >>> x, a0 = np.ones((3, 10, 4), np.float32), np.zeros((5, 10), np.float32)
      >>> a, y_pred, caches = course.rnn_forward(x, a0, parameters)
      >>> a.shape, y_pred.shape, a.dtype, len(caches[0])
      ((5, 10, 4), (2, 10, 4), dtype('float32'), 4)
      >>> float(y_pred[0, 0, 0])  # a zero output layer gives each of the n_y classes 1 / n_y
      0.5
    """
    return _forward(_RNN, x, a0, parameters)


def lstm_cell_forward(
    xt: npt.ArrayLike,
    a_prev: npt.ArrayLike,
    c_prev: npt.ArrayLike,
    parameters: Mapping[str, npt.ArrayLike],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    r"""One step of the LSTM cell and its softmax output, in the course's layout.

    Every gate acts on the stacked $[a^{\langle t-1 \rangle}; x^{\langle t \rangle}]$
    (`n_a + n_x` rows):

    $$\Gamma_f = \sigma(W_f [a^{\langle t-1 \rangle}; x^{\langle t \rangle}] + b_f), \quad
      \Gamma_i = \sigma(W_i [\cdot] + b_i), \quad
      \tilde c = \tanh(W_c [\cdot] + b_c), \quad
      \Gamma_o = \sigma(W_o [\cdot] + b_o)$$

    $$c^{\langle t \rangle} = \Gamma_f \odot c^{\langle t-1 \rangle} + \Gamma_i \odot \tilde c,
      \qquad a^{\langle t \rangle} = \Gamma_o \odot \tanh(c^{\langle t \rangle}), \qquad
      \hat y^{\langle t \rangle} = \mathrm{softmax}(W_y a^{\langle t \rangle} + b_y)$$

    The new states and the gates stored in the cache come from one call of the
    forward rule of `jaxrnn.lstm(n_a).step` (`jaxrnn.cells.LSTM`), whose residuals
    are the gates.

    Args:
      xt: the input at step t, `(n_x, m)`.
      a_prev: the hidden state at step t-1, `(n_a, m)`.
      c_prev: the memory (cell state) at step t-1, `(n_a, m)`.
      parameters: a dict with `Wf, Wi, Wc, Wo` each `(n_a, n_a + n_x)`, `bf, bi, bc, bo`
        each `(n_a, 1)`, `Wy (n_y, n_a)` and `by (n_y, 1)`.

    Returns:
      `(a_next, c_next, yt_pred, cache)`: `a_next (n_a, m)`, `c_next (n_a, m)`,
      `yt_pred (n_y, m)` and `cache = (a_next, c_next, a_prev, c_prev, ft, it, cct,
      ot, xt, parameters)` with the gates `ft, it, cct, ot` each `(n_a, m)`. NumPy
      arrays in the inputs' dtype.

    Raises:
      TypeError: an array is not floating, or `xt`, `a_prev`, `c_prev` and the
        parameters do not share one dtype.
      ValueError: a rank or shape disagrees with `n_x`, `n_a` or `m` (the message
        names the argument and where the size was read).

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m = 3, 5, 2, 10
      >>> shapes = {k: (n_a, n_a + n_x) if k[0] == "W" else (n_a, 1) for k in course.LSTM_KEYS}
      >>> shapes.update(Wy=(n_y, n_a), by=(n_y, 1))
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> xt, a_prev, c_prev = (rng.standard_normal((n, m)) for n in (n_x, n_a, n_a))
      >>> a_next, c_next, yt, cache = course.lstm_cell_forward(xt, a_prev, c_prev, parameters)
      >>> a_next.shape, c_next.shape, yt.shape, len(cache)
      ((5, 10), (5, 10), (2, 10), 10)
      >>> ft, it, cct, ot = cache[4:8]
      >>> bool(np.allclose(c_next, ft * c_prev + it * cct))
      True
    """
    inputs = {"xt": xt, "a_prev": a_prev, "c_prev": c_prev}
    return _checked_cell_forward(_LSTM, inputs, parameters)


def lstm_forward(
    x: npt.ArrayLike, a0: npt.ArrayLike, parameters: Mapping[str, npt.ArrayLike]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[list[tuple], np.ndarray]]:
    r"""Run the LSTM over a whole sequence: `lstm_cell_forward` in a loop over time.

    The memory starts at zero, $c^{\langle 0 \rangle} = 0$, as in the course, and
    the hidden state at `a0`. The same model in the main API is
    `jaxrnn.unroll(cell, params, x.transpose(2, 1, 0), (a0.T, zeros))`.

    Args:
      x: the inputs, `(n_x, m, T_x)` with `T_x >= 1`.
      a0: the initial hidden state, `(n_a, m)`.
      parameters: the LSTM dict, as for `lstm_cell_forward`.

    Returns:
      `(a, y, c, caches)`: hidden states `a (n_a, m, T_x)`, predictions
      `y (n_y, m, T_x)`, memories `c (n_a, m, T_x)` and `caches = (list_of_caches, x)`
      with one `lstm_cell_forward` cache per step. NumPy arrays in the inputs' dtype.

    Raises:
      TypeError: an input is not a floating array, or the dtypes differ.
      ValueError: ranks or shapes disagree.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> random = np.random.RandomState(1)  # the draws of the course's np.random.seed(1)
      >>> x, a0 = random.randn(3, 10, 7), random.randn(5, 10)
      >>> course_order = ["Wf", "bf", "Wi", "bi", "Wo", "bo", "Wc", "bc"]
      >>> parameters = {k: random.randn(5, 8 if k[0] == "W" else 1) for k in course_order}
      >>> parameters.update(Wy=random.randn(2, 5), by=random.randn(2, 1))
      >>> a, y, c, caches = course.lstm_forward(x, a0, parameters)
      >>> round(float(a[4, 3, 6]), 6), round(float(c[1, 2, 1]), 6)  # the course's values
      (0.172118, -0.855545)
      >>> y.shape, len(caches[0])
      ((2, 10, 7), 7)
    """
    return _forward(_LSTM, x, a0, parameters)


def rnn_cell_backward(da_next: npt.ArrayLike, cache: tuple) -> Gradients:
    r"""Backward pass of one RNN step, derived by hand.

    With $z = W_{ax} x^{\langle t \rangle} + W_{aa} a^{\langle t-1 \rangle} + b_a$ and
    $a^{\langle t \rangle} = \tanh(z)$, the chain rule through
    $\tanh'(z) = 1 - \tanh^2(z)$ gives, for the upstream gradient
    $da_{next} = \partial J / \partial a^{\langle t \rangle}$:

    $$dz = \left(1 - (a^{\langle t \rangle})^2\right) \odot da_{next}$$

    $$dx^{\langle t \rangle} = W_{ax}^T dz, \quad dW_{ax} = dz\, x^{\langle t \rangle T},
      \quad da_{prev} = W_{aa}^T dz, \quad dW_{aa} = dz\, a^{\langle t-1 \rangle T},
      \quad db_a = \textstyle\sum_{\text{batch}} dz$$

    The output layer ($W_{ya}, b_y$) is not part of it: as in the course, the
    gradient through the softmax is assumed folded into `da_next`.

    Args:
      da_next: the gradient of the loss with respect to `a_next`, `(n_a, m)`.
      cache: the cache `rnn_cell_forward` returned.

    Returns:
      A dict of NumPy arrays: `dxt (n_x, m)`, `da_prev (n_a, m)`, `dWax (n_a, n_x)`,
      `dWaa (n_a, n_a)`, `dba (n_a, 1)`, in the cache's dtype.

    Raises:
      TypeError: `cache` is not a 4-tuple from `rnn_cell_forward`, or dtypes differ.
      ValueError: `da_next` is not `(n_a, m)`, or the cache's shapes disagree.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(0)
      >>> sizes = [(5, 3), (5, 5), (2, 5), (5, 1), (2, 1)]  # Wax, Waa, Wya, ba, by
      >>> parameters = {k: rng.standard_normal(s) for k, s in zip(course.RNN_KEYS, sizes)}
      >>> xt, a_prev = rng.standard_normal((3, 10)), rng.standard_normal((5, 10))
      >>> a_next, _, cache = course.rnn_cell_forward(xt, a_prev, parameters)
      >>> gradients = course.rnn_cell_backward(np.ones((5, 10)), cache)
      >>> dz = 1 - a_next**2  # (1 - tanh^2) * da_next, with da_next = 1
      >>> bool(np.allclose(gradients["dWax"], dz @ xt.T))
      True
      >>> bool(np.allclose(gradients["da_prev"], parameters["Waa"].T @ dz))
      True
    """
    return _cell_backward(_RNN, {"da_next": da_next}, cache)


def rnn_backward(da: npt.ArrayLike, caches: tuple) -> Gradients:
    r"""Backpropagation through time for the tanh RNN: `rnn_cell_backward` from the last step.

    `da[:, :, t]` is the upstream gradient of $a^{\langle t \rangle}$ from outside the
    recurrence (through $\hat y^{\langle t \rangle}$). The hidden state also feeds
    step $t + 1$, so the gradient entering step $t$ is the sum

    $$da_{next}^{\langle t \rangle} = da^{\langle t \rangle} + da_{prev}^{\langle t+1 \rangle},
      \qquad da_{prev}^{\langle T_x \rangle} = 0,$$

    and the weights, shared by every step, collect the sum of the per-step
    gradients. Like the course, the number of steps is taken from `da`
    (`n_a, m, T_x = da.shape`) and `caches` is walked from step `T_x - 1` down to 0;
    a `da` shorter than the forward is the gradient of a loss that depends on
    the first `T_x` hidden states only.

    Args:
      da: upstream gradients of every hidden state, `(n_a, m, T_x)`.
      caches: the `caches` that `rnn_forward` returned, `(list_of_caches, x)`.

    Returns:
      A dict of NumPy arrays: `dx (n_x, m, T_x)`, `da0 (n_a, m)`, `dWax (n_a, n_x)`,
      `dWaa (n_a, n_a)`, `dba (n_a, 1)`, in the caches' dtype.

    Raises:
      TypeError: `caches` is not what `rnn_forward` returns, or dtypes differ.
      ValueError: `da` does not match the caches' `(n_a, m)`, or has more steps
        than the caches.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(2)
      >>> keys = ["Wax", "Waa", "Wya", "ba", "by"]
      >>> parameters = dict(zip(keys, [rng.uniform(-1, 1, s) for s in [(5, 3), (5, 5),
      ...     (2, 5), (5, 1), (2, 1)]]))
      >>> x = rng.standard_normal((3, 10, 4))
      >>> a, y_pred, caches = course.rnn_forward(x, np.zeros((5, 10)), parameters)
      >>> gradients = course.rnn_backward(np.ones(a.shape), caches)  # of J = sum(a)
      >>> {k: v.shape for k, v in gradients.items()}
      {'dx': (3, 10, 4), 'da0': (5, 10), 'dWax': (5, 3), 'dWaa': (5, 5), 'dba': (5, 1)}
      >>> last = course.rnn_cell_backward(np.ones((5, 10)), caches[0][-1])  # nothing after it
      >>> bool(np.allclose(gradients["dx"][:, :, -1], last["dxt"]))
      True
    """
    return _backward(_RNN, da, caches)


def lstm_cell_backward(da_next: npt.ArrayLike, dc_next: npt.ArrayLike, cache: tuple) -> Gradients:
    r"""Backward pass of one LSTM step, derived by hand.

    Write $d\gamma_\ast$ for the gradient with respect to a gate's pre-activation
    (the course's `dft, dit, dcct, dot`), $\Gamma_f, \Gamma_i, \tilde c, \Gamma_o$
    for `ft, it, cct, ot`, and $h = [a_{prev}; x_t]$ for the stacked input. The
    memory gets gradient both directly and through $a_{next} = \Gamma_o \tanh(c_{next})$:

    $$dc = dc_{next} + da_{next} \odot \Gamma_o \odot (1 - \tanh^2 c_{next})$$

    $$d\gamma_o = da_{next} \odot \tanh(c_{next}) \odot \Gamma_o (1 - \Gamma_o), \quad
      d\tilde c = dc \odot \Gamma_i \odot (1 - \tilde c^2)$$

    $$d\gamma_i = dc \odot \tilde c \odot \Gamma_i (1 - \Gamma_i), \quad
      d\gamma_f = dc \odot c_{prev} \odot \Gamma_f (1 - \Gamma_f)$$

    $$dW_\ast = d\gamma_\ast\, h^T, \quad db_\ast = \textstyle\sum_{\text{batch}} d\gamma_\ast,
      \quad dc_{prev} = dc \odot \Gamma_f$$

    $$da_{prev} = \textstyle\sum_\ast W_\ast[:, :n_a]^T d\gamma_\ast, \quad
      dx_t = \textstyle\sum_\ast W_\ast[:, n_a:]^T d\gamma_\ast$$

    over $\ast \in \{f, i, c, o\}$. These are the corrected forms of the course's
    equations (7)-(21): the widely copied 2018 notebook prints (8)-(10) with the
    activation derivative on only part of $dc$ (and an extra $\tilde c$ in (8),
    $\tilde c_{prev}$ for $c_{prev}$ in (10)), and slices the weights by rows
    rather than columns for $da_{prev}$ and $dx_t$. Its printed expected outputs
    agree with the formulas above, and so does this function. Its docstring's
    `dc_prev` shape `(n_a, m, T_x)` is `(n_a, m)`.

    Args:
      da_next: the gradient of the loss with respect to `a_next`, `(n_a, m)`.
      dc_next: the gradient with respect to `c_next` from later steps, `(n_a, m)`.
      cache: the cache `lstm_cell_forward` returned.

    Returns:
      A dict of NumPy arrays: `dxt (n_x, m)`, `da_prev (n_a, m)`, `dc_prev (n_a, m)`,
      `dWf, dWi, dWc, dWo` each `(n_a, n_a + n_x)`, `dbf, dbi, dbc, dbo` each
      `(n_a, 1)`, in the cache's dtype.

    Raises:
      TypeError: `cache` is not a 10-tuple from `lstm_cell_forward`, or dtypes differ.
      ValueError: `da_next` or `dc_next` is not `(n_a, m)`, or the cache's shapes
        disagree.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(3)
      >>> gates = {w + g: rng.normal(size=(5, 8 if w == "W" else 1)) for g in "fico" for w in "Wb"}
      >>> parameters = {**gates, "Wy": rng.normal(size=(2, 5)), "by": np.zeros((2, 1))}
      >>> xt, state = rng.normal(size=(3, 10)), np.zeros((5, 10))
      >>> *_, cache = course.lstm_cell_forward(xt, state, state, parameters)
      >>> da_next, dc_next = np.zeros((5, 10)), np.ones((5, 10))  # J = sum(c_next)
      >>> gradients = course.lstm_cell_backward(da_next, dc_next, cache)
      >>> ft = cache[4]
      >>> bool(np.allclose(gradients["dc_prev"], dc_next * ft))  # dc = dc_next, as da_next = 0
      True
      >>> gradients["dxt"].shape, gradients["dc_prev"].shape, gradients["dWf"].shape
      ((3, 10), (5, 10), (5, 8))
    """
    return _cell_backward(_LSTM, {"da_next": da_next, "dc_next": dc_next}, cache)


def lstm_backward(da: npt.ArrayLike, caches: tuple) -> Gradients:
    r"""Backpropagation through time for the LSTM: `lstm_cell_backward` from the last step.

    Two gradients flow back along the sequence: into the hidden state and into
    the memory. At step $t$ the hidden state's gradient is its upstream part plus
    what step $t + 1$ sent back, while the memory only receives the latter:

    $$da_{next}^{\langle t \rangle} = da^{\langle t \rangle} + da_{prev}^{\langle t+1 \rangle},
      \qquad dc_{next}^{\langle t \rangle} = dc_{prev}^{\langle t+1 \rangle},$$

    both zero after the last step; the gate weights and biases sum their
    per-step gradients. Many copied solutions pass `da[:, :, t]` alone and lose
    $da_{prev}^{\langle t+1 \rangle}$: the gradient checker catches that (see
    `examples/gradient_check.py`). The number of steps comes from `da`; the course's
    own example runs a 7-step forward with a 4-step `da`, which walks the first 4
    caches, exact for a loss that depends on those hidden states only.
    `lstm_forward` starts the memory at zero, so there is no `dc0`.

    Args:
      da: upstream gradients of every hidden state, `(n_a, m, T_x)`.
      caches: the `caches` that `lstm_forward` returned, `(list_of_caches, x)`.

    Returns:
      A dict of NumPy arrays: `dx (n_x, m, T_x)`, `da0 (n_a, m)`,
      `dWf, dWi, dWc, dWo` each `(n_a, n_a + n_x)` and `dbf, dbi, dbc, dbo` each
      `(n_a, 1)`, in the caches' dtype.

    Raises:
      TypeError: `caches` is not the `(list_of_caches, x)` of `lstm_forward`, or the
        dtypes differ.
      ValueError: `da` is not `(n_a, m, T_x)` for the caches' `n_a` and `m`, or its
        `T_x` exceeds the number of forward steps.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(4)
      >>> weights = {f"W{g}": rng.standard_normal((5, 8)) for g in "fico"}
      >>> biases = {f"b{g}": rng.standard_normal((5, 1)) for g in "fico"}
      >>> head = {"Wy": rng.standard_normal((2, 5)), "by": rng.standard_normal((2, 1))}
      >>> x, a0 = rng.standard_normal((3, 10, 7)), rng.standard_normal((5, 10))
      >>> *_, caches = course.lstm_forward(x, a0, {**weights, **biases, **head})
      >>> da = rng.standard_normal((5, 10, 4))  # 4 of the 7 steps, as in the course
      >>> gradients = course.lstm_backward(da, caches)
      >>> gradients["dx"].shape, gradients["da0"].shape, gradients["dWo"].shape
      ((3, 10, 4), (5, 10), (5, 8))
    """
    return _backward(_LSTM, da, caches)
