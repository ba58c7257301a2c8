"""`unroll(..., grad="bptt")`: the hand-derived backward pass equals autodiff.

Every built-in cell, every batch layout, lengths (0 and T included), reverse,
NaN padding, float64 to 1e-10 and float32 to round-off; values bit-identical;
jit, vmap, composition inside larger losses and second order.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_cells import CELL_NAMES, make, random_carry

import jaxrnn as jr
from jaxrnn import bptt

T, I, H = 7, 3, 4

# (batch_shape, lengths or None, reverse); each lengths array holds both 0 and T.
# With the float32 test (no lengths, forward) every combination is covered.
CASES = [
    ((), None, True),
    ((3,), [0, T, 3], False),
    ((2, 3), [[T, 3, 0], [6, T, 1]], True),
]


def case_id(case):
    batch_shape, lengths, reverse = case
    lens = "nolengths" if lengths is None else "lengths"
    return f"batch{batch_shape}-{lens}-{'reverse' if reverse else 'forward'}"


def setup(name, batch_shape, dtype=jnp.float64, seed=0):
    cell = make(name, H)
    kp, kb, kc, kx = jax.random.split(jax.random.key(seed), 4)
    params = cell.init(kp, I, dtype)
    # Nonzero biases so that every term of the backward equations is exercised.
    params = {k: v + 0.3 * jax.random.normal(kb, v.shape, dtype) for k, v in params.items()}
    carry = random_carry(cell, kc, batch_shape, dtype)
    xs = jax.random.normal(kx, (T, *batch_shape, I), dtype)
    return cell, params, carry, xs


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
    """Jitted `(params, xs, carry, lengths) -> ((final, hs), (dparams, dxs, dcarry))`."""
    value_and_grad = jax.value_and_grad(loss_fn(cell, grad, reverse), (0, 1, 2), has_aux=True)

    @jax.jit
    def run(params, xs, carry, lengths=None):
        (_, outputs), grads = value_and_grad(params, xs, carry, lengths)
        return outputs, grads

    return run


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


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_equals_autodiff_in_float64(name, case, x64):
    batch_shape, lengths, reverse = case
    cell, params, carry, xs = setup(name, batch_shape)
    if lengths is not None:
        lengths = jnp.asarray(lengths, jnp.int32)
    want_out, want = outputs_and_grads(cell, "autodiff", reverse)(params, xs, carry, lengths)
    got_out, got = outputs_and_grads(cell, "bptt", reverse)(params, xs, carry, lengths)
    assert_trees_equal(got_out, want_out)
    for part, w, g in zip(("params", "xs", "carry"), want, got, strict=True):
        assert max_relative_difference(w, g) < 1e-10, part


@pytest.mark.parametrize("name", CELL_NAMES)
def test_equals_autodiff_in_float32(name):
    cell, params, carry, xs = setup(name, (2, 3), jnp.float32)
    want_out, want = outputs_and_grads(cell, "autodiff")(params, xs, carry)
    got_out, got = outputs_and_grads(cell, "bptt")(params, xs, carry)
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
    want_out, want = outputs_and_grads(cell, "autodiff")(params, xs, carry, lengths)
    got_out, got = outputs_and_grads(cell, "bptt")(params, xs, carry, lengths)
    assert_trees_equal(got_out, want_out)
    assert all(g.dtype == dtype for g in jax.tree.leaves(got))
    assert max_relative_difference(want, got) < 5e-2


def test_relu_derivative_at_zero_matches_jax():
    # Zero weights and inputs put every pre-activation at exactly 0, where
    # jax.nn.relu's derivative is 0.
    cell = jr.rnn(H, nonlinearity="relu")
    params = jax.tree.map(jnp.zeros_like, cell.init(jax.random.key(0), I))
    args = (params, jnp.zeros((T, 2, I)), cell.initial_carry((2,)))
    want = outputs_and_grads(cell, "autodiff")(*args)
    got = outputs_and_grads(cell, "bptt")(*args)
    assert_trees_equal(got, want)


# Masking.


@pytest.mark.parametrize("name", CELL_NAMES)
def test_padding_never_reaches_values_or_gradients(name):
    batch_shape, lengths = (2, 3), jnp.array([[1, 0, T], [T, 5, 2]])
    cell, params, carry, xs = setup(name, batch_shape, jnp.float32)
    pad = padded(lengths, batch_shape)
    clean = jnp.where(pad, jnp.zeros((), xs.dtype), xs)
    for reverse in (False, True):
        run = outputs_and_grads(cell, "bptt", reverse)
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

    for leaf in jax.tree.leaves(jax.grad(loss)(carry)):
        np.testing.assert_array_equal(leaf[0], scale)


def test_all_lengths_equal_to_T_equal_no_lengths(x64):
    # Equal up to round-off only: XLA fuses the masked scan differently, as for autodiff.
    cell, params, carry, xs = setup("lstm", (3,))
    run = outputs_and_grads(cell, "bptt", True)
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
    grads = jax.jit(outputs_and_grads(cell, "bptt", True).__wrapped__)
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
    top = make("gru_original", 5)
    top_params = top.init(jax.random.key(7), H, jnp.float64)
    head = jax.random.normal(jax.random.key(8), (5, 2), jnp.float64)
    lengths = jnp.array([T, 4, 0])

    def loss(grad):
        def value(params, top_params, head, xs):
            xs = jnp.swapaxes(xs, 0, 1)
            _, hs = jr.unroll(cell, params, xs, lengths=lengths, time_axis=1, grad=grad)
            _, top_hs = jr.unroll(top, top_params, hs, lengths=lengths, time_axis=1, reverse=True)
            return jnp.sum(jnp.tanh(top_hs @ head) ** 2)

        return jax.jit(jax.grad(value, (0, 1, 2, 3)))(params, top_params, head, xs)

    assert max_relative_difference(loss("autodiff"), loss("bptt")) < 1e-10


def test_second_order_equals_autodiff(x64):
    # A Hessian-vector product: reverse mode through the hand-derived backward.
    cell, params, carry, xs = setup("lstm", (2,))
    lengths = jnp.array([T, 3])
    direction = jax.tree.map(jnp.cos, params)

    def hvp(grad):
        loss = loss_fn(cell, grad, reverse=True)

        def directional(params):
            g = jax.grad(lambda p: loss(p, xs, carry, lengths)[0])(params)
            return sum(jnp.vdot(g[k], direction[k]) for k in g)

        return jax.jit(jax.grad(directional))(params)

    assert max_relative_difference(hvp("autodiff"), hvp("bptt")) < 1e-10


def test_forward_mode_raises_and_points_to_autodiff():
    cell, params, carry, xs = setup("lstm", (2,), jnp.float32)
    with pytest.raises(TypeError, match=r"forward-mode .*use grad='autodiff'"):
        jax.jvp(lambda p: jr.unroll(cell, p, xs, carry, grad="bptt")[1], (params,), (params,))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_hessian_through_bptt_equals_autodiff(name, x64):
    cell, params, carry, xs = setup(name, (2,))

    def loss(b, grad):
        return jnp.sum(jr.unroll(cell, {**params, "b": b}, xs, carry, grad=grad)[1] ** 2)

    by_hand = jax.hessian(loss)(params["b"], "bptt")
    np.testing.assert_allclose(by_hand, jax.hessian(loss)(params["b"], "autodiff"), 1e-10, 1e-12)


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
    assert isinstance(make(name).step, jr.BpttStep)


def test_rule_called_directly_equals_unroll():
    cell, params, carry, xs = setup("gru", (2, 3), jnp.float32)
    lengths = jnp.array([[T, 1, 0], [2, 3, 4]])
    assert_trees_equal(
        bptt.bptt(cell.step, params, xs, carry, lengths, True),
        jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=True),
    )
