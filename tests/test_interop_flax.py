"""Flax and Equinox interop: parity with their cells, round trips, carries, errors.

flax and equinox are optional: the tests that run their cells skip without them.
The layout tests build Flax-shaped dicts with NumPy, so they need neither.
"""

import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr
from jaxrnn import interop

# Flax class -> the jaxrnn cell kind it converts to.
FLAX_KINDS = {
    "linen.LSTMCell": "lstm",
    "linen.OptimizedLSTMCell": "lstm",
    "linen.GRUCell": "gru",
    "linen.SimpleCell": "rnn_tanh",
    "nnx.LSTMCell": "lstm",
    "nnx.OptimizedLSTMCell": "lstm",
    "nnx.GRUCell": "gru",
    "nnx.SimpleCell": "rnn_tanh",
}
LINEN = [k for k in FLAX_KINDS if k.startswith("linen.")] + ["linen.SimpleCell-relu"]
NNX = [k for k in FLAX_KINDS if k.startswith("nnx.")]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
# (input_size, hidden_size, T, batch)
SIZES = [(3, 5, 7, 2), (16, 32, 11, 4), (1, 1, 1, 1)]


@pytest.fixture
def nn():
    return pytest.importorskip("flax.linen")


@pytest.fixture
def nnx():
    return pytest.importorskip("flax.nnx")


@pytest.fixture
def eqx():
    return pytest.importorskip("equinox")


@functools.cache  # one cell per size, so `unroll`'s compilations are shared between tests
def make_cell(kind, hidden_size):
    if kind.startswith("rnn_"):
        return jr.rnn(hidden_size, kind.removeprefix("rnn_"))
    return {"lstm": jr.lstm, "gru": jr.gru}[kind](hidden_size)


def tolerance(dtype):
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == jnp.float64 else {"rtol": 1e-5, "atol": 1e-6}


def random_params(kind, input_size, hidden_size, dtype=np.float32, seed=0):
    """Params in the layout `cell.init` gives, drawn with NumPy."""
    rng = np.random.default_rng(seed)
    gh = GATES[kind] * hidden_size
    shapes = {"w_x": (input_size, gh), "w_h": (hidden_size, gh), "b": (gh,)}
    if kind == "gru":
        shapes["b_hn"] = (hidden_size,)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def linen_params(kind, input_size, hidden_size, dtype=np.float32, seed=0):
    """A dict shaped like a flax.linen cell's params, drawn with NumPy (no flax needed)."""
    rng = np.random.default_rng(seed)

    def dense(rows, bias):
        kernel = rng.standard_normal((rows, hidden_size)) / np.sqrt(rows)
        layer = {"kernel": kernel.astype(dtype)}
        if bias:
            layer["bias"] = rng.standard_normal(hidden_size).astype(dtype)
        return layer

    I, H = input_size, hidden_size
    if kind == "lstm":
        return {
            **{n: dense(I, False) for n in ("ii", "if", "ig", "io")},
            **{n: dense(H, True) for n in ("hi", "hf", "hg", "ho")},
        }
    if kind == "gru":
        return {
            **{n: dense(I, True) for n in ("ir", "iz", "in")},
            **{n: dense(H, False) for n in ("hr", "hz")},
            "hn": dense(H, True),
        }
    return {"i": dense(I, True), "h": dense(H, False)}


def bits(x):
    x = np.asarray(x)
    return x.dtype, x.shape, x.view(np.uint8).tobytes()


def assert_trees_bit_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    leaves_b = jax.tree.leaves(b)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), leaves_b, strict=True):
        assert bits(x) == bits(y), jax.tree_util.keystr(path)


def assert_trees_close(got, want, dtype):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tolerance(dtype))


# --- Flax: parity ------------------------------------------------------------------------------
# Flax's own init runs its orthogonal initializer eagerly, which costs seconds per shape;
# the parity tests draw Flax-shaped params with NumPy instead (`linen_params`), and
# `test_linen_init_has_the_layout_from_flax_reads` pins that layout to Flax's init.


def make_linen_cell(nn, name, hidden_size, dtype=jnp.float32):
    cls = getattr(nn, name.removeprefix("linen.").removesuffix("-relu"))
    extra = {"activation_fn": nn.relu} if name.endswith("-relu") else {}
    return cls(hidden_size, param_dtype=dtype, **extra)


def linen_kind(name):
    return "rnn_relu" if name.endswith("-relu") else FLAX_KINDS[name]


def normal(shape, dtype, seed):
    """Standard normal values as a JAX array, drawn with NumPy (nothing to compile)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def random_carry(like, seed, dtype):
    leaves, tree = jax.tree.flatten(like)
    return tree.unflatten([normal(leaf.shape, dtype, seed + i) for i, leaf in enumerate(leaves)])


# (sizes, dtype): several sizes, each dtype twice.
PARITY = [
    (SIZES[0], "float32"),
    (SIZES[0], "float64"),
    (SIZES[1], "float32"),
    (SIZES[2], "float64"),
]


@pytest.fixture(params=PARITY, ids=[f"{d}-{s}" for s, d in PARITY])
def sizes_and_dtype(request):
    sizes, dtype = request.param
    with jax.enable_x64(dtype == "float64"):
        yield sizes, jnp.dtype(dtype)


@pytest.mark.parametrize("name", LINEN)
def test_linen_rnn_matches_unroll(nn, name, sizes_and_dtype):
    (I, H, T, B), dtype = sizes_and_dtype
    flax_cell = make_linen_cell(nn, name, H, dtype)
    rnn = nn.RNN(flax_cell, return_carry=True)  # batch-major: (B, T, I)
    flax_params = linen_params(linen_kind(name), I, H, dtype)
    xs = normal((B, T, I), dtype, 1)
    flax_carry0 = random_carry(flax_cell.initialize_carry(jax.random.key(2), (B, I)), 3, dtype)
    flax_carry, flax_hs = jax.jit(rnn.apply)(
        {"params": {"cell": flax_params}}, xs, initial_carry=flax_carry0
    )

    cell = make_cell(linen_kind(name), H)
    params = interop.from_flax(cell, flax_params)
    carry0 = interop.from_flax_carry(cell, flax_carry0)
    carry, hs = jr.unroll(cell, params, xs, carry0, time_axis=1)

    assert hs.dtype == dtype and hs.shape == (B, T, H)
    np.testing.assert_allclose(hs, flax_hs, **tolerance(dtype))
    assert_trees_close(interop.to_flax_carry(cell, carry), flax_carry, dtype)
    assert_trees_close(carry, interop.from_flax_carry(cell, flax_carry), dtype)


def make_nnx_cell(nnx, name, input_size, hidden_size, dtype=jnp.float32):
    # Normal rather than orthogonal recurrent init: a QR per shape costs seconds eagerly.
    init = nnx.initializers.normal(1.0 / np.sqrt(hidden_size))
    return getattr(nnx, name.removeprefix("nnx."))(
        input_size,
        hidden_size,
        kernel_init=init,
        recurrent_kernel_init=init,
        bias_init=nnx.initializers.normal(1.0),  # nonzero, so every bias is checked
        param_dtype=dtype,
        dtype=dtype,  # nnx.SimpleCell computes in float32 unless told otherwise
        rngs=nnx.Rngs(0),
    )


@pytest.mark.parametrize("name", NNX)
def test_nnx_rnn_matches_unroll(nnx, name, dtype):
    I, H, T, B = SIZES[0]
    flax_cell = make_nnx_cell(nnx, name, I, H, dtype)
    xs = normal((B, T, I), dtype, 1)
    flax_carry0 = random_carry(flax_cell.initialize_carry((B, I), rngs=nnx.Rngs(2)), 3, dtype)
    flax_carry, flax_hs = nnx.RNN(flax_cell, return_carry=True)(xs, initial_carry=flax_carry0)

    cell = make_cell(FLAX_KINDS[name], H)
    state = nnx.to_pure_dict(nnx.state(flax_cell, nnx.Param))
    params = interop.from_flax(cell, state)
    carry, hs = jr.unroll(cell, params, xs, interop.from_flax_carry(cell, flax_carry0), time_axis=1)
    np.testing.assert_allclose(hs, flax_hs, **tolerance(dtype))
    assert_trees_close(interop.to_flax_carry(cell, carry), flax_carry, dtype)
    if name == "nnx.GRUCell":
        np.testing.assert_array_equal(params["b_hn"], np.zeros(H))
    # The way back gives the module's own params, bit for bit, and loads into it.
    assert_trees_bit_identical(interop.to_flax(cell, params, kind=name), state)
    params = {k: v if k == "b_hn" else v + 1 for k, v in params.items()}
    loaded = nnx.state(flax_cell, nnx.Param)
    nnx.replace_by_pure_dict(loaded, interop.to_flax(cell, params, kind=name))
    nnx.update(flax_cell, loaded)
    read = interop.from_flax(cell, nnx.to_pure_dict(nnx.state(flax_cell, nnx.Param)))
    assert_trees_bit_identical(read, params)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_linen_seq_lengths_match_unroll_lengths(nn, reverse):
    I, H, T = 3, 4, 7
    lengths = np.array([7, 3, 1, 5])
    B = len(lengths)
    rnn = nn.RNN(nn.LSTMCell(H), return_carry=True, reverse=reverse, keep_order=True)
    xs = normal((B, T, I), np.float32, 1)
    variables = {"params": {"cell": linen_params("lstm", I, H)}}
    flax_carry, flax_hs = jax.jit(rnn.apply)(variables, xs, seq_lengths=jnp.asarray(lengths))

    cell = make_cell("lstm", H)
    params = interop.from_flax(cell, variables)
    carry, hs = jr.unroll(
        cell, params, xs, lengths=jnp.asarray(lengths), reverse=reverse, time_axis=1
    )

    valid = np.arange(T)[None, :] < lengths[:, None]
    # Flax leaves its outputs past a sequence's length unmasked; jaxrnn emits zeros there.
    np.testing.assert_allclose(
        np.asarray(hs)[valid], np.asarray(flax_hs)[valid], **tolerance(jnp.float32)
    )
    np.testing.assert_array_equal(np.asarray(hs)[~valid], 0)
    assert_trees_close(interop.to_flax_carry(cell, carry), flax_carry, jnp.float32)


def test_gradients_flow_through_from_flax_into_flax_params(nn, x64):
    """`from_flax` is a differentiable rearrangement: the gradient of a jaxrnn loss with
    respect to the *Flax* params equals the gradient of the same loss computed by Flax."""
    I, H, T, B = 3, 4, 5, 2
    name = "linen.GRUCell"  # every kind of entry: per-gate kernels and biases, and b_hn
    rnn = nn.RNN(make_linen_cell(nn, name, H, jnp.float64), return_carry=True)
    xs = normal((B, T, I), jnp.float64, 1)
    flax_params = {"cell": linen_params(FLAX_KINDS[name], I, H, np.float64)}
    weights = normal((B, T, H), jnp.float64, 2)
    cell = make_cell(FLAX_KINDS[name], H)

    def flax_loss(p):
        carry, hs = rnn.apply({"params": p}, xs)
        return jnp.sum(hs * weights) + sum(jnp.sum(c**2) for c in jax.tree.leaves(carry))

    @jax.jit
    def jaxrnn_loss(p):
        carry, hs = jr.unroll(cell, interop.from_flax(cell, p["cell"]), xs, time_axis=1)
        return jnp.sum(hs * weights) + sum(jnp.sum(c**2) for c in jax.tree.leaves(carry))

    want_value, want = jax.jit(jax.value_and_grad(flax_loss))(flax_params)
    value, got = jax.value_and_grad(jaxrnn_loss)(flax_params)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# --- Flax: the mapping and round trips ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_from_flax_follows_the_documented_linen_mapping(kind, x64):
    I, H = 3, 4
    fp = linen_params(kind, I, H, np.float64)
    params = interop.from_flax(make_cell(kind, H), fp)
    assert all(isinstance(v, jax.Array) and v.dtype == jnp.float64 for v in params.values())

    def cat(names, leaf):
        return np.concatenate([fp[n][leaf] for n in names], axis=-1)

    if kind == "lstm":
        want = {
            "w_x": cat(["ii", "if", "ig", "io"], "kernel"),
            "w_h": cat(["hi", "hf", "hg", "ho"], "kernel"),
            "b": cat(["hi", "hf", "hg", "ho"], "bias"),
        }
    elif kind == "gru":
        want = {
            "w_x": cat(["ir", "iz", "in"], "kernel"),
            "w_h": cat(["hr", "hz", "hn"], "kernel"),
            "b": cat(["ir", "iz", "in"], "bias"),
            "b_hn": fp["hn"]["bias"],
        }
    else:
        want = {"w_x": fp["i"]["kernel"], "w_h": fp["h"]["kernel"], "b": fp["i"]["bias"]}
    assert list(params) == list(want)
    for key in want:
        np.testing.assert_array_equal(params[key], want[key], err_msg=key)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_nnx_layouts_are_the_fused_params_or_renamed_linen(kind):
    I, H = 3, 4
    cell = make_cell(kind, H)
    params = {k: jnp.asarray(v) for k, v in random_params(kind, I, H).items()}
    if kind == "gru":
        params["b_hn"] = jnp.zeros(H)
    fused = {"lstm": "nnx.OptimizedLSTMCell", "gru": "nnx.GRUCell"}.get(kind, "nnx.SimpleCell")
    nnx_params = interop.to_flax(cell, params, kind=fused)
    bias_on = "dense_h" if kind == "lstm" else "dense_i"
    assert {k: sorted(v) for k, v in nnx_params.items()} == {
        "dense_i": sorted(["kernel"] + (["bias"] if bias_on == "dense_i" else [])),
        "dense_h": sorted(["kernel"] + (["bias"] if bias_on == "dense_h" else [])),
    }
    np.testing.assert_array_equal(nnx_params["dense_i"]["kernel"], params["w_x"])
    np.testing.assert_array_equal(nnx_params["dense_h"]["kernel"], params["w_h"])
    np.testing.assert_array_equal(nnx_params[bias_on]["bias"], params["b"])
    if kind == "lstm":
        linen = interop.to_flax(cell, params)
        renamed = interop.to_flax(cell, params, kind="flax.nnx.LSTMCell")
        assert sorted(renamed) == sorted([*(set(linen) - {"if"}), "if_"])
        assert_trees_bit_identical(renamed["if_"], linen["if"])


@pytest.mark.parametrize("param_dtype", ["bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("kind", [*FLAX_KINDS, "linen.SimpleCell-relu"])
def test_from_flax_of_to_flax_is_bit_identical(kind, param_dtype, x64):
    cell_kind = linen_kind(kind)
    cell = make_cell(cell_kind, 5)
    params = random_params(cell_kind, 3, 5, jnp.dtype(param_dtype))
    # Signed zeros, infinities and NaN must all survive.
    params["b"][:3] = [-0.0, 0.0, np.inf]
    params["w_x"][0, 0] = np.nan
    params["w_h"][-1, -1] = -0.0
    if kind == "nnx.GRUCell":
        params["b_hn"][:] = 0.0  # that cell has no b_hn, so only zero converts to it
    params = {k: jnp.asarray(v) for k, v in params.items()}

    flax_params = interop.to_flax(cell, params, kind=kind.removesuffix("-relu"))
    back = interop.from_flax(cell, flax_params)
    assert_trees_bit_identical(back, params)
    again = interop.to_flax(cell, back, kind=kind.removesuffix("-relu"))
    assert_trees_bit_identical(again, flax_params)


@pytest.mark.parametrize("name", LINEN)
def test_linen_init_has_the_layout_from_flax_reads(nn, name, x64):
    I, H, B = 3, 5, 2
    flax_cell = make_linen_cell(nn, name, H, jnp.float64)
    carry = random_carry(flax_cell.initialize_carry(jax.random.key(0), (B, I)), 1, jnp.float64)
    x = normal((B, I), jnp.float64, 2)
    # Names, shapes and dtypes of Flax's own init, without running its initializers.
    init = jax.eval_shape(flax_cell.init, jax.random.key(1), carry, x)
    flax_params = linen_params(linen_kind(name), I, H, np.float64)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), {"params": flax_params}) == jax.tree.map(
        lambda a: (a.shape, a.dtype), init
    )

    cell = make_cell(linen_kind(name), H)
    params = interop.from_flax(cell, flax_params)
    kind = name.removesuffix("-relu")
    assert_trees_bit_identical(interop.to_flax(cell, params, kind=kind), flax_params)
    # One step of the Flax cell on the converted params is one jaxrnn step.
    flax_new, flax_h = flax_cell.apply({"params": interop.to_flax(cell, params)}, carry, x)
    new, h = cell.step(params, interop.from_flax_carry(cell, carry), x)
    np.testing.assert_allclose(h, flax_h, rtol=1e-12, atol=1e-12)
    assert_trees_close(interop.to_flax_carry(cell, new), flax_new, jnp.float64)


def test_from_flax_unwraps_variables_and_rnn_variables():
    fp = linen_params("gru", 3, 4)
    cell = make_cell("gru", 4)
    direct = interop.from_flax(cell, fp)
    assert_trees_bit_identical(interop.from_flax(cell, {"params": fp}), direct)
    assert_trees_bit_identical(interop.from_flax(cell, {"params": {"cell": fp}}), direct)
    with pytest.raises(ValueError, match=r"flax_params\['params'\]\['cell'\] does not have"):
        interop.from_flax(cell, {"params": {"cell": {"ir": fp["ir"]}}})


def test_from_flax_keeps_or_casts_dtype(x64):
    fp = linen_params("lstm", 2, 3, np.float16)
    kept = interop.from_flax(jr.lstm(3), fp)
    assert {v.dtype for v in kept.values()} == {jnp.dtype(jnp.float16)}
    cast = interop.from_flax(jr.lstm(3), fp, dtype=jnp.float64)
    assert {v.dtype for v in cast.values()} == {jnp.dtype(jnp.float64)}
    np.testing.assert_array_equal(cast["b"][:3], fp["hi"]["bias"].astype(np.float64))


def test_flax_converters_run_under_jit():
    cell = make_cell("gru", 4)
    fp = jax.tree.map(jnp.asarray, linen_params("gru", 3, 4))
    jitted = jax.jit(lambda p: interop.to_flax(cell, interop.from_flax(cell, p)))
    assert_trees_bit_identical(jitted(fp), fp)
    swap = jax.jit(lambda c: interop.from_flax_carry(jr.lstm(4), c))
    h, c = swap((jnp.zeros(4), jnp.ones(4)))
    np.testing.assert_array_equal(h, np.ones(4))
    np.testing.assert_array_equal(c, np.zeros(4))


# --- Flax: carries -----------------------------------------------------------------------------


def test_carry_converters_swap_lstm_states_and_pass_others_through():
    c, h = jnp.full((2, 3), 1.0), jnp.full((2, 3), 2.0)
    got = interop.from_flax_carry(jr.lstm(3), (c, h))
    assert isinstance(got, tuple)
    assert_trees_bit_identical(got, (h, c))
    back = interop.to_flax_carry(jr.lstm(3), list(got))
    assert isinstance(back, tuple)
    assert_trees_bit_identical(back, (c, h))
    for cell in (jr.gru(3), jr.rnn(3, "relu")):
        assert_trees_bit_identical(interop.from_flax_carry(cell, h), h)
        assert_trees_bit_identical(interop.to_flax_carry(cell, h), h)
    # No batch dims, as a single example's carry.
    assert_trees_bit_identical(interop.from_flax_carry(jr.lstm(3), (c[0], h[0])), (h[0], c[0]))


def test_carry_errors():
    lstm, gru = jr.lstm(3), jr.gru(3)
    with pytest.raises(
        TypeError, match=r"flax_carry of cell 'lstm' must be a pair \(c, h\), got an array of shape"
    ):
        interop.from_flax_carry(lstm, jnp.zeros((2, 3)))
    with pytest.raises(
        TypeError, match=r"carry of cell 'lstm' must be a pair \(h, c\), got a tuple of 3"
    ):
        interop.to_flax_carry(lstm, (jnp.zeros(3),) * 3)
    with pytest.raises(
        ValueError, match=r"flax_carry\[1\] \(h\) has shape \(2, 7\) but must be \(\*batch, 3\)"
    ):
        interop.from_flax_carry(lstm, (jnp.zeros((2, 3)), jnp.zeros((2, 7))))
    with pytest.raises(
        ValueError,
        match=r"flax_carry\[1\] \(h\) is a state of the same carry, so it must have the shape "
        r"of flax_carry\[0\] \(c\), \(2, 3\); got \(1, 3\)",
    ):
        interop.from_flax_carry(lstm, (jnp.zeros((2, 3)), jnp.zeros((1, 3))))
    with pytest.raises(
        TypeError, match=r"flax_carry of cell 'gru' must be one array h \(\*batch, 3\)"
    ):
        interop.from_flax_carry(gru, (jnp.zeros(3), jnp.zeros(3)))
    with pytest.raises(ValueError, match=r"carry has shape \(\) but must be \(\*batch, 3\)"):
        interop.to_flax_carry(gru, jnp.float32(0))
    with pytest.raises(TypeError, match=r"carry must have a real floating dtype"):
        interop.to_flax_carry(gru, jnp.zeros(3, jnp.int32))


# --- Flax: errors ------------------------------------------------------------------------------


def test_params_of_another_flax_cell_are_named():
    with pytest.raises(
        ValueError,
        match=r"flax_params does not have the params of a flax.linen.LSTMCell or .*for cell "
        r"'lstm'.*these are the params of a flax.linen.GRUCell, which converts with jaxrnn.gru",
    ):
        interop.from_flax(jr.lstm(4), linen_params("gru", 3, 4))
    with pytest.raises(ValueError, match=r"flax.linen.SimpleCell, which converts with jaxrnn.rnn"):
        interop.from_flax(jr.gru(4), linen_params("rnn_tanh", 3, 4))
    mgu = {
        "if": {"kernel": np.zeros((3, 4), np.float32), "bias": np.zeros(4, np.float32)},
        "in": {"kernel": np.zeros((3, 4), np.float32), "bias": np.zeros(4, np.float32)},
        "hf": {"kernel": np.zeros((4, 4), np.float32)},
        "hn": {"kernel": np.zeros((4, 4), np.float32), "bias": np.zeros(4, np.float32)},
    }
    with pytest.raises(ValueError, match=r"flax.linen.MGUCell .*which no jaxrnn cell computes"):
        interop.from_flax(jr.gru(4), mgu)


def test_missing_and_unexpected_flax_entries_are_listed():
    fp = linen_params("lstm", 3, 4)
    del fp["hf"]
    with pytest.raises(
        ValueError,
        match=r"compared with flax.linen.LSTMCell, missing \[\"\['hf'\]\['bias'\]\", "
        r"\"\['hf'\]\['kernel'\]\"\], unexpected \[\]",
    ):
        interop.from_flax(jr.lstm(4), fp)
    fp = linen_params("gru", 3, 4)
    fp["hr"]["bias"] = np.zeros(4, np.float32)  # would change the maths: refused, not ignored
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \[\"\['hr'\]\['bias'\]\"\]"):
        interop.from_flax(jr.gru(4), fp)


@pytest.mark.parametrize(
    ("module", "leaf", "bad_shape", "pattern"),
    [
        (
            "ir",
            "kernel",
            (3, 7),
            r"\['ir'\]\['kernel'\] has shape \(3, 7\) .*GRUCell expects \(input_size, 5\)",
        ),
        (
            "ir",
            "kernel",
            (5,),
            r"\['ir'\]\['kernel'\] has shape \(5,\) .*expects \(input_size, 5\)",
        ),
        (
            "iz",
            "kernel",
            (2, 5),
            r"\['iz'\]\['kernel'\] has shape \(2, 5\) but cell 'gru' "
            r"\(hidden_size=5\) read as a flax.linen.GRUCell with input_size=3 \(from "
            r"flax_params\['ir'\]\['kernel'\].shape\[0\]\) expects \(3, 5\)",
        ),
        ("hz", "kernel", (5, 7), r"\['hz'\]\['kernel'\] has shape \(5, 7\) .*expects \(5, 5\)"),
        ("hn", "bias", (7,), r"\['hn'\]\['bias'\] has shape \(7,\) .*expects \(5,\)"),
        ("in", "bias", (5, 1), r"\['in'\]\['bias'\] has shape \(5, 1\) .*expects \(5,\)"),
    ],
)
def test_flax_shapes_that_disagree_with_the_cell(module, leaf, bad_shape, pattern):
    fp = linen_params("gru", 3, 5)
    fp[module][leaf] = np.zeros(bad_shape, np.float32)
    with pytest.raises(ValueError, match=r"flax_params" + pattern):
        interop.from_flax(jr.gru(5), fp)


def test_nnx_params_with_the_wrong_gate_count():
    simple = interop.to_flax(jr.rnn(4), random_params("rnn_tanh", 3, 4), kind="nnx.SimpleCell")
    with pytest.raises(
        ValueError,
        match=r"flax_params\['dense_i'\]\['kernel'\] has shape \(3, 4\) but cell 'gru' "
        r"\(hidden_size=4\) read as a flax.nnx.GRUCell expects \(input_size, 12\)",
    ):
        interop.from_flax(jr.gru(4), simple)


def test_bad_flax_values_and_dtypes():
    cell = jr.gru(4)
    fp = linen_params("gru", 3, 4)
    fp["hz"]["kernel"] = fp["hz"]["kernel"].astype(np.float16)
    with pytest.raises(
        TypeError,
        match=r"flax_params\['hz'\]\['kernel'\] has dtype float16 but flax_params\['ir'\]"
        r"\['kernel'\] has dtype float32",
    ):
        interop.from_flax(cell, fp)
    fp = linen_params("gru", 3, 4)
    fp["in"]["bias"] = np.arange(4)
    with pytest.raises(TypeError, match=r"flax_params\['in'\]\['bias'\] must have a real floating"):
        interop.from_flax(cell, fp)
    fp["in"] = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"flax_params\['in'\] must be a dict of arrays .*ndarray"):
        interop.from_flax(cell, fp)
    with pytest.raises(TypeError, match=r"flax_params must be a dict .*got list"):
        interop.from_flax(cell, [fp])
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype .*int32"):
        interop.from_flax(cell, linen_params("gru", 3, 4), dtype=jnp.int32)
    with (
        jax.enable_x64(False),
        pytest.raises(
            TypeError,
            match=r"the dtype of flax_params\['ir'\]\['kernel'\] is "
            r"float64 but JAX would store it as float32",
        ),
    ):
        interop.from_flax(cell, linen_params("gru", 3, 4, np.float64))


def test_cells_without_a_flax_counterpart_are_refused():
    with pytest.raises(
        ValueError, match=r"from_flax cannot convert cell 'gru_original'.*use jaxrnn.gru\(H\)"
    ):
        interop.from_flax(jr.gru(4, reset_after=False), linen_params("gru", 3, 4))
    custom = jr.lstm(4)._replace(step=lambda p, c, x: jr.lstm(4).step(p, c, x), name="lstm")
    with pytest.raises(
        ValueError, match=r"to_flax supports .*jaxrnn.lstm\(H\).*'lstm' has another step"
    ):
        interop.to_flax(custom, random_params("lstm", 3, 4))
    with pytest.raises(TypeError, match=r"cell must be a jaxrnn Cell .*got str"):
        interop.from_flax_carry("lstm", (jnp.zeros(3), jnp.zeros(3)))


def test_to_flax_kind_and_params_errors():
    params = random_params("gru", 3, 4)
    with pytest.raises(
        ValueError,
        match=r"kind must be one of 'linen.GRUCell', 'nnx.GRUCell'; got 'linen.LSTMCell'",
    ):
        interop.to_flax(jr.gru(4), params, kind="linen.LSTMCell")
    with pytest.raises(TypeError, match=r"kind must be a str .*got type"):
        interop.to_flax(jr.gru(4), params, kind=type)
    with pytest.raises(
        ValueError,
        match=r"params\['b_hn'\] has nonzero values, but flax.nnx.GRUCell has no "
        r"recurrent bias",
    ):
        interop.to_flax(jr.gru(4), params, kind="nnx.GRUCell")
    with pytest.raises(ValueError, match=r"cannot be checked on a traced value"):
        jax.jit(lambda p: interop.to_flax(jr.gru(4), p, kind="nnx.GRUCell"))(params)
    del params["b_hn"]
    with pytest.raises(ValueError, match=r"missing keys \['b_hn'\]"):
        interop.to_flax(jr.gru(4), params)
    params = random_params("gru", 3, 4)
    params["w_h"] = params["w_h"][:, :7]
    with pytest.raises(ValueError, match=r"params\['w_h'\] has shape \(4, 7\) .*expects \(4, 12\)"):
        interop.to_flax(jr.gru(4), params)


# --- Equinox -----------------------------------------------------------------------------------

EQX_KINDS = {"lstm": "LSTMCell", "gru": "GRUCell"}


def make_eqx_cell(eqx, kind, input_size, hidden_size, dtype, use_bias=True, seed=0):
    cls = getattr(eqx.nn, EQX_KINDS[kind])
    return cls(input_size, hidden_size, use_bias=use_bias, dtype=dtype, key=jax.random.key(seed))


def run_eqx(eqx, eqx_cell, xs, carry):
    """The Equinox cell stepped in a Python loop over time, vmapped over the batch."""
    step = eqx.filter_jit(lambda cell, x, carry: jax.vmap(cell)(x, carry))
    hs = []
    for x in xs:
        carry = step(eqx_cell, x, carry)
        hs.append(carry[0] if isinstance(carry, tuple) else carry)
    return carry, jnp.stack(hs)


@pytest.mark.parametrize("kind", list(EQX_KINDS))
def test_equinox_loop_matches_unroll(eqx, kind, sizes_and_dtype):
    (I, H, T, B), dtype = sizes_and_dtype
    eqx_cell = make_eqx_cell(eqx, kind, I, H, dtype)
    cell = make_cell(kind, H)
    xs = normal((T, B, I), dtype, 1)
    carry0 = random_carry(cell.initial_carry((B,), dtype), 2, dtype)  # same order in both
    want_carry, want_hs = run_eqx(eqx, eqx_cell, xs, carry0)

    params = interop.from_equinox(cell, eqx_cell)
    # Batch-major, as in the Flax tests, so that the compiled scans are shared.
    carry, hs = jr.unroll(cell, params, jnp.swapaxes(xs, 0, 1), carry0, time_axis=1)
    hs = jnp.swapaxes(hs, 0, 1)
    np.testing.assert_allclose(hs, want_hs, **tolerance(dtype))
    assert_trees_close(carry, want_carry, dtype)


@pytest.mark.parametrize("kind", list(EQX_KINDS))
def test_equinox_cell_without_biases_matches_unroll(eqx, kind, x64):
    I, H, T, B = SIZES[0]
    eqx_cell = make_eqx_cell(eqx, kind, I, H, jnp.float64, use_bias=False)
    cell = make_cell(kind, H)
    xs = normal((T, B, I), jnp.float64, 1)
    carry0 = random_carry(cell.initial_carry((B,), jnp.float64), 2, jnp.float64)
    want_carry, want_hs = run_eqx(eqx, eqx_cell, xs, carry0)

    params = interop.from_equinox(cell, eqx_cell)
    for key in ("b", "b_hn"):
        if key in params:
            assert params[key].dtype == jnp.float64
            np.testing.assert_array_equal(params[key], np.zeros(params[key].shape))
    carry, hs = jr.unroll(cell, params, xs, carry0)
    np.testing.assert_allclose(hs, want_hs, **tolerance(jnp.float64))
    assert_trees_close(carry, want_carry, jnp.float64)


@pytest.mark.parametrize("param_dtype", ["bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("kind", list(EQX_KINDS))
def test_from_equinox_of_to_equinox_is_bit_identical(eqx, kind, param_dtype, x64):
    cell = make_cell(kind, 5)
    params = random_params(kind, 3, 5, jnp.dtype(param_dtype))
    params["b"][:3] = [-0.0, 0.0, np.inf]
    params["w_x"][0, 0] = np.nan
    params = {k: jnp.asarray(v) for k, v in params.items()}
    like = make_eqx_cell(eqx, kind, 3, 5, jnp.float32)
    eqx_cell = interop.to_equinox(cell, params, like)
    assert type(eqx_cell) is type(like)
    assert eqx_cell.weight_ih.dtype == jnp.dtype(param_dtype)
    assert bits(eqx_cell.weight_ih) == bits(np.ascontiguousarray(np.asarray(params["w_x"]).T))
    assert_trees_bit_identical(interop.from_equinox(cell, eqx_cell), params)
    # The other way round: an Equinox cell survives the trip through jaxrnn unchanged.
    again = interop.to_equinox(cell, interop.from_equinox(cell, like), like)
    assert_trees_bit_identical(again, like)


@pytest.mark.parametrize("kind", list(EQX_KINDS))
def test_to_equinox_without_biases_needs_zero_biases(eqx, kind):
    cell = make_cell(kind, 4)
    like = make_eqx_cell(eqx, kind, 3, 4, jnp.float32, use_bias=False)
    params = interop.from_equinox(cell, like)
    eqx_cell = interop.to_equinox(cell, params, like)
    assert eqx_cell.bias is None
    params["b"] = params["b"].at[1].set(0.5)
    with pytest.raises(
        ValueError,
        match=r"params\['b'\] has nonzero values, but like has no bias \(use_bias=False\)",
    ):
        interop.to_equinox(cell, params, like)


def test_gradients_flow_through_from_equinox_into_the_module(eqx, x64):
    I, H, T, B = 3, 4, 5, 2
    eqx_cell = make_eqx_cell(eqx, "gru", I, H, jnp.float64)
    cell = make_cell("gru", H)
    xs = normal((T, B, I), jnp.float64, 1)
    weights = normal((T, B, H), jnp.float64, 2)
    h0 = jnp.zeros((B, H), jnp.float64)

    def eqx_loss(module):
        def step(h, x):
            h = jax.vmap(module)(x, h)
            return h, h

        return jnp.sum(jax.lax.scan(step, h0, xs)[1] * weights)

    def jaxrnn_loss(module):
        return jnp.sum(jr.unroll(cell, interop.from_equinox(cell, module), xs, h0)[1] * weights)

    want = eqx.filter_jit(eqx.filter_grad(eqx_loss))(eqx_cell)
    got = eqx.filter_jit(eqx.filter_grad(jaxrnn_loss))(eqx_cell)
    for name in ("weight_ih", "weight_hh", "bias", "bias_n"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(want, name), rtol=1e-10, atol=1e-12, err_msg=name
        )


def test_equinox_errors(eqx):
    lstm_cell = make_eqx_cell(eqx, "lstm", 3, 4, jnp.float32)
    with pytest.raises(
        ValueError,
        match=r"cell 'gru' converts to and from equinox.nn.GRUCell, but eqx_cell is an "
        r"equinox.nn.LSTMCell; use jaxrnn.lstm\(H\)",
    ):
        interop.from_equinox(jr.gru(4), lstm_cell)
    with pytest.raises(
        ValueError, match=r"eqx_cell has hidden_size=4 but cell 'lstm' has hidden_size=7"
    ):
        interop.from_equinox(jr.lstm(7), lstm_cell)
    with pytest.raises(
        TypeError, match=r"eqx_cell must be an equinox.nn.LSTMCell or .*got .*Linear"
    ):
        interop.from_equinox(jr.lstm(4), eqx.nn.Linear(3, 4, key=jax.random.key(0)))
    with pytest.raises(
        TypeError, match=r"like must be an equinox.nn.LSTMCell or .*got builtins.dict"
    ):
        interop.to_equinox(jr.lstm(4), random_params("lstm", 3, 4), {})
    with pytest.raises(
        ValueError,
        match=r"from_equinox cannot convert cell 'rnn_tanh': equinox.nn has no plain RNN",
    ):
        interop.from_equinox(jr.rnn(4), lstm_cell)
    with pytest.raises(ValueError, match=r"to_equinox cannot convert cell 'gru_original'"):
        interop.to_equinox(jr.gru(4, reset_after=False), {}, lstm_cell)
    with pytest.raises(
        ValueError,
        match=r"params\['w_x'\] has shape \(7, 16\) but cell 'lstm' \(hidden_size=4\) with "
        r"input_size=3 \(from like.input_size\) expects \(3, 16\)",
    ):
        interop.to_equinox(jr.lstm(4), random_params("lstm", 7, 4), lstm_cell)
    broken = eqx.tree_at(lambda m: m.weight_hh, lstm_cell, jnp.zeros((16, 7)))
    with pytest.raises(
        ValueError,
        match=r"eqx_cell.weight_hh has shape \(16, 7\) but an equinox.nn.LSTMCell "
        r"with input_size=3 and hidden_size=4 expects \(16, 4\)",
    ):
        interop.from_equinox(jr.lstm(4), broken)
    mixed = eqx.tree_at(lambda m: m.bias, lstm_cell, jnp.zeros(16, jnp.float16))
    with pytest.raises(
        TypeError, match=r"eqx_cell.bias has dtype float16 but eqx_cell.weight_ih has dtype float32"
    ):
        interop.from_equinox(jr.lstm(4), mixed)


def test_interop_imports_neither_flax_nor_equinox():
    code = (
        "import sys, jaxrnn.interop; "
        "print(sorted(m for m in ('flax', 'equinox', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_from_equinox_without_equinox_imported_says_what_it_needs(monkeypatch):
    monkeypatch.delitem(sys.modules, "equinox", raising=False)
    with pytest.raises(
        TypeError, match=r"eqx_cell must be an equinox.nn.LSTMCell .*got builtins.object"
    ):
        interop.from_equinox(jr.lstm(4), object())
