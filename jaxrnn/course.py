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

from jaxrnn import checks
from jaxrnn.cell import Cell, Params
from jaxrnn.cells import lstm, rnn

Array = jax.Array
Gradients = dict[str, np.ndarray]
"""A dict of NumPy arrays keyed by the course's gradient names (`dxt`, `dWax`, ...)."""

RNN_KEYS = ("Wax", "Waa", "Wya", "ba", "by")
"""The course's RNN parameter keys."""
LSTM_KEYS = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")
"""The course's LSTM parameter keys."""

RNN_CELL_GRADIENTS = ("dxt", "da_prev", "dWax", "dWaa", "dba")
"""The keys `rnn_cell_backward` returns, in order."""
RNN_GRADIENTS = ("dx", "da0", "dWax", "dWaa", "dba")
"""The keys `rnn_backward` returns, in order."""
LSTM_CELL_GRADIENTS = ("dxt", "da_prev", "dc_prev", *(f"d{w}{g}" for w in "Wb" for g in "fico"))
"""The keys `lstm_cell_backward` returns, in order."""
LSTM_GRADIENTS = ("dx", "da0", *LSTM_CELL_GRADIENTS[3:])
"""The keys `lstm_backward` returns, in order."""

# The dims of each named array; any other course array (a state, a gate or a gradient
# of one) is (n_a, m).
_DIMS = {
    "Wax": ("n_a", "n_x"), "Waa": ("n_a", "n_a"), "Wya": ("n_y", "n_a"), "ba": ("n_a", "1"),
    "Wy": ("n_y", "n_a"), "by": ("n_y", "1"),
    **{f"W{g}": ("n_a", "n_a + n_x") for g in "fico"},
    **{f"b{g}": ("n_a", "1") for g in "fico"},
    "w_x": ("n_x", "G * n_a"), "w_h": ("n_a", "G * n_a"), "b": ("G * n_a",),
    "w_y": ("n_a", "n_y"), "b_y": ("n_y",),
    "xt": ("n_x", "m"), "x": ("n_x", "m", "T_x"), "da": ("n_a", "m", "T_x"),
}  # fmt: skip


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
    make: Callable[[int], Cell]  # its step is a `BpttStep`: forward, backward, weight grads
    stacked: bool  # gates act on [a_prev; xt], with one weight per gate (the LSTM)
    states: tuple[str, ...]  # the carry, by course name
    residuals: tuple[str, ...]  # course names of the step's residuals
    cache: tuple[str, ...]  # the arrays of a cell cache, in order, before the params
    cell_gradients: tuple[str, ...]
    gradients: tuple[str, ...]


# One cell object per size, so jit caches and the param-template cache are reused.
_RNN = _Kind(
    "rnn", RNN_KEYS, "Wya", functools.cache(rnn), False, ("a",), (), ("a_next", "a_prev", "xt"),
    RNN_CELL_GRADIENTS, RNN_GRADIENTS,
)  # fmt: skip
_LSTM = _Kind(
    "lstm", LSTM_KEYS, "Wy", functools.cache(lstm), True, ("a", "c"),
    ("it", "ft", "cct", "ot", "c_prev"),
    ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot", "xt"),
    LSTM_CELL_GRADIENTS, LSTM_GRADIENTS,
)  # fmt: skip


# ----------------------------------------------------------------------------- checks


def _array(x: Any, name: str, dims: Sequence[str], keep_jax: bool = False) -> Any:
    """`x` as a NumPy array (or a JAX array if `keep_jax`) of rank `len(dims)`."""
    x = checks.float_array(x, name, numpy=not (keep_jax and isinstance(x, jax.Array)))
    if x.ndim != len(dims):
        hint = f"; a bias is a column: {name}.reshape(-1, 1)" if dims[-1] == "1" else ""
        raise ValueError(
            f"{name} must have {len(dims)} dims ({', '.join(dims)}), "
            f"got shape {checks.shape_str(x.shape)}{hint}"
        )
    return x


def _agree(arrays: Mapping[str, tuple[Any, Sequence[str]]], sizes: dict, why: str) -> Any:
    """The one dtype of `arrays` (name -> `(array, dims)`), once each has the shape its
    dims give with `sizes` (`why` says where they come from); a dim without one is free."""
    for name, (x, dims) in arrays.items():
        want = tuple(sizes.get(d, n) for d, n in zip(dims, x.shape, strict=True))
        if tuple(x.shape) != want:
            raise ValueError(
                f"{name} has shape {checks.shape_str(x.shape)} but expected "
                f"{checks.shape_str(want)}: ({', '.join(dims)}) with {why}"
            )
    why = "every array passed to one course function must share one floating dtype"
    return checks.same_dtype({name: x for name, (x, _) in arrays.items()}, why)


def _dict(value: Any, keys: Sequence[str], name: str, keep_jax: bool = False) -> dict[str, Any]:
    """The arrays of `value`, a dict with exactly `keys`, each of the rank its `_DIMS` give."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict with the keys {', '.join(keys)}, got {type(value)}")
    missing = [k for k in keys if k not in value]
    extra = sorted(str(k) for k in value if k not in keys)
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the keys {', '.join(keys)}; "
            f"missing {missing}, unexpected {extra}"
        )
    return {k: _array(value[k], f"{name}[{k!r}]", _DIMS[k], keep_jax) for k in keys}


def _parameters(
    kind: _Kind, parameters: Any, name: str, keep_jax: bool = False
) -> tuple[dict[str, Any], dict[str, int], str]:
    """The checked course params of `kind`, the sizes they fix and where they come from."""
    p = _dict(parameters, kind.keys, name, keep_jax)
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
    _agree({f"{name}[{k!r}]": (v, _DIMS[k]) for k, v in p.items()}, sizes, why)
    return p, sizes, why


def _checked(
    kind: _Kind, arrays: Mapping[str, Any], parameters: Any, pname: str, labels: Mapping
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Any]:
    """`arrays` (course name -> array, `m` read off the first) and the params, checked to
    agree, and their one dtype; messages call an array by its label in `labels`, if any."""
    p, sizes, why = _parameters(kind, parameters, pname)
    named = {k: (labels.get(k, k), _DIMS.get(k, ("n_a", "m"))) for k in arrays}
    checked = {k: _array(v, *named[k]) for k, v in arrays.items()}
    first = next(iter(arrays))
    sizes["m"] = checked[first].shape[1]
    labelled = {named[k][0]: (x, named[k][1]) for k, x in checked.items()}
    weight = kind.keys[0]
    labelled[f"{pname}[{weight!r}]"] = (p[weight], _DIMS[weight])
    dtype = _agree(labelled, sizes, f"{why}, m = {sizes['m']} from {named[first][0]}")
    return checked, p, dtype


def _tuple(value: Any, name: str, length: int, layout: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != length:
        got = type(value).__name__
        got = f"a {got} of length {len(value)}" if isinstance(value, (tuple, list)) else got
        raise TypeError(f"{name} must be the {length}-tuple {layout}; got {got}")
    return tuple(value)


def _cache(kind: _Kind, cache: Any, name: str, upstream: Mapping) -> tuple[dict, dict]:
    """The arrays of a checked cell-forward cache and `upstream` (course name -> array,
    checked against them), by course name, and the cache's params."""
    layout = f"({', '.join(kind.cache)}, parameters) from {kind.name}_cell_forward"
    *arrays, parameters = _tuple(cache, name, len(kind.cache) + 1, layout)
    labels = {c: f"{name}[{k}] ({c})" for k, c in enumerate(kind.cache)}
    arrays = {**dict(zip(kind.cache, arrays, strict=True)), **upstream}
    named, p, _ = _checked(kind, arrays, parameters, f"{name}[{len(kind.cache)}]", labels)
    return named, p


def _precision(dtype: Any) -> Any:
    """JAX's 64-bit mode on for float64 inputs, off otherwise, for one call's duration."""
    return jax.enable_x64(np.dtype(dtype) == np.float64)


# ------------------------------------------------------------------------- converters


def _xp(arrays: Any) -> Any:
    return jnp if any(isinstance(x, jax.Array) for x in jax.tree.leaves(arrays)) else np


def _to_cell(kind: _Kind, p: Mapping[str, Any]) -> CellParams:
    """Checked course params as the library's (see `to_cell_params`)."""
    xp, n_a = _xp(p), p[kind.keys[0]].shape[0]
    # The rows of `weight.T` map [a_prev; xt] to the fused gates (i, f, g, o for the LSTM).
    if kind.stacked:
        weight = xp.concatenate([p[f"W{g}"] for g in "ifco"])
        bias = xp.concatenate([p[f"b{g}"][:, 0] for g in "ifco"])
    else:
        weight, bias = xp.concatenate([p["Waa"], p["Wax"]], axis=1), xp.array(p["ba"][:, 0])
    params = {"w_x": weight[:, n_a:].T, "w_h": weight[:, :n_a].T, "b": bias}
    head = {"w_y": xp.array(p[kind.head].T), "b_y": xp.array(p["by"][:, 0])}
    return CellParams(kind.make(n_a), params, head)


def _to_course(kind: _Kind, w_x: Any, w_h: Any, b: Any) -> dict[str, Any]:
    """The inverse of `_to_cell` for the fused params or their gradients (no head)."""
    xp, n_a = _xp((w_x, w_h, b)), w_h.shape[0]
    weight = xp.concatenate([w_h, w_x]).T  # (G * n_a, n_a + n_x), acting on [a_prev; xt]
    if not kind.stacked:
        return {"Wax": weight[:, n_a:], "Waa": weight[:, :n_a], "ba": b[:, None]}
    course = {}
    for gate, w, b_gate in zip("ifco", xp.split(weight, 4), xp.split(b, 4), strict=True):
        course.update({f"W{gate}": w, f"b{gate}": b_gate[:, None]})
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
        raise TypeError(f"parameters must be a course parameter dict, got {type(parameters)}")
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
    p = _dict(params, ("w_x", "w_h", "b"), "params", keep_jax=True)
    h = _dict(head, ("w_y", "b_y"), "head", keep_jax=True)
    n_a, width = p["w_h"].shape
    if n_a == 0 or width not in (n_a, 4 * n_a):
        raise ValueError(
            f"params['w_h'] has shape {checks.shape_str((n_a, width))}; the course has an RNN "
            f"(n_a, n_a) and an LSTM (n_a, 4 * n_a) only, no GRU (n_a, 3 * n_a)"
        )
    n_y = h["w_y"].shape[1]
    sizes = {"n_x": p["w_x"].shape[0], "n_a": n_a, "G * n_a": width, "n_y": n_y}
    why = f"n_a = {n_a} and G * n_a = {width} from params['w_h'], n_y = {n_y} from head['w_y']"
    arrays = {(arg, k): v for arg, d in (("params", p), ("head", h)) for k, v in d.items()}
    _agree({f"{arg}[{k!r}]": (v, _DIMS[k]) for (arg, k), v in arrays.items()}, sizes, why)
    kind = _LSTM if width == 4 * n_a else _RNN
    course = {**_to_course(kind, **p), kind.head: h["w_y"].T, "by": h["b_y"][:, None]}
    xp = _xp((p, h))
    return {k: xp.array(course[k]) for k in kind.keys}


# ---------------------------------------------------------------------------- forward


def _carry(states: Sequence[Array]) -> Any:
    """Course `(n_a, m)` states as the step's carry: `h`, or `(h, c)`."""
    return states[0].T if len(states) == 1 else tuple(s.T for s in states)


@functools.partial(jax.jit, static_argnums=0)
def _step(kind: _Kind, p: dict[str, Array], xt: Array, prev: tuple[Array, ...]) -> Any:
    """One step of the cell in the course's layout: new states, `yt` and the residuals."""
    cell, params, _ = _to_cell(kind, p)
    carry = _carry(prev)
    new, h, residuals = cell.step.forward(params, carry, cell.step.project(params, xt.T), carry)
    yt = jax.nn.softmax(p[kind.head] @ h.T + p["by"], axis=0)
    named = {k: r.T for k, r in zip(kind.residuals, residuals, strict=True)}
    return tuple(s.T for s in jax.tree.leaves(new)), yt, named


def _cell_forward(kind: _Kind, p: dict, xt: np.ndarray, prev: tuple[np.ndarray, ...]) -> tuple:
    """`(*next states, yt_pred, cache)` of one checked step, NumPy out."""
    new, yt, named = jax.tree.map(np.array, _step(kind, p, xt, prev))  # writable copies
    named.update(zip(kind.cache, (*new, *prev), strict=False), xt=xt)  # next states, then prev
    return (*new, yt, (*(named[k] for k in kind.cache), p))


def _checked_cell_forward(kind: _Kind, inputs: Mapping[str, Any], parameters: Any) -> tuple:
    checked, p, dtype = _checked(kind, inputs, parameters, "parameters", {})
    xt, *prev = checked.values()
    with _precision(dtype):
        return _cell_forward(kind, p, xt, tuple(prev))


def _forward(kind: _Kind, x: Any, a0: Any, parameters: Any) -> tuple:
    """`(a, y, *c, (caches, x))`: `_cell_forward` over time, the memory starting at 0."""
    checked, p, dtype = _checked(kind, {"x": x, "a0": a0}, parameters, "parameters", {})
    x, a0 = checked.values()
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
    """The step's backward and weight gradients for one step, keyed as the course's."""
    cell, params, _ = _to_cell(kind, p)
    residuals = tuple(named[k].T for k in kind.residuals)
    back = {**params, "w_h_t": params["w_h"].T}
    emitted, dprev = cell.step.backward(back, residuals, named["a_next"].T, _carry(upstream))
    # `grads` reads every argument stacked over time: here, a stack of one step.
    stacked = jax.tree.map(lambda a: a[None], (named["xt"].T, named["a_prev"].T, residuals))
    g, dxs = cell.step.grads(params, *stacked, jax.tree.map(lambda a: a[None], emitted))
    grads = {f"d{s}_prev": d.T for s, d in zip(kind.states, jax.tree.leaves(dprev), strict=True)}
    course = {f"d{k}": v for k, v in _to_course(kind, **g).items()}
    return {"dxt": dxs[0].T, **grads, **course}


def _cell_backward(kind: _Kind, upstream: Mapping[str, Any], cache: Any) -> Gradients:
    named, p = _cache(kind, cache, "cache", upstream)
    with _precision(named["xt"].dtype):
        grads = _step_grads(kind, p, named, tuple(named.pop(k) for k in upstream))
        return {k: np.array(grads[k]) for k in kind.cell_gradients}  # JAX sorts dict keys


def _backward(kind: _Kind, da: Any, caches: Any) -> Gradients:
    """Walk the caches from step `T_x - 1` down to 0, summing the weight gradients."""
    steps, _ = _tuple(caches, "caches", 2, f"(list_of_caches, x) from {kind.name}_forward")
    if not isinstance(steps, (list, tuple)):
        raise TypeError(f"caches[0] must be the list of step caches, got {type(steps).__name__}")
    T_x = _array(da, "da", _DIMS["da"]).shape[2]
    if not 1 <= T_x <= len(steps):
        raise ValueError(
            f"da has {T_x} time steps (da.shape[2]) but caches holds {len(steps)}; the "
            f"backward walks steps T_x - 1 down to 0 of the forward, so 1 <= T_x <= {len(steps)}"
        )
    # `da` is checked with the first step's cache.
    unpacked = [
        _cache(kind, steps[t], f"caches[0][{t}]", {} if t else {"da": da}) for t in range(T_x)
    ]
    da = unpacked[0][0].pop("da")
    with _precision(da.dtype):
        dprev = [jnp.zeros(da.shape[:2], da.dtype)] * len(kind.states)
        per_step = []
        for t in reversed(range(T_x)):
            named, p = unpacked[t]
            g = _step_grads(kind, p, named, (da[:, :, t] + dprev[0], *dprev[1:]))
            dprev = [g[f"d{s}_prev"] for s in kind.states]
            per_step.insert(0, g)
        grads = {"dx": jnp.stack([g["dxt"] for g in per_step], axis=2), "da0": dprev[0]}
        grads.update({k: sum(g[k] for g in per_step) for k in kind.gradients[2:]})
        return {k: np.array(grads[k]) for k in kind.gradients}


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
      >>> # the draws of the course's np.random.seed(1)
      >>> random = np.random.RandomState(1)
      >>> xt, a_prev = random.randn(3, 10), random.randn(5, 10)
      >>> shapes = {"Waa": (5, 5), "Wax": (5, 3), "Wya": (2, 5)}
      >>> shapes.update(ba=(5, 1), by=(2, 1))
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
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> params = jax.tree.map(np.asarray, params)
      >>> head = {"w_y": np.zeros((5, 2), np.float32), "b_y": np.zeros(2, np.float32)}
      >>> parameters = course.from_cell_params(params, head)  # float32, as the cell's
      >>> x, a0 = np.ones((3, 10, 4), np.float32), np.zeros((5, 10), np.float32)
      >>> a, y_pred, caches = course.rnn_forward(x, a0, parameters)
      >>> a.shape, y_pred.shape, a.dtype, len(caches[0])
      ((5, 10, 4), (2, 10, 4), dtype('float32'), 4)
      >>> # a zero output layer gives each of the n_y classes 1 / n_y
      >>> float(y_pred[0, 0, 0])
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
      \Gamma_i = \sigma(W_i [\cdot] + b_i),$$

    $$\tilde c = \tanh(W_c [\cdot] + b_c), \quad
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
      >>> shapes = {
      ...     k: (n_a, n_a + n_x) if k[0] == "W" else (n_a, 1)
      ...     for k in course.LSTM_KEYS
      ... }
      >>> shapes.update(Wy=(n_y, n_a), by=(n_y, 1))
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> xt, a_prev, c_prev = (rng.standard_normal((n, m)) for n in (n_x, n_a, n_a))
      >>> a_next, c_next, yt, cache = course.lstm_cell_forward(
      ...     xt, a_prev, c_prev, parameters
      ... )
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
      >>> # the draws of the course's np.random.seed(1)
      >>> random = np.random.RandomState(1)
      >>> x, a0 = random.randn(3, 10, 7), random.randn(5, 10)
      >>> course_order = ["Wf", "bf", "Wi", "bi", "Wo", "bo", "Wc", "bc"]
      >>> parameters = {
      ...     k: random.randn(5, 8 if k[0] == "W" else 1) for k in course_order
      ... }
      >>> parameters.update(Wy=random.randn(2, 5), by=random.randn(2, 1))
      >>> a, y, c, caches = course.lstm_forward(x, a0, parameters)
      >>> # the course's values
      >>> round(float(a[4, 3, 6]), 6), round(float(c[1, 2, 1]), 6)
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
      \quad da_{prev} = W_{aa}^T dz,$$

    $$dW_{aa} = dz\, a^{\langle t-1 \rangle T}, \quad
      db_a = \textstyle\sum_{\text{batch}} dz$$

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
      >>> parameters = {
      ...     k: rng.standard_normal(s) for k, s in zip(course.RNN_KEYS, sizes)
      ... }
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
      {'dx': (3, 10, 4), 'da0': (5, 10), 'dWax': (5, 3), 'dWaa': (5, 5),
       'dba': (5, 1)}
      >>> # the last step: no step after it adds to its gradient
      >>> last = course.rnn_cell_backward(np.ones((5, 10)), caches[0][-1])
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
      >>> gates = {
      ...     w + g: rng.normal(size=(5, 8 if w == "W" else 1))
      ...     for g in "fico"
      ...     for w in "Wb"
      ... }
      >>> head = {"Wy": rng.normal(size=(2, 5)), "by": np.zeros((2, 1))}
      >>> parameters = {**gates, **head}
      >>> xt, state = rng.normal(size=(3, 10)), np.zeros((5, 10))
      >>> *_, cache = course.lstm_cell_forward(xt, state, state, parameters)
      >>> da_next, dc_next = np.zeros((5, 10)), np.ones((5, 10))  # J = sum(c_next)
      >>> gradients = course.lstm_cell_backward(da_next, dc_next, cache)
      >>> ft = cache[4]
      >>> # dc = dc_next, as da_next = 0
      >>> bool(np.allclose(gradients["dc_prev"], dc_next * ft))
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
      >>> head = {
      ...     "Wy": rng.standard_normal((2, 5)),
      ...     "by": rng.standard_normal((2, 1)),
      ... }
      >>> x, a0 = rng.standard_normal((3, 10, 7)), rng.standard_normal((5, 10))
      >>> *_, caches = course.lstm_forward(x, a0, {**weights, **biases, **head})
      >>> da = rng.standard_normal((5, 10, 4))  # 4 of the 7 steps, as in the course
      >>> gradients = course.lstm_backward(da, caches)
      >>> gradients["dx"].shape, gradients["da0"].shape, gradients["dWo"].shape
      ((3, 10, 4), (5, 10), (5, 8))
    """
    return _backward(_LSTM, da, caches)
