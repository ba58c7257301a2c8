"""One battery of cross-cutting checks over every cell of the registry.

Every cell in `registry.CELLS` (the built-ins and two cells written in the tests)
gets every check here; a check that needs a capability (a hand-derived backward, a
linear recurrence, recurrent weights) runs over the cells whose step has it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry
from jax.test_util import check_grads

import jaxrnn as jr

NAMES = list(registry.CELLS)
BPTT = [n for n in NAMES if isinstance(registry.CELLS[n].make(4).step, jr.BpttStep)]
LINEAR = [n for n in NAMES if isinstance(registry.CELLS[n].make(4).step, jr.LinearStep)]
T, I, H = 5, 3, 4
LENGTHS = np.array([5, 2, 0])


def setup(name, batch_shape=(3,), dtype=jnp.float64, num_steps=T, seed=0):
    cell = registry.CELLS[name].make(H)
    kp, kb, kc, kx = jax.random.split(jax.random.key(seed), 4)
    params = cell.init(kp, I, dtype)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(kb, len(leaves))
    # Perturbed, so that every term of the equations (biases, gains) is exercised.
    params = jax.tree.unflatten(
        tree,
        [a + 0.2 * jax.random.normal(k, a.shape, dtype) for k, a in zip(keys, leaves, strict=True)],
    )
    leaves, tree = jax.tree.flatten(cell.initial_carry(batch_shape, dtype))
    keys = jax.random.split(kc, len(leaves))
    carry = jax.tree.unflatten(
        tree,
        [0.5 * jax.random.normal(k, a.shape, dtype) for k, a in zip(keys, leaves, strict=True)],
    )
    xs = jax.random.normal(kx, (num_steps, *batch_shape, I), dtype)
    return cell, params, carry, xs


def close(a, b, rtol=1e-12, atol=1e-12):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol, atol)


def loss_fn(cell, **options):
    """A scalar of every output and the final carry, so all gradients are exercised."""

    def loss(params, xs, carry):
        final, hs = jr.unroll(cell, params, xs, carry, **options)
        return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(jnp.cos(c)) for c in jax.tree.leaves(final))

    return loss


def numpy_unroll(name, params, xs, carry, lengths=None, reverse=False):
    """The documented semantics of `unroll`, in float64 NumPy around the NumPy step."""
    to64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)  # noqa: E731
    carry, xs, hs = to64(carry), np.asarray(xs, np.float64), [None] * len(xs)
    for t in reversed(range(len(xs))) if reverse else range(len(xs)):
        new, h = registry.numpy_step(name, params, carry, xs[t])
        if lengths is not None:
            valid = (t < lengths)[..., None]
            new = jax.tree.map(lambda n, o, v=valid: np.where(v, n, o), new, carry)
            h = np.where(valid, h, 0.0)
        carry, hs[t] = new, h
    return carry, np.stack(hs)


@pytest.mark.parametrize("batch_shape", [(), (2, 3)], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_step_matches_numpy(name, batch_shape, dtype):
    cell, params, carry, xs = setup(name, batch_shape, dtype)
    new, y = cell.step(params, carry, xs[0])
    want_new, want_y = registry.numpy_step(name, params, carry, xs[0])
    assert y.shape == (*batch_shape, H) and y.dtype == dtype
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(new))
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == jnp.float64 else {"rtol": 2e-5, "atol": 2e-5}
    close((new, y), (want_new, want_y), **tol)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_unroll_matches_numpy_with_lengths(name, reverse, x64):
    cell, params, carry, xs = setup(name)
    got = jr.unroll(cell, params, xs, carry, lengths=jnp.asarray(LENGTHS), reverse=reverse)
    close(got, numpy_unroll(name, params, xs, carry, LENGTHS, reverse), 1e-10, 1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_unroll_equals_a_python_loop_of_step(name, x64):
    cell, params, carry, xs = setup(name)
    loop, ys = carry, []
    for x in xs:
        loop, y = cell.step(params, loop, x)
        ys.append(y)
    close(jr.unroll(cell, params, xs, carry), (loop, jnp.stack(ys)))
    close(
        jr.unroll(cell, params, xs), jr.unroll(cell, params, xs, cell.initial_carry((3,), xs.dtype))
    )


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager_and_vmap_equals_the_batch(name):
    cell, params, carry, xs = setup(name, dtype=jnp.float32)
    lengths = jnp.asarray(LENGTHS)
    eager = jr.unroll(cell, params, xs, carry, lengths=lengths)
    close(
        jax.jit(lambda *a: jr.unroll(cell, *a, lengths=lengths))(params, xs, carry),
        eager,
        1e-6,
        1e-6,
    )

    def one(x, c, n):
        return jr.unroll(cell, params, x, c, lengths=n)

    mapped = jax.vmap(one, in_axes=(1, 0, 0), out_axes=(0, 1))(xs, carry, lengths)
    close(mapped, eager, 1e-6, 1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name, x64):
    cell, params, carry, xs = setup(name, num_steps=4)
    loss = loss_fn(cell, lengths=jnp.array([4, 1, 0]))
    check_grads(loss, (params, xs, carry), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_nan_padding_reaches_nothing(name, x64):
    cell, params, carry, xs = setup(name)
    lengths = jnp.asarray(LENGTHS)
    padded = (jnp.arange(T)[:, None] >= lengths[None])[..., None]
    dirty = jnp.where(padded, jnp.nan, xs)
    clean = jnp.where(padded, 0.0, xs)
    grads = jax.grad(loss_fn(cell, lengths=lengths), argnums=(0, 1, 2))
    got, want = grads(params, dirty, carry), grads(params, clean, carry)
    close(got, want)
    assert bool(jnp.all(jnp.where(padded, got[1], 0.0) == 0))
    close(
        jr.unroll(cell, params, dirty, carry, lengths=lengths),
        jr.unroll(cell, params, clean, carry, lengths=lengths),
    )


@pytest.mark.parametrize(
    "options", [{"remat": True}, {"unroll": 3}, {"unroll": True}, {"hoist": True}], ids=str
)
@pytest.mark.parametrize("name", NAMES)
def test_options_change_nothing(name, options, x64):
    cell, params, carry, xs = setup(name)
    base = jax.value_and_grad(loss_fn(cell, lengths=jnp.asarray(LENGTHS), hoist=False))
    other = jax.value_and_grad(loss_fn(cell, lengths=jnp.asarray(LENGTHS), **options))
    close(other(params, xs, carry), base(params, xs, carry), 1e-10, 1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", BPTT)
def test_bptt_equals_autodiff(name, reverse, x64):
    cell, params, carry, xs = setup(name)
    options = {"lengths": jnp.asarray(LENGTHS), "reverse": reverse}
    by_hand = jax.value_and_grad(loss_fn(cell, grad="bptt", **options), argnums=(0, 1, 2))
    by_jax = jax.value_and_grad(loss_fn(cell, **options), argnums=(0, 1, 2))
    close(by_hand(params, xs, carry), by_jax(params, xs, carry), 1e-10, 1e-12)


@pytest.mark.parametrize("name", LINEAR)
def test_parallel_equals_sequential(name, x64):
    cell, params, carry, xs = setup(name)
    mask = jnp.asarray(np.random.default_rng(0).random((T, 3)) < 0.8)
    resets = jnp.asarray(np.random.default_rng(1).random((T, 3)) < 0.3)
    for reverse in (False, True):
        options = {"lengths": jnp.asarray(LENGTHS), "mask": mask, "resets": resets}
        options["reverse"] = reverse
        parallel = jax.value_and_grad(loss_fn(cell, parallel=True, **options))
        sequential = jax.value_and_grad(loss_fn(cell, parallel=False, **options))
        close(parallel(params, xs, carry), sequential(params, xs, carry), 1e-9, 1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_a_derived_cell_runs_its_own_step(name, x64):
    cell, params, carry, xs = setup(name)

    def step(params, carry, x):
        return cell.step(params, jax.tree.map(lambda a: 0.5 * a, carry), x)

    derived = cell._replace(step=step, name="derived")
    loop, ys = carry, []
    for x in xs:
        loop, y = step(params, loop, x)
        ys.append(y)
    close(jr.unroll(derived, params, xs, carry), (loop, jnp.stack(ys)))
    assert not np.allclose(jnp.stack(ys), jr.unroll(cell, params, xs, carry)[1], atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_layers_and_generate_accept_it(name):
    cell, params, carry, xs = setup(name, dtype=jnp.float32)
    rates = {"dropout": 0.2, "zoneout": 0.2}
    if name not in LINEAR:
        rates["recurrent_dropout"] = 0.2
    net = jr.stack([cell, jr.bidirectional(cell, cell)], **rates)
    net_params = net.init(jax.random.key(1), I)
    lengths = jnp.asarray(LENGTHS)
    _, ys = net.apply(net_params, xs, lengths=lengths, key=jax.random.key(2))
    assert ys.shape == (T, 3, 2 * H) and bool(jnp.all(jnp.isfinite(ys)))
    assert bool(jnp.all(ys[2:, 1] == 0))
    plain = jr.stack([cell, jr.bidirectional(cell, cell)])
    close(
        net.apply(net_params, xs, lengths=lengths),
        plain.apply(net_params, xs, lengths=lengths),
        0,
        0,
    )

    table = jax.random.normal(jax.random.key(3), (6, I))
    w_out = jax.random.normal(jax.random.key(4), (H, 6))
    final, tokens, logits = jr.generate(
        cell, params, carry, table[jnp.zeros(3, int)], 4, readout=lambda h: h @ w_out,
        embed=lambda t: table[t], greedy=True,
    )  # fmt: skip
    replay = jr.unroll(
        cell, params, table[jnp.concatenate([jnp.zeros((1, 3), int), tokens[:-1]])], carry
    )
    close((final, logits), (replay[0], replay[1] @ w_out), 1e-5, 1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_keeps_its_dtype(name):
    cell, params, carry, xs = setup(name, dtype=jnp.bfloat16)
    final, ys = jr.unroll(cell, params, xs, carry)
    grads = jax.grad(lambda p: jnp.sum(jr.unroll(cell, p, xs, carry)[1].astype(jnp.float32)))(
        params
    )
    for leaf in jax.tree.leaves((final, ys, grads)):
        assert leaf.dtype == jnp.bfloat16
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))
