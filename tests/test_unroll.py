"""`jr.unroll`: values, masking, reverse, options, gradients, tracing and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
import registry
from jax.test_util import check_grads

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")

CELL_NAMES = list(reference.CELLS)
T, I, H = 6, 3, 4


def setup(name, batch_shape=(2, 3), dtype=jnp.float32, num_steps=T):
    return registry.setup(name, batch_shape, dtype, num_steps, H, I)


def assert_trees_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tol)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def sequence_loss(cell, **options):
    """A scalar of every output and the final carry, so all gradients are exercised."""

    def loss(params, xs, carry):
        final, hs = jr.unroll(cell, params, xs, carry, **options)
        total = jnp.sum(jnp.sin(hs))
        return total + sum(jnp.sum(jnp.cos(x)) for x in jax.tree.leaves(final))

    return loss


def value_and_grads(loss):
    """Jitted value and gradients with respect to (params, xs, carry)."""
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


# Values.


def test_default_carry_equals_explicit_zeros():
    cell, params, _, xs = setup("lstm")
    a = jr.unroll(cell, params, xs)
    b = jr.unroll(cell, params, xs, cell.initial_carry((2, 3)))
    assert_trees_equal(a, b)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_empty_sequence_returns_the_initial_carry(name):
    cell, params, carry, xs = setup(name, num_steps=0)
    final, hs = jr.unroll(cell, params, xs, carry)
    assert hs.shape == (0, 2, 3, H)
    assert_trees_equal(final, carry)
    final, hs = jr.unroll(cell, params, xs, carry, lengths=jnp.zeros((2, 3), jnp.int32))
    assert_trees_equal(final, carry)


# Options that must not change values.


@pytest.mark.parametrize(
    ("num_steps", "size"),
    [(1, 1), (2, 1), (7, 2), (11, 3), (12, 3), (16, 4), (1000, 25), (1009, 31), (2000, 40)],
)
def test_remat_segment_size(num_steps, size):
    """A divisor of T near sqrt(T) where one is close, else isqrt(T) and a remainder."""
    from jaxrnn.unroll import segment_size

    assert segment_size(num_steps) == size


# One segment (1 step); segments of 3 steps and none left over (12); segments of 3 steps
# and 2 left over (11), which run after the segments, or before them in reverse.
@pytest.mark.parametrize(
    ("num_steps", "reverse"), [(1, True), (12, False), (12, True), (11, False), (11, True)]
)
def test_remat_segments_change_nothing(num_steps, reverse, x64):
    """remat's segments, with and without a remainder, forwards and backwards."""
    cell, params, carry, xs = setup("lstm", dtype=jnp.float64, num_steps=num_steps)
    rng = np.random.default_rng(num_steps)
    options = {
        "lengths": jnp.asarray(rng.integers(0, num_steps + 1, (2, 3))),
        "resets": jnp.asarray(rng.random((num_steps, 2, 3)) < 0.2),
        "mask": jnp.asarray(rng.random((num_steps, 2, 3)) < 0.9),
        "reverse": reverse,
    }

    @jax.jit  # one compilation for both
    def run(params, xs, carry):
        return [
            jax.value_and_grad(sequence_loss(cell, remat=remat, **options), (0, 1, 2))(
                params, xs, carry
            )
            for remat in (True, False)
        ]

    (value, grads), (want_value, want_grads) = run(params, xs, carry)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert_trees_close(grads, want_grads, rtol=1e-10, atol=1e-12)


def test_remat_keeps_less_for_the_backward_pass():
    cell = jr.lstm(64)
    params = cell.init(jax.random.key(0), 32)
    xs = jnp.ones((1000, 8, 32))

    def temp_bytes(remat):
        def loss(params):
            return jnp.sum(jr.unroll(cell, params, xs, remat=remat)[0][1])  # the final c only

        compiled = jax.jit(jax.grad(loss)).lower(params).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert temp_bytes(True) * 4 < temp_bytes(False)


def train_step_peak_bytes(remat, chunked=False, classes=32):
    """Peak bytes (XLA's memory_analysis) of a value_and_grad step like bench/run.py's lstm_long.

    An LSTM of 64 units over 2000 steps (batch 8, 32 inputs), a dense head to `classes`
    logits and softmax cross-entropy at every step; with `chunked`, the head and the loss
    run through `jr.map_chunks`.
    """
    cell, head = jr.lstm(64), jr.dense(classes)
    params = {"cell": cell.init(jax.random.key(0), 32), "head": head.init(jax.random.key(1), 64)}
    xs, labels = jnp.ones((2000, 8, 32)), jnp.zeros((2000, 8), jnp.int32)

    def loss(params, xs, labels):
        _, hs = jr.unroll(cell, params["cell"], xs, remat=remat)

        def step_losses(hs, labels):
            logits = head.apply(params["head"], hs)
            return jr.sequence_softmax_cross_entropy(logits, labels, reduction="none")

        return jnp.mean(
            jr.map_chunks(step_losses, hs, labels) if chunked else step_losses(hs, labels)
        )

    m = jax.jit(jax.value_and_grad(loss)).lower(params, xs, labels).compile().memory_analysis()
    return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes


def test_remat_cuts_a_train_step_four_times():
    assert train_step_peak_bytes(remat=True) * 4 < train_step_peak_bytes(remat=False)


@pytest.mark.parametrize("name", ["lstm", "min_gru"])
def test_full_unroll_changes_nothing(name, x64):
    """`unroll=True` reaches `lax.scan` as `unroll=3` does (every cell: test_battery.py)."""
    cell, params, carry, xs = setup(name, (3,), jnp.float64)
    options = {"lengths": jnp.array([6, 2, 0]), "parallel": False}

    @jax.jit
    def run(params, xs, carry):
        return [
            jax.value_and_grad(sequence_loss(cell, unroll=unroll, **options), (0, 1, 2))(
                params, xs, carry
            )
            for unroll in (True, 1)
        ]

    assert_trees_close(*run(params, xs, carry), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("time_axis", [1, -2, 2])
def test_time_axis_equals_transposing(time_axis):
    cell, params, carry, xs = setup("gru")
    lengths = jnp.array([[6, 3, 0], [1, 5, 6]])
    axis = time_axis % xs.ndim
    # moveaxis keeps the batch dims in order, so lengths and carry keep their shapes.
    moved = jnp.moveaxis(xs, 0, axis)
    final, hs = jr.unroll(cell, params, moved, carry, lengths=lengths, time_axis=time_axis)
    want_final, want_hs = jr.unroll(cell, params, xs, carry, lengths=lengths)
    assert hs.shape == (*moved.shape[:-1], H)
    np.testing.assert_array_equal(jnp.moveaxis(hs, axis, 0), want_hs)
    assert_trees_equal(final, want_final)


# Lengths and padding.


def unpadded_runs(cell, params, xs, carry, lengths, reverse=False):
    """Run each sequence of a (T, B, I) batch alone on its valid slice."""
    results = []
    for b, n in enumerate(np.asarray(lengths)):
        c = jax.tree.map(lambda x, b=b: x[b], carry)
        results.append(jr.unroll(cell, params, xs[:n, b], c, reverse=reverse))
    return results


# test_battery.py checks every cell's padded batch against NumPy; here each sequence
# alone, with a tuple carry and a single array, forwards and in reverse.
@pytest.mark.parametrize(("name", "reverse"), [("lstm", False), ("gru_original", True)])
def test_padded_batch_equals_each_sequence_alone(name, reverse, x64):
    cell, params, carry, xs = setup(name, (4,), jnp.float64)
    lengths = jnp.array([6, 2, 0, 5])
    final, hs = jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=reverse)
    for b, (alone_final, alone_hs) in enumerate(
        unpadded_runs(cell, params, xs, carry, lengths, reverse)
    ):
        n = int(lengths[b])
        np.testing.assert_allclose(hs[:n, b], alone_hs, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(hs[n:, b], 0.0)
        assert_trees_close(jax.tree.map(lambda x, b=b: x[b], final), alone_final, rtol=1e-12)


@pytest.mark.parametrize(("name", "reverse"), [("lstm", True), ("gru", False)])
def test_padded_gradients_equal_unpadded_gradients(name, reverse, x64):
    cell, params, carry, xs = setup(name, (3,), jnp.float64)
    lengths = jnp.array([6, 2, 4])

    def padded(params, xs):
        final, hs = jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=reverse)
        return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(jnp.cos(x)) for x in jax.tree.leaves(final))

    def alone(params, xs):
        total = 0.0
        for b, n in enumerate(np.asarray(lengths)):
            c = jax.tree.map(lambda x, b=b: x[b], carry)
            final, hs = jr.unroll(cell, params, xs[:n, b], c, reverse=reverse)
            total = total + jnp.sum(jnp.sin(hs))
            total = total + sum(jnp.sum(jnp.cos(x)) for x in jax.tree.leaves(final))
        return total

    both = jax.jit(lambda *a: [jax.grad(f, argnums=(0, 1))(*a) for f in (padded, alone)])
    assert_trees_close(*both(params, xs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_garbage_padding_never_leaks(name):
    cell, params, carry, xs = setup(name, (3,))
    lengths = jnp.array([6, 2, 0])
    pad = (jnp.arange(T)[:, None] >= lengths[None])[..., None]
    clean = jnp.where(pad, jnp.zeros((), xs.dtype), xs)
    loss = value_and_grads(sequence_loss(cell, lengths=lengths))
    clean_value, clean_grads = loss(params, clean, carry)
    for fill in (np.nan, np.inf, -np.inf, 1e30):
        dirty = jnp.where(pad, jnp.asarray(fill, xs.dtype), xs)
        dirty_value, dirty_grads = loss(params, dirty, carry)
        assert np.isfinite(dirty_value)
        assert dirty_value == clean_value
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(dirty_grads))
        assert_trees_equal(dirty_grads, clean_grads)
        d_xs = dirty_grads[1]
        np.testing.assert_array_equal(jnp.where(pad, d_xs, 0.0), 0.0)
        assert np.any(d_xs[0, 0] != 0)


def test_lengths_equal_to_T_change_nothing():
    # Equal to float32 round-off, not bit for bit: XLA:CPU compiles the masked
    # program's matmuls differently and they may differ in the last bit.
    cell, params, carry, xs = setup("lstm")
    full = jnp.full((2, 3), T)
    for reverse in (False, True):
        assert_trees_close(
            jr.unroll(cell, params, xs, carry, lengths=full, reverse=reverse),
            jr.unroll(cell, params, xs, carry, reverse=reverse),
            rtol=1e-6,
            atol=1e-6,
        )


@pytest.mark.parametrize("reverse", [False, True])
def test_length_zero_returns_the_initial_carry(reverse):
    cell, params, carry, xs = setup("lstm", (2,))
    final, hs = jr.unroll(cell, params, xs, carry, lengths=jnp.array([0, 3]), reverse=reverse)
    assert_trees_equal(jax.tree.map(lambda x: x[0], final), jax.tree.map(lambda x: x[0], carry))
    np.testing.assert_array_equal(hs[:, 0], 0.0)


def test_final_carry_is_the_carry_at_the_last_valid_step():
    cell, params, carry, xs = setup("gru", (3,))
    lengths = jnp.array([1, 4, 6])
    final, _ = jr.unroll(cell, params, xs, carry, lengths=lengths)
    _, all_h = jr.unroll(cell, params, xs, carry)  # gru: h is the carry
    for b, n in enumerate(np.asarray(lengths)):
        np.testing.assert_array_equal(final[b], all_h[n - 1, b])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_reverse_with_lengths_equals_flipping_each_valid_part(name):
    cell, params, carry, xs = setup(name, (4,))
    lengths = np.array([6, 3, 1, 0])
    final, hs = jr.unroll(cell, params, xs, carry, lengths=jnp.asarray(lengths), reverse=True)
    flipped = np.array(xs)
    for b, n in enumerate(lengths):
        flipped[:n, b] = flipped[:n, b][::-1]
    f_final, f_hs = jr.unroll(cell, params, flipped, carry, lengths=jnp.asarray(lengths))
    f_hs = np.array(f_hs)
    for b, n in enumerate(lengths):
        f_hs[:n, b] = f_hs[:n, b][::-1]
    np.testing.assert_allclose(hs, f_hs, rtol=1e-6, atol=1e-7)
    assert_trees_close(final, f_final, rtol=1e-6, atol=1e-7)


def test_reverse_without_lengths_equals_flip_run_flip():
    cell, params, carry, xs = setup("lstm")
    final, hs = jr.unroll(cell, params, xs, carry, reverse=True)
    f_final, f_hs = jr.unroll(cell, params, xs[::-1], carry)
    np.testing.assert_allclose(hs, f_hs[::-1], rtol=1e-6, atol=1e-7)
    assert_trees_close(final, f_final, rtol=1e-6, atol=1e-7)


def test_out_of_range_lengths_under_jit_are_clamped_to_0_and_T():
    cell, params, carry, xs = setup("lstm", (3,))
    run = jax.jit(lambda lengths: jr.unroll(cell, params, xs, carry, lengths=lengths))
    got = run(jnp.array([T + 5, -2, 3]))
    want = run(jnp.array([T, 0, 3]))
    assert_trees_equal(got, want)


# Transformations and tracing.


def test_vmap_equals_the_batched_call():
    cell, params, carry, xs = setup("lstm", (5,))
    lengths = jnp.array([6, 0, 3, 2, 6])

    def one(x, c, n):
        return jr.unroll(cell, params, x, c, lengths=n)

    got = jax.vmap(one, in_axes=(1, 0, 0), out_axes=(0, 1))(xs, carry, lengths)
    want = one(xs, carry, lengths)
    assert_trees_close(got, want, rtol=1e-6, atol=1e-7)


def test_jit_equals_eager():
    cell, params, carry, xs = setup("gru")
    lengths = jnp.array([[6, 3, 0], [1, 5, 6]])
    loss = sequence_loss(cell, lengths=lengths)
    np.testing.assert_allclose(jax.jit(loss)(params, xs, carry), loss(params, xs, carry), 1e-6)


def counting(cell):
    """The same cell, counting how often its step is traced."""
    traces = []

    def step(params, carry, x):
        traces.append(1)
        return cell.step(params, carry, x)

    return cell._replace(step=step), traces


def test_no_retrace_for_new_values_of_the_same_shapes():
    base, params, carry, xs = setup("lstm", (3,))
    cell, traces = counting(base)
    loss = jax.jit(jax.grad(sequence_loss(cell)))
    loss(params, xs, carry)
    count = len(traces)
    loss(jax.tree.map(lambda p: p * 2, params), xs + 1, carry)
    jr.unroll(cell, params, xs + 3, carry)
    eager = len(traces)
    jr.unroll(cell, params, xs - 3, carry)
    assert len(traces) == eager
    assert count == len(traces) - (eager - count)


def test_new_lengths_at_fixed_T_compile_once():
    base, params, carry, xs = setup("gru", (3,))
    cell, traces = counting(base)

    @jax.jit
    def loss(params, lengths):
        return jnp.sum(jr.unroll(cell, params, xs, carry, lengths=lengths)[1])

    loss(params, jnp.array([1, 2, 3]))
    count = len(traces)
    for lengths in ([6, 6, 6], [0, 0, 0], [4, 5, 1], [2, 2, 2]):
        loss(params, jnp.array(lengths))
    assert len(traces) == count
    assert loss._cache_size() == 1
    assert loss._cache_size() == 1


@pytest.mark.slow
def test_compile_once_per_sequence_length_not_per_step():
    """One scan body: the traced program does not grow with T."""
    cell, params, carry, _ = setup("lstm", (2,))
    sizes = []
    for steps in (10, 1000):
        xs = jnp.ones((steps, 2, I))
        text = jax.jit(lambda xs: jr.unroll(cell, params, xs, carry)).lower(xs).as_text()
        sizes.append(len(text))
    assert sizes[1] < 1.05 * sizes[0]


# Gradients.


# bfloat16 for every cell: test_battery.py; lstm in bfloat16 and gru in float16 with
# lengths: test_bptt.py.
@pytest.mark.parametrize(("name", "dtype"), [("lstm", jnp.float16), ("gru", jnp.bfloat16)])
def test_low_precision_keeps_its_dtype(name, dtype):
    cell, params, carry, xs = setup(name, (2,), dtype)
    _, grads = value_and_grads(sequence_loss(cell, lengths=jnp.array([6, 3])))(params, xs, carry)
    assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(dtype)}
    final, hs = jr.unroll(cell, params, xs, carry)
    assert hs.dtype == dtype and {x.dtype for x in jax.tree.leaves(final)} == {jnp.dtype(dtype)}


@pytest.mark.parametrize(
    ("name", "dtype"), [("lstm", jnp.float32), ("gru", jnp.bfloat16), ("rnn_tanh", jnp.bfloat16)]
)
def test_saturated_inputs_stay_finite(name, dtype):
    cell, params, _, xs = setup(name, (2,), dtype)
    carry = cell.initial_carry((2,), dtype)
    xs = xs * 1e4
    final, hs = jr.unroll(cell, params, xs, carry)
    assert np.all(np.abs(np.asarray(hs, np.float32)) <= 1.0)
    assert all(np.all(np.isfinite(np.asarray(x, np.float32))) for x in jax.tree.leaves(final))
    _, grads = value_and_grads(sequence_loss(cell))(params, xs, carry)
    assert all(np.all(np.isfinite(np.asarray(g, np.float32))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh"])
def test_long_sequences_have_finite_gradients(name):
    cell, _, carry, _ = setup(name, (2,))
    xs = jax.random.normal(jax.random.key(1), (1000, 2, I))
    grads = jax.jit(jax.grad(sequence_loss(cell)))(cell.init(jax.random.key(0), I), xs, carry)
    norm = optax_global_norm(grads)
    assert np.isfinite(norm) and norm > 0


def optax_global_norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in jax.tree.leaves(tree))))


# Bad input. The messages must name the argument, the expected and the received.


@pytest.fixture
def lstm_setup():
    return setup("lstm", (2,))


def test_rejects_wrong_feature_size(lstm_setup):
    cell, params, _, _ = lstm_setup
    with pytest.raises(
        ValueError,
        match=r"xs has input_size 7 \(xs.shape\[-1\]\) but params were made for input_size 3",
    ):
        jr.unroll(cell, params, jnp.ones((5, 2, 7)))


def test_rejects_too_few_dims(lstm_setup):
    cell, params, _, _ = lstm_setup
    with pytest.raises(ValueError, match=r"xs must have at least 2 dims.* got shape \(3,\)"):
        jr.unroll(cell, params, jnp.ones(3))


@pytest.mark.parametrize("bad", [jnp.int32, jnp.complex64, jnp.bool_])
def test_rejects_non_float_inputs(lstm_setup, bad):
    cell, params, _, _ = lstm_setup
    with pytest.raises(TypeError, match=r"xs must have a real floating dtype .* got " + r"\w+"):
        jr.unroll(cell, params, jnp.ones((5, 2, 3), bad))


def test_rejects_wrong_carry(lstm_setup):
    cell, params, carry, xs = lstm_setup
    h, c = carry
    with pytest.raises(ValueError, match=r"carry\[1\] has shape \(2, 7\) but .* expects \(2, 4\)"):
        jr.unroll(cell, params, xs, (h, jnp.zeros((2, 7))))
    with pytest.raises(ValueError, match=r"carry\[0\] has shape \(7, 4\) but .* expects \(2, 4\)"):
        jr.unroll(cell, params, xs, (jnp.zeros((7, 4)), c))
    with pytest.raises(
        ValueError, match=r"carry must have the structure .* a tuple of 2 .*; got an array"
    ):
        jr.unroll(cell, params, xs, h)
    with pytest.raises(TypeError, match=r"carry\[0\] must have a real floating dtype"):
        jr.unroll(cell, params, xs, (h.astype(jnp.int32), c))


def test_rejects_bad_lengths(lstm_setup):
    cell, params, _, xs = lstm_setup
    with pytest.raises(ValueError, match=r"lengths has shape \(7,\) but must have .* \(2,\)"):
        jr.unroll(cell, params, xs, lengths=jnp.ones(7, jnp.int32))
    with pytest.raises(TypeError, match=r"lengths must have an integer dtype .* got float32"):
        jr.unroll(cell, params, xs, lengths=jnp.ones(2))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T\] with T=6 .* 3 to 7"):
        jr.unroll(cell, params, xs, lengths=jnp.array([3, 7]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T\] .* -1 to 3"):
        jr.unroll(cell, params, xs, lengths=jnp.array([3, -1]))


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"time_axis": -1}, ValueError, r"time_axis must be an axis of xs other than the last"),
        ({"time_axis": 7}, ValueError, r"time_axis must lie in \[-3, 1\], got 7"),
        ({"time_axis": 1.0}, TypeError, r"time_axis must be an int"),
        ({"unroll": 0}, ValueError, r"unroll must be a positive int, got 0"),
        ({"reverse": "yes"}, TypeError, r"reverse must be a bool, got str"),
        ({"remat": 1}, TypeError, r"remat must be a bool, got int"),
        ({"hoist": "auto"}, TypeError, r"hoist must be a bool, got str"),
        ({"grad": "numeric"}, ValueError, r"grad must be one of 'autodiff', 'bptt'; got 'numeric'"),
    ],
    ids=str,
)
def test_rejects_unknown_options(lstm_setup, options, error, pattern):
    cell, params, _, xs = lstm_setup
    with pytest.raises(error, match=pattern):
        jr.unroll(cell, params, xs, **options)


def test_rejects_mixed_dtypes(lstm_setup, x64):
    cell, params, carry, xs = lstm_setup
    with pytest.raises(
        TypeError, match=r"params\['\w+'\] has dtype float32 but xs has dtype float64"
    ):
        jr.unroll(cell, params, xs.astype(jnp.float64))
    with pytest.raises(TypeError, match=r"carry\[0\] has dtype float64 but xs has dtype float32"):
        jr.unroll(cell, params, xs, jax.tree.map(lambda x: x.astype(jnp.float64), carry))


def test_rejects_bad_params_and_cells(lstm_setup):
    cell, params, _, xs = lstm_setup
    with pytest.raises(ValueError, match=r"missing \[\"params\['w_h'\]\"\]"):
        jr.unroll(cell, {k: v for k, v in params.items() if k != "w_h"}, xs)
    with pytest.raises(ValueError, match=r"params do not match the params that cell 'lstm'"):
        jr.unroll(cell, list(params.values()), xs)
    with pytest.raises(TypeError, match=r"cell must be a jaxrnn Cell"):
        jr.unroll(functools.partial(cell.step), params, xs)
    with pytest.raises(
        ValueError, match=r"params\['w_h'\] has shape \(7, 16\) .* expects \(4, 16\)"
    ):
        jr.unroll(cell, {**params, "w_h": jnp.zeros((7, 16))}, xs)


def test_a_cell_may_close_over_traced_values():
    """Research code builds cells inside jit, e.g. with a dropout mask or a generated weight."""
    base, params, carry, xs = setup("rnn_tanh", (3,))

    @jax.jit
    def run(scale):
        def step(params, h, x):
            return base.step(params, h * scale, x)

        return jr.unroll(base._replace(step=step), params, xs, carry)[1]

    np.testing.assert_allclose(run(jnp.float32(1.0)), jr.unroll(base, params, xs, carry)[1], 1e-6)
    assert not np.allclose(run(jnp.float32(0.5)), run(jnp.float32(1.0)))


# Masks and resets.


def run_segments(cell, params, xs_b, carry_b, bounds, reverse=False):
    """Run each segment [start, stop) of one sequence alone, from the same initial carry."""
    outputs, final = [], carry_b
    for start, stop in bounds:
        final, hs = jr.unroll(cell, params, xs_b[start:stop], carry_b, reverse=reverse)
        outputs.append(hs)
    return final, jnp.concatenate(outputs)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_mask_equals_running_the_kept_steps_alone(name, x64):
    cell, params, carry, xs = setup(name, (2,), jnp.float64)
    keep = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [1, 1]], bool)
    final, hs = jr.unroll(cell, params, xs, carry, mask=jnp.asarray(keep))
    for b in range(2):
        steps = np.flatnonzero(keep[:, b])
        c = jax.tree.map(lambda x, b=b: x[b : b + 1], carry)
        alone_final, alone_hs = jr.unroll(cell, params, xs[steps, b : b + 1], c)
        np.testing.assert_allclose(hs[steps, b], alone_hs[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(hs[~keep[:, b], b], 0.0)
        assert_trees_close(
            jax.tree.map(lambda x, b=b: x[b : b + 1], final), alone_final, rtol=1e-12
        )


def test_mask_matching_lengths_equals_lengths():
    cell, params, carry, xs = setup("lstm", (3,))
    lengths = jnp.array([6, 2, 0])
    mask = jnp.arange(T)[:, None] < lengths[None]
    for reverse in (False, True):
        assert_trees_close(
            jr.unroll(cell, params, xs, carry, mask=mask, reverse=reverse),
            jr.unroll(cell, params, xs, carry, lengths=lengths, reverse=reverse),
            rtol=1e-6,
            atol=1e-6,
        )


def test_nan_at_masked_steps_never_leaks():
    cell, params, carry, xs = setup("gru", (2,))
    mask = jnp.asarray(np.array([[1, 0], [0, 1], [1, 1], [0, 1], [1, 0], [1, 1]], bool))
    dirty = jnp.where(mask[..., None], xs, jnp.nan)
    clean = jnp.where(mask[..., None], xs, 0.0)
    loss = value_and_grads(sequence_loss(cell, mask=mask))
    (value, grads), (want_value, want_grads) = (
        loss(params, dirty, carry),
        loss(params, clean, carry),
    )
    assert np.isfinite(value) and value == want_value
    assert_trees_equal(grads, want_grads)


@pytest.mark.parametrize(("name", "reverse"), [("rnn_tanh", True), ("lstm", False), ("gru", True)])
def test_resets_equal_running_each_segment_alone(name, reverse, x64):
    cell, params, carry, xs = setup(name, (2,), jnp.float64)
    resets = np.zeros((T, 2), bool)
    resets[[2, 3], 0] = True  # row 0 packs segments [0, 2), [2, 3), [3, 6)
    resets[0, 1] = True  # a reset at step 0 changes nothing
    final, hs = jr.unroll(cell, params, xs, carry, resets=jnp.asarray(resets), reverse=reverse)
    for b, bounds in enumerate([[(0, 2), (2, 3), (3, 6)], [(0, 6)]]):
        c = jax.tree.map(lambda x, b=b: x[b], carry)
        seg_final, seg_hs = run_segments(cell, params, xs[:, b], c, bounds, reverse)
        if reverse:  # the last segment processed backwards is the first one
            seg_final, _ = jr.unroll(cell, params, xs[slice(*bounds[0]), b], c, reverse=True)
        np.testing.assert_allclose(hs[:, b], seg_hs, rtol=1e-12, atol=1e-12)
        assert_trees_close(jax.tree.map(lambda x, b=b: x[b], final), seg_final, rtol=1e-12)


def test_resets_past_a_sequence_length_change_nothing():
    cell, params, carry, xs = setup("lstm", (2,))
    lengths = jnp.array([4, 6])
    resets = jnp.zeros((T, 2), bool).at[5, 0].set(True)
    for reverse in (False, True):
        assert_trees_equal(
            jr.unroll(cell, params, xs, carry, lengths=lengths, resets=resets, reverse=reverse),
            jr.unroll(
                cell, params, xs, carry, lengths=lengths, resets=resets & False, reverse=reverse
            ),
        )


def test_gradients_through_resets_match_finite_differences(x64):
    cell, params, carry, xs = setup("lstm", (2,), jnp.float64, num_steps=5)
    resets = jnp.zeros((5, 2), bool).at[2, 0].set(True)
    mask = jnp.ones((5, 2), bool).at[3, 1].set(False)
    loss = jax.jit(sequence_loss(cell, resets=resets, mask=mask, lengths=jnp.array([5, 4])))
    check_grads(loss, (params, xs, carry), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_mask_and_resets_follow_time_axis():
    cell, params, carry, xs = setup("gru", (2,))
    mask = jnp.asarray(np.random.default_rng(0).random((T, 2)) < 0.7)
    resets = jnp.zeros((T, 2), bool).at[3].set(True)
    want = jr.unroll(cell, params, xs, carry, mask=mask, resets=resets)
    final, hs = jr.unroll(
        cell, params, jnp.swapaxes(xs, 0, 1), carry, mask=mask.T, resets=resets.T, time_axis=1
    )
    assert_trees_equal((final, jnp.swapaxes(hs, 0, 1)), want)


def test_rejects_bad_mask_and_resets(lstm_setup):
    cell, params, _, xs = lstm_setup
    with pytest.raises(TypeError, match=r"mask must be a boolean array, got dtype int32"):
        jr.unroll(cell, params, xs, mask=jnp.ones((T, 2), jnp.int32))
    with pytest.raises(ValueError, match=r"resets has shape \(7, 2\) but must have .* \(6, 2\)"):
        jr.unroll(cell, params, xs, resets=jnp.ones((7, 2), bool))
    with pytest.raises(ValueError, match=r"grad='bptt' supports lengths but not mask or resets"):
        jr.unroll(cell, params, xs, mask=jnp.ones((T, 2), bool), grad="bptt")
