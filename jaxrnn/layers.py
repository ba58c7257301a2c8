"""Layers built on `unroll`: a bidirectional layer and a stack of layers.

A layer is, like a cell, a NamedTuple of pure functions: `init` makes its
params from an explicit key, `initial_carry` its zero state, and `apply` runs
it over a whole sequence with the calling convention of `jaxrnn.unroll`:

```python
carry, ys = layer.apply(params, xs, carry=None, *, lengths=None, time_axis=0, key=None)
```

`bidirectional` runs a forward and a backward cell over the same inputs and
merges their outputs step by step. `stack` runs cells and bidirectional layers
one after the other, one `unroll` per layer (so each layer can hoist its input
projection out of the loop), with optional dropout between layers, recurrent
(variational) dropout, residual connections and a learned initial carry.

Randomness is explicit: dropout is applied only when `apply` receives a `key`.
Without a key nothing is dropped, which is how a trained network is evaluated.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxrnn import checks
from jaxrnn.cell import Carry, Cell, LinearStep, Params, Step, has_projection
from jaxrnn.unroll import unroll

Array = jax.Array

MERGES = ("concat", "sum", "mean", None)
"""The values `bidirectional` accepts for `merge`."""


class LayerInitFn(Protocol):
    def __call__(self, key: Array, input_size: int, dtype: Any = jnp.float32) -> Any:
        """Make parameters.

        Args:
          key: a PRNG key (`jax.random.key(seed)`); the same key gives the same params.
          input_size: the number of input features.
          dtype: a floating dtype for every parameter.

        Returns:
          A pytree of arrays (dicts, lists and tuples); see each layer's docstring.
        """


class LayerInitialCarryFn(Protocol):
    def __call__(self, batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Any:
        """The all-zeros state: the layer's cells' carries, each `(*batch_shape, hidden_size)`."""


class ApplyFn(Protocol):
    def __call__(
        self,
        params: Any,
        xs: Array,
        carry: Any = None,
        *,
        lengths: Array | None = None,
        time_axis: int = 0,
        key: Array | None = None,
    ) -> tuple[Any, Any]:
        """Run the layer over the time axis of `xs (T, *batch, input_size)`.

        Returns `(carry, ys)`: the final carry and the outputs, with time on
        `time_axis`. `lengths` and `time_axis` mean what they mean for
        `jaxrnn.unroll`; `key` enables dropout where the layer has any.
        """


class Bidirectional(NamedTuple):
    """A forward and a backward cell over the same sequence, merged step by step.

    Made by `bidirectional`. Params are `{"fwd": fwd_params, "bwd": bwd_params}`,
    each the params of its cell; the carry is the pair `(fwd_carry, bwd_carry)`.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> {"fwd": ..., "bwd": ...}`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32)
        -> (fwd_carry, bwd_carry)`, all zeros.
      apply: `apply(params, xs, carry=None, *, lengths=None, time_axis=0, key=None)
        -> ((fwd_carry, bwd_carry), ys)`.
      output_size: the size of the last axis of `ys`: `Hf + Hb` for `"concat"`,
        `H` for `"sum"` and `"mean"`, and the pair `(Hf, Hb)` for `merge=None`.
      fwd_cell: the cell that reads the sequence from first to last step.
      bwd_cell: the cell that reads each sequence from its last valid step to the first.
      merge: `"concat"`, `"sum"`, `"mean"` or `None`.
    """

    init: LayerInitFn
    initial_carry: LayerInitialCarryFn
    apply: ApplyFn
    output_size: int | tuple[int, int]
    fwd_cell: Cell
    bwd_cell: Cell
    merge: str | None


class Stack(NamedTuple):
    """Layers run one after the other, each reading the previous layer's outputs.

    Made by `stack`. Params are `{"layers": [params_0, params_1, ...]}`, one
    entry per layer in that layer's own layout, plus
    `"initial_carry": [carry_0, carry_1, ...]` with `learn_initial_carry=True`.
    The carry is a list with one carry per layer.

    Attributes:
      init: `init(key, input_size, dtype=jnp.float32) -> {"layers": [...], ...}`.
      initial_carry: `initial_carry(batch_shape=(), dtype=jnp.float32) -> [carry_0, ...]`,
        all zeros.
      apply: `apply(params, xs, carry=None, *, lengths=None, time_axis=0, key=None)
        -> ([carry_0, ...], ys)`.
      output_size: the size of the last axis of `ys`, the last layer's output size.
      layers: the cells and `Bidirectional` layers, first to last.
      dropout: the probability of dropping each input of layers 1, 2, ...
      recurrent_dropout: the probability of dropping each unit of the state that
        enters a recurrent matmul, with one mask per sequence.
      residual: whether each layer's input is added to its output.
      learn_initial_carry: whether the initial carries are part of the params.
    """

    init: LayerInitFn
    initial_carry: LayerInitialCarryFn
    apply: ApplyFn
    output_size: int
    layers: tuple[Cell | Bidirectional, ...]
    dropout: float
    recurrent_dropout: float
    residual: bool
    learn_initial_carry: bool


Layer = Bidirectional | Stack
"""A layer: `init`, `initial_carry`, `apply` and `output_size`, as `bidirectional` and
`stack` make them."""


def bidirectional(fwd_cell: Cell, bwd_cell: Cell, merge: str | None = "concat") -> Bidirectional:
    """A bidirectional layer: one cell reads the sequence forwards, the other backwards.

    `apply` is two `unroll`s with the layer's `lengths` and `time_axis`:

    ```python
    fwd_carry, hs_f = unroll(fwd_cell, params["fwd"], xs, carry[0], lengths=lengths)
    bwd_carry, hs_b = unroll(bwd_cell, params["bwd"], xs, carry[1], lengths=lengths,
                             reverse=True)
    ys = concatenate([hs_f, hs_b], axis=-1)          # merge="concat"
    ```

    The backward cell reads each sequence from its own last valid step down to
    step 0, so on a padded batch it never reads padding first; both halves of
    `ys` stay aligned with `xs` (`ys[t]` describes `xs[t]`) and are zeros at
    padded steps. `hs_b[0]` is the backward cell's output after reading the
    whole sequence, and `bwd_carry` its final state, as in PyTorch's
    `bidirectional=True` modules.

    Shapes: `xs (T, *batch, I)` (time on `time_axis`), `Hf = fwd_cell.hidden_size`,
    `Hb = bwd_cell.hidden_size`.

    Args:
      fwd_cell: the cell that reads forwards, e.g. `jaxrnn.lstm(64)`.
      bwd_cell: the cell that reads backwards; it may be the same cell (its params
        are separate).
      merge: how each step's two outputs combine: `"concat"` (`ys (T, *batch, Hf + Hb)`),
        `"sum"` or `"mean"` (`ys (T, *batch, H)`, needs `Hf == Hb`), or `None`
        (`ys` is the pair `(hs_f (T, *batch, Hf), hs_b (T, *batch, Hb))`).

    Returns:
      A `Bidirectional` layer. Its `apply(params, xs, carry=None, *, lengths=None,
      time_axis=0, key=None)` returns `((fwd_carry, bwd_carry), ys)`; `carry` is
      `None` (zeros) or such a pair; `key` is accepted so that every layer is
      called alike, and unused (a bidirectional layer has no randomness; dropout
      lives in `stack`).

    Raises:
      TypeError: `fwd_cell` or `bwd_cell` is not a `Cell`.
      ValueError: `merge` is unknown, or `"sum"`/`"mean"` with different hidden sizes.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> layer = jr.bidirectional(jr.lstm(8), jr.lstm(8))
      >>> params = layer.init(jax.random.key(0), input_size=3)
      >>> xs = jnp.ones((5, 2, 3))                                 # (T, batch, I)
      >>> (fwd, bwd), ys = layer.apply(params, xs, lengths=jnp.array([5, 2]))
      >>> ys.shape, layer.output_size
      ((5, 2, 16), 16)
      >>> bool(jnp.all(ys[2:, 1] == 0))                            # padding stays zero
      True
    """
    checks.cell(fwd_cell, "fwd_cell")
    checks.cell(bwd_cell, "bwd_cell")
    checks.one_of(merge, "merge", MERGES)
    hf, hb = fwd_cell.hidden_size, bwd_cell.hidden_size
    if merge in ("sum", "mean") and hf != hb:
        raise ValueError(
            f"merge={merge!r} adds the two directions' outputs, so they need one size; got "
            f"fwd_cell.hidden_size={hf} and bwd_cell.hidden_size={hb}. Use merge='concat' "
            f"or cells of one hidden size"
        )
    output_size: int | tuple[int, int]
    if merge is None:
        output_size = (hf, hb)
    elif merge == "concat":
        output_size = hf + hb
    else:
        output_size = hf

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Params]:
        key = checks.prng_key(key)
        input_size = checks.positive_int(input_size, "input_size")
        dtype = checks.floating_dtype(dtype)
        key_fwd, key_bwd = jax.random.split(key)
        return {
            "fwd": fwd_cell.init(key_fwd, input_size, dtype),
            "bwd": bwd_cell.init(key_bwd, input_size, dtype),
        }

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        return (
            fwd_cell.initial_carry(batch_shape, dtype),
            bwd_cell.initial_carry(batch_shape, dtype),
        )

    def apply(
        params: dict[str, Params],
        xs: Array,
        carry: Carry = None,
        *,
        lengths: Array | None = None,
        time_axis: int = 0,
        key: Array | None = None,
    ) -> tuple[Carry, Any]:
        xs, time_axis = checks.time_major(xs, time_axis)
        lengths = _check_lengths(lengths, xs)
        if key is not None:
            checks.prng_key(key)
        params = _check_layer_params(layer, params, xs.shape[-1], xs.dtype, "params", "xs")
        if carry is not None:
            carry = _check_layer_carry(layer, carry, xs.shape[1:-1], xs.dtype, "carry")
        carry, ys = _apply_bidirectional(layer, params, xs, carry, lengths, (None, None))
        return carry, jax.tree.map(lambda y: jnp.moveaxis(y, 0, time_axis), ys)

    layer = Bidirectional(
        init=init,
        initial_carry=initial_carry,
        apply=apply,
        output_size=output_size,
        fwd_cell=fwd_cell,
        bwd_cell=bwd_cell,
        merge=merge,
    )
    return layer


def stack(
    layers: Sequence[Cell | Bidirectional],
    *,
    dropout: float = 0.0,
    residual: bool = False,
    recurrent_dropout: float = 0.0,
    learn_initial_carry: bool = False,
) -> Stack:
    """A deep recurrent network: layers run one after the other, layer by layer.

    Layer `l` reads the whole output sequence of layer `l - 1` (layer 0 reads
    `xs`), with one `unroll` per layer, so each layer can project all its inputs
    with one matmul:

    ```python
    ys = xs
    for l, layer in enumerate(layers):
        inputs = ys * dropout_mask(ys.shape) if (l > 0 and key is not None) else ys
        carries[l], outputs = run(layer, params["layers"][l], inputs, carry[l])  # unroll
        ys = outputs + ys if residual else outputs
    ```

    **Dropout is on only when `apply` gets a `key`.** With `key=None` (evaluation,
    inference) nothing is dropped and the result equals the same stack built
    with `dropout=0.0, recurrent_dropout=0.0`. With a key, both kinds are
    inverted dropout: kept units are scaled by `1 / (1 - p)`, so every unit's
    expected value is unchanged and evaluation needs no rescaling. The same key
    gives the same masks; draw a new key for every training step. (Under
    `jax.vmap` one unbatched key gives every example the same masks; map over a
    batch of keys for independent ones.)

    - `dropout` is PyTorch's: an independent mask for every element of the
      inputs of layers 1, 2, ... (never on `xs` nor on the last layer's output),
      drawn afresh at every time step.
    - `recurrent_dropout` is the variational dropout of Gal & Ghahramani (2016):
      for every cell (both directions of a bidirectional layer), one mask per
      sequence over the units of the carry that the recurrent weights read, shared by
      all time steps. A `jaxrnn.Step` or `BpttStep` gets the masked carry as `read`
      only, so the built-in cells drop just the `h` entering `h @ w_h`: an LSTM's `c`
      and a GRU's interpolation `z * h` see the state itself. A plain step function
      gets the whole carry masked. A `LinearStep` has no recurrent weights to mask.

    `residual=True` adds each layer's input (before dropout) to its output, so
    every layer's output size must equal its input size (the first layer's
    input size is `xs.shape[-1]`). At padded steps it adds zeros, so the padding
    of the outputs stays zero.

    `learn_initial_carry=True` adds `params["initial_carry"]`: one carry per layer
    with every array of shape `(hidden_size,)` (zeros at `init`), broadcast over
    the batch and trained like any other parameter. A `carry` passed to `apply`
    overrides it.

    Shapes: `xs (T, *batch, I)` (time on `time_axis`); `ys (T, *batch, O)` with
    `O = output_size`, the last layer's output size.

    Args:
      layers: a non-empty list of cells (`jaxrnn.lstm(64)`, ...) and bidirectional
        layers (`jaxrnn.bidirectional(...)` with merge `"concat"`, `"sum"` or
        `"mean"`), first to last.
      dropout: in `[0, 1)`, the probability of dropping each input of layers 1, 2, ...
      residual: add each layer's input to its output.
      recurrent_dropout: in `[0, 1)`, the probability of dropping each unit of the
        state fed into the recurrent matmul, once per sequence.
      learn_initial_carry: make the initial carries params.

    Returns:
      A `Stack`. Its `apply(params, xs, carry=None, *, lengths=None, time_axis=0,
      key=None)` returns `(carries, ys)`: `carries` a list with each layer's final
      carry (a cell's carry, or `(fwd_carry, bwd_carry)`), and `ys (T, *batch, O)`.
      `carry` is `None` or such a list; `lengths (*batch,)` and `time_axis` mean
      what they mean for `jaxrnn.unroll`; `key` is a PRNG key that turns dropout
      on.

    Raises:
      TypeError: `layers` is not a sequence of cells and bidirectional layers, or
        an option has the wrong type.
      ValueError: `layers` is empty, holds a bidirectional layer with `merge=None`,
        a rate is outside `[0, 1)`, `residual=True` meets layers whose input and
        output sizes differ, or `recurrent_dropout` meets a cell it does not know.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> net = jr.stack([jr.bidirectional(jr.gru(8), jr.gru(8)), jr.lstm(16)],
      ...                dropout=0.2, residual=True)
      >>> params = net.init(jax.random.key(0), input_size=16)
      >>> xs = jnp.ones((5, 2, 16))                                 # (T, batch, I)
      >>> carries, ys = net.apply(params, xs, key=jax.random.key(1))  # training
      >>> ys.shape, len(carries)
      ((5, 2, 16), 2)
      >>> _, ys_eval = net.apply(params, xs)                          # no key: no dropout
      >>> bool(jnp.all(ys_eval == net.apply(params, xs)[1]))
      True

    References:
      Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
      Recurrent Neural Networks", NeurIPS 2016.
    """
    layers = _check_layers(layers)
    dropout = _rate(dropout, "dropout")
    recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
    residual = checks.boolean(residual, "residual")
    learn_initial_carry = checks.boolean(learn_initial_carry, "learn_initial_carry")
    sizes = [_output_size(layer) for layer in layers]
    if residual:
        for index in range(1, len(layers)):
            _check_residual(index, sizes[index - 1], sizes[index], f"layers[{index - 1}]'s output")
    if recurrent_dropout > 0:
        for index, layer in enumerate(layers):
            for cell in _cells(layer):
                if isinstance(cell.step, LinearStep):
                    raise ValueError(
                        f"recurrent_dropout masks what a cell's recurrent weights read, but "
                        f"layers[{index}] has cell {cell.name!r}, whose step is a LinearStep with "
                        f"no recurrent weights. Use recurrent_dropout=0.0 with this cell"
                    )

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        key = checks.prng_key(key)
        input_size = checks.positive_int(input_size, "input_size")
        dtype = checks.floating_dtype(dtype)
        if residual:
            _check_residual(0, input_size, sizes[0], "input_size")
        keys = jax.random.split(key, len(layers))
        layer_params, size = [], input_size
        for layer, layer_key, output_size in zip(layers, keys, sizes, strict=True):
            layer_params.append(layer.init(layer_key, size, dtype))
            size = output_size
        params: dict[str, Any] = {"layers": layer_params}
        if learn_initial_carry:
            params["initial_carry"] = [layer.initial_carry((), dtype) for layer in layers]
        return params

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> list[Carry]:
        return [layer.initial_carry(batch_shape, dtype) for layer in layers]

    def apply(
        params: dict[str, Any],
        xs: Array,
        carry: list[Carry] | None = None,
        *,
        lengths: Array | None = None,
        time_axis: int = 0,
        key: Array | None = None,
    ) -> tuple[list[Carry], Array]:
        xs, time_axis = checks.time_major(xs, time_axis)
        lengths = _check_lengths(lengths, xs)
        batch_shape, dtype = xs.shape[1:-1], xs.dtype
        if residual:
            _check_residual(0, xs.shape[-1], sizes[0], "xs.shape[-1]")
        layer_params, learned = _check_stack_params(params, len(layers), learn_initial_carry)
        size, source = xs.shape[-1], "xs"
        for index, layer in enumerate(layers):
            path = f"params['layers'][{index}]"
            layer_params[index] = _check_layer_params(
                layer, layer_params[index], size, dtype, path, source
            )
            size, source = sizes[index], f"the output of layers[{index}]"
        if carry is not None:
            carries = _check_carry_list(carry, len(layers))
            for index, layer in enumerate(layers):
                carries[index] = _check_layer_carry(
                    layer, carries[index], batch_shape, dtype, f"carry[{index}]"
                )
        elif learned is not None:
            carries = []
            for index, layer in enumerate(layers):
                vectors = _check_layer_carry(
                    layer, learned[index], (), dtype, f"params['initial_carry'][{index}]"
                )
                carries.append(
                    jax.tree.map(lambda v: jnp.broadcast_to(v, (*batch_shape, *v.shape)), vectors)
                )
        else:
            carries = [None] * len(layers)
        layer_keys = None
        if key is not None:
            key = checks.prng_key(key)
            if dropout > 0 or recurrent_dropout > 0:
                layer_keys = jax.random.split(key, len(layers))

        valid = None
        if residual and lengths is not None:
            steps = jnp.arange(xs.shape[0], dtype=lengths.dtype)
            valid = steps.reshape((-1,) + (1,) * lengths.ndim) < lengths[None]
            valid = valid[..., None]
        ys, final = xs, []
        for index, layer in enumerate(layers):
            inputs = ys
            masks: tuple[Array | None, ...] = (None, None)
            if layer_keys is not None:
                key_inputs, key_recurrent = jax.random.split(layer_keys[index])
                if dropout > 0 and index > 0:
                    inputs = inputs * _dropout_mask(key_inputs, dropout, inputs.shape, dtype)
                if recurrent_dropout > 0:
                    cells = _cells(layer)
                    cell_keys = jax.random.split(key_recurrent, len(cells))
                    masks = tuple(
                        _carry_mask(k, recurrent_dropout, cell, batch_shape, dtype)
                        for k, cell in zip(cell_keys, cells, strict=True)
                    )
            if isinstance(layer, Cell):
                layer_carry, outputs = _run_cell(
                    layer, layer_params[index], inputs, carries[index], lengths, False, masks[0]
                )
            else:
                layer_carry, outputs = _apply_bidirectional(
                    layer, layer_params[index], inputs, carries[index], lengths, masks
                )
            if residual:
                outputs = outputs + (
                    ys if valid is None else jnp.where(valid, ys, jnp.zeros((), dtype))
                )
            final.append(layer_carry)
            ys = outputs
        return final, jnp.moveaxis(ys, 0, time_axis)

    return Stack(
        init=init,
        initial_carry=initial_carry,
        apply=apply,
        output_size=sizes[-1],
        layers=layers,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        residual=residual,
        learn_initial_carry=learn_initial_carry,
    )


# Running.


def _apply_bidirectional(
    layer: Bidirectional,
    params: dict[str, Params],
    xs: Array,
    carry: Carry,
    lengths: Array | None,
    masks: tuple[Array | None, ...],
) -> tuple[Carry, Any]:
    """A checked bidirectional layer over time-major `xs`."""
    fwd_carry, bwd_carry = (None, None) if carry is None else carry
    fwd_carry, hs_f = _run_cell(
        layer.fwd_cell, params["fwd"], xs, fwd_carry, lengths, False, masks[0]
    )
    bwd_carry, hs_b = _run_cell(
        layer.bwd_cell, params["bwd"], xs, bwd_carry, lengths, True, masks[1]
    )
    if layer.merge is None:
        ys: Any = (hs_f, hs_b)
    elif layer.merge == "concat":
        ys = jnp.concatenate([hs_f, hs_b], axis=-1)
    elif layer.merge == "sum":
        ys = hs_f + hs_b
    else:
        ys = (hs_f + hs_b) / 2
    return (fwd_carry, bwd_carry), ys


def _run_cell(
    cell: Cell,
    params: Params,
    xs: Array,
    carry: Carry,
    lengths: Array | None,
    reverse: bool,
    mask: Array | None,
) -> tuple[Carry, Array]:
    """`unroll` over time-major `xs`, with the recurrent dropout `mask (*batch, H)` if given."""
    if mask is None:
        return unroll(cell, params, xs, carry, lengths=lengths, reverse=reverse)
    if carry is None:
        carry = cell.initial_carry(xs.shape[1:-1], xs.dtype)
    (_, carry), hs = unroll(
        _with_recurrent_mask(cell), params, xs, (mask, carry), lengths=lengths, reverse=reverse
    )
    return carry, hs


def _dropout_mask(key: Array, rate: float, shape: tuple[int, ...], dtype: Any) -> Array:
    """Inverted dropout: 0 with probability `rate`, else `1 / (1 - rate)`."""
    keep = 1.0 - rate
    kept = jax.random.bernoulli(key, keep, shape)
    return jnp.where(kept, jnp.asarray(1.0 / keep, dtype), jnp.zeros((), dtype))


def _carry_mask(key: Array, rate: float, cell: Cell, batch_shape: Any, dtype: Any) -> Any:
    """One dropout mask per leaf of the cell's carry, each of that leaf's shape."""
    leaves, tree = jax.tree.flatten(jax.eval_shape(lambda: cell.initial_carry(batch_shape, dtype)))
    keys = jax.random.split(key, len(leaves))
    masks = [
        _dropout_mask(k, rate, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(tree, masks)


@functools.lru_cache(maxsize=256)
def _with_recurrent_mask(cell: Cell) -> Cell:
    """`cell` whose carry is `(mask, carry)`, with `mask * carry` as what its weights read.

    The mask rides in the carry rather than in a closure, so the cell is the same
    object on every call and an eager `unroll` does not compile again for a new mask.
    """
    step = cell.step

    def masked(mask: Any, carry: Carry) -> Carry:
        return jax.tree.map(jnp.multiply, carry, mask)

    if has_projection(step):

        def recur(params: Params, carry: Carry, projected: Any, read: Carry) -> Any:
            mask, inner = carry
            new, y = step.recur(params, inner, projected, masked(mask, read[1]))
            return (mask, new), y

        new_step: Any = Step(step.project, recur)
    else:

        def new_step(params: Params, carry: Carry, x: Array) -> Any:
            mask, inner = carry
            new, y = step(params, masked(mask, inner), x)
            return (mask, new), y

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> Carry:
        inner = cell.initial_carry(batch_shape, dtype)
        return (jax.tree.map(jnp.ones_like, inner), inner)

    return cell._replace(initial_carry=initial_carry, step=new_step)


# Structure.


def _cells(layer: Cell | Bidirectional) -> tuple[Cell, ...]:
    return (layer,) if isinstance(layer, Cell) else (layer.fwd_cell, layer.bwd_cell)


def _output_size(layer: Cell | Bidirectional) -> int:
    return layer.hidden_size if isinstance(layer, Cell) else layer.output_size


# Checks.


def _check_layers(layers: Any) -> tuple[Cell | Bidirectional, ...]:
    if isinstance(layers, (Cell, Bidirectional, Stack)) or not isinstance(layers, Sequence):
        raise TypeError(
            f"layers must be a list of cells and bidirectional layers, e.g. "
            f"[jaxrnn.lstm(64), jaxrnn.lstm(64)]; got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("layers must hold at least one cell or bidirectional layer; got []")
    for index, layer in enumerate(layers):
        if isinstance(layer, Stack):
            raise TypeError(
                f"layers[{index}] is a stack; a stack holds cells and bidirectional layers. "
                f"List its layers in this stack instead, or apply the two stacks one after "
                f"the other"
            )
        if not isinstance(layer, (Cell, Bidirectional)):
            raise TypeError(
                f"layers[{index}] must be a Cell (e.g. jaxrnn.lstm(64)) or a bidirectional "
                f"layer (jaxrnn.bidirectional(...)); got {type(layer).__name__}"
            )
        if isinstance(layer, Bidirectional) and layer.merge is None:
            raise ValueError(
                f"layers[{index}] is bidirectional with merge=None, whose output is a pair of "
                f"sequences; the next layer needs one. Use merge='concat', 'sum' or 'mean'"
            )
    return tuple(layers)


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1) (a probability of dropping); got {value}")
    return value


def _check_residual(index: int, input_size: int, output_size: int, source: str) -> None:
    if input_size != output_size:
        raise ValueError(
            f"residual=True adds each layer's input to its output, so their sizes must match; "
            f"layers[{index}] reads {input_size} features ({source}) but outputs {output_size}. "
            f"Give that layer hidden_size {input_size}, or apply it before a residual stack"
        )


def _check_lengths(lengths: Any, xs: Array) -> Array | None:
    if lengths is None:
        return None
    return checks.lengths(lengths, xs.shape[1:-1], xs.shape[0])


def _check_layer_params(
    layer: Cell | Bidirectional, params: Any, input_size: int, dtype: Any, path: str, source: str
) -> Any:
    if isinstance(layer, Cell):
        checks.params(layer, params, input_size, dtype, source=source, path=path)
        return params
    if not isinstance(params, dict) or set(params) != {"fwd", "bwd"}:
        got = sorted(map(str, params)) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"{path} must be the dict that bidirectional(...).init returns, with keys "
            f"['bwd', 'fwd'] (each cell's params); got {got}"
        )
    for part, cell in (("fwd", layer.fwd_cell), ("bwd", layer.bwd_cell)):
        checks.params(
            cell, params[part], input_size, dtype, source=source, path=f"{path}[{part!r}]"
        )
    return params


def _check_layer_carry(
    layer: Cell | Bidirectional, carry: Any, batch_shape: tuple[int, ...], dtype: Any, path: str
) -> Carry:
    if isinstance(layer, Cell):
        return checks.carry(layer, carry, batch_shape, dtype, path=path)
    if not isinstance(carry, (tuple, list)) or len(carry) != 2:
        raise ValueError(
            f"{path} must be a pair (fwd_carry, bwd_carry) for a bidirectional layer, as "
            f"its initial_carry(...) makes; got {checks.describe(carry)}"
        )
    return tuple(
        _check_layer_carry(cell, part, batch_shape, dtype, f"{path}[{index}]")
        for index, (cell, part) in enumerate(zip(_cells(layer), carry, strict=True))
    )


def _check_carry_list(carry: Any, num_layers: int) -> list[Any]:
    if not isinstance(carry, (list, tuple)) or len(carry) != num_layers:
        raise ValueError(
            f"carry must be a list of {num_layers} carries, one per layer (as "
            f"initial_carry(...) makes), or None; got {checks.describe(carry)}"
        )
    return list(carry)


def _check_stack_params(
    params: Any, num_layers: int, learn_initial_carry: bool
) -> tuple[list[Any], list[Any] | None]:
    keys = ["initial_carry", "layers"] if learn_initial_carry else ["layers"]
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be the dict that stack(...).init returns, with keys {keys}; "
            f"got {type(params).__name__}"
        )
    if sorted(map(str, params)) != keys:
        hint = (
            " (the stack has learn_initial_carry=True)"
            if learn_initial_carry
            else " (the stack has learn_initial_carry=False)"
        )
        raise ValueError(f"params must have keys {keys}{hint}; got keys {sorted(map(str, params))}")
    for name in keys:
        if not isinstance(params[name], (list, tuple)) or len(params[name]) != num_layers:
            raise ValueError(
                f"params[{name!r}] must be a list of {num_layers} entries, one per layer; "
                f"got {checks.describe(params[name])}"
            )
    learned = list(params["initial_carry"]) if learn_initial_carry else None
    return list(params["layers"]), learned
