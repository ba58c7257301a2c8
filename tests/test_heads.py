"""The dense head: values, shapes, gradients and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")


@pytest.mark.parametrize("leading", [(), (4,), (6, 2, 3)], ids=str)
def test_dense_matches_numpy(leading, dtype):
    head = jr.dense(5)
    params = head.init(jax.random.key(0), 7, dtype)
    params["b"] = params["b"] + 0.5
    hs = jnp.asarray(np.random.default_rng(1).standard_normal((*leading, 7)).astype(dtype))
    ys = head.apply(params, hs)
    want = np.asarray(hs, np.float64) @ np.asarray(params["w"], np.float64) + 0.5
    assert ys.shape == (*leading, 5) and ys.dtype == dtype
    tol = 1e-12 if dtype == jnp.float64 else 1e-5
    np.testing.assert_allclose(ys, want, rtol=tol, atol=tol)


def test_all_steps_at_once_equals_step_by_step():
    cell, head = jr.gru(8), jr.dense(3)
    cell_params, head_params = cell.init(jax.random.key(0), 4), head.init(jax.random.key(1), 8)
    _, hs = jr.unroll(cell, cell_params, jax.random.normal(jax.random.key(2), (5, 2, 4)))
    ys = jax.jit(head.apply)(head_params, hs)
    for t in range(5):
        np.testing.assert_allclose(ys[t], head.apply(head_params, hs[t]), rtol=1e-6, atol=1e-6)


def test_init_is_deterministic_and_overridable():
    a, b = jr.dense(3).init(jax.random.key(0), 4), jr.dense(3).init(jax.random.key(0), 4)
    np.testing.assert_array_equal(a["w"], b["w"])
    assert not np.array_equal(a["w"], jr.dense(3).init(jax.random.key(1), 4)["w"])
    ones = jr.dense(3, kernel_init=jax.nn.initializers.ones).init(jax.random.key(0), 4)
    np.testing.assert_array_equal(ones["w"], np.ones((4, 3)))
    np.testing.assert_array_equal(ones["b"], np.zeros(3))


def test_gradients_match_finite_differences(x64):
    head = jr.dense(3)
    params = head.init(jax.random.key(0), 4, jnp.float64)
    hs = jax.random.normal(jax.random.key(1), (5, 2, 4), jnp.float64)

    def loss(params, hs):
        return jnp.sum(jnp.sin(head.apply(params, hs)))

    check_grads(jax.jit(loss), (params, hs), order=1, modes=["rev"])


def test_bad_input():
    head = jr.dense(3)
    params = head.init(jax.random.key(0), 4)
    with pytest.raises(ValueError, match=r"output_size must be a positive int, got 0"):
        jr.dense(0)
    with pytest.raises(ValueError, match=r"hs has input_size 7 .* made for input_size 4"):
        head.apply(params, jnp.ones((2, 7)))
    with pytest.raises(TypeError, match=r"hs must have a real floating dtype .* got int32"):
        head.apply(params, jnp.ones((2, 4), jnp.int32))
    with pytest.raises(
        ValueError,
        match=r"params do not match .* dense layer makes: missing \[\"params\['b'\]\"\]",
    ):
        head.apply({"w": params["w"]}, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"params\['b'\] has shape \(3,\) .* expects \(5,\)"):
        jr.dense(5).apply(params, jnp.ones((2, 4)))
    with pytest.raises(TypeError, match=r"key must be a single PRNG key"):
        head.init(0, 4)


def test_mixed_dtypes_raise(x64):
    params = jr.dense(3).init(jax.random.key(0), 4)
    with pytest.raises(
        TypeError, match=r"params\['b'\] has dtype float32 but hs has dtype float64"
    ):
        jr.dense(3).apply(params, jnp.ones((2, 4), jnp.float64))
