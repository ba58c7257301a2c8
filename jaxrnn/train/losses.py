"""Losses over padded batches of sequences, averaged over valid steps only.

Every function here takes per-step values of shape `(T, *batch, ...)` (time on
`time_axis`) and optional `lengths (*batch,)`, with the same meaning as in
`jaxrnn.unroll`: sequence `b` is valid for steps `0 .. lengths[b] - 1`. Padded
steps are replaced before any arithmetic, so they may hold anything (NaN, inf,
out-of-range labels) without reaching the value or the gradient; the gradient
with respect to a padded step is exactly zero.

The per-step losses come from optax (`optax.softmax_cross_entropy_with_integer_labels`,
`optax.squared_error`); what stays here is the time-step masking, which optax's
`where=` cannot do (it masks classes within a step, not steps within a
sequence): replacing padded steps before the loss, and the reductions over valid
steps only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn import checks

Array = jax.Array

Reduction = Literal["mean", "sum", "mean_per_sequence", "none"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)
"""The accepted values of `reduction`."""

_ON_TIME_AXIS = "with time on time_axis"  # how the messages say where time is


def sequence_softmax_cross_entropy(
    logits: Array,
    labels: Array,
    lengths: Array | None = None,
    *,
    time_axis: int = 0,
    reduction: Reduction = "mean",
) -> Array:
    """Softmax cross-entropy of integer labels at every valid step of padded sequences.

    The loss at step `t` of sequence `b` is `-log_softmax(logits[t, b])[labels[t, b]]`,
    computed as a log-softmax (the maximum logit is subtracted first), so logits of
    1e4 stay finite and classes with logit `-inf` (masked out of the vocabulary) get
    probability zero; only a label whose own logit is `-inf` gives an infinite loss.
    Steps at or past `lengths[b]` are padding: their logits and labels are replaced
    before the log-softmax, so NaN logits or out-of-range labels there (e.g. `-1` or
    `-100` as a padding marker) reach neither the value nor the gradient.

    `reduction` says how the per-step losses are combined:

    - `"mean"`: the mean over all valid steps of the batch (`sum / number of valid
      steps`); 0 when no step is valid.
    - `"sum"`: the sum over all valid steps.
    - `"mean_per_sequence"`: the mean over each sequence's valid steps, then the
      mean over the sequences, so that short and long sequences weigh the same. A
      sequence of length 0 contributes nothing: it is left out of the batch mean,
      as if it were not in the batch (0 when every sequence is empty).
    - `"none"`: the per-step losses `(T, *batch)` (time on `time_axis`), exactly 0
      at padded steps.

    Half-precision logits (bfloat16, float16) are upcast to float32 for the
    log-softmax and the reduction; the result has the logits' dtype.

    Args:
      logits: unnormalised log-probabilities `(T, *batch, C)` with time on
        `time_axis` and the `C` classes on the last axis.
      labels: integer class ids `(T, *batch)` (the shape of `logits` without the
        class axis), in `[0, C)` at valid steps.
      lengths: optional integer array `(*batch,)`, the number of valid steps of
        each sequence, in `[0, T]`. `None` means every step is valid.
      time_axis: the axis of `logits` and `labels` that is time; any axis of
        `logits` but the last.
      reduction: `"mean"`, `"sum"`, `"mean_per_sequence"` or `"none"`.

    Returns:
      A scalar in the dtype of `logits`, or for `reduction="none"` the per-step
      losses `(T, *batch)`.

    Raises:
      TypeError: `logits` is not floating, `labels` or `lengths` is not integer, or
        `time_axis` is not an int.
      ValueError: shapes disagree, `time_axis` is out of range, `reduction` is
        unknown, or concrete `lengths` lie outside `[0, T]` or concrete labels at
        valid steps outside `[0, C)`. Under `jax.jit` values cannot be checked: an
        out-of-range label at a valid step then gives a NaN loss.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> logits = jnp.zeros((4, 2, 3))                   # (T, batch, C): uniform
      >>> labels = jnp.array([[0, 1], [2, 0], [1, -1], [0, -1]])  # -1 pads
      >>> loss = jr.sequence_softmax_cross_entropy(logits, labels, jnp.array([4, 2]))
      >>> round(float(loss), 4), round(float(jnp.log(3.0)), 4)
      (1.0986, 1.0986)
      >>> jr.sequence_softmax_cross_entropy(
      ...     logits, labels, jnp.array([4, 2]), reduction="none"
      ... )[:, 1]
      Array([1.0986123, 1.0986123, 0.       , 0.       ], dtype=float32)
    """
    logits = checks.sequences(logits, "logits", f"(T, *batch, C) {_ON_TIME_AXIS}")
    labels = checks.integer_array(labels, "labels", "class ids")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have the shape of logits without the class axis, "
            f"{checks.shape_str(logits.shape[:-1])}; got {checks.shape_str(labels.shape)}"
        )
    num_classes = logits.shape[-1]

    def per_step(logits: Array, labels: Array) -> Array:
        in_range = (labels >= 0) & (labels < num_classes)  # padded steps hold 0 by now
        if not isinstance(in_range, jax.core.Tracer) and not in_range.all():
            raise ValueError(
                f"labels at valid steps must lie in [0, C) with C={num_classes} classes "
                f"(logits.shape[-1]); got {np.unique(np.asarray(labels)[~in_range]).tolist()}"
            )
        # optax would read an out-of-range label as another class (-1 as the last):
        # under jit, where labels cannot be checked, such a step gives NaN instead.
        safe = jnp.where(in_range, labels, jnp.zeros((), labels.dtype))
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
        return jnp.where(in_range, losses, jnp.full((), jnp.nan, losses.dtype))

    return _sequence_loss(per_step, logits, labels, lengths, time_axis, reduction, "logits")


def sequence_mse(
    predictions: Array,
    targets: Array,
    lengths: Array | None = None,
    *,
    reduction: Reduction = "mean",
    time_axis: int = 0,
) -> Array:
    """Mean squared error at every valid step of padded sequences.

    The loss at step `t` of sequence `b` is the mean over the `F` features of
    `(predictions[t, b] - targets[t, b]) ** 2`. With the default
    `reduction="mean"` the result is therefore the mean over all valid steps and
    all features. Padded steps (at or past `lengths[b]`) are replaced before the
    subtraction, so NaN or inf there reaches neither the value nor the gradient.

    `reduction` works as in `sequence_softmax_cross_entropy` on the per-step
    losses: `"mean"` over all valid steps (0 when none is valid), `"sum"` of the
    per-step losses, `"mean_per_sequence"` (each sequence's mean, then the mean
    over sequences with at least one valid step; a length-0 sequence is left
    out), or `"none"` for the per-step losses `(T, *batch)`, 0 at padding.

    Half-precision inputs are reduced in float32; the result has their dtype.

    Args:
      predictions: floating array `(T, *batch, F)` with time on `time_axis` and
        features last.
      targets: the same shape and dtype as `predictions`.
      lengths: optional integer array `(*batch,)`, the number of valid steps of
        each sequence, in `[0, T]`. `None` means every step is valid.
      reduction: `"mean"`, `"sum"`, `"mean_per_sequence"` or `"none"`.
      time_axis: the axis that is time; any axis but the last.

    Returns:
      A scalar, or for `reduction="none"` the per-step losses `(T, *batch)`, in the
      dtype of `predictions`.

    Raises:
      TypeError: an argument has the wrong dtype, or `predictions` and `targets`
        have different dtypes.
      ValueError: shapes disagree, `time_axis` is out of range, `reduction` is
        unknown, or concrete `lengths` lie outside `[0, T]`.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> predictions = jnp.ones((3, 2, 4))                # (T, batch, F)
      >>> targets = jnp.zeros((3, 2, 4)).at[2, 1].set(jnp.nan)  # NaN in the padding
      >>> float(jr.sequence_mse(predictions, targets, jnp.array([3, 2])))
      1.0
    """
    predictions = checks.sequences(predictions, "predictions", f"(T, *batch, F) {_ON_TIME_AXIS}")
    targets = checks.float_array(targets, "targets")
    checks.like(targets, "targets", predictions, "predictions", "is compared with predictions")

    def per_step(predictions: Array, targets: Array) -> Array:  # (T, *batch): mean over features
        return jnp.mean(optax.squared_error(predictions, targets.astype(predictions.dtype)), -1)

    return _sequence_loss(
        per_step, predictions, targets, lengths, time_axis, reduction, "predictions"
    )


def last_valid(hs: Array, lengths: Array, *, time_axis: int = 0) -> Array:
    """Each sequence's output at its last valid step, `hs[lengths[b] - 1, b]`.

    For many-to-one models: after `jaxrnn.unroll` (or a stack of layers and a
    dense head applied to every step), it picks for every sequence the output
    of its step `lengths[b] - 1`. A sequence of length 0 has no valid step and
    gets zeros. Only the picked steps reach the result and the gradient, so the
    other steps may hold anything, NaN included; their gradient is exactly zero.

    For a forward `unroll` with the same `lengths`, `last_valid(hs, lengths)`
    equals the `h` of the returned carry (zeros rather than the initial carry for
    a length-0 sequence). For a `reverse=True` unroll the output that has read
    the whole sequence is at step 0, `hs[0]`.

    Concrete `lengths` outside `[0, T]` raise a `ValueError`. Under `jax.jit` a
    length above `T` behaves as `T` and a negative one as 0, as in `unroll`.

    Args:
      hs: per-step outputs `(T, *batch, H)` with time on `time_axis`.
      lengths: integer array `(*batch,)`, the number of valid steps of each
        sequence.
      time_axis: the axis of `hs` that is time; any axis but the last.

    Returns:
      `(*batch, H)`, in the dtype of `hs`.

    Raises:
      TypeError: `hs` is not floating, `lengths` is not integer, or `time_axis`
        is not an int.
      ValueError: `lengths` does not have the batch shape of `hs`, `time_axis` is
        out of range, or concrete `lengths` lie outside `[0, T]`.

    Examples:
      >>> import jax.numpy as jnp, jaxrnn as jr
      >>> hs = jnp.arange(8.0).reshape(4, 2, 1)           # (T, batch, H)
      >>> jr.last_valid(hs, jnp.array([4, 2]))[:, 0]      # hs[3, 0] and hs[1, 1]
      Array([6., 3.], dtype=float32)
      >>> jr.last_valid(hs, jnp.array([1, 0]))[:, 0]      # length 0 gives zeros
      Array([0., 0.], dtype=float32)
    """
    hs = checks.sequences(hs, "hs", f"(T, *batch, H) {_ON_TIME_AXIS}")
    hs = jnp.moveaxis(hs, checks.time_dim(time_axis, hs.ndim, "hs"), 0)
    num_steps = hs.shape[0]
    lengths = jnp.clip(checks.lengths(lengths, hs.shape[1:-1], num_steps, "hs"), 0, num_steps)
    # Step lengths - 1: valid, but not for a sequence one step shorter (none for length 0).
    last = checks.valid_steps(lengths, num_steps) & ~checks.valid_steps(lengths - 1, num_steps)
    return jnp.sum(jnp.where(last[..., None], hs, jnp.zeros((), hs.dtype)), axis=0)


def _sequence_loss(
    per_step: Callable, x: Array, y: Array, lengths: Any, time_axis: int, reduction: str, name: str
) -> Array:
    """`per_step(x, y)`, the losses `(T, *batch)` of time-major `x (T, *batch, K)` and
    `y` with their padded steps replaced by zeros, set to 0 at padding and reduced."""
    time_axis = checks.time_dim(time_axis, x.ndim, name)
    checks.one_of(reduction, "reduction", REDUCTIONS)
    x, y = jnp.moveaxis(x, time_axis, 0), jnp.moveaxis(y, time_axis, 0)
    batch_shape, num_steps = x.shape[1:-1], x.shape[0]
    valid = jnp.ones((num_steps, *batch_shape), bool)  # a constant: XLA folds it away
    if lengths is not None:
        valid = checks.valid_steps(checks.lengths(lengths, batch_shape, num_steps, name), num_steps)

    def unpadded(a: Array) -> Array:
        # Before any arithmetic: `where` on the loss alone would still send NaN
        # gradients back through NaN inputs. No lengths: nothing to mask.
        if lengths is None:
            return a
        mask = valid.reshape(valid.shape + (1,) * (a.ndim - valid.ndim))
        return jnp.where(mask, a, jnp.zeros((), a.dtype))

    # Sums of many half-precision losses lose whole digits: compute in float32.
    compute = jnp.float32 if x.dtype.itemsize < 4 else x.dtype
    losses = unpadded(per_step(unpadded(x.astype(compute)), unpadded(y)))
    if reduction == "none":
        return jnp.moveaxis(losses, 0, time_axis).astype(x.dtype)
    counts = jnp.sum(valid, axis=0, dtype=losses.dtype)  # valid steps per sequence, (*batch,)
    if reduction == "mean_per_sequence":  # each sequence's mean, then the mean of the non-empty
        losses = jnp.sum(losses, axis=0) / jnp.maximum(counts, 1)
        counts = jnp.minimum(counts, 1)
    total = jnp.sum(losses)
    mean = total / jnp.maximum(jnp.sum(counts), 1)
    return (total if reduction == "sum" else mean).astype(x.dtype)
