"""Feed a cell's own outputs back in as its next inputs, inside one `jax.lax.scan`.

- `generate` decodes tokens: each step's output goes through a readout to
  logits, a token is picked (argmax, or a draw at a temperature, optionally
  from the top k), and its embedding is the next input. One-to-many models
  (a caption from an image feature) and the decoder of an encoder-decoder
  model (start from the encoder's final carry) both use it.
- `rollout` is the continuous counterpart for regression: the readout's
  prediction is itself the next input.
- `shift_right` builds the inputs for teacher forcing: training runs
  `jaxrnn.unroll` over the targets shifted one step right, behind a start value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import checks
from jaxrnn.cell import Array, Carry, Cell, Params


def generate(
    cell: Cell,
    params: Params,
    carry: Carry | None,
    first_input: Array,
    num_steps: int,
    *,
    embed: Callable[[Array], Array],
    readout: Callable[[Array], Array],
    key: Array | None = None,
    temperature: float | Array = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
) -> tuple[Carry, Array, Array]:
    """Decode `num_steps` tokens, feeding each picked token back as the next input.

    It is this loop, compiled as one `jax.lax.scan`:

    ```python
    x = first_input
    for t in range(num_steps):
        carry, h = cell.step(params, carry, x)
        logits[t] = readout(h)
        tokens[t] = pick(logits[t])   # argmax, or a draw with the t-th key
        x = embed(tokens[t])
    return carry, tokens, logits
    ```

    With `greedy=True` the pick is `argmax(logits)`. Otherwise a token is drawn
    from `softmax(logits / temperature)`, restricted to the `top_k` largest
    logits when `top_k` is given (`top_k=1` is greedy). Every batch element and
    every step draws independently, from keys split off `key`; the same key
    gives the same tokens.

    The returned carry is the state after the last step, the one that produced
    `logits[-1]`; the last token has not been fed yet. To continue, call again
    with that carry and `first_input=embed(tokens[-1])`. To continue a prompt,
    unroll the cell over all prompt tokens but the last and start from there
    with `first_input=embed(prompt[-1])`. For an encoder-decoder model pass the
    encoder's final carry as `carry` and the embedded start token as
    `first_input`.

    Shapes use `*batch` for any batch dims (none included), `I` for the cell's
    input size, `H` for its hidden size and `C` for the number of classes.
    `readout` and `embed` are plain functions: close over their params, and
    call `generate` inside `jax.jit` to compile it once (new keys, new
    temperatures given as arrays and new params do not recompile).

    Args:
      cell: a `Cell`, e.g. `jaxrnn.lstm(256)`.
      params: the cell's params for input size `I`.
      carry: the initial state, as `cell.initial_carry(batch_shape)` gives it
        (e.g. an encoder's final carry), or `None` for zeros.
      first_input: the first step's input `(*batch, I)`, e.g. `embed(start_tokens)`
        or a feature vector. Fixes the batch shape and the dtype.
      num_steps: the number of tokens to produce, `L >= 0`.
      embed: `embed(tokens) -> x`, integer tokens `(*batch,)` to the next input,
        with the shape and dtype of `first_input`.
      readout: `readout(h) -> logits`, `(*batch, H)` to `(*batch, C)`.
      key: a PRNG key; required unless `greedy=True` (where it is unused).
      temperature: a positive scalar (a float or a scalar array, which may be
        traced); below 1 sharpens the distribution, above 1 flattens it.
        Ignored when `greedy=True`. A traced value cannot raise: where it is not
        a finite number > 0 every token is -1, never a valid class.
      top_k: sample only among the `top_k` largest logits (`1 <= top_k <= C`);
        `None` samples among all classes. Ignored when `greedy=True`.
      greedy: pick the argmax instead of sampling.

    Returns:
      `(carry, tokens, logits)`: the final carry; the int32 tokens `(L, *batch)`;
      the raw logits `(L, *batch, C)` they were picked from (before the
      temperature), e.g. for their log-probabilities.

    Raises:
      TypeError: a missing key while sampling, or an argument of the wrong type
        or dtype (including `embed` returning another dtype than `first_input`).
      ValueError: `num_steps`, `temperature` or `top_k` out of range, or
        `readout`, `embed`, `carry` or `params` giving shapes that do not fit.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.gru(8)
      >>> k_cell, k_embed, k_out = jax.random.split(jax.random.key(0), 3)
      >>> params = cell.init(k_cell, input_size=4)
      >>> table = jax.random.normal(k_embed, (5, 4))      # 5 tokens, I = 4
      >>> w_out = jax.random.normal(k_out, (8, 5))        # H = 8 to C = 5
      >>> start = table[jnp.zeros((3,), jnp.int32)]       # batch of 3
      >>> carry, tokens, logits = jr.generate(
      ...     cell, params, None, start, 6, embed=lambda t: table[t],
      ...     readout=lambda h: h @ w_out, key=jax.random.key(1), temperature=0.8)
      >>> tokens.shape, logits.shape, tokens.dtype
      ((6, 3), (6, 3, 5), dtype('int32'))
    """
    if checks.boolean(greedy, "greedy"):
        key = None
    elif key is None:
        raise TypeError(
            "key is required to sample: pass key=jax.random.key(seed), or greedy=True "
            "for argmax decoding"
        )
    else:
        key, temperature = checks.prng_key(key), _temperature(temperature)
        top_k = None if top_k is None else checks.positive_int(top_k, "top_k")
    checks.function(embed, "embed", "tokens -> inputs")
    checks.function(readout, "readout", "h -> logits")

    carry, first_input = _start(cell, params, carry, first_input, num_steps)
    keys = None if key is None else jax.random.split(key, num_steps)

    def body(state: tuple[Carry, Array], step_key: Array | None) -> tuple[Any, Any]:
        carry, h = cell.step(params, *state)
        logits = checks.float_array(readout(h), "readout(h)")
        if logits.ndim == 0 or logits.shape[:-1] != h.shape[:-1]:
            raise ValueError(
                f"readout(h) must return logits of shape (*batch, C) with batch shape "
                f"{h.shape[:-1]} (from first_input); h has shape {h.shape} and readout(h) has "
                f"shape {logits.shape}"
            )
        token = _pick(step_key, logits, temperature, top_k)
        x = checks.float_array(embed(token), "embed(tokens)")
        checks.like(x, "embed(tokens)", first_input, "first_input", "is the next step's input")
        return (carry, x), (token, logits)

    (carry, _), (tokens, logits) = jax.lax.scan(body, (carry, first_input), keys, num_steps)
    return carry, tokens, logits


def rollout(
    cell: Cell,
    params: Params,
    carry: Carry | None,
    first_input: Array,
    num_steps: int,
    *,
    readout: Callable[[Array], Array],
) -> tuple[Carry, Array]:
    """Predict `num_steps` steps ahead, feeding each prediction back as the next input.

    The continuous counterpart of `generate`, for regression and forecasting:
    the readout's output is the prediction and also the next input. It is this
    loop, compiled as one `jax.lax.scan`:

    ```python
    x = first_input
    for t in range(num_steps):
        carry, h = cell.step(params, carry, x)
        x = outputs[t] = readout(h)
    return carry, outputs
    ```

    To forecast after an observed history, unroll the cell over all observed
    steps but the last and start from there with `first_input` the last
    observation. The returned carry is the state after the last step.

    Args:
      cell: a `Cell`, e.g. `jaxrnn.gru(64)`.
      params: the cell's params for input size `I`.
      carry: the initial state, as `cell.initial_carry(batch_shape)` gives it,
        or `None` for zeros.
      first_input: the first step's input `(*batch, I)`.
      num_steps: the number of predictions, `L >= 0`.
      readout: `readout(h) -> prediction`, `(*batch, H)` to `(*batch, I)` with
        the dtype of `first_input`.

    Returns:
      `(carry, outputs)`: the final carry and the predictions `(L, *batch, I)`.

    Raises:
      TypeError: an argument of the wrong type or dtype.
      ValueError: `num_steps` is negative, or `readout`, `carry` or `params`
        give shapes that do not fit.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.rnn(16)
      >>> params = cell.init(jax.random.key(0), input_size=2)
      >>> w_out = jax.random.normal(jax.random.key(1), (16, 2)) / 4
      >>> carry, ys = jr.rollout(
      ...     cell, params, None, jnp.ones((5, 2)), 10, readout=lambda h: h @ w_out)
      >>> ys.shape, carry.shape
      ((10, 5, 2), (5, 16))
    """
    checks.function(readout, "readout", "h -> prediction")

    carry, first_input = _start(cell, params, carry, first_input, num_steps)

    def body(state: tuple[Carry, Array], _: None) -> tuple[Any, Array]:
        carry, h = cell.step(params, *state)
        y = checks.float_array(readout(h), "readout(h)")
        checks.like(y, "readout(h)", first_input, "first_input", "is the next step's input")
        return (carry, y), y

    (carry, _), outputs = jax.lax.scan(body, (carry, first_input), length=num_steps)
    return carry, outputs


def shift_right(targets: Array, start: Any, *, time_axis: int = 0) -> Array:
    """The targets delayed by one step, with `start` in front: the teacher-forcing inputs.

    `shift_right(targets, start)[0]` is `start` and `shift_right(targets, start)[t]`
    is `targets[t - 1]`; the last target is dropped, so the shape is unchanged.
    Teacher forcing trains a decoder on the true previous token instead of its
    own prediction:

    ```python
    inputs = embed(shift_right(targets, start_token))         # (T, *batch, I)
    _, hs = jaxrnn.unroll(cell, params, inputs, encoder_carry, lengths=lengths)
    loss = jaxrnn.sequence_softmax_cross_entropy(readout(hs), targets, lengths)
    ```

    With padded targets the shifted inputs keep the same `lengths`: step `t`
    reads `targets[t - 1]`, which is valid whenever step `t` is.

    Args:
      targets: any array `(T, *batch, ...)` with time on `time_axis`: token ids
        `(T, *batch)` or vectors `(T, *batch, F)`.
      start: the first input: a scalar (a start token id, broadcast over the
        batch), or an array with the shape of one step, `targets` without its
        time axis. A Python number takes the dtype of `targets`; an array must
        already have it.
      time_axis: the axis of `targets` that is time.

    Returns:
      An array with the shape and dtype of `targets`.

    Raises:
      TypeError: `start` has another dtype than `targets`, or `time_axis` is not
        an int.
      ValueError: `targets` is a scalar, `time_axis` is out of range, or `start`
        has a shape other than `()` or one step's shape.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> targets = jnp.array([[5, 7], [6, 8], [2, 9]])   # (T, batch)
      >>> jr.shift_right(targets, 0)
      Array([[0, 0],
             [5, 7],
             [6, 8]], dtype=int32)
    """
    if isinstance(targets, (str, bytes)) or targets is None:
        raise TypeError(f"targets must be an array, got {type(targets).__name__}")
    targets = jnp.asarray(targets)
    if targets.ndim < 1:
        raise ValueError("targets must have a time axis, (T, *batch, ...); got a scalar")
    time_axis = checks.time_dim(time_axis, targets.ndim, "targets", last=True)
    targets = jnp.moveaxis(targets, time_axis, 0)
    if start is None or isinstance(start, (str, bytes)):
        raise TypeError(f"start must be a number or an array, got {type(start).__name__}")
    start = jnp.asarray(start, targets.dtype if isinstance(start, (int, float, complex)) else None)
    checks.same_dtype({"targets": targets, "start": start}, "cast start explicitly")
    if start.shape not in ((), targets.shape[1:]):
        raise ValueError(
            f"start must be a scalar or have the shape of one step of targets, "
            f"{targets.shape[1:]}; got shape {start.shape}"
        )
    shifted = jnp.roll(targets, 1, axis=0).at[:1].set(start)
    return jnp.moveaxis(shifted, 0, time_axis)


def _start(
    cell: Cell, params: Params, carry: Carry | None, first_input: Any, num_steps: Any
) -> tuple[Carry, Array]:
    """The checked initial carry and `first_input` of `generate` and `rollout`, after
    checking `cell`, `params` and `num_steps` against them."""
    checks.cell(cell)
    first_input = checks.float_array(first_input, "first_input")
    if first_input.ndim < 1:
        raise ValueError("first_input must have shape (*batch, input_size), got a scalar")
    num_steps = checks.non_negative_int(num_steps, "num_steps")
    batch_shape, dtype = first_input.shape[:-1], first_input.dtype
    checks.params(cell, params, first_input.shape[-1], dtype, source="first_input")
    carry = checks.initial_carry(cell, batch_shape, dtype) if carry is None else carry
    carry = checks.carry(cell, carry, batch_shape, dtype, source="first_input")
    checks.step(cell, params, carry, first_input)
    return carry, first_input


def _temperature(temperature: Any) -> Any:
    """A positive float, or a traced scalar floating array (whose value cannot be checked)."""
    if not isinstance(temperature, (jax.Array, np.ndarray)):
        return checks.number(temperature, "temperature", lambda t: t > 0, "a finite number > 0")
    arr = checks.float_array(temperature, "temperature")
    if arr.shape != ():
        raise ValueError(f"temperature must be a scalar, got an array of shape {arr.shape}")
    return arr if isinstance(arr, jax.core.Tracer) else _temperature(float(arr))


def _pick(key: Array | None, logits: Array, temperature: Any, top_k: int | None) -> Array:
    """The argmax of `logits` without a key, else a draw from `softmax(logits / temperature)`,
    among the `top_k` largest logits when `top_k` is given; -1 where `temperature` is
    unusable (not a finite number > 0)."""
    if key is None:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    # Gumbel noise in half precision is too coarse; draw in at least float32.
    dtype = jnp.float32 if jnp.dtype(logits.dtype).itemsize < 4 else logits.dtype
    temperature = jnp.asarray(temperature, dtype)
    scaled = logits.astype(dtype) / temperature
    if top_k is not None:
        if top_k > logits.shape[-1]:
            raise ValueError(
                f"top_k must be at most the number of classes C={logits.shape[-1]} "
                f"(readout(h).shape[-1]); got {top_k}"
            )
        values, indices = jax.lax.top_k(scaled, top_k)
        choice = jax.random.categorical(key, values)
        token = jnp.take_along_axis(indices, choice[..., None], axis=-1)[..., 0]
    else:
        token = jax.random.categorical(key, scaled)
    return jnp.where(jnp.isfinite(temperature) & (temperature > 0), token, -1).astype(jnp.int32)
