"""`bidirectional` and `stack`: equivalences, PyTorch parity, dropout, gradients, bad input."""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn as jr
from jaxrnn import interop, layers
from jaxrnn.layers import bidirectional, stack

pytestmark = pytest.mark.usefixtures("few_optimizations")

NAMES = ["rnn", "lstm", "gru"]
T, B, I, H = 6, 3, 3, 4
LENGTHS = np.array([6, 3, 0])


@functools.cache  # one cell per kind and size, so `unroll`'s compilations are shared
def make_cell(name, hidden_size=H):
    return {"rnn": jr.rnn, "lstm": jr.lstm, "gru": jr.gru}[name](hidden_size)


def randomize(tree, seed, scale=0.5):
    """`tree` plus NumPy noise on every leaf (no compilation, unlike jax.random eagerly)."""
    rng = np.random.default_rng(seed)

    def noisy(x):
        noise = scale * rng.standard_normal(x.shape)
        return jnp.asarray((np.asarray(x, np.float64) + noise).astype(x.dtype))

    return jax.tree.map(noisy, tree)


def random_params(layer, input_size=I, seed=1, dtype=jnp.float32):
    """Random params in the layout `layer.init` gives, drawn with NumPy."""
    init = functools.partial(layer.init, input_size=input_size, dtype=dtype)
    template = jax.eval_shape(init, jax.random.key(0))
    return randomize(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template), seed)


def random_carry(layer, batch_shape=(B,), seed=2, dtype=jnp.float32):
    template = jax.eval_shape(lambda: layer.initial_carry(batch_shape, dtype))
    return randomize(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template), seed)


def inputs(shape=(T, B, I), dtype=jnp.float32, seed=7):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def with_padding(xs, lengths, value):
    """`xs (T, batch, F)` with `value` at every step past each sequence's length."""
    padded = np.arange(xs.shape[0])[:, None] >= np.asarray(lengths)[None, :]
    return jnp.where(jnp.asarray(padded)[..., None], jnp.asarray(value, xs.dtype), xs)


def assert_trees_close(a, b, rtol=1e-6, atol=1e-6):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def scalar_loss(carry, ys):
    """Every output and every final state contribute, so every gradient path is exercised."""
    return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.cos(c)) for c in jax.tree.leaves(carry))


# --- bidirectional ----------------------------------------------------------------------------


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", None])
@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_is_a_forward_and_a_reverse_unroll(name, merge):
    cell = make_cell(name)
    layer = bidirectional(cell, cell, merge)
    params = random_params(layer)
    carry = random_carry(layer)
    xs = inputs()

    (fwd, bwd), ys = layer.apply(params, xs, carry)

    want_fwd, hs_f = jr.unroll(cell, params["fwd"], xs, carry[0])
    want_bwd, hs_b = jr.unroll(cell, params["bwd"], xs, carry[1], reverse=True)
    want = {
        "concat": jnp.concatenate([hs_f, hs_b], axis=-1),
        "sum": hs_f + hs_b,
        "mean": (hs_f + hs_b) / 2,
        None: (hs_f, hs_b),
    }[merge]
    assert_trees_close(ys, want)
    assert_trees_close(fwd, want_fwd)
    assert_trees_close(bwd, want_bwd)
    assert layer.output_size == {"concat": 2 * H, "sum": H, "mean": H, None: (H, H)}[merge]
    if merge == "concat":
        assert ys.shape == (T, B, 2 * H)


def test_bidirectional_with_two_different_cells():
    fwd_cell, bwd_cell = make_cell("lstm", 4), make_cell("gru", 5)
    layer = bidirectional(fwd_cell, bwd_cell)
    params = random_params(layer)
    assert set(params) == {"fwd", "bwd"} and params["bwd"]["w_h"].shape == (5, 15)
    ((h, c), h_b), ys = layer.apply(params, inputs())
    assert ys.shape == (T, B, 9) and layer.output_size == 9
    assert h.shape == c.shape == (B, 4) and h_b.shape == (B, 5)
    np.testing.assert_array_equal(ys[-1, :, :4], h)  # forward ends at the last step
    np.testing.assert_array_equal(ys[0, :, 4:], h_b)  # backward ends at the first


def test_init_is_deterministic_in_the_key_and_starts_the_learned_carry_at_zero():
    net = stack(
        [make_cell("lstm"), bidirectional(make_cell("gru"), make_cell("gru"))],
        learn_initial_carry=True,
    )
    init = jax.jit(net.init, static_argnums=1)
    a, b = init(jax.random.key(3), I), init(jax.random.key(3), I)
    assert_trees_equal(a, b)
    c = init(jax.random.key(4), I)
    assert not np.array_equal(a["layers"][0]["w_x"], c["layers"][0]["w_x"])
    fwd, bwd = a["layers"][1]["fwd"], a["layers"][1]["bwd"]
    assert not np.array_equal(fwd["w_x"], bwd["w_x"])  # the directions differ
    assert fwd["w_x"].shape == (H, 3 * H)  # layer 1 reads layer 0's H outputs
    zeros = [(np.zeros(H), np.zeros(H)), (np.zeros(H), np.zeros(H))]
    assert_trees_equal(a["initial_carry"], zeros)  # one (H,) vector per carry array
    template = jax.eval_shape(
        functools.partial(net.init, input_size=I, dtype=jnp.bfloat16), jax.random.key(0)
    )
    assert {leaf.dtype for leaf in jax.tree.leaves(template)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_padded_batch_equals_each_sequence_alone(name):
    cell = make_cell(name)
    layer = bidirectional(cell, cell)
    params = random_params(layer)
    lengths = np.array([6, 3, 1, 0])
    xs = inputs((T, 4, I))
    (fwd, bwd), ys = layer.apply(
        params, with_padding(xs, lengths, np.nan), lengths=jnp.asarray(lengths)
    )

    for b, length in enumerate(lengths):
        (fwd_b, bwd_b), ys_b = layer.apply(params, xs[:length, b])  # (length, I), no batch
        assert ys_b.shape == (length, 2 * H)
        np.testing.assert_allclose(ys[:length, b], ys_b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ys[length:, b], 0)
        assert_trees_close(jax.tree.map(lambda x, b=b: x[b], (fwd, bwd)), (fwd_b, bwd_b))


def test_bidirectional_time_axis_equals_transposing():
    layer = bidirectional(make_cell("lstm"), make_cell("lstm"), merge=None)
    params = random_params(layer)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    carry, ys = layer.apply(params, xs, lengths=lengths)
    carry_bm, ys_bm = layer.apply(params, jnp.swapaxes(xs, 0, 1), lengths=lengths, time_axis=1)
    assert_trees_close(carry_bm, carry)
    assert_trees_close(ys_bm, jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), ys))


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_nan_padding_gives_the_gradients_of_clean_padding(name):
    cell = make_cell(name)
    layer = bidirectional(cell, cell, "mean")
    params = random_params(layer)
    lengths = jnp.asarray(LENGTHS)

    @jax.jit
    @functools.partial(jax.value_and_grad, argnums=(0, 1))
    def loss(params, xs):
        return scalar_loss(*layer.apply(params, xs, lengths=lengths))

    xs = inputs()
    value, (grads, grads_xs) = loss(params, with_padding(xs, LENGTHS, 0.0))
    for garbage in (np.nan, np.inf, 1e30):
        value_g, (grads_g, grads_xs_g) = loss(params, with_padding(xs, LENGTHS, garbage))
        assert np.isfinite(value_g) and value_g == value
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads_g))
        assert_trees_close(grads_g, grads, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(grads_xs_g, grads_xs)
    padded = np.arange(T)[:, None] >= LENGTHS[None, :]
    np.testing.assert_array_equal(np.asarray(grads_xs)[padded], 0)
    assert np.any(np.asarray(grads_xs)[~padded] != 0)


# --- parity with PyTorch ----------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_two_layer_bidirectional_stack_matches_torch(kind, padded, x64):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    I_, H_, T_ = 3, 5, 7
    lengths = np.array([7, 3, 1, 5]) if padded else np.full(4, T_)
    B_ = len(lengths)
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    module = module_class(I_, H_, num_layers=2, bidirectional=True).double()
    xs = torch.randn(T_, B_, I_, dtype=torch.float64)
    pad = torch.arange(T_)[:, None] >= torch.from_numpy(lengths)[None, :]
    xs[pad] = float("nan")  # reaches neither library's outputs
    parts = 2 if kind == "lstm" else 1
    initial = [torch.randn(4, B_, H_, dtype=torch.float64) for _ in range(parts)]
    with torch.no_grad():
        hx = tuple(initial) if kind == "lstm" else initial[0]
        if padded:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xs, torch.from_numpy(lengths), enforce_sorted=False
            )
            out, state = module(packed, hx)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T_)
        else:
            out, state = module(xs, hx)
    state = state if kind == "lstm" else (state,)

    cell = make_cell(kind, H_)
    net = stack([bidirectional(cell, cell), bidirectional(cell, cell)])
    sd = module.state_dict()
    params = {
        "layers": [
            {
                "fwd": interop.from_torch(cell, sd, f"_l{layer}"),
                "bwd": interop.from_torch(cell, sd, f"_l{layer}_reverse"),
            }
            for layer in range(2)
        ]
    }

    def carry_of(index):  # torch orders states (layer, direction) as 2 * layer + direction
        parts_ = [jnp.asarray(s[index].numpy()) for s in initial]
        return tuple(parts_) if kind == "lstm" else parts_[0]

    carry = [(carry_of(2 * layer), carry_of(2 * layer + 1)) for layer in range(2)]
    carries, ys = net.apply(
        params,
        jnp.asarray(xs.numpy()),
        carry,
        lengths=jnp.asarray(lengths, jnp.int32) if padded else None,
    )

    np.testing.assert_allclose(ys, out.numpy(), rtol=1e-12, atol=1e-12)
    assert ys.dtype == jnp.float64 and ys.shape == (T_, B_, 2 * H_)
    for layer in range(2):
        for direction in range(2):
            got = jax.tree.leaves(carries[layer][direction])
            want = [s[2 * layer + direction].numpy() for s in state]
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


# --- stack ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_stack_equals_running_the_layers_by_hand(name):
    cell, top = make_cell(name), make_cell(name, 5)
    middle = bidirectional(cell, cell)
    net = stack([cell, middle, top])
    params = random_params(net)
    carry = random_carry(net)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    assert net.output_size == 5 and len(params["layers"]) == 3 and set(params) == {"layers"}

    carries, ys = net.apply(params, xs, carry, lengths=lengths)

    p = params["layers"]
    c0, y0 = jr.unroll(cell, p[0], xs, carry[0], lengths=lengths)
    c1, y1 = middle.apply(p[1], y0, carry[1], lengths=lengths)
    c2, y2 = jr.unroll(top, p[2], y1, carry[2], lengths=lengths)
    assert isinstance(carries, list) and len(carries) == 3
    assert_trees_close(carries, [c0, c1, c2])
    assert_trees_close(ys, y2)
    assert ys.shape == (T, B, 5)

    # default carry: zeros; batch-major layout: the same values transposed
    default = net.apply(params, xs, lengths=lengths)
    assert_trees_equal(default, net.apply(params, xs, net.initial_carry((B,)), lengths=lengths))
    carries_bm, ys_bm = net.apply(params, jnp.swapaxes(xs, 0, 1), lengths=lengths, time_axis=1)
    assert_trees_close(carries_bm, default[0])
    assert_trees_close(ys_bm, jnp.swapaxes(default[1], 0, 1))


@pytest.mark.parametrize("name", NAMES)
def test_residual_adds_each_layers_input(name):
    size = 4
    cell, half = make_cell(name, size), make_cell(name, size // 2)
    middle = bidirectional(half, half)
    net = stack([cell, middle], residual=True)
    params = random_params(net, size)
    xs, lengths = inputs((T, B, size)), jnp.asarray(LENGTHS)

    carries, ys = net.apply(params, with_padding(xs, LENGTHS, np.nan), lengths=lengths)

    clean = with_padding(xs, LENGTHS, 0.0)
    c0, y0 = jr.unroll(cell, params["layers"][0], clean, lengths=lengths)
    c1, y1 = middle.apply(params["layers"][1], y0 + clean, lengths=lengths)
    assert_trees_close(ys, y1 + y0 + clean)
    assert_trees_close(carries, [c0, c1])
    padded = np.arange(T)[:, None] >= LENGTHS[None, :]
    np.testing.assert_array_equal(np.asarray(ys)[padded], 0)  # NaN padding is not added back
    plain = stack([cell, middle]).apply(params, clean, lengths=lengths)[1]
    assert not np.allclose(ys, plain)


def test_residual_adds_the_input_before_dropout():
    # a layer with zero params outputs relu(0) = 0, so the stack's output is its input,
    # which must not carry the dropout mask applied to what the layer reads
    first, zero = make_cell("gru"), jr.rnn(H, "relu")
    params = random_params(stack([first, zero]), H)
    params["layers"][1] = jax.tree.map(jnp.zeros_like, params["layers"][1])
    xs = inputs((T, B, H))
    net = stack([first, zero], residual=True, dropout=0.5)
    _, ys = net.apply(params, xs, key=jax.random.key(0))
    _, y0 = jr.unroll(first, params["layers"][0], xs)
    np.testing.assert_allclose(ys, y0 + xs, rtol=1e-6, atol=1e-6)


def test_key_without_dropout_changes_nothing_and_no_key_means_no_dropout():
    cell = make_cell("lstm")
    plain = stack([cell, cell])
    params = random_params(plain)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    want = plain.apply(params, xs, lengths=lengths)
    assert_trees_equal(plain.apply(params, xs, lengths=lengths, key=jax.random.key(5)), want)
    for options in ({"dropout": 0.5}, {"recurrent_dropout": 0.5}):
        noisy = stack([cell, cell], **options)
        assert_trees_equal(noisy.apply(params, xs, lengths=lengths), want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "options",
    [{"dropout": 0.3}, {"recurrent_dropout": 0.3}, {"dropout": 0.3, "recurrent_dropout": 0.3}],
    ids=["dropout", "recurrent", "both"],
)
def test_dropout_depends_on_the_key_alone(name, options):
    cell = make_cell(name)
    layer_list = [cell, bidirectional(cell, cell)]
    net, plain = stack(layer_list, **options), stack(layer_list)
    params = random_params(net)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    key_a, key_b = jax.random.key(10), jax.random.key(11)

    a = net.apply(params, xs, lengths=lengths, key=key_a)
    assert_trees_equal(a, net.apply(params, xs, lengths=lengths, key=key_a))
    b = net.apply(params, xs, lengths=lengths, key=key_b)
    assert not np.allclose(a[1], b[1])
    assert not np.allclose(a[1], plain.apply(params, xs, lengths=lengths)[1])
    padded = np.arange(T)[:, None] >= LENGTHS[None, :]
    np.testing.assert_array_equal(np.asarray(a[1])[padded], 0)
    # a raw uint32 key works the same way as a typed one
    raw = net.apply(params, xs, lengths=lengths, key=jax.random.key_data(key_a))
    assert_trees_equal(raw, a)


def test_dropout_is_neither_on_the_inputs_nor_on_the_last_output():
    cell = make_cell("gru")
    params = random_params(stack([cell]))
    xs = inputs()
    want = stack([cell]).apply(params, xs)
    got = stack([cell], dropout=0.5).apply(params, xs, key=jax.random.key(3))
    assert_trees_equal(got, want)


def relu_identity_params(size, input_size, bias=0.0, input_identity=False):
    """`rnn(size, "relu")` params with `w_h = I`, `w_x = I` or 0 and a constant bias."""
    w_x = jnp.eye(input_size, size) if input_identity else jnp.zeros((input_size, size))
    return {"w_x": w_x, "w_h": jnp.eye(size), "b": jnp.full((size,), bias)}


def test_recurrent_mask_is_one_per_sequence_shared_by_all_steps():
    # relu with w_h = I, no input and no bias: h_t = relu(m * h_{t-1}) = m ** (t + 1)
    # from h_{-1} = 1, so every step shows the product of the masks drawn so far.
    size, batch, steps, rate = 32, 64, 5, 0.5
    cell = jr.rnn(size, "relu")
    net = stack([cell], recurrent_dropout=rate)
    params = {"layers": [relu_identity_params(size, 1)]}
    xs = jnp.zeros((steps, batch, 1))
    carry = [jnp.ones((batch, size))]
    _, ys = net.apply(params, xs, carry, key=jax.random.key(0))
    mask = np.asarray(ys[0])
    assert set(np.unique(mask)) == {0.0, 1 / (1 - rate)}  # inverted dropout: kept units scaled
    for t in range(steps):
        np.testing.assert_array_equal(ys[t], mask ** (t + 1))  # the same mask at every step
    assert abs(np.mean(mask == 0) - rate) < 0.05
    assert abs(np.mean(mask) - 1) < 0.1  # the mean is preserved
    assert len({row.tobytes() for row in mask}) > batch // 2  # one mask per sequence


def test_dropout_between_layers_is_inverted_and_drawn_every_step():
    # layer 0 outputs relu(1) = 1 everywhere; layer 1 is relu(x @ I), so it shows the mask
    size, batch, steps, rate = 32, 16, 20, 0.25
    cell = jr.rnn(size, "relu")
    net = stack([cell, cell], dropout=rate)
    params = {
        "layers": [
            {**relu_identity_params(size, 1, bias=1.0), "w_h": jnp.zeros((size, size))},
            {
                **relu_identity_params(size, size, input_identity=True),
                "w_h": jnp.zeros((size, size)),
            },
        ]
    }
    _, mask = net.apply(params, jnp.zeros((steps, batch, 1)), key=jax.random.key(0))
    mask = np.asarray(mask)
    np.testing.assert_array_equal(np.unique(mask), [0.0, np.float32(1 / (1 - rate))])
    assert abs(np.mean(mask == 0) - rate) < 0.03
    assert abs(np.mean(mask) - 1) < 0.03
    assert not np.array_equal(mask[0], mask[1])  # a new mask at every step (PyTorch's dropout)
    _, no_key = net.apply(params, jnp.zeros((steps, batch, 1)))
    np.testing.assert_array_equal(no_key, 1)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "gru_original"])
def test_recurrent_dropout_masks_the_state_entering_the_recurrent_matmul(name, x64, monkeypatch):
    # Masking h before h @ w_h equals scaling the rows of w_h, one sequence at a time; for a
    # GRU the interpolation z * h must still see the undropped state.
    cell = make_cell(name) if name != "gru_original" else jr.gru(H, reset_after=False)
    masks, original = [], layers._dropout_mask

    def recording(key, rate, shape, dtype):
        mask = original(key, rate, shape, dtype)
        masks.append(mask)
        return mask

    monkeypatch.setattr(layers, "_dropout_mask", recording)
    net = stack([bidirectional(cell, cell)], recurrent_dropout=0.5)
    params = random_params(net, dtype=jnp.float64)
    carry = random_carry(net, dtype=jnp.float64)
    xs, lengths = inputs(dtype=jnp.float64), jnp.asarray(LENGTHS)
    carries, ys = net.apply(params, xs, carry, lengths=lengths, key=jax.random.key(4))

    # One mask per carry array, forward then backward; h's is the first of each cell.
    per_cell = len(masks) // 2
    masks = [masks[0], masks[per_cell]]
    assert all(m.shape == (B, H) for m in masks)
    assert all(np.any(m == 0) for m in masks)
    p = params["layers"][0]
    for b, length in enumerate(LENGTHS):
        halves = []
        for part, index, reverse in (("fwd", 0, False), ("bwd", 1, True)):
            scaled = {**p[part], "w_h": masks[index][b][:, None] * p[part]["w_h"]}
            start = jax.tree.map(lambda c, b=b: c[b], carry[0][index])
            final, hs = jr.unroll(cell, scaled, xs[:length, b], start, reverse=reverse)
            assert_trees_close(
                jax.tree.map(lambda c, b=b: c[b], carries[0][index]), final, 1e-12, 1e-12
            )
            halves.append(hs)
        np.testing.assert_allclose(ys[:length, b], jnp.concatenate(halves, -1), 1e-12, 1e-12)


def test_learned_initial_carry_is_a_parameter():
    cell = make_cell("lstm")  # a tuple carry; the learned carry does not depend on the cell
    layer_list = [cell, bidirectional(cell, cell)]
    net, plain = stack(layer_list, learn_initial_carry=True), stack(layer_list)
    params = random_params(net)
    assert set(params) == {"layers", "initial_carry"}
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    learned = params["initial_carry"]
    broadcast = jax.tree.map(lambda v: jnp.broadcast_to(v, (B, *v.shape)), learned)

    def loss_learned(params):
        return scalar_loss(*net.apply(params, xs, lengths=lengths))

    def loss_explicit(layer_params, carry):
        return scalar_loss(*plain.apply({"layers": layer_params}, xs, carry, lengths=lengths))

    carries, ys = net.apply(params, xs, lengths=lengths)
    assert_trees_equal(
        (carries, ys), plain.apply({"layers": params["layers"]}, xs, broadcast, lengths=lengths)
    )
    # the sequence of length 0 ends where it started: at the learned carry
    assert_trees_equal(jax.tree.map(lambda c: c[2], carries), learned)

    grads = jax.jit(jax.grad(loss_learned))(params)
    g_layers, g_carry = jax.jit(jax.grad(loss_explicit, argnums=(0, 1)))(
        params["layers"], broadcast
    )
    assert_trees_close(grads["layers"], g_layers, 1e-5, 1e-6)
    assert_trees_close(
        grads["initial_carry"], jax.tree.map(lambda g: g.sum(0), g_carry), 1e-5, 1e-6
    )
    assert all(np.any(g != 0) for g in jax.tree.leaves(grads["initial_carry"]))

    # an explicit carry overrides the learned one, which then gets no gradient
    explicit = random_carry(plain, seed=3)
    assert_trees_equal(
        net.apply(params, xs, explicit, lengths=lengths),
        plain.apply({"layers": params["layers"]}, xs, explicit, lengths=lengths),
    )
    grads = jax.jit(jax.grad(lambda p: scalar_loss(*net.apply(p, xs, explicit, lengths=lengths))))(
        params
    )
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads["initial_carry"]))


@pytest.mark.parametrize("name", ["gru"])  # the cell whose recurrent dropout has the most parts
def test_gradients_match_finite_differences(name, x64):
    # Everything at once, in float64: lengths, residual, both dropouts under a fixed key,
    # a learned initial carry, a cell layer and a bidirectional layer.
    net = stack(
        [make_cell(name, 4), bidirectional(make_cell(name, 2), make_cell(name, 2))],
        residual=True,
        dropout=0.3,
        recurrent_dropout=0.3,
        learn_initial_carry=True,
    )
    params = random_params(net, 4, dtype=jnp.float64)
    xs = inputs((4, 2, 4), jnp.float64)
    lengths, key = jnp.array([4, 2]), jax.random.key(2)

    @jax.jit
    def loss(params, xs):
        return scalar_loss(*net.apply(params, xs, lengths=lengths, key=key))

    check_grads(loss, (params, xs), order=1, modes=("rev",))


def test_jit_equals_eager_and_new_keys_do_not_retrace():
    traces = []
    base = make_cell("lstm")

    def recur(params, carry, projected, read):
        traces.append(1)
        return base.step.recur(params, carry, projected, read)

    cell = base._replace(step=jr.Step(base.step.project, recur))
    net = stack([cell, bidirectional(cell, cell)], dropout=0.2, recurrent_dropout=0.2)
    params = random_params(net)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)

    eager = net.apply(params, xs, lengths=lengths, key=jax.random.key(1))
    count = len(traces)
    net.apply(params, xs + 1, lengths=jnp.array([1, 2, 3]), key=jax.random.key(2))
    assert len(traces) == count  # eager calls reuse the compiled scans

    run = jax.jit(lambda params, xs, key: net.apply(params, xs, lengths=lengths, key=key))
    assert_trees_close(run(params, xs, jax.random.key(1)), eager, 1e-5, 1e-6)
    count = len(traces)
    run(params, xs, jax.random.key(2))
    assert len(traces) == count


def test_hoisted_projection_gives_the_same_values(monkeypatch):
    # GPUs hoist the input projection out of the loop by default; CPUs do not.
    cell = make_cell("gru")
    net = stack([cell, bidirectional(cell, cell)], dropout=0.3, recurrent_dropout=0.3)
    params, xs, lengths = random_params(net), inputs(), jnp.asarray(LENGTHS)
    run = jax.jit(lambda params, xs, key: net.apply(params, xs, lengths=lengths, key=key))
    want = run(params, xs, jax.random.key(1))
    monkeypatch.setattr(importlib.import_module("jaxrnn.unroll"), "default_hoist", lambda: True)
    hoisted = jax.jit(lambda params, xs, key: net.apply(params, xs, lengths=lengths, key=key))
    assert_trees_close(hoisted(params, xs, jax.random.key(1)), want, 1e-5, 1e-6)


def test_vmap_over_keys_equals_one_call_per_key():
    cell = make_cell("lstm")
    net = stack([cell, cell], dropout=0.3, recurrent_dropout=0.3)
    params, xs = random_params(net), inputs()
    keys = jax.random.split(jax.random.key(0), B)

    def one(x, key):  # one sequence (T, I), one key
        return net.apply(params, x, key=key)[1]

    ys = jax.vmap(one, in_axes=(1, 0), out_axes=1)(xs, keys)
    one = jax.jit(one)  # compiled once for the calls below
    for b in range(B):
        np.testing.assert_allclose(ys[:, b], one(xs[:, b], keys[b]), rtol=1e-5, atol=1e-6)


def test_float64_is_preserved_through_dropout_and_gradients(x64):
    # float32 is checked along the way by the other tests
    dtype = jnp.float64
    net = stack(
        [make_cell("lstm"), bidirectional(make_cell("gru"), make_cell("gru"), "sum")],
        dropout=0.2,
        recurrent_dropout=0.2,
        learn_initial_carry=True,
    )
    params = random_params(net, dtype=dtype)
    xs = inputs(dtype=dtype)

    def loss(params):
        carries, ys = net.apply(params, xs, lengths=jnp.asarray(LENGTHS), key=jax.random.key(1))
        assert ys.dtype == dtype and all(c.dtype == dtype for c in jax.tree.leaves(carries))
        return jnp.sum(ys)

    grads = jax.jit(jax.grad(loss))(params)
    assert all(g.dtype == dtype for g in jax.tree.leaves(grads))


# --- bad input --------------------------------------------------------------------------------


def test_bidirectional_rejects_bad_construction():
    cell = make_cell("lstm")
    with pytest.raises(TypeError, match=r"fwd must be a jaxrnn Cell .* or a layer .* got BpttStep"):
        bidirectional(cell.step, cell)
    with pytest.raises(ValueError, match=r"bwd is bidirectional with merge=None"):
        bidirectional(cell, bidirectional(cell, cell, merge=None))
    with pytest.raises(TypeError, match=r"merge must be one of 'concat', .* or a function .*'max'"):
        bidirectional(cell, cell, merge="max")
    with pytest.raises(ValueError, match=r"merge='mean' .* got 4 \(fwd\) and 7 \(bwd\)"):
        bidirectional(cell, make_cell("lstm", 7), merge="mean")


def test_bidirectional_rejects_bad_params_carry_and_key():
    cell = make_cell("lstm")
    layer = bidirectional(cell, cell)
    params = random_params(layer)
    xs = inputs()
    with pytest.raises(ValueError, match=r"params do not match .* missing \[\"params\['bwd'\]"):
        layer.apply({"fwd": params["fwd"]}, xs)
    bad = {**params, "bwd": {**params["bwd"], "w_x": jnp.zeros((7, 4 * H))}}
    with pytest.raises(
        ValueError, match=r"made for input_size 7 .* read off params\['bwd'\]\['w_x'\]"
    ):
        layer.apply(bad, xs)
    bad = {**params, "fwd": {**params["fwd"], "w_h": jnp.zeros((7, 4 * H))}}
    with pytest.raises(
        ValueError, match=r"params\['fwd'\]\['w_h'\] has shape \(7, 16\) .* expects \(4, 16\)"
    ):
        layer.apply(bad, xs)
    carry = layer.initial_carry((B,))
    with pytest.raises(ValueError, match=r"carry must have the structure .*; got a tuple of 3"):
        layer.apply(params, xs, (*carry, carry[0]))
    wrong = (carry[0], (carry[1][0], jnp.zeros((B, 7))))
    with pytest.raises(
        ValueError, match=r"carry\[1\]\[1\] has shape \(3, 7\) but .* expects \(3, 4\)"
    ):
        layer.apply(params, xs, wrong)
    with pytest.raises(TypeError, match=r"key must be a single PRNG key"):
        layer.apply(params, xs, key=3)
    with pytest.raises(
        ValueError, match=r"lengths has shape \(2,\) but must have the batch shape of xs, \(3,\)"
    ):
        layer.apply(params, xs, lengths=jnp.array([1, 2]))
    with pytest.raises(ValueError, match=r"time_axis must be an axis of xs other than the last"):
        layer.apply(params, xs, time_axis=2)
    with pytest.raises(TypeError, match=r"apply got unknown options \['revers'\]"):
        layer.apply(params, xs, revers=True)


def test_stack_rejects_bad_layers_and_options():
    cell = make_cell("gru")
    with pytest.raises(TypeError, match=r"layers must be a list of cells .* got Cell"):
        stack(cell)
    with pytest.raises(ValueError, match=r"layers must hold at least one"):
        stack([])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a jaxrnn Cell .* got int"):
        stack([cell, 3])
    with pytest.raises(ValueError, match=r"layers\[0\] is bidirectional with merge=None"):
        stack([bidirectional(cell, cell, None), cell])
    for name in ("dropout", "recurrent_dropout"):
        for bad in (1.0, -0.1, float("nan")):
            with pytest.raises(
                ValueError, match=rf"{name} must be a probability in \[0, 1\), got {bad}"
            ):
                stack([cell], **{name: bad})
        with pytest.raises(TypeError, match=rf"{name} must be a probability in \[0, 1\), got str"):
            stack([cell], **{name: "0.1"})
    for name in ("residual", "learn_initial_carry"):
        with pytest.raises(TypeError, match=rf"{name} must be a bool, got int 1"):
            stack([cell], **{name: 1})
    with pytest.raises(
        ValueError, match=r"residual=True .* layers\[1\] reads 4 features .* but outputs 5"
    ):
        stack([cell, make_cell("gru", 5)], residual=True)
    linear = jr.min_gru(4)
    with pytest.raises(ValueError, match=r"recurrent_dropout .* layers\[1\] has cell 'min_gru'"):
        stack([cell, bidirectional(cell, linear)], recurrent_dropout=0.1)
    stack([cell, bidirectional(cell, linear)], dropout=0.1)  # fine without recurrent dropout
    custom = cell._replace(name="my_cell", step=lambda p, c, x: cell.step(p, c, x))
    stack([cell, bidirectional(cell, custom)], recurrent_dropout=0.1)  # any other cell works


def test_stack_rejects_bad_params_carry_and_inputs():
    cell = make_cell("lstm")
    middle = bidirectional(cell, cell)
    net = stack([cell, middle], residual=False)
    params = random_params(net)
    xs = inputs()
    with pytest.raises(
        ValueError,
        match=r"residual=True .* layers\[0\] reads 3 features \(input_size\) but outputs 4",
    ):
        stack([cell], residual=True).init(jax.random.key(0), I)
    with pytest.raises(
        ValueError, match=r"layers\[0\] reads 3 features \(xs.shape\[-1\]\) but outputs 4"
    ):
        stack([cell], residual=True).apply({"layers": [params["layers"][0]]}, xs)
    with pytest.raises(ValueError, match=r"params do not match the params that the stack layer"):
        net.apply(params["layers"], xs)
    with pytest.raises(ValueError, match=r"missing \[\"params\['initial_carry'\]\[0\]\[0\]\""):
        stack([cell, middle], learn_initial_carry=True).apply(params, xs)
    with pytest.raises(ValueError, match=r"missing \[\"params\['layers'\]\[1\]\['bwd'\]"):
        net.apply({"layers": params["layers"][:1]}, xs)
    bad = [params["layers"][0], {**params["layers"][1], "bwd": params["layers"][0]}]
    with pytest.raises(
        ValueError,
        match=r"params\['layers'\]\[1\]\['bwd'\]\['w_x'\] has shape \(3, 16\) .* expects \(4, 16\)",
    ):
        net.apply({"layers": bad}, xs)
    first = {**params["layers"][0], "b": jnp.zeros(4 * H, jnp.float16)}
    with pytest.raises(
        TypeError,
        match=r"params\['layers'\]\[0\]\['b'\] has dtype float16 but xs has dtype float32",
    ):
        net.apply({"layers": [first, params["layers"][1]]}, xs)

    carry = net.initial_carry((B,))
    with pytest.raises(ValueError, match=r"carry must have the structure .*; got a list of 3"):
        net.apply(params, xs, [*carry, carry[0]])
    with pytest.raises(ValueError, match=r"carry must have the structure .*; got a list of 2"):
        net.apply(params, xs, [carry[0], carry[1][:1]])
    with pytest.raises(
        ValueError, match=r"carry\[0\]\[1\] has shape \(3, 7\) but .* expects \(3, 4\)"
    ):
        net.apply(params, xs, [(carry[0][0], jnp.zeros((B, 7))), carry[1]])
    learning = stack([cell, middle], learn_initial_carry=True)
    learned = random_params(learning)
    wrong = {
        **learned,
        "initial_carry": [learned["initial_carry"][0], (jnp.zeros(4), jnp.zeros(4))],
    }
    with pytest.raises(ValueError, match=r"params do not match .* missing .*initial_carry'\]\[1\]"):
        learning.apply(wrong, xs)

    with pytest.raises(TypeError, match=r"xs must have a real floating dtype"):
        net.apply(params, jnp.ones((T, B, I), jnp.int32))
    with pytest.raises(ValueError, match=r"xs must have at least 2 dims"):
        net.apply(params, jnp.ones(I))
    with pytest.raises(
        ValueError,
        match=r"lengths must lie in \[0, T\] with T=6 steps in xs; got values from 0 to 7",
    ):
        net.apply(params, xs, lengths=jnp.array([7, 3, 0]))
    with pytest.raises(TypeError, match=r"key must be a single PRNG key"):
        net.apply(params, xs, key=jnp.zeros(3))


# Composition.


def test_nested_stacks_and_per_step_layers_equal_applying_them_in_turn(x64):
    inner = stack([make_cell("lstm"), make_cell("gru")])
    head = jr.dense(5)
    net = stack([inner, head, make_cell("rnn", 5)])
    params = random_params(net, dtype=jnp.float64)
    xs, lengths = inputs(dtype=jnp.float64), jnp.asarray(LENGTHS)
    carries, ys = net.apply(params, xs, lengths=lengths)

    c0, h = inner.apply(params["layers"][0], xs, lengths=lengths)
    valid = (jnp.arange(T)[:, None] < lengths[None])[..., None]
    h = jnp.where(valid, head.apply(params["layers"][1], h), 0.0)
    c2, want = jr.unroll(make_cell("rnn", 5), params["layers"][2], h, lengths=lengths)
    assert_trees_close((carries, ys), ([c0, (), c2], want), 1e-12, 1e-12)
    assert bool(jnp.all(ys[3:, 1] == 0)) and bool(jnp.all(ys[:, 2] == 0))


def test_bidirectional_of_stacks_with_a_merge_function(x64):
    part = stack([make_cell("lstm"), make_cell("gru")])
    layer = bidirectional(part, part, merge=lambda f, b: f * b)
    assert layer.output_size == H
    params = random_params(layer, dtype=jnp.float64)
    xs, lengths = inputs(dtype=jnp.float64), jnp.asarray(LENGTHS)
    (fwd, bwd), ys = layer.apply(params, xs, lengths=lengths)

    want_fwd, ys_f = part.apply(params["fwd"], xs, lengths=lengths)
    h, want_bwd = xs, []
    for cell, p in zip(part.layers, params["bwd"]["layers"], strict=True):
        carry, h = jr.unroll(cell, p, h, lengths=lengths, reverse=True)
        want_bwd.append(carry)
    assert_trees_close((fwd, bwd, ys), (want_fwd, want_bwd, ys_f * h), 1e-12, 1e-12)


UNROLL_OPTIONS = [
    {"remat": True},
    {"unroll": 3},
    {"grad": "bptt"},
    {"hoist": True},
    {"parallel": False},
]


def test_unroll_options_reach_every_cell_and_change_nothing(x64):
    net = stack([make_cell("lstm"), bidirectional(make_cell("gru"), make_cell("gru"))])
    params = random_params(net, dtype=jnp.float64)
    xs, lengths = inputs(dtype=jnp.float64), jnp.asarray(LENGTHS)

    def loss(params, **options):
        return scalar_loss(*net.apply(params, xs, lengths=lengths, **options))

    @jax.jit  # one compilation for all of them
    def run(params):
        return [
            jax.value_and_grad(functools.partial(loss, **options))(params)
            for options in [{}, *UNROLL_OPTIONS]
        ]

    (value, grads), *others = run(params)
    for options, (other_value, other_grads) in zip(UNROLL_OPTIONS, others, strict=True):
        np.testing.assert_allclose(other_value, value, 1e-12, 1e-12, err_msg=str(options))
        assert_trees_close(other_grads, grads, 1e-10, 1e-12)


def test_mask_and_resets_reach_every_cell(x64):
    cell = make_cell("gru")
    net = stack([cell, cell])
    params = random_params(net, dtype=jnp.float64)
    xs = inputs(dtype=jnp.float64)
    mask = jax.random.bernoulli(jax.random.key(3), 0.7, (T, B))
    resets = jax.random.bernoulli(jax.random.key(4), 0.3, (T, B))
    _, ys = net.apply(params, jnp.swapaxes(xs, 0, 1), time_axis=1, mask=mask.T, resets=resets.T)
    h = xs
    for p in params["layers"]:
        _, h = jr.unroll(cell, p, h, mask=mask, resets=resets)
    np.testing.assert_allclose(jnp.swapaxes(ys, 0, 1), h, 1e-12, 1e-12)


def test_zoneout_and_input_dropout_act_only_with_a_key():
    cell = make_cell("lstm")
    plain = stack([cell, cell])
    params = random_params(plain)
    xs = inputs()
    for options in ({"zoneout": 0.5}, {"input_dropout": 0.5}):
        net = stack([cell, cell], **options)
        assert_trees_equal(net.apply(params, xs), plain.apply(params, xs))
        trained = net.apply(params, xs, key=jax.random.key(0))[1]
        assert not np.allclose(trained, plain.apply(params, xs)[1])
        assert_trees_equal(trained, net.apply(params, xs, key=jax.random.key(0))[1])
        assert np.all(np.isfinite(trained))


def test_zoneout_near_one_keeps_the_initial_state():
    # Every unit keeps its previous value: the state, and the LSTM's output h, stay put.
    cell = make_cell("lstm")
    net = stack([cell], zoneout=1 - 1e-7)
    params = random_params(net)
    carry = random_carry(net)
    carries, ys = net.apply(params, inputs(), carry, key=jax.random.key(0))
    assert_trees_equal(carries, carry)
    np.testing.assert_array_equal(ys, jnp.broadcast_to(carry[0][0], ys.shape))


def test_input_dropout_near_one_drops_every_input():
    cell = make_cell("gru")
    net = stack([cell], input_dropout=1 - 1e-7)
    params = random_params(net)
    _, ys = net.apply(params, inputs(), key=jax.random.key(0))
    np.testing.assert_array_equal(ys, stack([cell]).apply(params, jnp.zeros((T, B, I)))[1])


def test_zoneout_and_recurrent_dropout_with_a_raw_key_and_their_limits():
    cell = make_cell("lstm")
    net = stack([cell, bidirectional(cell, cell)], zoneout=0.3, recurrent_dropout=0.2)
    params = random_params(net)
    xs, lengths = inputs(), jnp.asarray(LENGTHS)
    raw = net.apply(params, xs, lengths=lengths, key=jax.random.PRNGKey(1))
    assert_trees_equal(raw, net.apply(params, xs, lengths=lengths, key=jax.random.key(1)))
    # Every carry unit kept, yet each LSTM's output is its zoned-out h: the state holds.
    _, ys = stack([cell], zoneout=1 - 1e-7).apply(
        params={"layers": [params["layers"][0]]}, xs=xs, key=jax.random.key(2)
    )
    np.testing.assert_array_equal(ys, 0.0)
    for options in ({"grad": "bptt"},):
        with pytest.raises(ValueError, match=r"recurrent_dropout and zoneout .* grad='autodiff'"):
            net.apply(params, xs, key=jax.random.key(1), **options)
    # A linear cell deep inside bidirectional layers is refused where it is wrapped.
    linear = bidirectional(jr.min_gru(H), jr.min_gru(H))
    outer = stack([bidirectional(linear, linear)], recurrent_dropout=0.2)
    p = outer.init(jax.random.key(0), I)
    with pytest.raises(
        ValueError,
        match=r"recurrent_dropout .* stack has cell 'min_gru', whose step is a LinearStep",
    ):
        outer.apply(p, xs, key=jax.random.key(1))
