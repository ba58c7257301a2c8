"""`generate`, `rollout` and `shift_right`: equivalence with Python loops over
`cell.step`, sampling statistics, keys, jit, teacher forcing and input checks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn as jr
from jaxrnn.generation import generate, rollout, shift_right

pytestmark = pytest.mark.usefixtures("few_optimizations")

I, H, C = 4, 8, 5
CELLS = {"rnn": jr.rnn(H), "lstm": jr.lstm(H), "gru": jr.gru(H)}
BATCH_SHAPES = [(), (3,)]


def make_model(cell, scale=1.0, dtype=jnp.float32, seed=0):
    """Cell params, an embedding table `(C, I)` and a readout weight `(H, C)`."""
    k_cell, k_embed, k_out = jax.random.split(jax.random.key(seed), 3)
    params = cell.init(k_cell, input_size=I, dtype=dtype)
    table = jax.random.normal(k_embed, (C, I), dtype)
    w_out = jax.random.normal(k_out, (H, C), dtype) * scale
    return params, table, w_out


def encoder_carry(cell, params, batch_shape, dtype=jnp.float32):
    """A non-zero starting carry, as an encoder would hand it to a decoder."""
    xs = jax.random.normal(jax.random.key(7), (3, *batch_shape, I), dtype)
    carry, _ = jr.unroll(cell, params, xs)
    return carry


def python_loop(cell, params, carry, x, tokens_or_none, readout, embed, num_steps):
    """Greedy decoding (tokens_or_none=None), or a replay of given tokens, with `cell.step`."""
    tokens, logits = [], []
    for t in range(num_steps):
        carry, h = cell.step(params, carry, x)
        logits.append(readout(h))
        token = (
            jnp.argmax(logits[-1], axis=-1).astype(jnp.int32)
            if tokens_or_none is None
            else tokens_or_none[t]
        )
        tokens.append(token)
        x = embed(token)
    return carry, jnp.stack(tokens), jnp.stack(logits)


def assert_trees_close(a, b, **tolerance):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **tolerance)


# ---------------------------------------------------------------------------- generate


# Every cell's greedy logits against a replay through unroll: test_battery.py.
@pytest.mark.parametrize(
    ("name", "batch_shape"), [("rnn", ()), ("lstm", (3,)), ("gru", ())], ids=str
)
def test_greedy_equals_a_python_loop(name, batch_shape):
    cell = CELLS[name]
    params, table, w_out = make_model(cell, scale=2.0)
    carry = encoder_carry(cell, params, batch_shape)
    first = table[jnp.zeros(batch_shape, jnp.int32)]

    def readout(h):
        return h @ w_out

    def embed(tokens):
        return table[tokens]

    got = generate(cell, params, carry, first, 9, readout=readout, embed=embed, greedy=True)
    want = python_loop(cell, params, carry, first, None, readout, embed, 9)
    assert got[1].shape == (9, *batch_shape) and got[1].dtype == jnp.int32
    assert got[2].shape == (9, *batch_shape, C)
    np.testing.assert_array_equal(got[1], want[1])
    assert_trees_close(got[2], want[2], atol=1e-5)
    assert_trees_close(got[0], want[0], atol=1e-5)


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_sampled_tokens_are_fed_back(batch_shape):
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell)
    carry = encoder_carry(cell, params, batch_shape)
    first = table[jnp.ones(batch_shape, jnp.int32)]

    def readout(h):
        return h @ w_out

    def embed(tokens):
        return table[tokens]

    final, tokens, logits = generate(
        cell, params, carry, first, 12, readout=readout, embed=embed, key=jax.random.key(3)
    )
    replay_carry, _, replay_logits = python_loop(
        cell, params, carry, first, tokens, readout, embed, 12
    )
    assert len(np.unique(np.asarray(tokens))) > 1
    np.testing.assert_allclose(logits, replay_logits, atol=1e-5)
    assert_trees_close(final, replay_carry, atol=1e-5)


@functools.cache  # the same functions each time, so each generate compiles once
def greedy_and_sampler(batch_shape=(3,)):
    cell = CELLS["gru"]
    params, table, w_out = make_model(cell, scale=2.0)
    first = table[jnp.zeros(batch_shape, jnp.int32)]
    kwargs = {"readout": lambda h: h @ w_out, "embed": lambda t: table[t]}
    greedy = generate(cell, params, None, first, 15, greedy=True, **kwargs)

    def sample(key, **options):
        return generate(cell, params, None, first, 15, key=key, **kwargs, **options)

    return greedy, sample


def test_low_temperature_approaches_greedy():
    (_, greedy_tokens, logits), sample = greedy_and_sampler()
    top_two = jnp.sort(logits, axis=-1)[..., -2:]
    # The logits' top-two gaps make temperature 1e-4 pick the argmax with probability
    # at least 1 - exp(-gap / 1e-4) per step; check the premise of the test.
    assert float(jnp.min(top_two[..., 1] - top_two[..., 0])) > 5e-3
    for seed in range(3):
        _, tokens, _ = sample(jax.random.key(seed), temperature=1e-4)
        np.testing.assert_array_equal(tokens, greedy_tokens)
    _, warm, _ = sample(jax.random.key(0), temperature=3.0)
    assert not np.array_equal(warm, greedy_tokens)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 5.0])
def test_top_k_one_equals_greedy(temperature):
    (_, greedy_tokens, greedy_logits), sample = greedy_and_sampler()
    _, tokens, logits = sample(jax.random.key(1), temperature=temperature, top_k=1)
    np.testing.assert_array_equal(tokens, greedy_tokens)
    np.testing.assert_array_equal(logits, greedy_logits)


@pytest.mark.parametrize(
    "temperature, top_k", [(1.0, None), (2.0, None), (0.7, 3)], ids=["t1", "t2", "t0.7-top3"]
)
def test_sampled_frequencies_match_softmax(temperature, top_k):
    n = 4000
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell)
    first = table[jnp.zeros((n,), jnp.int32)]  # n identical sequences: step 0 is iid
    _, tokens, logits = generate(
        cell,
        params,
        None,
        first,
        1,
        readout=lambda h: h @ w_out,
        embed=lambda t: table[t],
        key=jax.random.key(11),
        temperature=temperature,
        top_k=top_k,
    )
    scaled = np.asarray(logits[0, 0], np.float64) / temperature
    if top_k is not None:
        scaled[np.argsort(scaled)[:-top_k]] = -np.inf
    p = np.exp(scaled - scaled.max())
    p /= p.sum()
    assert p.max() < 0.9 and np.sum(p > 0.02) >= 3  # a distribution worth testing
    freq = np.bincount(np.asarray(tokens[0]), minlength=C) / n
    tolerance = 5 * np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(freq - p) <= tolerance), (freq, p)
    assert np.all(freq[p == 0] == 0)


def test_same_key_same_tokens_different_key_different_tokens():
    _, sample = greedy_and_sampler()
    first = sample(jax.random.key(5), temperature=1.5)
    again = sample(jax.random.key(5), temperature=1.5)
    other = sample(jax.random.key(6), temperature=1.5)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[2], again[2])
    assert not np.array_equal(first[1], other[1])
    raw = sample(jax.random.PRNGKey(5), temperature=1.5)  # a raw uint32 key works too
    assert raw[1].shape == first[1].shape


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_under_jit_compiles_once_for_new_keys_temperatures_and_params(batch_shape):
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell)
    traces = []

    @jax.jit
    def decode(params, table, w_out, key, temperature):
        traces.append(1)
        first = table[jnp.zeros(batch_shape, jnp.int32)]
        return generate(
            cell,
            params,
            None,
            first,
            10,
            readout=lambda h: h @ w_out,
            embed=lambda t: table[t],
            key=key,
            temperature=temperature,
            top_k=4,
        )

    for seed, temperature in [(0, 1.0), (1, 0.5), (2, 2.0)]:
        key = jax.random.key(seed)
        jitted = decode(params, table, w_out, key, jnp.float32(temperature))
        eager = generate(
            cell,
            params,
            None,
            table[jnp.zeros(batch_shape, jnp.int32)],
            10,
            readout=lambda h: h @ w_out,
            embed=lambda t: table[t],
            key=key,
            temperature=temperature,
            top_k=4,
        )
        np.testing.assert_array_equal(jitted[1], eager[1])
        assert jitted[1].shape == (10, *batch_shape)
    decode(make_model(cell, seed=1)[0], table, w_out, jax.random.key(9), jnp.float32(1.0))
    assert len(traces) == 1


def test_zero_steps_returns_the_carry_unchanged():
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell)
    carry = encoder_carry(cell, params, (3,))
    final, tokens, logits = generate(
        cell,
        params,
        carry,
        table[jnp.zeros((3,), jnp.int32)],
        0,
        readout=lambda h: h @ w_out,
        embed=lambda t: table[t],
        key=jax.random.key(0),
    )
    assert tokens.shape == (0, 3) and logits.shape == (0, 3, C)
    assert_trees_close(final, carry, rtol=0, atol=0)


def test_float64_and_half_precision(x64):
    cell = CELLS["gru"]
    for dtype in (jnp.float64, jnp.bfloat16):
        params, table, w_out = make_model(cell, dtype=dtype)
        final, tokens, logits = generate(
            cell,
            params,
            None,
            table[jnp.zeros((3,), jnp.int32)],
            5,
            readout=lambda h, w=w_out: h @ w,
            embed=lambda t, e=table: e[t],
            key=jax.random.key(0),
            top_k=3,
        )
        assert final.dtype == dtype and logits.dtype == dtype and tokens.dtype == jnp.int32


def test_generate_bad_input():
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell)
    first = table[jnp.zeros((3,), jnp.int32)]
    kwargs = {"readout": lambda h: h @ w_out, "embed": lambda t: table[t]}
    key = jax.random.key(0)

    def greedy_with(**replaced):
        return generate(cell, params, None, first, 4, greedy=True, **{**kwargs, **replaced})

    with pytest.raises(TypeError, match=r"key is required to sample.*greedy=True"):
        generate(cell, params, None, first, 4, **kwargs)
    with pytest.raises(TypeError, match=r"key must be a single PRNG key.*shape \(7,\)"):
        generate(cell, params, None, first, 4, key=jnp.zeros(7, jnp.uint32), **kwargs)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got"):
            generate(cell, params, None, first, 4, key=key, temperature=bad, **kwargs)
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got 0.0"):
        generate(cell, params, None, first, 4, key=key, temperature=jnp.float32(0), **kwargs)
    with pytest.raises(ValueError, match=r"temperature must be a scalar.*shape \(3,\)"):
        generate(cell, params, None, first, 4, key=key, temperature=jnp.ones(3), **kwargs)
    with pytest.raises(ValueError, match=r"top_k must be a positive int, got 0"):
        generate(cell, params, None, first, 4, key=key, top_k=0, **kwargs)
    with pytest.raises(
        ValueError,
        match=r"top_k must be at most the number of classes C=5 \(readout\(h\)\.shape\[-1\]\); "
        r"got 7",
    ):
        generate(cell, params, None, first, 4, key=key, top_k=7, **kwargs)
    with pytest.raises(
        ValueError,
        match=r"readout\(h\) must return logits of shape \(\*batch, C\) with batch shape "
        r"\(3,\).*h has shape \(3, 8\) and readout\(h\) has shape \(5,\)",
    ):
        greedy_with(readout=lambda h: (h @ w_out)[0])
    with pytest.raises(
        ValueError, match=r"embed\(tokens\) .* shape of first_input, \(3, 4\); got \(3, 7\)"
    ):
        greedy_with(embed=lambda t: jnp.zeros((3, 7)))
    with pytest.raises(
        TypeError, match=r"embed\(tokens\) has dtype float16 but first_input has dtype float32"
    ):
        greedy_with(embed=lambda t: table[t].astype(jnp.float16))
    with pytest.raises(TypeError, match=r"embed must be a function"):
        generate(cell, params, None, first, 4, readout=kwargs["readout"], embed=table, key=key)
    with pytest.raises(ValueError, match=r"first_input has input_size 7 .* input_size 4"):
        generate(cell, params, None, jnp.zeros((3, 7)), 4, key=key, **kwargs)
    with pytest.raises(ValueError, match=r"carry\[0\] has shape \(3, 7\) but .* expects \(3, 8\)"):
        generate(cell, params, (jnp.zeros((3, 7)),) * 2, first, 4, key=key, **kwargs)
    with pytest.raises(ValueError, match=r"num_steps must be a non-negative int, got -1"):
        generate(cell, params, None, first, -1, key=key, **kwargs)
    with pytest.raises(TypeError, match=r"num_steps must be a non-negative int, got float 2.0"):
        generate(cell, params, None, first, 2.0, key=key, **kwargs)
    with pytest.raises(TypeError, match=r"greedy must be a bool, got str 'yes'"):
        generate(cell, params, None, first, 2, greedy="yes", **kwargs)
    with pytest.raises(TypeError, match=r"cell must be a jaxrnn Cell"):
        generate(params, params, None, first, 2, key=key, **kwargs)


# ----------------------------------------------------------------------------- rollout


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_rollout_equals_a_python_loop(batch_shape):
    cell = CELLS["lstm"]
    params, _, _ = make_model(cell)
    w_out = jax.random.normal(jax.random.key(4), (H, I)) / 2
    carry = encoder_carry(cell, params, batch_shape)
    x = jax.random.normal(jax.random.key(5), (*batch_shape, I))
    final, outputs = rollout(cell, params, carry, x, 8, readout=lambda h: h @ w_out)
    want = []
    loop_carry, loop_x = carry, x
    for _ in range(8):
        loop_carry, h = cell.step(params, loop_carry, loop_x)
        loop_x = h @ w_out
        want.append(loop_x)
    assert outputs.shape == (8, *batch_shape, I)
    np.testing.assert_allclose(outputs, jnp.stack(want), atol=1e-5)
    assert_trees_close(final, loop_carry, atol=1e-5)


def test_rollout_gradients_match_finite_differences(x64):
    cell = CELLS["gru"]
    params, _, _ = make_model(cell, dtype=jnp.float64)
    w_out = jax.random.normal(jax.random.key(4), (H, I), jnp.float64) / 2
    x = jax.random.normal(jax.random.key(5), (2, I), jnp.float64)

    def loss(params, w_out, x):
        _, ys = rollout(cell, params, None, x, 5, readout=lambda h: h @ w_out)
        return jnp.sum(ys**2)

    check_grads(jax.jit(loss), (params, w_out, x), order=1, modes=["rev"], eps=1e-6, rtol=1e-6)


def test_rollout_bad_input():
    cell = CELLS["rnn"]
    params, _, w_out = make_model(cell)
    x = jnp.zeros((3, I))
    with pytest.raises(
        ValueError,
        match=r"readout\(h\) is the next step's input, .* shape of first_input, \(3, 4\); "
        r"got \(3, 5\)",
    ):
        rollout(cell, params, None, x, 3, readout=lambda h: h @ w_out)
    with pytest.raises(TypeError, match=r"readout must be a function h -> prediction"):
        rollout(cell, params, None, x, 3, readout=w_out)
    with pytest.raises(ValueError, match=r"first_input must have shape \(\*batch, input_size\)"):
        rollout(cell, params, None, jnp.float32(1), 3, readout=lambda h: h)


# ------------------------------------------------------------------------- shift_right


def test_shift_right_values_and_layouts():
    tokens = jnp.array([[5, 7], [6, 8], [2, 9]], jnp.int32)  # (T, batch)
    np.testing.assert_array_equal(shift_right(tokens, 1), [[1, 1], [5, 7], [6, 8]])
    np.testing.assert_array_equal(
        shift_right(tokens, jnp.array([3, 4], jnp.int32)), [[3, 4], [5, 7], [6, 8]]
    )
    np.testing.assert_array_equal(shift_right(tokens.T, 0, time_axis=1), [[0, 5, 6], [0, 7, 8]])
    vectors = jnp.arange(24.0).reshape(3, 2, 4)  # (T, batch, F)
    start = -jnp.ones((2, 4))
    shifted = shift_right(vectors, start)
    assert shifted.shape == vectors.shape and shifted.dtype == vectors.dtype
    np.testing.assert_array_equal(shifted[0], start)
    np.testing.assert_array_equal(shifted[1:], vectors[:-1])
    assert shift_right(jnp.zeros((0, 2), jnp.int32), 0).shape == (0, 2)


def test_teacher_forcing_on_greedy_tokens_reproduces_generate():
    cell = CELLS["lstm"]
    params, table, w_out = make_model(cell, scale=2.0)
    carry = encoder_carry(cell, params, (3,))
    start = jnp.zeros((3,), jnp.int32)
    _, tokens, logits = generate(
        cell,
        params,
        carry,
        table[start],
        7,
        readout=lambda h: h @ w_out,
        embed=lambda t: table[t],
        greedy=True,
    )
    _, hs = jr.unroll(cell, params, table[shift_right(tokens, 0)], carry)
    np.testing.assert_allclose(hs @ w_out, logits, atol=1e-5)


def test_shift_right_bad_input():
    tokens = jnp.zeros((3, 2), jnp.int32)
    with pytest.raises(TypeError, match=r"start has dtype float32 but targets has dtype int32"):
        shift_right(tokens, jnp.zeros((2,), jnp.float32))
    with pytest.raises(
        ValueError, match=r"start must be a scalar or have the shape of one step.*\(2,\); got shape"
    ):
        shift_right(tokens, jnp.zeros((7,), jnp.int32))
    with pytest.raises(ValueError, match=r"targets must have a time axis"):
        shift_right(jnp.int32(3), 0)
    with pytest.raises(
        ValueError, match=r"time_axis must be an axis of targets; .* must lie in \[-2, 1\]"
    ):
        shift_right(tokens, 0, time_axis=2)
    with pytest.raises(TypeError, match=r"start must be a number or an array, got NoneType"):
        shift_right(tokens, None)
