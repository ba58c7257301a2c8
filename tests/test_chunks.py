"""`jr.map_chunks`: the same values and gradients as applying the function at once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_unroll import train_step_peak_bytes

import jaxrnn as jr

T, B, H, C = 23, 3, 5, 7


def setup(num_steps=T, dtype=jnp.float64):
    rng = np.random.default_rng(0)
    hs = jnp.asarray(rng.standard_normal((num_steps, B, H)), dtype)
    labels = jnp.asarray(rng.integers(0, C, (num_steps, B)))
    head = jr.dense(C)
    params = jax.tree.map(lambda a: a.astype(dtype), head.init(jax.random.key(0), H))
    return head, params, hs, labels


def step_losses(head, params):
    def fn(hs, labels):
        logits = head.apply(params, hs)
        return jr.sequence_softmax_cross_entropy(logits, labels, reduction="none")

    return fn


@pytest.mark.parametrize("num_steps", [1, 7, 16, T])
@pytest.mark.parametrize("chunk_size", [None, 1, 5, 100])
def test_values_and_gradients_equal_one_call(num_steps, chunk_size, x64):
    head, params, hs, labels = setup(num_steps)

    def loss(params, hs, chunked):
        fn = step_losses(head, params)
        losses = jr.map_chunks(fn, hs, labels, chunk_size=chunk_size) if chunked else fn(hs, labels)
        # Weigh the steps differently, so a misplaced step changes the value.
        return jnp.sum(losses * jnp.arange(1, num_steps + 1, dtype=losses.dtype)[:, None])

    grad = jax.value_and_grad(loss, argnums=(0, 1))
    (value, grads), (want, want_grads) = grad(params, hs, True), grad(params, hs, False)
    np.testing.assert_allclose(value, want, rtol=1e-12)
    for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_pytree_outputs_under_jit(dtype):
    head, params, hs, labels = setup(dtype=dtype)

    def fn(hs, labels):
        logits = head.apply(params, hs)
        return {"logits": logits, "argmax": jnp.argmax(logits, -1) == labels}

    got = jax.jit(lambda hs, labels: jr.map_chunks(fn, hs, labels, chunk_size=4))(hs, labels)
    want = fn(hs, labels)
    assert got["logits"].shape == (T, B, C) and got["logits"].dtype == dtype
    tol = {"rtol": 1e-5, "atol": 1e-6} if jnp.dtype(dtype) == jnp.float32 else {"rtol": 1e-12}
    np.testing.assert_allclose(got["logits"], want["logits"], **tol)
    # Chunks may round differently in float32, so compare with the returned logits.
    np.testing.assert_array_equal(got["argmax"], jnp.argmax(got["logits"], -1) == labels)


def test_chunks_see_consecutive_steps():
    seen = jr.map_chunks(lambda t: jnp.broadcast_to(t[:1], t.shape), jnp.arange(10), chunk_size=4)
    np.testing.assert_array_equal(seen, [0, 0, 0, 0, 4, 4, 4, 4, 8, 8])


def test_keeps_the_logits_a_chunk_at_a_time():
    """bench/run.py's lstm_long with 256 classes: the logits no longer dominate the step."""
    # Measured 38.2 -> 11.2 MiB: the chunked step keeps less than the logits alone.
    logits_bytes = 2000 * 8 * 256 * 4
    chunked = train_step_peak_bytes(remat=True, chunked=True, classes=256)
    assert chunked < logits_bytes
    assert 3 * chunked < train_step_peak_bytes(remat=True, classes=256)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("not callable", jnp.ones(3)), {}, TypeError, r"fn must be a function .*, got str"),
        ((jnp.sin,), {}, ValueError, r"at least one array xs"),
        ((jnp.sin, [1.0, 2.0]), {}, TypeError, r"xs\[0\] must be an array, got list"),
        ((jnp.sin, jnp.float32(1)), {}, ValueError, r"xs\[0\] must have a time axis"),
        ((jnp.add, jnp.ones(3), jnp.ones((4, 2))), {}, ValueError, r"xs\[1\] has shape \(4, 2\)"),
        ((jnp.sin, jnp.ones(3)), {"chunk_size": 0}, ValueError, r"chunk_size must be a positive"),
        ((jnp.sin, jnp.ones(3)), {"chunk_size": 2.0}, TypeError, r"chunk_size must be a positive"),
        ((jnp.sin, jnp.ones(3)), {"chunk_size": True}, TypeError, r"chunk_size must be a positive"),
        ((jnp.sum, jnp.ones((6, 2))), {"chunk_size": 3}, ValueError, r"output has shape \(\)"),
        (
            (lambda x: {"y": x.T}, jnp.ones((6, 2))),
            {"chunk_size": 3},
            ValueError,
            r"axis 0 of length 3 .* output\['y'\] has shape \(2, 3\)",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        jr.map_chunks(*args, **kwargs)
