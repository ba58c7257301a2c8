"""One battery of cross-cutting checks over every cell of the registry.

Every cell in `registry.CELLS` (the built-ins and two cells written in the tests)
gets every check here; a check that needs a capability (a hand-derived backward, a
linear recurrence, recurrent weights) runs over the cells whose step has it.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry
from jax.test_util import check_grads

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")

NAMES = list(registry.CELLS)
BPTT = [n for n in NAMES if isinstance(registry.cell(n, 4).step, jr.BpttStep)]
LINEAR = [n for n in NAMES if isinstance(registry.cell(n, 4).step, jr.LinearStep)]
T, I, H = 5, 3, 4
LENGTHS = np.array([5, 2, 0])


def setup(name, batch_shape=(3,), dtype=jnp.float64, num_steps=T):
    return registry.setup(name, batch_shape, dtype, num_steps, H, I)


def close(a, b, rtol=1e-12, atol=1e-12, err_msg=""):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(
            np.asarray(x, np.float64), np.asarray(y, np.float64), rtol, atol, err_msg=err_msg
        )


def equal(a, b):
    """Bit for bit, dtypes and tree structure included."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def scalar(final, hs):
    """A scalar of every output and the final carry, so all gradients are exercised."""
    return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(jnp.cos(c)) for c in jax.tree.leaves(final))


def loss_fn(cell, **options):
    def loss(params, xs, carry):
        return scalar(*jr.unroll(cell, params, xs, carry, **options))

    return loss


def value_and_grads(cell, **options):
    """Jitted `(params, xs, carry) -> (loss, grads)` of `loss_fn(cell, **options)`."""
    return jax.jit(jax.value_and_grad(loss_fn(cell, **options), argnums=(0, 1, 2)))


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
    new, y = jax.jit(cell.step)(params, carry, xs[0])
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
    loss = jax.jit(loss_fn(cell, lengths=jnp.array([4, 1, 0])))
    check_grads(loss, (params, xs, carry), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_nan_padding_reaches_nothing(name, x64):
    cell, params, carry, xs = setup(name)
    lengths = jnp.asarray(LENGTHS)
    padded = (jnp.arange(T)[:, None] >= lengths[None])[..., None]
    dirty = jnp.where(padded, jnp.nan, xs)
    clean = jnp.where(padded, 0.0, xs)
    grads = value_and_grads(cell, lengths=lengths)
    got, want = grads(params, dirty, carry), grads(params, clean, carry)
    close(got, want)
    assert bool(jnp.all(jnp.where(padded, got[1][1], 0.0) == 0))
    close(
        jr.unroll(cell, params, dirty, carry, lengths=lengths),
        jr.unroll(cell, params, clean, carry, lengths=lengths),
    )


# unroll=True goes to lax.scan as unroll=3 does: test_unroll.py checks it on two cells.
OPTIONS = [{"remat": True}, {"unroll": 3}, {"hoist": True}]


@pytest.mark.parametrize("name", NAMES)
def test_options_change_nothing(name, x64):
    cell, params, carry, xs = setup(name)
    lengths = jnp.asarray(LENGTHS)

    @jax.jit  # one compilation for all of them
    def run(params, xs, carry):
        return [
            jax.value_and_grad(loss_fn(cell, lengths=lengths, **options), (0, 1, 2))(
                params, xs, carry
            )
            for options in [{"hoist": False}, *OPTIONS]
        ]

    base, *others = run(params, xs, carry)
    for options, other in zip(OPTIONS, others, strict=True):
        close(other, base, 1e-10, 1e-12, err_msg=str(options))


# Each lengths array holds both 0 and T.
BPTT_CASES = [((), None, True), ((3,), [5, 2, 0], False), ((2, 3), [[5, 2, 0], [4, 5, 1]], True)]


@pytest.mark.parametrize(
    "batch_shape, lengths, reverse",
    BPTT_CASES,
    ids=[
        f"{b}-{'lengths' if n else 'nolengths'}-{'rev' if r else 'fwd'}" for b, n, r in BPTT_CASES
    ],
)
@pytest.mark.parametrize("name", BPTT)
def test_bptt_equals_autodiff(name, batch_shape, lengths, reverse, x64):
    cell, params, carry, xs = setup(name, batch_shape)
    lengths = None if lengths is None else jnp.asarray(lengths)

    def outputs_and_grads(grad):
        def loss(params, xs, carry):
            outputs = jr.unroll(
                cell, params, xs, carry, lengths=lengths, reverse=reverse, grad=grad
            )
            return scalar(*outputs), outputs

        run = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)
        (value, outputs), grads = jax.jit(run)(params, xs, carry)
        return outputs, (value, grads)

    (outputs, grads), (want_outputs, want_grads) = map(outputs_and_grads, ("bptt", "autodiff"))
    equal(outputs, want_outputs)
    dtypes = functools.partial(jax.tree.map, lambda a: a.dtype)
    assert dtypes(grads) == dtypes(want_grads)
    close(grads, want_grads, 1e-10, 1e-12)


@pytest.mark.parametrize("name", LINEAR)
def test_parallel_equals_sequential(name, x64):
    cell, params, carry, xs = setup(name)
    mask = jnp.asarray(np.random.default_rng(0).random((T, 3)) < 0.8)
    resets = jnp.asarray(np.random.default_rng(1).random((T, 3)) < 0.3)
    flags = {"lengths": jnp.asarray(LENGTHS), "mask": mask, "resets": resets}

    @jax.jit
    def run(params, xs, carry):
        return {
            (reverse, parallel): jax.value_and_grad(
                loss_fn(cell, parallel=parallel, reverse=reverse, **flags), (0, 1, 2)
            )(params, xs, carry)
            for reverse in (False, True)
            for parallel in (False, True)
        }

    got = run(params, xs, carry)
    for reverse in (False, True):
        close(got[reverse, True], got[reverse, False], 1e-9, 1e-10, err_msg=f"reverse={reverse}")


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
    lengths = jnp.asarray(LENGTHS)
    # Recurrent dropout and zoneout wrap the cell's own carry and step; dropout acts on
    # the layers' outputs whatever the cell (tests/test_layers.py).
    rates = {"zoneout": 0.2}
    if name not in LINEAR:
        rates["recurrent_dropout"] = 0.2
    regularised = jr.stack([cell], **rates)
    _, ys = regularised.apply({"layers": [params]}, xs, lengths=lengths, key=jax.random.key(2))
    assert ys.shape == (T, 3, H) and bool(jnp.all(jnp.isfinite(ys)))
    assert bool(jnp.all(ys[2:, 1] == 0))

    net = jr.stack([cell, jr.bidirectional(cell, cell)], dropout=0.2, **rates)
    net_params = net.init(jax.random.key(1), I)
    plain = jr.stack([cell, jr.bidirectional(cell, cell)])
    _, ys = plain.apply(net_params, xs, lengths=lengths)
    assert ys.shape == (T, 3, 2 * H) and bool(jnp.all(jnp.isfinite(ys)))
    assert bool(jnp.all(ys[2:, 1] == 0))
    equal(net.apply(net_params, xs, lengths=lengths), plain.apply(net_params, xs, lengths=lengths))

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

    def loss(params):
        final, ys = jr.unroll(cell, params, xs, carry)
        return jnp.sum(ys.astype(jnp.float32)), (final, ys)

    (_, outputs), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    for leaf in jax.tree.leaves((outputs, grads)):
        assert leaf.dtype == jnp.bfloat16
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))
