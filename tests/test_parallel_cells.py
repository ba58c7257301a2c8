"""minGRU, minLSTM and LRU: equations, parallel = sequential, masking, layers, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_parallel as ref
import registry

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")

NAMES = list(ref.CELLS)
T, I, H = 7, 3, 4


def make(name):
    return registry.cell(name, H)


def setup(name, batch_shape=(3,), dtype=jnp.float64):
    # Nonzero biases and perturbed weights, so every term of the equations matters.
    return registry.setup(name, batch_shape, dtype, T, H, I, scale=0.3)


def flags(batch_shape, seed=1):
    """Lengths with a full, a short and an empty sequence; a mask and resets."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, T + 1, batch_shape)
    if batch_shape:
        lengths = lengths.reshape(-1)
        lengths[0], lengths[-1] = T, 0
        lengths = lengths.reshape(batch_shape)
    mask = rng.random((T, *batch_shape)) < 0.8
    resets = rng.random((T, *batch_shape)) < 0.3
    return {
        "lengths": jnp.asarray(lengths),
        "mask": jnp.asarray(mask),
        "resets": jnp.asarray(resets),
    }


def sequence_loss(cell, **options):
    def loss(params, xs, carry):
        final, hs = jr.unroll(cell, params, xs, carry, **options)
        total = jnp.sum(jnp.sin(hs))
        return total + sum(jnp.sum(jnp.cos(x)) for x in jax.tree.leaves(final))

    return loss


def assert_trees_close(a, b, rtol=1e-10, atol=1e-10):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# Values against the papers' equations.


# Every cell on one batch shape, two cells on () too; (3,) is the battery's, where the
# parallel form equals the sequential one, which equals NumPy.
NUMPY_CASES = [(name, (2, 3)) for name in NAMES] + [("min_gru", ()), ("lru", ())]


@pytest.mark.parametrize("name, batch_shape", NUMPY_CASES, ids=str)
def test_parallel_unroll_matches_numpy(name, batch_shape, x64):
    cell, params, carry, xs = setup(name, batch_shape)
    final, hs = jr.unroll(cell, params, xs, carry, parallel=True)
    want_final, want_hs = ref.unroll(name, params, xs, carry)
    assert hs.shape == (T, *batch_shape, H) and hs.dtype == jnp.float64
    assert_trees_close(hs, want_hs, rtol=1e-12, atol=1e-12)
    assert_trees_close(final, want_final, rtol=1e-12, atol=1e-12)


# The parallel form equals the sequential one, values and gradients. test_battery.py
# checks every cell with all the options at once, in both directions; here each option
# alone, spread over the three kinds of scan (log space, linear space, complex).
OPTION_SETS = [
    ("min_gru", (), False),
    ("lru", ("lengths",), True),
    ("min_lstm", ("mask",), False),
    ("min_gru_linear", ("resets",), True),
    ("min_lstm_linear", ("lengths", "mask", "resets"), True),
    ("lru", ("lengths", "mask", "resets"), False),
]


@pytest.mark.parametrize(
    "name, options, reverse",
    OPTION_SETS,
    ids=[f"{n}-{'+'.join(o)}{'-rev' if r else ''}" for n, o, r in OPTION_SETS],
)
def test_parallel_equals_sequential_values_and_gradients(name, options, reverse, x64):
    cell, params, carry, xs = setup(name, (2, 3))
    chosen = {k: v for k, v in flags((2, 3)).items() if k in options}

    @jax.jit  # one compilation for both
    def run(params, xs, carry):
        return [
            jax.value_and_grad(
                sequence_loss(cell, parallel=parallel, reverse=reverse, **chosen), (0, 1, 2)
            )(params, xs, carry)
            for parallel in (False, True)
        ]

    assert_trees_close(*run(params, xs, carry))


@pytest.mark.parametrize("batch_shape", [(), (2, 3)], ids=str)
@pytest.mark.parametrize("name", ["min_gru", "lru"])
def test_parallel_equals_sequential_for_every_batch_shape(name, batch_shape, x64):
    cell, params, carry, xs = setup(name, batch_shape)
    options = {**flags(batch_shape), "reverse": True}
    sequential = jr.unroll(cell, params, xs, carry, parallel=False, **options)
    parallel = jr.unroll(cell, params, xs, carry, parallel=True, **options)
    assert_trees_close(sequential, parallel)


@pytest.mark.parametrize("name", NAMES)
def test_padding_emits_zeros_and_returns_the_carry_at_the_last_valid_step(name, x64):
    cell, params, carry, xs = setup(name)
    lengths = jnp.array([T, 3, 0])
    final, hs = jr.unroll(cell, params, xs, carry, lengths=lengths, parallel=True)
    assert not np.any(hs[3:, 1]) and not np.any(hs[:, 2])
    short_final, short_hs = ref.unroll(name, params, xs[:3, 1], jax.tree.map(lambda c: c[1], carry))
    assert_trees_close(hs[:3, 1], short_hs, rtol=1e-12, atol=1e-12)
    assert_trees_close(jax.tree.map(lambda c: c[1], final), short_final, rtol=1e-12, atol=1e-12)
    assert_trees_close(jax.tree.map(lambda c: c[2], final), jax.tree.map(lambda c: c[2], carry))


@pytest.mark.parametrize("name", NAMES)
def test_nan_padding_reaches_neither_values_nor_gradients(name, x64):
    cell, params, carry, xs = setup(name)
    lengths = jnp.array([T, 3, 0])
    padding = jnp.arange(T)[:, None, None] >= lengths[None, :, None]
    loss = jax.jit(jax.value_and_grad(sequence_loss(cell, lengths=lengths, parallel=True), (0, 1)))
    clean = loss(params, jnp.where(padding, 0.0, xs), carry)
    for fill in (jnp.nan, jnp.inf, 1e30):
        value, (g_params, g_xs) = loss(params, jnp.where(padding, fill, xs), carry)
        assert np.isfinite(value)
        assert_trees_close((value, g_params), (clean[0], clean[1][0]), rtol=1e-12, atol=1e-12)
        assert not np.any(np.where(padding, g_xs, 0.0))


def test_reset_at_every_step_restarts_from_the_initial_carry(x64):
    cell, params, carry, xs = setup("min_lstm")
    resets = jnp.ones((T, 3), bool)
    _, hs = jr.unroll(cell, params, xs, carry, resets=resets, parallel=True)
    for t in range(T):
        _, h = cell.step(params, carry, xs[t])
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)


def test_default_carry_is_zeros_and_float32_parallel_is_close_to_sequential():
    cell, params, _, xs = setup("lru", dtype=jnp.float32)
    zeros = cell.initial_carry((3,))
    for parallel in (False, True):
        implicit = jr.unroll(cell, params, xs, parallel=parallel)
        explicit = jr.unroll(cell, params, xs, zeros, parallel=parallel)
        assert_trees_close(implicit, explicit, rtol=0, atol=0)
    sequential = jr.unroll(cell, params, xs, parallel=False)
    parallel = jr.unroll(cell, params, xs, parallel=True)
    assert parallel[1].dtype == jnp.float32 and parallel[0][0].dtype == jnp.float32
    assert_trees_close(sequential, parallel, rtol=1e-5, atol=1e-5)


def test_default_is_default_parallel_for_linear_cells_and_sequential_otherwise(x64):
    cell, params, carry, xs = setup("min_gru")
    chosen = jr.unroll(cell, params, xs, carry)
    explicit = jr.unroll(cell, params, xs, carry, parallel=jr.default_parallel())
    assert_trees_close(chosen, explicit, rtol=0, atol=0)
    assert jr.default_parallel() == (jax.default_backend() != "cpu")


# Gradients against finite differences.


# Long sequences and large inputs.


# The parallel form compiles slowly (seconds), so one cell checks it at full length.
@pytest.mark.parametrize(
    "name, parallel", [("min_lstm", True), ("min_gru", False), ("lru", False)], ids=str
)
def test_long_sequence_with_large_inputs_is_finite(name, parallel):
    cell = make(name)
    params = cell.init(jax.random.key(0), 2)
    xs = 1e3 * jax.random.normal(jax.random.key(1), (16384, 2))

    def loss(params, xs):
        return jnp.mean(jr.unroll(cell, params, xs, parallel=parallel)[1] ** 2)

    value, grads = jax.jit(jax.value_and_grad(loss))(params, xs)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_log_space_keeps_a_long_product_of_small_decays_exact(x64):
    # 2000 decays of 0.5: the product, 2**-2000, underflows float64 in linear space.
    log_a = jnp.full((2000, 1), jnp.log(0.5))
    log_b = jnp.full((2000, 1), 0.0)
    hs = jr.linear_scan(log_a, log_b, jnp.ones(1), log_space=True)
    np.testing.assert_allclose(hs[-1], 2.0, rtol=1e-12)
    assert np.all(np.isfinite(hs))


# The linear scan itself.


@pytest.mark.parametrize("log_space", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_linear_scan_matches_a_python_loop(reverse, log_space, x64):
    k_a, k_b, k_h, k_r = jax.random.split(jax.random.key(3), 4)
    a = jax.random.uniform(k_a, (9, 2, 3), jnp.float64, 0.1, 1.0)
    b = jax.random.normal(k_b, (9, 2, 3), jnp.float64)
    b = jnp.abs(b) if log_space else b
    initial = jax.random.normal(k_h, (2, 3), jnp.float64)
    resets = jax.random.bernoulli(k_r, 0.3, (9, 2))
    want, h = np.zeros((9, 2, 3)), np.asarray(initial)
    for t in reversed(range(9)) if reverse else range(9):
        h = np.where(np.asarray(resets[t])[:, None], np.asarray(initial), h)
        h = np.asarray(a[t]) * h + np.asarray(b[t])
        want[t] = h
    inputs = (jnp.log(a), jnp.log(b)) if log_space else (a, b)
    for parallel in (False, True):
        got = jr.linear_scan(
            *inputs, initial, resets=resets, reverse=reverse, parallel=parallel, log_space=log_space
        )
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_linear_scan_rejects_bad_input():
    a = jnp.ones((5, 2))
    with pytest.raises(ValueError, match=r"b is the offset .* shape of a, \(5, 2\); got \(5, 7\)"):
        jr.linear_scan(a, jnp.ones((5, 7)))
    with pytest.raises(ValueError, match=r"initial starts .* step of a, \(2,\); got \(7,\)"):
        jr.linear_scan(a, a, jnp.ones(7))
    with pytest.raises(TypeError, match=r"resets must be a boolean array, got dtype int32"):
        jr.linear_scan(a, a, resets=jnp.ones((5, 2), jnp.int32))
    with pytest.raises(TypeError, match=r"a must have a floating or complex dtype, got int32"):
        jr.linear_scan(jnp.ones((5, 2), jnp.int32), a)


# Initialisation.


def test_lru_ring_initialisation_has_the_documented_eigenvalues():
    r_min, r_max, max_phase = 0.4, 0.9, 1.5
    cell = jr.lru(8, state_size=512, r_min=r_min, r_max=r_max, max_phase=max_phase)
    params = cell.init(jax.random.key(0), 3)
    modulus = np.exp(-np.exp(np.asarray(params["nu_log"], np.float64)))
    phase = np.exp(np.asarray(params["theta_log"], np.float64))
    assert modulus.min() >= r_min - 1e-6 and modulus.max() <= r_max + 1e-6
    assert phase.min() >= 0 and phase.max() <= max_phase + 1e-6
    # |lambda|^2 is uniform on [r_min^2, r_max^2]: its quartiles land near the uniform ones.
    quartiles = np.quantile(modulus**2, [0.25, 0.5, 0.75])
    expected = r_min**2 + (r_max**2 - r_min**2) * np.array([0.25, 0.5, 0.75])
    np.testing.assert_allclose(quartiles, expected, atol=0.05)
    np.testing.assert_allclose(np.median(phase), max_phase / 2, atol=0.15)
    gamma = np.exp(np.asarray(params["gamma_log"], np.float64))
    np.testing.assert_allclose(gamma, np.sqrt(1 - modulus**2), rtol=1e-5)
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {
        "nu_log": (512,),
        "theta_log": (512,),
        "gamma_log": (512,),
        "b_re": (3, 512),
        "b_im": (3, 512),
        "c_re": (512, 8),
        "c_im": (512, 8),
        "d": (3, 8),
    }


@pytest.mark.parametrize("name", NAMES)
def test_init_is_deterministic_and_keeps_the_dtype(name):
    cell = make(name)
    a = cell.init(jax.random.key(0), I, jnp.bfloat16)
    b = cell.init(jax.random.key(0), I, jnp.bfloat16)
    c = cell.init(jax.random.key(1), I, jnp.bfloat16)
    for k in a:
        assert a[k].dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a[k], np.float32), np.asarray(b[k], np.float32))
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    carry = cell.initial_carry((2,), jnp.bfloat16)
    assert all(x.dtype == jnp.bfloat16 and x.shape[0] == 2 for x in jax.tree.leaves(carry))


# The rest of the library accepts them.


def test_stack_rejects_recurrent_dropout_on_them():
    with pytest.raises(ValueError, match=r"recurrent_dropout.*'min_gru'"):
        jr.stack([jr.min_gru(4)], recurrent_dropout=0.2)


# Bad input.


@pytest.mark.parametrize("cell", [jr.lstm(4), jr.gru(4), jr.rnn(4)], ids=lambda c: c.name)
def test_parallel_true_with_a_nonlinear_cell_names_parallel_and_the_cell(cell):
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=rf"parallel=True.*{cell.name!r}"):
        jr.unroll(cell, params, jnp.ones((T, 2, I)), parallel=True)
    jr.unroll(cell, params, jnp.ones((T, 2, I)), parallel=False)  # fine


def test_bad_options_and_inputs_raise_clear_errors():
    cell = jr.min_gru(4)
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(TypeError, match=r"parallel must be a bool, got str 'yes'"):
        jr.unroll(cell, params, jnp.ones((T, 2, I)), parallel="yes")
    with pytest.raises(ValueError, match=r"xs has input_size 7 .*made for input_size 3"):
        jr.unroll(cell, params, jnp.ones((T, 2, 7)), parallel=True)
    with pytest.raises(ValueError, match=r"carry has shape \(2, 7\) but .* expects \(2, 4\)"):
        jr.unroll(cell, params, jnp.ones((T, 2, I)), jnp.zeros((2, 7)), parallel=True)
    with pytest.raises(ValueError, match=r"lengths has shape \(7,\).*\(2,\)"):
        jr.unroll(cell, params, jnp.ones((T, 2, I)), lengths=jnp.ones(7, int), parallel=True)
    with pytest.raises(
        ValueError, match=r"grad='bptt' needs a cell whose step is a jaxrnn.BpttStep"
    ):
        jr.unroll(cell, params, jnp.ones((T, 2, I)), parallel=True, grad="bptt")


def test_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"hidden_size must be a positive int, got 0"):
        jr.min_gru(0)
    with pytest.raises(TypeError, match=r"log_space must be a bool, got int 1"):
        jr.min_lstm(4, log_space=1)
    with pytest.raises(ValueError, match=r"r_min must be a radius in \[0, r_max=0.5\), got 0.9"):
        jr.lru(4, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match=r"r_max must be a radius in \(0, 1\], got 1.5"):
        jr.lru(4, r_max=1.5)
    with pytest.raises(ValueError, match=r"max_phase must be a finite number > 0, got -1.0"):
        jr.lru(4, max_phase=-1.0)
    with pytest.raises(ValueError, match=r"state_size must be a positive int, got 0"):
        jr.lru(4, state_size=0)
    with pytest.raises(TypeError, match=r"r_min must be a radius .*, got str"):
        jr.lru(4, r_min="0.5")
