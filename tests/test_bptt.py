"""`unroll(..., grad="bptt")`: the hand-derived backward pass equals autodiff.

`test_battery.py` checks every built-in cell in float64 over every batch layout, with
lengths (0 and T included), forwards and in reverse: values bit-identical, gradients
to 1e-10. Here: float32 to round-off, half precision, NaN padding, jit, vmap,
composition inside larger losses and second order.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
import registry

import jaxrnn as jr
from jaxrnn import bptt

pytestmark = pytest.mark.usefixtures("few_optimizations")

CELL_NAMES = list(reference.CELLS)
T, I, H = 7, 3, 4


def setup(name, batch_shape, dtype=jnp.float64):
    # Nonzero biases so that every term of the backward equations is exercised.
    return registry.setup(name, batch_shape, dtype, T, H, I, scale=0.3)


def padded(lengths, batch_shape):
    """`(T, *batch, 1)` bools, True at the padded steps."""
    steps = np.arange(T).reshape((T,) + (1,) * len(batch_shape) + (1,))
    return steps >= np.asarray(lengths)[None, ..., None]


def loss_fn(cell, grad, reverse=False):
    """`loss(params, xs, carry, lengths) -> (scalar, (final, hs))`.

    The scalar involves every output and the final carry, weighted so that no
    term cancels.
    """

    def loss(params, xs, carry, lengths=None):
        final, hs = jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=reverse, grad=grad)
        weights = jnp.linspace(0.5, 1.5, hs.size, dtype=hs.dtype).reshape(hs.shape)
        total = jnp.sum(jnp.sin(hs) * weights)
        total = total + sum(jnp.sum(jnp.cos(c)) for c in jax.tree.leaves(final))
        return total, (final, hs)

    return loss


def outputs_and_grads(cell, grad, reverse=False):
    """`(params, xs, carry, lengths) -> ((final, hs), (dparams, dxs, dcarry))`."""
    value_and_grad = jax.value_and_grad(loss_fn(cell, grad, reverse), (0, 1, 2), has_aux=True)

    def run(params, xs, carry, lengths=None):
        (_, outputs), grads = value_and_grad(params, xs, carry, lengths)
        return outputs, grads

    return run


def by_hand_and_by_jax(cell, reverse=False):
    """Jitted `outputs_and_grads` with grad='bptt' and with grad='autodiff', in one program."""
    runs = [outputs_and_grads(cell, grad, reverse) for grad in ("bptt", "autodiff")]
    return jax.jit(lambda *args: [run(*args) for run in runs])


def max_relative_difference(want, got):
    """Over the leaves, `max |got - want| / max |want|`, one array at a time."""
    worst = 0.0
    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        assert w.shape == g.shape and w.dtype == g.dtype
        w, g = np.asarray(w, np.float64), np.asarray(g, np.float64)
        if w.size and np.any(w != 0):
            worst = max(worst, float(np.max(np.abs(g - w)) / np.max(np.abs(w))))
        else:
            worst = max(worst, float(np.max(np.abs(g), initial=0.0)))
    return worst


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# Equality with autodiff.


@pytest.mark.parametrize("name", CELL_NAMES)
def test_equals_autodiff_in_float32(name):
    cell, params, carry, xs = setup(name, (2, 3), jnp.float32)
    (got_out, got), (want_out, want) = by_hand_and_by_jax(cell)(params, xs, carry)
    assert_trees_equal(got_out, want_out)
    for part, w, g in zip(("params", "xs", "carry"), want, got, strict=True):
        assert max_relative_difference(w, g) < 1e-5, part


@pytest.mark.parametrize(
    ("name", "dtype"), [("lstm", jnp.bfloat16), ("gru", jnp.float16)], ids=["lstm", "gru"]
)
def test_half_precision_keeps_dtype_and_agrees(name, dtype):
    cell, params, carry, xs = setup(name, (3,), jnp.float32)
    params, carry, xs = jax.tree.map(lambda a: a.astype(dtype), (params, carry, xs))
    lengths = jnp.array([T, 4, 0])
    (got_out, got), (want_out, want) = by_hand_and_by_jax(cell)(params, xs, carry, lengths)
    assert_trees_equal(got_out, want_out)
    assert all(g.dtype == dtype for g in jax.tree.leaves(got))
    assert max_relative_difference(want, got) < 5e-2


def test_relu_derivative_at_zero_matches_jax():
    # Zero weights and inputs put every pre-activation at exactly 0, where
    # jax.nn.relu's derivative is 0.
    cell = jr.rnn(H, nonlinearity="relu")
    params = jax.tree.map(jnp.zeros_like, cell.init(jax.random.key(0), I))
    args = (params, jnp.zeros((T, 2, I)), cell.initial_carry((2,)))
    got, want = by_hand_and_by_jax(cell)(*args)
    assert_trees_equal(got, want)


# Masking.


@pytest.mark.parametrize("name", CELL_NAMES)
def test_padding_never_reaches_values_or_gradients(name):
    batch_shape, lengths = (2, 3), jnp.array([[1, 0, T], [T, 5, 2]])
    cell, params, carry, xs = setup(name, batch_shape, jnp.float32)
    pad = padded(lengths, batch_shape)
    clean = jnp.where(pad, jnp.zeros((), xs.dtype), xs)
    for reverse in (False, True):
        run = jax.jit(outputs_and_grads(cell, "bptt", reverse))
        want = run(params, clean, carry, lengths)
        for fill in (np.nan, np.inf, 1e30):
            dirty = jnp.where(pad, jnp.asarray(fill, xs.dtype), xs)
            got = run(params, dirty, carry, lengths)
            assert_trees_equal(got, want)
        _, (_, dxs, _) = got
        assert bool(jnp.all(jnp.where(pad, dxs, 0) == 0))
        assert bool(jnp.all(jnp.isfinite(dxs))) and bool(jnp.any(dxs != 0))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_length_zero_passes_the_carry_gradient_straight_through(name, x64):
    cell, params, carry, xs = setup(name, (2,))
    scale = jnp.arange(1.0, H + 1)

    def loss(carry):
        final, _ = jr.unroll(cell, params, xs, carry, lengths=jnp.array([0, T]), grad="bptt")
        return sum(jnp.sum(c[0] * scale) + jnp.sum(c[1] ** 2) for c in jax.tree.leaves(final))

    for leaf in jax.tree.leaves(jax.jit(jax.grad(loss))(carry)):
        np.testing.assert_array_equal(leaf[0], scale)


def test_all_lengths_equal_to_T_equal_no_lengths(x64):
    # Equal up to round-off only: XLA fuses the masked scan differently, as for autodiff.
    cell, params, carry, xs = setup("lstm", (3,))
    run = jax.jit(outputs_and_grads(cell, "bptt", True))
    full = run(params, xs, carry, jnp.full((3,), T))
    assert max_relative_difference(run(params, xs, carry), full) < 1e-13


# Transformations.


@pytest.mark.parametrize("name", CELL_NAMES)
def test_jit_equals_eager_and_new_lengths_do_not_retrace(name):
    cell, params, carry, xs = setup(name, (3,), jnp.float32)
    loss = loss_fn(cell, "bptt", reverse=True)
    eager = jax.grad(lambda *a: loss(*a)[0], (0, 1, 2))
    jitted = jax.jit(eager)
    lengths = jnp.array([T, 2, 0])
    assert (
        max_relative_difference(
            eager(params, xs, carry, lengths), jitted(params, xs, carry, lengths)
        )
        < 1e-6
    )
    for other in ([1, 1, 1], [3, T, 5]):
        jitted(params, xs, carry, jnp.array(other))
    assert jitted._cache_size() == 1


@pytest.mark.parametrize("name", CELL_NAMES)
def test_vmap_equals_a_loop_over_examples(name):
    cell, params, carry, xs = setup(name, (4,), jnp.float32)
    lengths = jnp.array([T, 3, 0, 5])
    grads = jax.jit(outputs_and_grads(cell, "bptt", True))
    one_example = functools.partial(grads, params)
    batched = jax.vmap(one_example, in_axes=(1, 0, 0))(xs, carry, lengths)
    for b in range(4):
        row = functools.partial(lambda b, a: a[b], b)
        got = jax.tree.map(row, batched)
        want = one_example(xs[:, b], jax.tree.map(row, carry), lengths[b])
        assert max_relative_difference(want, got) < 1e-5


def test_inside_a_larger_loss(x64):
    # A bptt layer, an autodiff layer on its outputs and a dense head, time on axis 1.
    cell, params, _, xs = setup("gru_original", (3,))
    top = registry.cell("gru_original", 5)
    top_params = top.init(jax.random.key(7), H, jnp.float64)
    head = jax.random.normal(jax.random.key(8), (5, 2), jnp.float64)
    lengths = jnp.array([T, 4, 0])

    def value(params, top_params, head, xs, grad):
        xs = jnp.swapaxes(xs, 0, 1)
        _, hs = jr.unroll(cell, params, xs, lengths=lengths, time_axis=1, grad=grad)
        _, top_hs = jr.unroll(top, top_params, hs, lengths=lengths, time_axis=1, reverse=True)
        return jnp.sum(jnp.tanh(top_hs @ head) ** 2)

    @jax.jit  # one compilation for both
    def grads(*args):
        return [jax.grad(value, (0, 1, 2, 3))(*args, grad) for grad in ("autodiff", "bptt")]

    assert max_relative_difference(*grads(params, top_params, head, xs)) < 1e-10


def test_second_order_equals_autodiff(x64):
    # A Hessian-vector product: reverse mode through the hand-derived backward.
    cell, params, carry, xs = setup("lstm", (2,))
    lengths = jnp.array([T, 3])
    direction = jax.tree.map(jnp.cos, params)

    def hvp(params, grad):
        loss = loss_fn(cell, grad, reverse=True)

        def directional(params):
            g = jax.grad(lambda p: loss(p, xs, carry, lengths)[0])(params)
            return sum(jnp.vdot(g[k], direction[k]) for k in g)

        return jax.grad(directional)(params)

    both = jax.jit(lambda params: [hvp(params, grad) for grad in ("autodiff", "bptt")])
    assert max_relative_difference(*both(params)) < 1e-10


def test_forward_mode_raises_and_points_to_autodiff():
    cell, params, carry, xs = setup("lstm", (2,), jnp.float32)
    with pytest.raises(TypeError, match=r"forward-mode .*use grad='autodiff'"):
        jax.jvp(lambda p: jr.unroll(cell, p, xs, carry, grad="bptt")[1], (params,), (params,))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_hessian_through_bptt_equals_autodiff(name, x64):
    cell, params, carry, xs = setup(name, (2,))

    def loss(b, grad):
        return jnp.sum(jr.unroll(cell, {**params, "b": b}, xs, carry, grad=grad)[1] ** 2)

    both = jax.jit(lambda b: [jax.hessian(loss)(b, grad) for grad in ("bptt", "autodiff")])
    np.testing.assert_allclose(*both(params["b"]), 1e-10, 1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_zero_steps(name, x64):
    cell, params, carry, _ = setup(name, (2,))
    xs = jnp.zeros((0, 2, I))
    final, hs = jr.unroll(cell, params, xs, carry, grad="bptt")
    assert hs.shape == (0, 2, H)
    assert_trees_equal(final, carry)
    grads = jax.grad(lambda p: jnp.sum(jr.unroll(cell, p, xs, carry, grad="bptt")[1]))(params)
    assert all(jnp.all(g == 0) for g in jax.tree.leaves(grads))


def test_a_derived_cell_never_runs_the_built_in_backward(x64):
    cell, params, carry, xs = setup("lstm", (2,))
    derived = cell._replace(step=lambda p, c, x: cell.step(p, (c[0], 0.5 * c[1]), x))
    with pytest.raises(ValueError, match=r"grad='bptt' needs a cell whose step is a .*BpttStep"):
        jr.unroll(derived, params, xs, carry, grad="bptt")


# The rules.


@pytest.mark.parametrize("name", CELL_NAMES)
def test_every_built_in_cell_has_a_rule(name):
    assert isinstance(registry.cell(name, H).step, jr.BpttStep)


def test_rule_called_directly_equals_unroll():
    cell, params, carry, xs = setup("gru", (2, 3), jnp.float32)
    lengths = jnp.array([[T, 1, 0], [2, 3, 4]])
    assert_trees_equal(
        bptt.bptt(cell.step, params, xs, carry, lengths, True),
        jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=True),
    )
