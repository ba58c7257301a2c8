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
only, `with jax.enable_x64(True)`; the global flag is never changed), float32
in, float32 out. Being NumPy functions, they run eagerly and cannot be traced
by `jax.jit` or `jax.grad`; for that, use `to_cell_params` and the main API.

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

import contextlib
import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from jaxrnn import cells, checks
from jaxrnn.cell import Cell, Params
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
_LSTM_GATE_ORDER = ("i", "f", "c", "o")
_LSTM_GRAD_ORDER = ("f", "i", "c", "o")
_LSTM_PARAM_GRADS = tuple(f"d{w}{g}" for w in "Wb" for g in _LSTM_GRAD_ORDER)

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


def _parameter_dict(
    parameters: Any, keys: Sequence[str], what: str, name: str, keep_jax: bool
) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"{name} must be a dict with the {what} keys {', '.join(keys)}; "
            f"got {type(parameters).__name__}"
        )
    missing = [k for k in keys if k not in parameters]
    extra = sorted(str(k) for k in parameters if k not in keys)
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the {what} keys {', '.join(keys)}; "
            f"missing {missing}, unexpected {extra}"
        )
    return {k: _array(parameters[k], f"{name}[{k!r}]", _DIMS[k], keep_jax=keep_jax) for k in keys}


def _rnn_parameters(
    parameters: Any, name: str = "parameters", keep_jax: bool = False
) -> tuple[dict[str, Any], int, int, int]:
    """The checked RNN params and `(n_a, n_x, n_y)`."""
    p = _parameter_dict(parameters, RNN_KEYS, "RNN", name, keep_jax)
    n_a, n_x = p["Wax"].shape
    n_y = p["Wya"].shape[0]
    source = f"n_a = {n_a} from {name}['Wax'] of shape {checks.shape_str(p['Wax'].shape)}"
    _expect_shape(f"{name}['Waa']", p["Waa"], (n_a, n_a), f"(n_a, n_a) with {source}")
    _expect_shape(f"{name}['Wya']", p["Wya"], (n_y, n_a), f"(n_y, n_a) with {source}")
    _expect_shape(f"{name}['ba']", p["ba"], (n_a, 1), f"(n_a, 1) with {source}")
    _expect_shape(
        f"{name}['by']",
        p["by"],
        (n_y, 1),
        f"(n_y, 1) with n_y = {n_y} from {name}['Wya'] of shape {p['Wya'].shape}",
    )
    _same_dtype({f"{name}[{k!r}]": v for k, v in p.items()})
    return p, n_a, n_x, n_y


def _lstm_parameters(
    parameters: Any, name: str = "parameters", keep_jax: bool = False
) -> tuple[dict[str, Any], int, int, int]:
    """The checked LSTM params and `(n_a, n_x, n_y)`."""
    p = _parameter_dict(parameters, LSTM_KEYS, "LSTM", name, keep_jax)
    n_a, width = p["Wf"].shape
    n_x = width - n_a
    wf = f"{name}['Wf'] of shape {checks.shape_str(p['Wf'].shape)}"
    if n_x < 1:
        raise ValueError(
            f"{wf} must be (n_a, n_a + n_x) with n_x >= 1: the gates act on the stacked "
            f"[a_prev; xt], so it needs more columns than rows"
        )
    for gate in "ico":
        _expect_shape(
            f"{name}['W{gate}']",
            p[f"W{gate}"],
            (n_a, n_a + n_x),
            f"(n_a, n_a + n_x) like {wf}",
        )
    for gate in "fico":
        _expect_shape(
            f"{name}['b{gate}']", p[f"b{gate}"], (n_a, 1), f"(n_a, 1) with n_a = {n_a} from {wf}"
        )
    n_y = p["Wy"].shape[0]
    _expect_shape(f"{name}['Wy']", p["Wy"], (n_y, n_a), f"(n_y, n_a) with n_a = {n_a} from {wf}")
    _expect_shape(
        f"{name}['by']",
        p["by"],
        (n_y, 1),
        f"(n_y, 1) with n_y = {n_y} from {name}['Wy'] of shape {p['Wy'].shape}",
    )
    _same_dtype({f"{name}[{k!r}]": v for k, v in p.items()})
    return p, n_a, n_x, n_y


def _check_inputs(
    xt: tuple[str, np.ndarray],
    states: Sequence[tuple[str, np.ndarray]],
    n_x: int,
    n_a: int,
    weight: str,
) -> None:
    """`xt` has `n_x` features and every state is `(n_a, m)` with `m` from `xt`."""
    name, x = xt
    if x.shape[0] != n_x:
        raise ValueError(
            f"{name} has {x.shape[0]} features ({name}.shape[0]; shape "
            f"{checks.shape_str(x.shape)}) but {weight} expects n_x = {n_x}"
        )
    m = x.shape[1]
    for state_name, state in states:
        _expect_shape(
            state_name,
            state,
            (n_a, m),
            f"(n_a, m) with n_a = {n_a} from the parameters and m = {m} from {name}",
        )


def _precision(dtype: Any) -> contextlib.AbstractContextManager:
    """64-bit mode for the duration of one call when the inputs are float64."""
    if np.dtype(dtype) == np.float64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _numpy(tree: Any) -> Any:
    return jax.tree.map(np.array, tree)  # writable copies, as NumPy code expects


def _gradients(grads: Mapping[str, Any], keys: Sequence[str]) -> Gradients:
    """NumPy copies of `grads` in the course's key order (JAX returns dicts sorted)."""
    return {k: np.array(grads[k]) for k in keys}


# ------------------------------------------------------------------------- converters


@functools.cache
def _cell(kind: str, n_a: int) -> Cell:
    # One cell object per size, so jit caches and the param-template cache are reused.
    return rnn(n_a) if kind == "rnn" else lstm(n_a)


def _xp(arrays: Any) -> Any:
    leaves = jax.tree.leaves(arrays)
    return jnp if any(isinstance(x, jax.Array) for x in leaves) else np


def _copy(xp: Any, x: Any) -> Any:
    return np.array(x) if xp is np else jnp.asarray(x)


def _rnn_to_cell(p: Mapping[str, Any], n_a: int) -> CellParams:
    xp = _xp(p)
    params = {
        "w_x": _copy(xp, p["Wax"].T),
        "w_h": _copy(xp, p["Waa"].T),
        "b": _copy(xp, p["ba"][:, 0]),
    }
    head = {"w_y": _copy(xp, p["Wya"].T), "b_y": _copy(xp, p["by"][:, 0])}
    return CellParams(_cell("rnn", n_a), params, head)


def _lstm_to_cell(p: Mapping[str, Any], n_a: int) -> CellParams:
    xp = _xp(p)
    weights = [p[f"W{gate}"] for gate in _LSTM_GATE_ORDER]
    params = {
        "w_x": xp.concatenate([w[:, n_a:].T for w in weights], axis=1),
        "w_h": xp.concatenate([w[:, :n_a].T for w in weights], axis=1),
        "b": xp.concatenate([p[f"b{gate}"][:, 0] for gate in _LSTM_GATE_ORDER]),
    }
    head = {"w_y": _copy(xp, p["Wy"].T), "b_y": _copy(xp, p["by"][:, 0])}
    return CellParams(_cell("lstm", n_a), params, head)


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
    keys = set(parameters)
    if keys & (set(LSTM_KEYS) - {"by"}):
        p, n_a, _, _ = _lstm_parameters(parameters, keep_jax=True)
        return _lstm_to_cell(p, n_a)
    if keys & (set(RNN_KEYS) - {"by"}):
        p, n_a, _, _ = _rnn_parameters(parameters, keep_jax=True)
        return _rnn_to_cell(p, n_a)
    raise ValueError(
        f"parameters must hold the course's RNN keys ({', '.join(RNN_KEYS)}) or LSTM keys "
        f"({', '.join(LSTM_KEYS)}); got keys {sorted(str(k) for k in keys)}"
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
    for arg, value, keys in (
        ("params", params, ("w_x", "w_h", "b")),
        ("head", head, ("w_y", "b_y")),
    ):
        if not isinstance(value, Mapping):
            raise TypeError(f"{arg} must be a dict with keys {', '.join(keys)}, got {type(value)}")
        if set(value) != set(keys):
            raise ValueError(
                f"{arg} must have exactly the keys {', '.join(keys)}; got {sorted(map(str, value))}"
            )
    dims = {"w_x": ("n_x", "G * n_a"), "w_h": ("n_a", "G * n_a"), "b": ("G * n_a",),
            "w_y": ("n_a", "n_y"), "b_y": ("n_y",)}  # fmt: skip
    arrays = {
        f"{arg}[{k!r}]": _array(value[k], f"{arg}[{k!r}]", dims[k], keep_jax=True)
        for arg, value in (("params", params), ("head", head))
        for k in dims
        if k in value
    }
    _same_dtype(arrays)
    w_x, w_h, b = (arrays[f"params[{k!r}]"] for k in ("w_x", "w_h", "b"))
    w_y, b_y = arrays["head['w_y']"], arrays["head['b_y']"]
    n_a, width = w_h.shape
    gates = width // n_a if n_a else 0
    if gates not in (1, 4) or width != gates * n_a:
        raise ValueError(
            f"params['w_h'] has shape {checks.shape_str(w_h.shape)}; the course has a "
            f"one-gate RNN (n_a, n_a) and an LSTM (n_a, 4 * n_a) only (a GRU's (n_a, 3 * n_a) "
            f"has no course version)"
        )
    n_x = w_x.shape[0]
    why = f"n_a = {n_a} and {gates} gate(s) from params['w_h'] of shape {w_h.shape}"
    _expect_shape("params['w_x']", w_x, (n_x, width), f"(n_x, G * n_a) with {why}")
    _expect_shape("params['b']", b, (width,), f"(G * n_a,) with {why}")
    n_y = w_y.shape[1]
    _expect_shape("head['w_y']", w_y, (n_a, n_y), f"(n_a, n_y) with {why}")
    _expect_shape("head['b_y']", b_y, (n_y,), f"(n_y,) with n_y = {n_y} from head['w_y']")
    xp = _xp(arrays)
    if gates == 1:
        return {
            "Wax": _copy(xp, w_x.T),
            "Waa": _copy(xp, w_h.T),
            "Wya": _copy(xp, w_y.T),
            "ba": _copy(xp, b[:, None]),
            "by": _copy(xp, b_y[:, None]),
        }
    out = {}
    blocks = {gate: slice(k * n_a, (k + 1) * n_a) for k, gate in enumerate(_LSTM_GATE_ORDER)}
    for gate in _LSTM_GRAD_ORDER:
        cols = blocks[gate]
        out[f"W{gate}"] = xp.concatenate([w_h[:, cols].T, w_x[:, cols].T], axis=1)
        out[f"b{gate}"] = _copy(xp, b[cols][:, None])
    out["Wy"] = _copy(xp, w_y.T)
    out["by"] = _copy(xp, b_y[:, None])
    return out


# ---------------------------------------------------------------------------- forward


def _softmax_logits(head: Mapping[str, Array], h: Array) -> Array:
    """`softmax(Wy a + by)` over the classes, as `(n_y, m)` from `h (m, n_a)`."""
    logits = h @ head["w_y"] + head["b_y"][None, :]
    return jax.nn.softmax(logits, axis=-1).T


def _step(step: Any, params: Params, carry: Any, xt: Array) -> tuple[Any, Array, Any]:
    """One step of a built-in cell's own `forward`, on the course's `(features, m)` arrays."""
    return step.forward(params, carry, step.project(params, xt.T), carry)


@functools.partial(jax.jit, static_argnums=0)
def _rnn_step(
    cell: Cell, params: Params, head: dict[str, Array], xt: Array, a_prev: Array
) -> tuple[Array, Array]:
    _, h, _ = _step(cell.step, params, a_prev.T, xt)
    return h.T, _softmax_logits(head, h)


@functools.partial(jax.jit, static_argnums=0)
def _lstm_step(
    cell: Cell, params: Params, head: dict[str, Array], xt: Array, a_prev: Array, c_prev: Array
) -> tuple[Array, Array, Array, tuple[Array, Array, Array, Array]]:
    (h_next, c_next), _, (it, ft, cct, ot, _) = _step(cell.step, params, (a_prev.T, c_prev.T), xt)
    return h_next.T, c_next.T, _softmax_logits(head, h_next), (ft.T, it.T, cct.T, ot.T)


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
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m = 3, 5, 2, 10
      >>> parameters = {k: rng.standard_normal(s) for k, s in [
      ...     ("Wax", (n_a, n_x)), ("Waa", (n_a, n_a)), ("Wya", (n_y, n_a)),
      ...     ("ba", (n_a, 1)), ("by", (n_y, 1))]}
      >>> xt, a_prev = rng.standard_normal((n_x, m)), rng.standard_normal((n_a, m))
      >>> a_next, yt_pred, cache = course.rnn_cell_forward(xt, a_prev, parameters)
      >>> a_next.shape, yt_pred.shape, str(a_next.dtype), len(cache)
      ((5, 10), (2, 10), 'float64', 4)
      >>> bool(np.allclose(yt_pred.sum(axis=0), 1.0))
      True
    """
    xt = _array(xt, "xt", ("n_x", "m"))
    a_prev = _array(a_prev, "a_prev", ("n_a", "m"))
    p, n_a, n_x, _ = _rnn_parameters(parameters)
    _check_inputs(("xt", xt), [("a_prev", a_prev)], n_x, n_a, _wax(p))
    dtype = _same_dtype({"xt": xt, "a_prev": a_prev, "parameters['Wax']": p["Wax"]})
    cell, params, head = _rnn_to_cell(p, n_a)
    with _precision(dtype):
        a_next, yt_pred = _numpy(_rnn_step(cell, params, head, xt, a_prev))
    return a_next, yt_pred, (a_next, a_prev, xt, p)


def _wax(p: Mapping[str, np.ndarray]) -> str:
    return f"parameters['Wax'] of shape {checks.shape_str(p['Wax'].shape)}"


def _wf(p: Mapping[str, np.ndarray]) -> str:
    n_a, width = p["Wf"].shape
    return f"parameters['Wf'] of shape {checks.shape_str(p['Wf'].shape)} (n_x = {width} - {n_a})"


def _sequence(x: Any) -> np.ndarray:
    x = _array(x, "x", ("n_x", "m", "T_x"))
    if x.shape[2] < 1:
        raise ValueError(f"x must have at least one time step, got shape {x.shape}")
    return x


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
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m, T_x = 3, 5, 2, 10, 4
      >>> parameters = {k: rng.standard_normal(s) for k, s in [
      ...     ("Wax", (n_a, n_x)), ("Waa", (n_a, n_a)), ("Wya", (n_y, n_a)),
      ...     ("ba", (n_a, 1)), ("by", (n_y, 1))]}
      >>> x, a0 = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))
      >>> a, y_pred, caches = course.rnn_forward(x, a0, parameters)
      >>> a.shape, y_pred.shape, len(caches[0])
      ((5, 10, 4), (2, 10, 4), 4)
    """
    x = _sequence(x)
    a0 = _array(a0, "a0", ("n_a", "m"))
    p, n_a, n_x, n_y = _rnn_parameters(parameters)
    _check_inputs(("x", x), [("a0", a0)], n_x, n_a, _wax(p))
    dtype = _same_dtype({"x": x, "a0": a0, "parameters['Wax']": p["Wax"]})
    cell, params, head = _rnn_to_cell(p, n_a)
    _, m, T_x = x.shape
    a = np.zeros((n_a, m, T_x), dtype)
    y_pred = np.zeros((n_y, m, T_x), dtype)
    caches = []
    a_next = a0
    with _precision(dtype):
        for t in range(T_x):
            xt, a_prev = x[:, :, t], a_next
            a_next, yt_pred = _numpy(_rnn_step(cell, params, head, xt, a_prev))
            a[:, :, t] = a_next
            y_pred[:, :, t] = yt_pred
            caches.append((a_next, a_prev, xt, p))
    return a, y_pred, (caches, x)


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

    The new states come from `jaxrnn.lstm(n_a).step`; the gates stored in the cache
    are rebuilt from the same cell's input projection and recurrent weight.

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
      TypeError: an input is not a floating array, or the dtypes differ.
      ValueError: ranks or shapes disagree (the message names the argument).

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m = 3, 5, 2, 10
      >>> shapes = {"Wf": (n_a, n_a + n_x), "bf": (n_a, 1), "Wi": (n_a, n_a + n_x),
      ...           "bi": (n_a, 1), "Wc": (n_a, n_a + n_x), "bc": (n_a, 1),
      ...           "Wo": (n_a, n_a + n_x), "bo": (n_a, 1), "Wy": (n_y, n_a), "by": (n_y, 1)}
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> xt = rng.standard_normal((n_x, m))
      >>> a_prev, c_prev = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
      >>> a_next, c_next, yt, cache = course.lstm_cell_forward(xt, a_prev, c_prev, parameters)
      >>> a_next.shape, c_next.shape, yt.shape, len(cache)
      ((5, 10), (5, 10), (2, 10), 10)
    """
    xt = _array(xt, "xt", ("n_x", "m"))
    a_prev = _array(a_prev, "a_prev", ("n_a", "m"))
    c_prev = _array(c_prev, "c_prev", ("n_a", "m"))
    p, n_a, n_x, _ = _lstm_parameters(parameters)
    _check_inputs(("xt", xt), [("a_prev", a_prev), ("c_prev", c_prev)], n_x, n_a, _wf(p))
    dtype = _same_dtype({"xt": xt, "a_prev": a_prev, "c_prev": c_prev, "parameters['Wf']": p["Wf"]})
    cell, params, head = _lstm_to_cell(p, n_a)
    with _precision(dtype):
        out = _numpy(_lstm_step(cell, params, head, xt, a_prev, c_prev))
    a_next, c_next, yt_pred, (ft, it, cct, ot) = out
    return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p)


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
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m, T_x = 3, 5, 2, 10, 7
      >>> shapes = {"Wf": (n_a, n_a + n_x), "bf": (n_a, 1), "Wi": (n_a, n_a + n_x),
      ...           "bi": (n_a, 1), "Wc": (n_a, n_a + n_x), "bc": (n_a, 1),
      ...           "Wo": (n_a, n_a + n_x), "bo": (n_a, 1), "Wy": (n_y, n_a), "by": (n_y, 1)}
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> x, a0 = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))
      >>> a, y, c, caches = course.lstm_forward(x, a0, parameters)
      >>> a.shape, y.shape, c.shape, len(caches[0])
      ((5, 10, 7), (2, 10, 7), (5, 10, 7), 7)
    """
    x = _sequence(x)
    a0 = _array(a0, "a0", ("n_a", "m"))
    p, n_a, n_x, n_y = _lstm_parameters(parameters)
    _check_inputs(("x", x), [("a0", a0)], n_x, n_a, _wf(p))
    dtype = _same_dtype({"x": x, "a0": a0, "parameters['Wf']": p["Wf"]})
    cell, params, head = _lstm_to_cell(p, n_a)
    _, m, T_x = x.shape
    a = np.zeros((n_a, m, T_x), dtype)
    c = np.zeros((n_a, m, T_x), dtype)
    y = np.zeros((n_y, m, T_x), dtype)
    caches = []
    a_next, c_next = a0, np.zeros((n_a, m), dtype)
    with _precision(dtype):
        for t in range(T_x):
            xt = x[:, :, t]
            a_prev, c_prev = a_next, c_next
            a_next, c_next, yt, gates = _numpy(_lstm_step(cell, params, head, xt, a_prev, c_prev))
            a[:, :, t], c[:, :, t], y[:, :, t] = a_next, c_next, yt
            caches.append((a_next, c_next, a_prev, c_prev, *gates, xt, p))
    return a, y, c, (caches, x)


# --------------------------------------------------------------------------- backward


def _tuple(value: Any, name: str, length: int, layout: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != length:
        got = (
            f"a {type(value).__name__} of length {len(value)}"
            if isinstance(value, (tuple, list))
            else type(value).__name__
        )
        raise TypeError(f"{name} must be the {length}-tuple {layout}; got {got}")
    return tuple(value)


def _rnn_cache(cache: Any, name: str) -> tuple[np.ndarray, ...]:
    """`(a_next, a_prev, xt, Wax, Waa)` from a checked `rnn_cell_forward` cache."""
    a_next, a_prev, xt, parameters = _tuple(
        cache, name, 4, "(a_next, a_prev, xt, parameters) from rnn_cell_forward"
    )
    p, n_a, n_x, _ = _rnn_parameters(parameters, f"{name}[3]")
    xt = _array(xt, f"{name}[2] (xt)", ("n_x", "m"))
    states = [(f"{name}[{k}] ({s})", _array(v, f"{name}[{k}] ({s})", ("n_a", "m")))
              for k, s, v in ((0, "a_next", a_next), (1, "a_prev", a_prev))]  # fmt: skip
    _check_inputs((f"{name}[2] (xt)", xt), states, n_x, n_a, f"{name}[3]['Wax']")
    arrays = {**dict(states), f"{name}[2] (xt)": xt, f"{name}[3]['Wax']": p["Wax"]}
    _same_dtype(arrays)
    return states[0][1], states[1][1], xt, p["Wax"], p["Waa"]


_LSTM_CACHE = ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot", "xt")


def _lstm_cache(cache: Any, name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The named arrays and the params of a checked `lstm_cell_forward` cache."""
    values = _tuple(
        cache,
        name,
        10,
        "(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters) from lstm_cell_forward",
    )
    p, n_a, n_x, _ = _lstm_parameters(values[9], f"{name}[9]")
    named = {
        s: _array(v, f"{name}[{k}] ({s})", ("n_x" if s == "xt" else "n_a", "m"))
        for k, (s, v) in enumerate(zip(_LSTM_CACHE, values[:9], strict=True))
    }
    xt_name = f"{name}[8] (xt)"
    states = [(f"{name}[{k}] ({s})", named[s]) for k, s in enumerate(_LSTM_CACHE[:8])]
    _check_inputs((xt_name, named["xt"]), states, n_x, n_a, f"{name}[9]['Wf']")
    _same_dtype({**dict(states), xt_name: named["xt"], f"{name}[9]['Wf']": p["Wf"]})
    return named, p


def _step_backward(
    step: Any, params: Params, xt: Array, a_prev: Array, residuals: Any, h: Array, dnew: Any
) -> tuple[Params, Array, Any]:
    """One step of a built-in cell's own backward rule and weight gradients, course layout in.

    Returns the library-layout parameter gradients, `dxt (n_x, m)` and the gradient of
    the carry the step started from.
    """
    back_params = {**params, "w_h_t": params["w_h"].T}
    emitted, dprev = step.backward(back_params, residuals, h, dnew)
    one = functools.partial(jax.tree.map, lambda a: a[None])
    dparams, dxs = step.grads(params, xt.T[None], a_prev.T[None], one(residuals), one(emitted))
    return dparams, dxs[0].T, dprev


@jax.jit
def _rnn_cell_grads(
    da_next: Array, a_next: Array, a_prev: Array, xt: Array, Wax: Array, Waa: Array
) -> dict[str, Array]:
    params = {"w_x": Wax.T, "w_h": Waa.T, "b": jnp.zeros(Wax.shape[:1], Wax.dtype)}
    g, dxt, da_prev = _step_backward(cells.RNN_TANH, params, xt, a_prev, (), a_next.T, da_next.T)
    return {
        "dxt": dxt,
        "da_prev": da_prev.T,
        "dWax": g["w_x"].T,
        "dWaa": g["w_h"].T,
        "dba": g["b"][:, None],
    }


def _check_upstream(name: str, value: Any, like: np.ndarray, like_name: str) -> np.ndarray:
    value = _array(value, name, ("n_a", "m"))
    _expect_shape(name, value, like.shape, f"(n_a, m), the shape of {like_name}")
    _same_dtype({like_name: like, name: value})
    return value


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
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m = 3, 5, 2, 10
      >>> parameters = {k: rng.standard_normal(s) for k, s in [
      ...     ("Wax", (n_a, n_x)), ("Waa", (n_a, n_a)), ("Wya", (n_y, n_a)),
      ...     ("ba", (n_a, 1)), ("by", (n_y, 1))]}
      >>> xt, a_prev = rng.standard_normal((n_x, m)), rng.standard_normal((n_a, m))
      >>> a_next, yt, cache = course.rnn_cell_forward(xt, a_prev, parameters)
      >>> gradients = course.rnn_cell_backward(rng.standard_normal((n_a, m)), cache)
      >>> list(gradients), gradients["dWax"].shape
      (['dxt', 'da_prev', 'dWax', 'dWaa', 'dba'], (5, 3))
    """
    a_next, a_prev, xt, Wax, Waa = _rnn_cache(cache, "cache")
    da_next = _check_upstream("da_next", da_next, a_next, "cache[0] (a_next)")
    with _precision(a_next.dtype):
        grads = _rnn_cell_grads(da_next, a_next, a_prev, xt, Wax, Waa)
        return _gradients(grads, RNN_CELL_GRADIENTS)


def _sequence_caches(da: Any, caches: Any, width: int, layout: str) -> tuple[np.ndarray, list]:
    """`da` and the list of step caches, checked against each other."""
    caches, _ = _tuple(caches, "caches", 2, f"(list_of_caches, x) from {layout}")
    if not isinstance(caches, (list, tuple)) or not caches:
        raise TypeError(
            f"caches[0] must be the non-empty list of step caches from {layout}, "
            f"got {type(caches).__name__}"
        )
    da = _array(da, "da", ("n_a", "m", "T_x"))
    first = caches[0]
    if not isinstance(first, (tuple, list)) or len(first) != width:
        raise TypeError(f"caches[0][0] must be a {width}-tuple step cache from {layout}")
    a1 = _array(first[0], "caches[0][0][0] (a_next)", ("n_a", "m"))
    T_x = da.shape[2]
    _expect_shape(
        "da",
        da,
        (*a1.shape, T_x),
        f"(n_a, m, T_x) with (n_a, m) = {a1.shape} from the hidden states in caches",
    )
    if not 1 <= T_x <= len(caches):
        raise ValueError(
            f"da has {T_x} time steps (da.shape[2]) but caches holds {len(caches)}; the "
            f"backward walks steps T_x - 1 down to 0 of the forward, so 1 <= T_x <= "
            f"{len(caches)}"
        )
    return da, list(caches)


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
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m, T_x = 3, 5, 2, 10, 4
      >>> parameters = {k: rng.standard_normal(s) for k, s in [
      ...     ("Wax", (n_a, n_x)), ("Waa", (n_a, n_a)), ("Wya", (n_y, n_a)),
      ...     ("ba", (n_a, 1)), ("by", (n_y, 1))]}
      >>> x, a0 = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))
      >>> a, y_pred, caches = course.rnn_forward(x, a0, parameters)
      >>> gradients = course.rnn_backward(rng.standard_normal((n_a, m, T_x)), caches)
      >>> gradients["dx"].shape, gradients["da0"].shape, gradients["dba"].shape
      ((3, 10, 4), (5, 10), (5, 1))
    """
    da, steps = _sequence_caches(da, caches, 4, "rnn_forward")
    T_x = da.shape[2]
    unpacked = [_rnn_cache(steps[t], f"caches[0][{t}]") for t in range(T_x)]
    _same_dtype({"caches[0][0][0] (a_next)": unpacked[0][0], "da": da})
    with _precision(da.dtype):
        da_prevt = jnp.zeros(da.shape[:2], da.dtype)
        dx = [None] * T_x
        totals = None
        for t in reversed(range(T_x)):
            a_next, a_prev, xt, Wax, Waa = unpacked[t]
            g = _rnn_cell_grads(da[:, :, t] + da_prevt, a_next, a_prev, xt, Wax, Waa)
            dx[t], da_prevt = g["dxt"], g["da_prev"]
            step = {k: g[k] for k in ("dWax", "dWaa", "dba")}
            totals = step if totals is None else jax.tree.map(jnp.add, totals, step)
        grads = {"dx": jnp.stack(dx, axis=2), "da0": da_prevt, **totals}
        return _gradients(grads, RNN_GRADIENTS)


@jax.jit
def _lstm_cell_grads(
    da_next: Array, dc_next: Array, s: dict[str, Array], W: dict[str, Array]
) -> dict[str, Array]:
    n_a = s["a_prev"].shape[0]
    weights = [W[gate] for gate in _LSTM_GATE_ORDER]
    params = {
        "w_x": jnp.concatenate([w[:, n_a:].T for w in weights], axis=1),
        "w_h": jnp.concatenate([w[:, :n_a].T for w in weights], axis=1),
        "b": jnp.zeros((4 * n_a,), weights[0].dtype),  # the backward does not read it
    }
    residuals = tuple(s[k].T for k in ("it", "ft", "cct", "ot", "c_prev"))
    dnew = (da_next.T, dc_next.T)
    g, dxt, (da_prev, dc_prev) = _step_backward(
        cells.LSTM, params, s["xt"], s["a_prev"], residuals, s["a_next"].T, dnew
    )
    grads = {"dxt": dxt, "da_prev": da_prev.T, "dc_prev": dc_prev.T}
    blocks = dict(zip(_LSTM_GATE_ORDER, range(4), strict=True))
    for gate in _LSTM_GRAD_ORDER:
        cols = slice(blocks[gate] * n_a, (blocks[gate] + 1) * n_a)
        grads[f"dW{gate}"] = jnp.concatenate([g["w_h"][:, cols].T, g["w_x"][:, cols].T], axis=1)
        grads[f"db{gate}"] = g["b"][cols][:, None]
    return grads


def _lstm_weights(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {g: p[f"W{g}"] for g in _LSTM_GRAD_ORDER}


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
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m = 3, 5, 2, 10
      >>> shapes = {"Wf": (n_a, n_a + n_x), "bf": (n_a, 1), "Wi": (n_a, n_a + n_x),
      ...           "bi": (n_a, 1), "Wc": (n_a, n_a + n_x), "bc": (n_a, 1),
      ...           "Wo": (n_a, n_a + n_x), "bo": (n_a, 1), "Wy": (n_y, n_a), "by": (n_y, 1)}
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> xt = rng.standard_normal((n_x, m))
      >>> a_prev, c_prev = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
      >>> *_, cache = course.lstm_cell_forward(xt, a_prev, c_prev, parameters)
      >>> da_next, dc_next = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
      >>> gradients = course.lstm_cell_backward(da_next, dc_next, cache)
      >>> gradients["dxt"].shape, gradients["dc_prev"].shape, gradients["dWf"].shape
      ((3, 10), (5, 10), (5, 8))
    """
    s, p = _lstm_cache(cache, "cache")
    da_next = _check_upstream("da_next", da_next, s["a_next"], "cache[0] (a_next)")
    dc_next = _check_upstream("dc_next", dc_next, s["c_next"], "cache[1] (c_next)")
    with _precision(da_next.dtype):
        grads = _lstm_cell_grads(da_next, dc_next, s, _lstm_weights(p))
        return _gradients(grads, LSTM_CELL_GRADIENTS)


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
      TypeError: `caches` is not what `lstm_forward` returns, or dtypes differ.
      ValueError: `da` does not match the caches' `(n_a, m)`, or has more steps
        than the caches.

    Examples:
      >>> import numpy as np
      >>> from jaxrnn import course
      >>> rng = np.random.default_rng(1)
      >>> n_x, n_a, n_y, m, T_x = 3, 5, 2, 10, 7
      >>> shapes = {"Wf": (n_a, n_a + n_x), "bf": (n_a, 1), "Wi": (n_a, n_a + n_x),
      ...           "bi": (n_a, 1), "Wc": (n_a, n_a + n_x), "bc": (n_a, 1),
      ...           "Wo": (n_a, n_a + n_x), "bo": (n_a, 1), "Wy": (n_y, n_a), "by": (n_y, 1)}
      >>> parameters = {k: rng.standard_normal(s) for k, s in shapes.items()}
      >>> x, a0 = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))
      >>> a, y, c, caches = course.lstm_forward(x, a0, parameters)
      >>> gradients = course.lstm_backward(rng.standard_normal((n_a, m, T_x)), caches)
      >>> gradients["dx"].shape, gradients["da0"].shape, gradients["dWo"].shape
      ((3, 10, 7), (5, 10), (5, 8))
    """
    da, steps = _sequence_caches(da, caches, 10, "lstm_forward")
    T_x = da.shape[2]
    unpacked = [_lstm_cache(steps[t], f"caches[0][{t}]") for t in range(T_x)]
    _same_dtype({"caches[0][0][0] (a_next)": unpacked[0][0]["a_next"], "da": da})
    with _precision(da.dtype):
        da_prevt = jnp.zeros(da.shape[:2], da.dtype)
        dc_prevt = jnp.zeros(da.shape[:2], da.dtype)
        dx = [None] * T_x
        totals = None
        for t in reversed(range(T_x)):
            s, p = unpacked[t]
            g = _lstm_cell_grads(da[:, :, t] + da_prevt, dc_prevt, s, _lstm_weights(p))
            dx[t], da_prevt, dc_prevt = g["dxt"], g["da_prev"], g["dc_prev"]
            step = {k: g[k] for k in _LSTM_PARAM_GRADS}
            totals = step if totals is None else jax.tree.map(jnp.add, totals, step)
        grads = {"dx": jnp.stack(dx, axis=2), "da0": da_prevt, **totals}
        return _gradients(grads, LSTM_GRADIENTS)
