"""Layers built on `unroll`: a bidirectional layer and a stack of layers, which compose.

A layer is, like a cell, a NamedTuple of pure functions: `init` makes its
params from an explicit key, `initial_carry` its zero state, and `apply` runs
it over a whole sequence with the calling convention of `jaxrnn.unroll`:

```python
# options: mask, resets, unroll, remat, hoist, grad, parallel
carry, ys = layer.apply(
    params, xs, carry=None, *, lengths=None, time_axis=0, key=None, **options
)
```

Every `unroll` option in `options` reaches every cell inside the layer.
`bidirectional` runs two cells or layers over the same inputs, one of them
backwards, and merges their outputs step by step. `stack` runs cells, layers
(stacks included) and per-step layers such as `jaxrnn.dense` one after the
other, with dropout, recurrent (variational) dropout, zoneout, residual
connections and a learned initial carry.

Randomness is explicit: dropout and zoneout act only when `apply` receives a
`key`. Without a key nothing is dropped, which is how a trained network is
evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import BpttStep, Carry, Cell, LinearStep, Params, Step, has_projection
from jaxrnn.unroll import unroll_checked

Array = jax.Array

MERGES = {
    "concat": lambda f, b: jnp.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "mean": lambda f, b: (f + b) / 2,
    None: lambda f, b: (f, b),
}
"""The names `bidirectional` accepts for `merge`, and what they compute."""

OPTIONS = ("mask", "resets", "unroll", "remat", "hoist", "grad", "parallel")
"""The `jaxrnn.unroll` options that `apply` passes on to every cell."""


class Bidirectional(NamedTuple):
    """Two cells or layers over the same sequence, one of them backwards, merged step by step.

    Made by `bidirectional`. Params are `{"fwd": ..., "bwd": ...}`, each in its part's
    own layout; the carry is the pair `(fwd_carry, bwd_carry)`.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> {"fwd": ..., "bwd": ...}`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32)
        -> (fwd_carry, bwd_carry)`, all zeros.
      apply: `apply(params, xs, carry=None, *, lengths=None, time_axis=0, key=None,
        **options) -> ((fwd_carry, bwd_carry), ys)`.
      output_size: the size of the last axis of `ys` (the pair of sizes for `merge=None`).
      fwd: the cell or layer that reads the sequence from first to last step.
      bwd: the cell or layer that reads each sequence from its last valid step back.
      merge: a name in `MERGES` or a function `merge(ys_fwd, ys_bwd) -> ys`.
    """

    init: Callable[..., Any]
    initial_carry: Callable[..., Any]
    apply: Callable[..., Any]
    output_size: Any
    fwd: Any
    bwd: Any
    merge: str | Callable[[Array, Array], Any] | None


class Stack(NamedTuple):
    """Layers run one after the other, each reading the previous one's outputs.

    Made by `stack`. Params are `{"layers": [params_0, ...]}`, one entry per layer in
    its own layout, plus `"initial_carry": [carry_0, ...]` with
    `learn_initial_carry=True`. The carry is a list with one carry per layer (`()` for
    a per-step layer).

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> {"layers": [...], ...}`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32) -> [carry_0, ...]`.
      apply: `apply(params, xs, carry=None, *, lengths=None, time_axis=0, key=None,
        **options) -> ([carry_0, ...], ys)`.
      output_size: the size of the last axis of `ys`, the last layer's output size.
      layers: the cells, layers and per-step layers, first to last.
      dropout: the probability of dropping each input of layers 1, 2, ...
      input_dropout: the probability of dropping each input of layer 0.
      recurrent_dropout: the probability of dropping each unit of what a cell's
        recurrent weights read, one mask per sequence.
      zoneout: the probability that each unit of a cell's carry keeps its previous value
        at a step.
      residual: whether each layer's input is added to its output.
      learn_initial_carry: whether the initial carries are part of the params.
    """

    init: Callable[..., Any]
    initial_carry: Callable[..., Any]
    apply: Callable[..., Any]
    output_size: int
    layers: tuple[Any, ...]
    dropout: float
    input_dropout: float
    recurrent_dropout: float
    zoneout: float
    residual: bool
    learn_initial_carry: bool


Layer = Bidirectional | Stack
"""A layer: `init`, `initial_carry`, `apply` and `output_size`, as `bidirectional` and
`stack` make them."""


class _Run(NamedTuple):
    """What the parts of one `apply` call share: checked, time-major."""

    seq: checks.Run  # lengths, mask and resets; each part replaces xs and carry
    valid: Array | None  # (T, *batch, 1): the steps a sequence has
    options: dict[str, Any]  # unroll's, `reverse` included
    rates: tuple[float, float] = (0.0, 0.0)  # the enclosing stack's recurrent dropout, zoneout


def bidirectional(fwd: Any, bwd: Any, merge: Any = "concat") -> Bidirectional:
    """A bidirectional layer: one cell or layer reads the sequence forwards, the other backwards.

    For two cells, `apply` is two `unroll`s with the layer's `lengths` and `time_axis`:

    ```python
    fwd_carry, ys_f = unroll(fwd, params["fwd"], xs, carry[0], lengths=lengths)
    bwd_carry, ys_b = unroll(
        bwd, params["bwd"], xs, carry[1], lengths=lengths, reverse=True
    )
    ys = merge(ys_f, ys_b)  # "concat": concatenate([ys_f, ys_b], axis=-1)
    ```

    The backward part reads each sequence from its own last valid step down to step
    0, so on a padded batch it never reads padding first; both halves of `ys` stay
    aligned with `xs` (`ys[t]` describes `xs[t]`) and are zeros at padded steps, as in
    PyTorch's `bidirectional=True` modules. A layer as a part (a stack, say) runs all
    of its cells in its direction.

    Shapes: `xs (T, *batch, I)` (time on `time_axis`); `Hf`, `Hb` the parts' output sizes.

    Args:
      fwd: the cell or layer that reads forwards, e.g. `jaxrnn.lstm(64)`.
      bwd: the cell or layer that reads backwards; it may be the same (its params are
        separate).
      merge: how each step's two outputs combine: `"concat"` (`ys (T, *batch, Hf + Hb)`),
        `"sum"` or `"mean"` (needs `Hf == Hb`), `None` (the pair `(ys_f, ys_b)`), or a
        function `merge(ys_f, ys_b) -> ys` of arrays `(..., Hf)` and `(..., Hb)`.

    Returns:
      A `Bidirectional` layer. Its `apply(params, xs, carry=None, *, lengths=None,
      time_axis=0, key=None, **options)` returns `((fwd_carry, bwd_carry), ys)`; `key`
      reaches the parts (a stack's dropout), and `options` are `jaxrnn.unroll`'s.

    Raises:
      TypeError: `fwd` or `bwd` is neither a `Cell` nor a layer, or `merge` is neither a
        known name nor a function.
      ValueError: `"sum"`/`"mean"` with parts of different sizes, or a part is
        bidirectional with `merge=None`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> layer = jr.bidirectional(jr.lstm(8), jr.lstm(8))
      >>> params = layer.init(jax.random.key(0), input_size=3)
      >>> xs = jnp.ones((5, 2, 3))  # (T, batch, I)
      >>> (fwd, bwd), ys = layer.apply(params, xs, lengths=jnp.array([5, 2]))
      >>> ys.shape, layer.output_size
      ((5, 2, 16), 16)
      >>> bool(jnp.all(ys[2:, 1] == 0))  # padding stays zero
      True
    """
    _check_part(fwd, "fwd", reader="merge")
    _check_part(bwd, "bwd", reader="merge")
    hf, hb = _output_size(fwd), _output_size(bwd)
    if not (callable(merge) or merge in MERGES):
        raise TypeError(
            f"merge must be one of {', '.join(map(repr, MERGES))} or a function "
            f"merge(ys_fwd, ys_bwd) -> ys; got {merge!r}"
        )
    if merge in ("sum", "mean") and hf != hb:
        raise ValueError(
            f"merge={merge!r} adds the two directions' outputs, so they need one size; got "
            f"{hf} (fwd) and {hb} (bwd). Use merge='concat' or parts of one size"
        )
    parts = [jax.ShapeDtypeStruct((1, size), jnp.float32) for size in (hf, hb)]
    merged = jax.eval_shape(MERGES.get(merge, merge), *parts)
    output_size = jax.tree.map(lambda part: part.shape[-1], merged)  # a pair for merge=None

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Params]:
        key_fwd, key_bwd = jax.random.split(checks.prng_key(key))
        return {
            "fwd": fwd.init(key_fwd, input_size, dtype),
            "bwd": bwd.init(key_bwd, input_size, dtype),
        }

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        return (fwd.initial_carry(batch_shape, dtype), bwd.initial_carry(batch_shape, dtype))

    layer = Bidirectional(init, initial_carry, None, output_size, fwd, bwd, merge)
    return layer._replace(apply=_public_apply(layer))


def stack(
    layers: Sequence[Any],
    *,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    residual: bool = False,
    recurrent_dropout: float = 0.0,
    zoneout: float = 0.0,
    learn_initial_carry: bool = False,
) -> Stack:
    """A deep recurrent network: layers run one after the other, layer by layer.

    Layer `l` reads the whole output sequence of layer `l - 1` (layer 0 reads `xs`),
    with one `unroll` per cell, so each cell can project all its inputs with one
    matmul:

    ```python
    ys = xs
    for l, layer in enumerate(layers):
        rate = input_dropout if l == 0 else dropout
        inputs = ys * dropout_mask(ys.shape, rate) if key is not None else ys
        carries[l], outputs = run(layer, params["layers"][l], inputs, carry[l])
        ys = outputs + ys if residual else outputs
    ```

    A layer is a `Cell`, a `bidirectional` layer, another `stack`, or a per-step layer:
    anything with `init(key, input_size, dtype)`, `apply(params, hs) -> ys` on any
    leading dims, and `output_size`, such as `jaxrnn.dense(n)`. A per-step layer has
    the carry `()`, and its outputs at padded steps are zeros like every layer's.

    **Dropout and zoneout act only when `apply` gets a `key`.** With `key=None`
    (evaluation) nothing is dropped, and the result equals the same stack with every
    rate 0. With a key, the same key gives the same masks; draw a new key for every
    training step (under `jax.vmap` an unbatched key gives every example the same masks).

    - `dropout` is PyTorch's: an independent inverted-dropout mask (kept units scaled
      by `1 / (1 - p)`) for every element of the inputs of layers 1, 2, ..., drawn
      afresh at every step; `input_dropout` does the same to the inputs of layer 0.
    - `recurrent_dropout` is the variational dropout of Gal & Ghahramani (2016): for
      every cell of this stack (both parts of a bidirectional layer, not the cells of
      a nested stack, which has its own rates), one mask per sequence over what the
      recurrent weights read, shared by all steps. A `jaxrnn.Step` or `BpttStep` gets
      it as `read` only, so the built-in cells drop just the `h` entering `h @ w_h`
      (an LSTM's `c` and a GRU's interpolation `z * h` see the state itself); a plain
      step function gets its whole carry masked; a `LinearStep` is refused.
    - `zoneout` is that of Krueger et al. (2017): at every step each unit of a cell's
      carry keeps its previous value with probability `zoneout`. Where a cell's
      output is its carry's first array (every built-in nonlinear cell), the output
      is the zoned-out state too.

    `residual=True` adds each layer's input (before dropout) to its output, so each
    layer's output size must equal its input size. `learn_initial_carry=True` adds
    `params["initial_carry"]`: one carry per layer with every array of shape
    `(hidden_size,)` (zeros at `init`), broadcast over the batch. A `carry` passed to
    `apply` overrides it.

    Args:
      layers: a non-empty list of cells, layers and per-step layers, first to last.
      dropout: in `[0, 1)`, the probability of dropping each input of layers 1, 2, ...
      input_dropout: in `[0, 1)`, the probability of dropping each input of layer 0.
      residual: add each layer's input to its output.
      recurrent_dropout: in `[0, 1)`, see above.
      zoneout: in `[0, 1)`, see above.
      learn_initial_carry: make the initial carries params.

    Returns:
      A `Stack`. Its `apply(params, xs, carry=None, *, lengths=None, time_axis=0,
      key=None, **options)` returns `(carries, ys)`: a list with each layer's final
      carry, and `ys (T, *batch, O)`; `options` (`mask`, `resets`, `remat`, `grad`, ...)
      are `jaxrnn.unroll`'s and reach every cell.

    Raises:
      TypeError: `layers` is not a list of layers, or an option has the wrong type.
      ValueError: `layers` is empty or holds a bidirectional layer with `merge=None`
        before the last place, a rate is outside `[0, 1)`, `residual=True` meets a
        layer whose input and output sizes differ, or `recurrent_dropout` meets a cell
        with a `LinearStep`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> net = jr.stack(
      ...     [jr.bidirectional(jr.gru(8), jr.gru(8)), jr.dense(16), jr.lstm(16)],
      ...     dropout=0.2,
      ...     zoneout=0.1,
      ...     residual=True,
      ... )
      >>> params = net.init(jax.random.key(0), input_size=16)
      >>> xs = jnp.ones((5, 2, 16))  # (T, batch, I)
      >>> carries, ys = net.apply(params, xs, key=jax.random.key(1), remat=True)
      >>> ys.shape, len(carries)
      ((5, 2, 16), 3)
      >>> _, ys_eval = net.apply(params, xs)  # no key: no dropout
      >>> bool(jnp.all(ys_eval == net.apply(params, xs)[1]))
      True

    References:
      Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
      Recurrent Neural Networks", NeurIPS 2016.
      Krueger et al., "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
      Activations", ICLR 2017.
    """
    if isinstance(layers, (Cell, Bidirectional, Stack)) or not isinstance(layers, Sequence):
        raise TypeError(
            f"layers must be a list of cells and layers, e.g. "
            f"[jaxrnn.lstm(64), jaxrnn.lstm(64)]; got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("layers must hold at least one cell or layer; got []")
    layers = tuple(layers)
    for index, layer in enumerate(layers):
        last = index == len(layers) - 1
        _check_part(layer, f"layers[{index}]", per_step=True, reader=None if last else "next layer")
    rates = [
        checks.number(value, name, lambda p: 0 <= p < 1, "a probability in [0, 1)")
        for name, value in zip(
            ("dropout", "input_dropout", "recurrent_dropout", "zoneout"),
            (dropout, input_dropout, recurrent_dropout, zoneout),
            strict=True,
        )
    ]
    residual = checks.boolean(residual, "residual")
    learn_initial_carry = checks.boolean(learn_initial_carry, "learn_initial_carry")
    sizes = [_output_size(layer) for layer in layers]
    for index, layer in enumerate(layers):
        if residual and index:
            _check_residual(index, sizes[index - 1], sizes[index], f"layers[{index - 1}]'s output")
        for part in (layer.fwd, layer.bwd) if isinstance(layer, Bidirectional) else (layer,):
            if recurrent_dropout and isinstance(part, Cell):
                _refuse_linear(part, f"layers[{index}]")

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        keys = jax.random.split(checks.prng_key(key), len(layers))
        input_size = checks.positive_int(input_size, "input_size")
        if residual:
            _check_residual(0, input_size, sizes[0], "input_size")
        inputs = [input_size, *sizes[:-1]]
        params: dict[str, Any] = {
            "layers": [
                layer.init(*args, dtype) for layer, *args in zip(layers, keys, inputs, strict=True)
            ]
        }
        if learn_initial_carry:
            params["initial_carry"] = initial_carry((), dtype)
        return params

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> list[Carry]:
        return [
            () if _is_step_layer(layer) else layer.initial_carry(batch_shape, dtype)
            for layer in layers
        ]

    net = Stack(init, initial_carry, None, sizes[-1], layers, *rates, residual, learn_initial_carry)
    return net._replace(apply=_public_apply(net))


# Running, on checked time-major arrays.


def _public_apply(layer: Bidirectional | Stack) -> Callable[..., Any]:
    """`apply` for `layer`: check once, then run it time-major."""

    def apply(
        params: Any,
        xs: Array,
        carry: Any = None,
        *,
        lengths: Array | None = None,
        time_axis: int = 0,
        key: Array | None = None,
        **options: Any,
    ) -> tuple[Any, Any]:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"apply got unknown options {unknown}; it passes on {list(OPTIONS)}")
        if key is not None:
            key = checks.prng_key(key)
        if isinstance(layer, Stack) and layer.residual:
            _check_residual(0, jnp.shape(xs)[-1], _output_size(layer.layers[0]), "xs.shape[-1]")
        mask, resets = options.pop("mask", None), options.pop("resets", None)
        seq = checks.sequence(layer, params, xs, carry, time_axis, lengths, mask, resets)
        valid = checks.valid_steps(seq.lengths, seq.xs.shape[0], seq.mask)
        valid = None if valid is None else valid[..., None]
        # Zero the padding here: every layer's outputs are zeros there too, so a residual
        # sum, say, stays zero at padded steps.
        xs = seq.xs if valid is None else jnp.where(valid, seq.xs, jnp.zeros((), seq.xs.dtype))
        run = _Run(seq, valid, {**options, "reverse": False})
        carry, ys = _run(layer, params, xs, seq.carry, key, run)
        return carry, jax.tree.map(lambda y: jnp.moveaxis(y, 0, seq.time_axis), ys)

    return apply


def _run(layer: Any, params: Any, xs: Array, carry: Any, key: Any, run: _Run) -> tuple[Any, Any]:
    """`layer` over `xs (T, *batch, I)`; with `key` None nothing is random."""
    if isinstance(layer, Cell):
        return _run_cell(layer, params, xs, carry, key, run)
    if isinstance(layer, Stack):
        return _run_stack(layer, params, xs, carry, key, run)
    if isinstance(layer, Bidirectional):
        fwd_carry, bwd_carry = (None, None) if carry is None else carry
        fwd_key, bwd_key = _split(key, 2)
        backwards = run._replace(options={**run.options, "reverse": not run.options["reverse"]})
        fwd_carry, ys_f = _run(layer.fwd, params["fwd"], xs, fwd_carry, fwd_key, run)
        bwd_carry, ys_b = _run(layer.bwd, params["bwd"], xs, bwd_carry, bwd_key, backwards)
        return (fwd_carry, bwd_carry), MERGES.get(layer.merge, layer.merge)(ys_f, ys_b)
    ys = layer.apply(params, xs)  # a per-step layer
    return (), ys if run.valid is None else jnp.where(run.valid, ys, jnp.zeros((), ys.dtype))


def _run_cell(
    cell: Cell, params: Params, xs: Array, carry: Carry, key: Any, run: _Run
) -> tuple[Carry, Array]:
    recurrent_dropout, zoneout = (0.0, 0.0) if key is None else run.rates
    noisy = recurrent_dropout > 0 or zoneout > 0
    if noisy:
        if run.options.get("grad") == "bptt" or run.options.get("parallel"):
            raise ValueError(
                f"recurrent_dropout and zoneout run cell {cell.name!r} as a plain scan "
                f"differentiated by JAX; with a key, use grad='autodiff' and parallel=None or False"
            )
        if carry is None:
            carry = cell.initial_carry(xs.shape[1:-1], xs.dtype)
        mask_key, zoneout_key = jax.random.split(key)
        mask = _carry_mask(mask_key, recurrent_dropout, carry) if recurrent_dropout else ()
        keys = jax.random.split(zoneout_key, xs.shape[1:-1]) if zoneout else ()  # per sequence
        cell, carry = _regularised(cell, recurrent_dropout > 0, zoneout), (mask, keys, carry)
    final, ys = unroll_checked(cell, params, run.seq._replace(xs=xs, carry=carry), run.options)
    return (final[2] if noisy else final), ys


def _run_stack(
    net: Stack, params: Any, xs: Array, carry: Any, key: Any, run: _Run
) -> tuple[list[Any], Array]:
    if carry is None and net.learn_initial_carry:
        batch_shape = xs.shape[1:-1]
        carry = jax.tree.map(
            lambda v: jnp.broadcast_to(v, (*batch_shape, *v.shape)), params["initial_carry"]
        )
    carry = [None] * len(net.layers) if carry is None else carry
    run = run._replace(rates=(net.recurrent_dropout, net.zoneout))
    ys, final = xs, []
    for index, layer_key in enumerate(_split(key, len(net.layers))):
        layer_key, dropout_key = _split(layer_key, 2)
        rate = net.dropout if index else net.input_dropout
        inputs = ys
        if rate and dropout_key is not None:
            inputs = ys * _dropout_mask(dropout_key, rate, ys.shape, ys.dtype)
        layer_carry, outputs = _run(
            net.layers[index], params["layers"][index], inputs, carry[index], layer_key, run
        )
        final.append(layer_carry)
        ys = outputs + ys if net.residual else outputs
    return final, ys


def _split(key: Array | None, num: int) -> list[Any]:
    """`num` keys from `key`; `num` Nones without a key (nothing random then)."""
    return [None] * num if key is None else list(jax.random.split(key, num))


def _keys_like(key: Array, tree: Any) -> Any:
    """One key from `key` per array of `tree`, in the structure of `tree`."""
    leaves, structure = jax.tree.flatten(tree)
    return jax.tree.unflatten(structure, list(jax.random.split(key, len(leaves))))


def _dropout_mask(key: Array, rate: float, shape: tuple[int, ...], dtype: Any) -> Array:
    """Inverted dropout: 0 with probability `rate`, else `1 / (1 - rate)`."""
    kept = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(kept, jnp.asarray(1.0 / (1.0 - rate), dtype), jnp.zeros((), dtype))


def _carry_mask(key: Array, rate: float, carry: Carry) -> Any:
    """One dropout mask per array of `carry`, each of that array's shape."""
    keys = _keys_like(key, carry)
    return jax.tree.map(lambda k, a: _dropout_mask(k, rate, a.shape, a.dtype), keys, carry)


@functools.lru_cache(maxsize=256)
def _regularised(cell: Cell, dropout: bool, zoneout: float) -> Cell:
    """`cell` with recurrent dropout and zoneout; its carry is `(mask, keys, carry)`.

    `mask` (one array per carry array, `()` without recurrent dropout) multiplies
    what the recurrent weights read, the same at every step. `keys` (one PRNG key
    per sequence, `(*batch,)`, `()` without zoneout) draw at every step which
    carry units keep their old value. Both ride in the carry rather than in a
    closure, so the cell is the same object on every call and an eager `unroll`
    does not compile again. It keeps the cell's `initial_carry`: it is only run
    with an explicit carry.
    """
    if dropout:
        _refuse_linear(cell, "the stack")
    step = plain = cell.step
    if not has_projection(plain):  # a plain step function reads its whole carry: it gets `read`
        step = Step(lambda params, x: x, lambda params, carry, x, read: plain(params, read, x))

    def recur(params: Params, carry: Carry, projected: Any, read: Carry) -> Any:
        mask, keys, old = carry  # `unroll` passes `read=carry`: the mask is applied here
        read = jax.tree.map(jnp.multiply, old, mask) if dropout else old
        new, y = step.recur(params, old, projected, read)
        if zoneout:
            keys, new = _zone(keys, zoneout, old, new)
            # A BpttStep's output is its carry's first array, h: it is zoned out too.
            y = jax.tree.leaves(new)[0] if isinstance(step, BpttStep) else y
        return (mask, keys, new), y

    return cell._replace(step=Step(step.project, recur))


def _zone(keys: Array, rate: float, old: Carry, new: Carry) -> tuple[Array, Carry]:
    """Zoneout: each unit of `new` keeps its `old` value with probability `rate`, drawn
    with one key per sequence, `keys (*batch)`; returns the keys for the next step too."""

    def draw(key: Array, a: Array) -> Array:  # for one sequence: a's units, not its batch
        return jax.random.bernoulli(key, rate, a.shape[keys.ndim :])

    def step(key: Array) -> tuple[Array, Any]:
        key, subkey = jax.random.split(key)
        return key, jax.tree.map(draw, _keys_like(subkey, new), new)

    next_keys, kept = jax.vmap(step)(keys.reshape(-1))
    new = jax.tree.map(lambda m, o, n: jnp.where(m.reshape(n.shape), o, n), kept, old, new)
    return next_keys.reshape(keys.shape), new


# Structure and checks.


def _is_step_layer(layer: Any) -> bool:
    """A per-step layer, such as `jaxrnn.dense`: `init`, `apply(params, hs)` and
    `output_size`, no carry."""
    names = ("init", "apply", "output_size")
    return all(hasattr(layer, name) for name in names) and not hasattr(layer, "initial_carry")


def _output_size(layer: Any) -> Any:
    return layer.hidden_size if isinstance(layer, Cell) else layer.output_size


def _check_part(part: Any, name: str, reader: str | None = None, per_step: bool = False) -> None:
    """Raise unless `part` is a cell or a layer (or, with `per_step`, a per-step layer)
    with, when there is a `reader` of its output, one output sequence."""
    if not (isinstance(part, (Cell, Bidirectional, Stack)) or (per_step and _is_step_layer(part))):
        step_layer = ", or a per-step layer with init, apply and output_size (jaxrnn.dense)"
        raise TypeError(
            f"{name} must be a jaxrnn Cell (e.g. jaxrnn.lstm(64)) or a layer "
            f"(jaxrnn.bidirectional, jaxrnn.stack){step_layer if per_step else ''}; "
            f"got {type(part).__name__}"
        )
    if reader and isinstance(part, Bidirectional) and part.merge is None:
        raise ValueError(
            f"{name} is bidirectional with merge=None, whose output is a pair of sequences; "
            f"the {reader} needs one. Use merge='concat', 'sum' or 'mean'"
        )


def _refuse_linear(cell: Cell, where: str) -> None:
    if isinstance(cell.step, LinearStep):
        raise ValueError(
            f"recurrent_dropout masks what a cell's recurrent weights read, but {where} has "
            f"cell {cell.name!r}, whose step is a LinearStep with no recurrent weights. Use "
            f"recurrent_dropout=0.0 with this cell"
        )


def _check_residual(index: int, input_size: int, output_size: int, source: str) -> None:
    if input_size != output_size:
        raise ValueError(
            f"residual=True adds each layer's input to its output, so their sizes must match; "
            f"layers[{index}] reads {input_size} features ({source}) but outputs {output_size}. "
            f"Give that layer hidden_size {input_size}, or apply it before a residual stack"
        )
