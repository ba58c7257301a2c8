"""Masked sequence losses and `last_valid`: NumPy float64 references, padding safety,
reductions, finite differences and input checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn as jr
from jaxrnn.train.losses import last_valid, sequence_mse, sequence_softmax_cross_entropy

REDUCTIONS = ["mean", "sum", "mean_per_sequence", "none"]
BATCH_SHAPES = [(), (3,), (2, 3)]
T, C, F = 6, 5, 4


# ----------------------------------------------------------------- NumPy references


def valid_mask(lengths, num_steps):
    lengths = np.asarray(lengths)
    return np.arange(num_steps).reshape((-1,) + (1,) * lengths.ndim) < lengths[None]


def reduce_reference(per_step, valid, reduction):
    """Float64 reduction of per-step losses `(T, *batch)`, written with plain loops."""
    per_step = np.where(valid, per_step, 0.0)
    if reduction == "none":
        return per_step
    if reduction == "sum":
        return per_step[valid].sum()
    if reduction == "mean":
        return per_step[valid].sum() / valid.sum() if valid.any() else 0.0
    means = []
    flat_losses = per_step.reshape(per_step.shape[0], -1)
    flat_valid = valid.reshape(valid.shape[0], -1)
    for b in range(flat_losses.shape[1]):
        if flat_valid[:, b].any():
            means.append(flat_losses[flat_valid[:, b], b].mean())
    return float(np.mean(means)) if means else 0.0


def cross_entropy_reference(logits, labels, lengths, reduction):
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    valid = valid_mask(lengths, logits.shape[0]) & np.ones(labels.shape, bool)
    per_step = np.zeros(labels.shape)
    for index in np.ndindex(labels.shape):
        if valid[index]:
            row = logits[index]
            top = row.max()
            log_z = top + np.log(np.sum(np.exp(row - top)))
            per_step[index] = log_z - row[labels[index]]
    return reduce_reference(per_step, valid, reduction)


def mse_reference(predictions, targets, lengths, reduction):
    predictions = np.asarray(predictions, np.float64)
    targets = np.asarray(targets, np.float64)
    valid = valid_mask(lengths, predictions.shape[0]) & np.ones(predictions.shape[:-1], bool)
    with np.errstate(invalid="ignore"):
        per_step = np.mean((predictions - targets) ** 2, axis=-1)
    return reduce_reference(per_step, valid, reduction)


def make_batch(batch_shape, seed=0, dtype=jnp.float64):
    """Random logits `(T, *batch, C)`, labels, and lengths with a full and an empty sequence."""
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(rng.normal(size=(T, *batch_shape, C)) * 2, dtype)
    labels = jnp.asarray(rng.integers(0, C, size=(T, *batch_shape)), jnp.int32)
    lengths = rng.integers(0, T + 1, size=batch_shape)
    if lengths.ndim:
        lengths.reshape(-1)[0] = T
        if lengths.size > 2:
            lengths.reshape(-1)[1] = 0
    else:
        lengths = np.asarray(4)
    return logits, labels, jnp.asarray(lengths, jnp.int32)


def pad_with(x, lengths, value):
    """`x (T, *batch, ...)` with every padded step replaced by `value`."""
    valid = jnp.asarray(valid_mask(lengths, x.shape[0]))
    valid = valid.reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
    return jnp.where(valid, x, jnp.asarray(value, x.dtype))


# --------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_cross_entropy_matches_numpy(x64, reduction, batch_shape):
    logits, labels, lengths = make_batch(batch_shape)
    got = sequence_softmax_cross_entropy(logits, labels, lengths, reduction=reduction)
    want = cross_entropy_reference(logits, labels, lengths, reduction)
    assert got.dtype == jnp.float64
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_without_lengths_counts_every_step(x64, reduction):
    logits, labels, _ = make_batch((3,))
    full = jnp.full((3,), T, jnp.int32)
    got = sequence_softmax_cross_entropy(logits, labels, reduction=reduction)
    np.testing.assert_array_equal(
        got, sequence_softmax_cross_entropy(logits, labels, full, reduction=reduction)
    )
    want = cross_entropy_reference(logits, labels, full, reduction)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_float32_is_close_to_float64(reduction):
    logits, labels, lengths = make_batch((2, 3), dtype=jnp.float32)
    got = sequence_softmax_cross_entropy(logits, labels, lengths, reduction=reduction)
    assert got.dtype == jnp.float32
    want = cross_entropy_reference(logits, labels, lengths, reduction)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)


def test_cross_entropy_half_precision_keeps_dtype_and_is_accurate():
    logits, labels, lengths = make_batch((3,), dtype=jnp.bfloat16)
    got = sequence_softmax_cross_entropy(logits, labels, lengths)
    assert got.dtype == jnp.bfloat16
    want = cross_entropy_reference(logits, labels, lengths, "mean")
    np.testing.assert_allclose(float(got), want, rtol=1e-2)
    grads = jax.grad(lambda x: sequence_softmax_cross_entropy(x, labels, lengths))(logits)
    assert grads.dtype == jnp.bfloat16


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_time_axis(x64, reduction):
    logits, labels, lengths = make_batch((3,))
    time_major = sequence_softmax_cross_entropy(logits, labels, lengths, reduction=reduction)
    for axis in (1, -2):
        batch_major = sequence_softmax_cross_entropy(
            jnp.swapaxes(logits, 0, 1),
            labels.T,
            lengths,
            time_axis=axis,
            reduction=reduction,
        )
        want = time_major.T if reduction == "none" else time_major
        np.testing.assert_allclose(batch_major, want, rtol=1e-14, atol=0)


def test_cross_entropy_large_logits_are_stable():
    logits, labels, lengths = make_batch((3,), dtype=jnp.float32)
    logits = logits * 1e4  # exp(1e4) overflows; only a log-softmax survives
    loss, grads = jax.value_and_grad(sequence_softmax_cross_entropy)(logits, labels, lengths)
    want = cross_entropy_reference(logits, labels, lengths, "mean")
    assert np.isfinite(float(loss)) and want > 1e3
    np.testing.assert_allclose(float(loss), want, rtol=1e-6)
    assert jnp.all(jnp.isfinite(grads))


def test_cross_entropy_with_masked_classes_at_minus_inf(x64):
    logits, labels, lengths = make_batch((3,))
    classes = jnp.arange(C, dtype=labels.dtype)
    banned = (classes >= 3).reshape(1, 1, C) & (labels[..., None] != classes.reshape(1, 1, C))
    masked = jnp.where(banned, -jnp.inf, logits)
    for reduction in REDUCTIONS:
        got = sequence_softmax_cross_entropy(masked, labels, lengths, reduction=reduction)
        want = cross_entropy_reference(masked, labels, lengths, reduction)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
        assert jnp.all(jnp.isfinite(got))
    grads = jax.grad(sequence_softmax_cross_entropy)(masked, labels, lengths)
    assert jnp.all(jnp.isfinite(grads))
    assert jnp.all(jnp.where(banned, grads, 0.0) == 0)
    # A label whose own logit is -inf has probability zero: the loss is +inf, not NaN.
    impossible = masked.at[0, 0, labels[0, 0]].set(-jnp.inf)
    assert sequence_softmax_cross_entropy(impossible, labels, lengths, reduction="sum") == jnp.inf


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_nan_padding_reaches_neither_value_nor_gradient(x64, reduction):
    logits, labels, lengths = make_batch((2, 3))
    clean_logits, clean_labels = pad_with(logits, lengths, 0.0), pad_with(labels, lengths, 0)
    dirty_logits, dirty_labels = pad_with(logits, lengths, jnp.nan), pad_with(labels, lengths, -100)

    def loss(x, labels):
        out = sequence_softmax_cross_entropy(x, labels, lengths, reduction=reduction)
        return jnp.sum(out * jnp.arange(1, out.size + 1, dtype=out.dtype).reshape(out.shape))

    clean_value, clean_grads = jax.value_and_grad(loss)(clean_logits, clean_labels)
    dirty_value, dirty_grads = jax.value_and_grad(loss)(dirty_logits, dirty_labels)
    assert np.isfinite(float(dirty_value))
    np.testing.assert_array_equal(dirty_value, clean_value)
    np.testing.assert_array_equal(dirty_grads, clean_grads)
    padded = ~valid_mask(lengths, T)
    assert np.all(np.asarray(dirty_grads)[padded] == 0)
    assert np.any(np.asarray(dirty_grads)[~padded] != 0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_finite_differences(x64, reduction):
    logits, labels, lengths = make_batch((3,), seed=1)
    weights = jax.random.normal(jax.random.key(0), labels.shape, jnp.float64)

    def loss(x):
        out = sequence_softmax_cross_entropy(x, labels, lengths, reduction=reduction)
        return jnp.sum(out * weights) if reduction == "none" else out

    check_grads(loss, (logits,), order=1, modes=["rev", "fwd"], eps=1e-6, atol=1e-8, rtol=1e-7)


def test_mean_per_sequence_weighs_sequences_equally_and_skips_empty_ones(x64):
    logits, labels, _ = make_batch((3,), seed=2)
    lengths = jnp.array([6, 2, 0], jnp.int32)
    per_step = sequence_softmax_cross_entropy(logits, labels, lengths, reduction="none")
    got = sequence_softmax_cross_entropy(logits, labels, lengths, reduction="mean_per_sequence")
    want = (jnp.mean(per_step[:6, 0]) + jnp.mean(per_step[:2, 1])) / 2
    np.testing.assert_allclose(got, want, rtol=1e-14)
    mean = sequence_softmax_cross_entropy(logits, labels, lengths)
    np.testing.assert_allclose(mean, jnp.sum(per_step) / 8, rtol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_per_sequence"])
def test_all_sequences_empty_gives_zero_loss_and_zero_gradient(reduction):
    logits = jnp.full((T, 3, C), jnp.nan)
    labels = jnp.full((T, 3), -1, jnp.int32)
    lengths = jnp.zeros((3,), jnp.int32)
    loss, grads = jax.value_and_grad(sequence_softmax_cross_entropy)(
        logits, labels, lengths, reduction=reduction
    )
    assert float(loss) == 0.0
    assert jnp.all(grads == 0)


def test_cross_entropy_under_jit_does_not_retrace_for_new_lengths():
    logits, labels, _ = make_batch((3,), dtype=jnp.float32)
    traces = []

    @jax.jit
    def loss(logits, labels, lengths):
        traces.append(1)
        return sequence_softmax_cross_entropy(logits, labels, lengths)

    for lengths in ([6, 2, 0], [1, 1, 1], [5, 6, 3]):
        lengths = jnp.array(lengths, jnp.int32)
        want = cross_entropy_reference(logits, labels, lengths, "mean")
        np.testing.assert_allclose(float(loss(logits, labels, lengths)), want, rtol=1e-6)
    assert len(traces) == 1


def test_out_of_range_label_at_a_valid_step():
    logits, labels, lengths = make_batch((3,), dtype=jnp.float32)
    bad = labels.at[0, 0].set(C)
    with pytest.raises(ValueError, match=r"labels at valid steps must lie in \[0, C\) with C=5"):
        sequence_softmax_cross_entropy(logits, bad, lengths)
    with pytest.raises(ValueError, match=r"\(logits.shape\[-1\]\); got \[-1\]"):
        sequence_softmax_cross_entropy(logits, labels.at[0, 0].set(-1), lengths)
    # Under jit the value cannot be checked: the loss is NaN rather than silently wrong.
    per_step_loss = jax.jit(
        lambda x, y, n: sequence_softmax_cross_entropy(x, y, n, reduction="none")
    )
    per_step = per_step_loss(logits, bad, lengths)
    assert jnp.isnan(per_step[0, 0])
    assert jnp.all(jnp.isfinite(per_step[1:]))


def test_cross_entropy_accepts_numpy_inputs(x64):
    logits, labels, _ = make_batch((3,))
    got = sequence_softmax_cross_entropy(np.asarray(logits), np.asarray(labels), [6, 2, 0])
    want = sequence_softmax_cross_entropy(logits, labels, jnp.array([6, 2, 0]))
    np.testing.assert_array_equal(got, want)


def test_cross_entropy_bad_input():
    logits = jnp.zeros((T, 3, C))
    labels = jnp.zeros((T, 3), jnp.int32)
    lengths = jnp.array([6, 2, 0], jnp.int32)
    with pytest.raises(TypeError, match=r"logits must have a real floating dtype.*got int32"):
        sequence_softmax_cross_entropy(labels[..., None], labels)
    with pytest.raises(ValueError, match=r"logits must have at least 2 dims.*got shape \(5,\)"):
        sequence_softmax_cross_entropy(jnp.zeros(C), jnp.zeros((), jnp.int32))
    with pytest.raises(TypeError, match=r"labels must have an integer dtype.*got float32"):
        sequence_softmax_cross_entropy(logits, labels.astype(jnp.float32))
    with pytest.raises(
        ValueError,
        match=r"labels must have the shape of logits without the class axis, \(6, 3\); "
        r"got \(6, 7\)",
    ):
        sequence_softmax_cross_entropy(logits, jnp.zeros((T, 7), jnp.int32))
    with pytest.raises(
        ValueError,
        match=r"lengths has shape \(7,\) but must have the batch shape of logits, \(3,\)",
    ):
        sequence_softmax_cross_entropy(logits, labels, jnp.zeros((7,), jnp.int32))
    with pytest.raises(TypeError, match=r"lengths must have an integer dtype.*got float32"):
        sequence_softmax_cross_entropy(logits, labels, lengths.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T\] with T=6.*from 0 to 7"):
        sequence_softmax_cross_entropy(logits, labels, lengths.at[0].set(7))
    with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum'.*got 'avg'"):
        sequence_softmax_cross_entropy(logits, labels, reduction="avg")
    with pytest.raises(ValueError, match=r"time_axis must be .* \[-3, 1\], got 2"):
        sequence_softmax_cross_entropy(logits, labels, time_axis=2)
    with pytest.raises(TypeError, match=r"time_axis must be an int, got float 0.0"):
        sequence_softmax_cross_entropy(logits, labels, time_axis=0.0)


# ------------------------------------------------------------------------------- MSE


def make_regression(batch_shape, seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    predictions = jnp.asarray(rng.normal(size=(T, *batch_shape, F)), dtype)
    targets = jnp.asarray(rng.normal(size=(T, *batch_shape, F)), dtype)
    _, _, lengths = make_batch(batch_shape, seed)
    return predictions, targets, lengths


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_mse_matches_numpy(x64, reduction, batch_shape):
    predictions, targets, lengths = make_regression(batch_shape)
    got = sequence_mse(predictions, targets, lengths, reduction=reduction)
    want = mse_reference(predictions, targets, lengths, reduction)
    assert got.shape == np.shape(want) and got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-15)


def test_mse_mean_is_over_valid_steps_and_features(x64):
    predictions, targets, lengths = make_regression((3,))
    valid = valid_mask(lengths, T)
    squared = (np.asarray(predictions) - np.asarray(targets)) ** 2
    want = squared[valid].mean()  # (valid steps, F) flattened
    np.testing.assert_allclose(float(sequence_mse(predictions, targets, lengths)), want, 1e-12)
    full = sequence_mse(predictions, targets)
    np.testing.assert_allclose(float(full), squared.mean(), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_nan_padding_and_finite_differences(x64, reduction):
    predictions, targets, lengths = make_regression((2, 3), seed=3)
    weights = jax.random.normal(jax.random.key(1), predictions.shape[:-1], jnp.float64)

    def loss(p, t):
        out = sequence_mse(p, t, lengths, reduction=reduction)
        return jnp.sum(out * weights) if reduction == "none" else out

    clean = jax.value_and_grad(loss, argnums=(0, 1))(
        pad_with(predictions, lengths, 0.0), pad_with(targets, lengths, 0.0)
    )
    dirty = jax.value_and_grad(loss, argnums=(0, 1))(
        pad_with(predictions, lengths, jnp.nan), pad_with(targets, lengths, jnp.inf)
    )
    np.testing.assert_array_equal(dirty[0], clean[0])
    for got, want in zip(dirty[1], clean[1], strict=True):
        np.testing.assert_array_equal(got, want)
        assert np.all(np.asarray(got)[~valid_mask(lengths, T)] == 0)
    check_grads(loss, (predictions, targets), order=1, modes=["rev"], eps=1e-6, rtol=1e-7)


def test_mse_time_axis_and_dtype(x64):
    predictions, targets, lengths = make_regression((3,))
    want = sequence_mse(predictions, targets, lengths, reduction="none")
    got = sequence_mse(
        jnp.swapaxes(predictions, 0, 1),
        jnp.swapaxes(targets, 0, 1),
        lengths,
        time_axis=1,
        reduction="none",
    )
    np.testing.assert_allclose(got, want.T, rtol=1e-15)
    half = sequence_mse(predictions.astype(jnp.float16), targets.astype(jnp.float16), lengths)
    assert half.dtype == jnp.float16
    np.testing.assert_allclose(
        float(half), mse_reference(predictions, targets, lengths, "mean"), 2e-3
    )


def test_mse_bad_input():
    predictions = jnp.zeros((T, 3, F))
    with pytest.raises(
        ValueError,
        match=r"targets .* must have the shape of predictions, \(6, 3, 4\); got \(6, 3, 7\)",
    ):
        sequence_mse(predictions, jnp.zeros((T, 3, 7)))
    with pytest.raises(
        TypeError, match=r"targets has dtype float16 but predictions has dtype float32"
    ):
        sequence_mse(predictions, predictions.astype(jnp.float16))
    with pytest.raises(TypeError, match=r"targets must have a real floating dtype.*got int32"):
        sequence_mse(predictions, predictions.astype(jnp.int32))
    with pytest.raises(ValueError, match=r"predictions must have at least 2 dims.*\(4,\)"):
        sequence_mse(jnp.zeros(F), jnp.zeros(F))
    with pytest.raises(
        ValueError,
        match=r"lengths has shape \(7,\) but must have the batch shape of predictions, \(3,\)",
    ):
        sequence_mse(predictions, predictions, jnp.zeros((7,), jnp.int32))
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'mean_per_step'"):
        sequence_mse(predictions, predictions, reduction="mean_per_step")


# ------------------------------------------------------------------------ last_valid


def last_valid_reference(hs, lengths):
    hs, lengths = np.asarray(hs, np.float64), np.asarray(lengths)
    out = np.zeros(hs.shape[1:])
    for index in np.ndindex(lengths.shape):
        if lengths[index] > 0:
            out[index] = hs[(lengths[index] - 1, *index)]
    return out


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_last_valid_matches_numpy(x64, batch_shape):
    hs, _, lengths = make_regression(batch_shape, seed=4)
    got = last_valid(hs, lengths)
    assert got.shape == (*batch_shape, F) and got.dtype == jnp.float64
    np.testing.assert_array_equal(got, last_valid_reference(hs, lengths))
    batch_major = last_valid(jnp.moveaxis(hs, 0, -2), lengths, time_axis=-2)
    np.testing.assert_array_equal(batch_major, got)


def test_last_valid_equals_the_unrolled_carry():
    cell = jr.lstm(8)
    params = cell.init(jax.random.key(0), input_size=3)
    xs = jax.random.normal(jax.random.key(1), (T, 4, 3))
    lengths = jnp.array([6, 1, 3, 0], jnp.int32)
    (h, _), hs = jr.unroll(cell, params, xs, lengths=lengths)
    # Length 0 gives zeros, as the initial carry here is zeros.
    np.testing.assert_array_equal(last_valid(hs, lengths), h)


def test_last_valid_nan_elsewhere_reaches_neither_value_nor_gradient(x64):
    hs, _, lengths = make_regression((2, 3), seed=5)
    picked = np.zeros(hs.shape[:-1], bool)
    for index in np.ndindex(lengths.shape):
        if lengths[index] > 0:
            picked[(int(lengths[index]) - 1, *index)] = True
    dirty = jnp.where(jnp.asarray(picked)[..., None], hs, jnp.nan)
    weights = jax.random.normal(jax.random.key(2), (2, 3, F), jnp.float64)

    def loss(hs):
        return jnp.sum(last_valid(hs, lengths) * weights)

    value, grads = jax.value_and_grad(loss)(dirty)
    np.testing.assert_array_equal(value, loss(hs))
    np.testing.assert_array_equal(grads, jax.grad(loss)(hs))
    assert np.all(np.asarray(grads)[~picked] == 0)
    for index in np.ndindex(lengths.shape):
        if lengths[index] > 0:
            step = int(lengths[index]) - 1
            np.testing.assert_array_equal(grads[(step, *index)], weights[index])


def test_last_valid_edges():
    hs = jnp.arange(12.0).reshape(T, 2, 1)
    assert last_valid(jnp.zeros((0, 2, 1)), jnp.zeros((2,), jnp.int32)).shape == (2, 1)
    assert float(last_valid(hs[:, 0], jnp.asarray(2))[0]) == 2.0  # no batch dims
    # Under jit lengths are not checked: above T behaves as T, negative as 0.
    run = jax.jit(last_valid)
    np.testing.assert_array_equal(
        run(hs, jnp.array([9, -1], jnp.int32)), run(hs, jnp.array([6, 0], jnp.int32))
    )


def test_last_valid_bad_input():
    hs = jnp.zeros((T, 3, F))
    with pytest.raises(TypeError, match=r"lengths must be an array, got NoneType"):
        last_valid(hs, None)
    with pytest.raises(
        ValueError, match=r"lengths has shape \(7,\) but must have the batch shape of hs, \(3,\)"
    ):
        last_valid(hs, jnp.zeros((7,), jnp.int32))
    with pytest.raises(TypeError, match=r"lengths must have an integer dtype.*got float32"):
        last_valid(hs, jnp.zeros((3,), jnp.float32))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T\] with T=6.*from -1 to 0"):
        last_valid(hs, jnp.array([0, -1, 0]))
    with pytest.raises(ValueError, match=r"hs must have at least 2 dims.*got shape \(4,\)"):
        last_valid(jnp.zeros(F), jnp.asarray(1))
    with pytest.raises(ValueError, match=r"time_axis must be an axis of hs.*got -1"):
        last_valid(hs, jnp.zeros((3,), jnp.int32), time_axis=-1)
