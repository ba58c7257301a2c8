"""PyTorch weight interop: parity with torch.nn.RNN/LSTM/GRU, round trips, errors.

torch is optional: the tests that need it skip without it. PyTorch is also the
oracle for `unroll`'s `lengths` and `reverse` semantics here, through
`pack_padded_sequence` on bidirectional modules.
"""

import doctest
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr
from jaxrnn import interop

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
# (input_size, hidden_size, T, batch)
SIZES = [(3, 5, 7, 2), (16, 32, 11, 4), (1, 1, 1, 1)]


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


@functools.cache  # one cell per size, so `unroll`'s compilations are shared between tests
def make_cell(kind, hidden_size):
    if kind.startswith("rnn_"):
        return jr.rnn(hidden_size, kind.removeprefix("rnn_"))
    return {"lstm": jr.lstm, "gru": jr.gru}[kind](hidden_size)


def make_module(torch, kind, input_size, hidden_size, dtype, **kwargs):
    if kind.startswith("rnn_"):
        module = torch.nn.RNN(
            input_size, hidden_size, nonlinearity=kind.removeprefix("rnn_"), **kwargs
        )
    else:
        module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
            input_size, hidden_size, **kwargs
        )
    return module.to(torch_dtype(torch, dtype))


def torch_dtype(torch, dtype):
    return torch.float64 if dtype == jnp.float64 else torch.float32


def tolerance(dtype):
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == jnp.float64 else {"rtol": 1e-5, "atol": 1e-6}


def final_states(kind, state, index):
    """torch's `h_n` (and `c_n`) for one layer direction, as the leaves of a jaxrnn carry."""
    parts = state if kind == "lstm" else (state,)
    return [p[index].detach().numpy() for p in parts]


def assert_carry_close(kind, carry, state, index, dtype):
    got = jax.tree.leaves(carry)
    want = final_states(kind, state, index)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tolerance(dtype))


def random_params(kind, input_size, hidden_size, dtype=np.float32, seed=0):
    """Params in the layout `cell.init` gives, drawn with NumPy (no compilation)."""
    rng = np.random.default_rng(seed)
    gh = GATES[kind] * hidden_size
    shapes = {"w_x": (input_size, gh), "w_h": (hidden_size, gh), "b": (gh,)}
    if kind == "gru":
        shapes["b_hn"] = (hidden_size,)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def random_state_dict(kind, input_size, hidden_size, dtype=np.float32, suffix="_l0", seed=0):
    rng = np.random.default_rng(seed)
    gh = GATES[kind] * hidden_size
    shapes = {
        "weight_ih": (gh, input_size),
        "weight_hh": (gh, hidden_size),
        "bias_ih": (gh,),
        "bias_hh": (gh,),
    }
    return {f"{k}{suffix}": rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


# --- parity with torch ------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", SIZES, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_outputs_and_final_state_match_torch(torch, kind, sizes, dtype):
    I, H, T, B = sizes
    module = make_module(torch, kind, I, H, dtype)
    xs = torch.randn(T, B, I, dtype=torch_dtype(torch, dtype))
    with torch.no_grad():
        out, state = module(xs)

    cell = make_cell(kind, H)
    params = interop.from_torch(cell, module.state_dict())
    carry, hs = jr.unroll(cell, params, jnp.asarray(xs.numpy()))

    assert hs.dtype == dtype and hs.shape == (T, B, H)
    np.testing.assert_allclose(hs, out.numpy(), **tolerance(dtype))
    assert_carry_close(kind, carry, state, 0, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_bias_false_module_loads_with_zero_biases(torch, kind, dtype):
    I, H, T, B = SIZES[0]
    module = make_module(torch, kind, I, H, dtype, bias=False)
    assert not any(k.startswith("bias") for k in module.state_dict())
    xs = torch.randn(T, B, I, dtype=torch_dtype(torch, dtype))
    with torch.no_grad():
        out, state = module(xs)

    cell = make_cell(kind, H)
    params = interop.from_torch(cell, module.state_dict())
    template = jax.eval_shape(
        functools.partial(cell.init, input_size=I, dtype=dtype), jax.random.key(0)
    )
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in template.items()}
    for key in ("b", "b_hn"):
        if key in params:
            assert params[key].dtype == dtype
            np.testing.assert_array_equal(params[key], np.zeros(params[key].shape))
    carry, hs = jr.unroll(cell, params, jnp.asarray(xs.numpy()))
    np.testing.assert_allclose(hs, out.numpy(), **tolerance(dtype))
    assert_carry_close(kind, carry, state, 0, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_reverse_half_matches_unroll_reverse(torch, kind, dtype):
    I, H, T, B = SIZES[0]
    module = make_module(torch, kind, I, H, dtype, bidirectional=True)
    xs = torch.randn(T, B, I, dtype=torch_dtype(torch, dtype))
    with torch.no_grad():
        out, state = module(xs)

    cell = make_cell(kind, H)
    sd = module.state_dict()
    xs_j = jnp.asarray(xs.numpy())
    carry_f, hs_f = jr.unroll(cell, interop.from_torch(cell, sd, "_l0"), xs_j)
    carry_b, hs_b = jr.unroll(cell, interop.from_torch(cell, sd, "_l0_reverse"), xs_j, reverse=True)

    np.testing.assert_allclose(hs_f, out[..., :H].numpy(), **tolerance(dtype))
    np.testing.assert_allclose(hs_b, out[..., H:].numpy(), **tolerance(dtype))
    assert_carry_close(kind, carry_f, state, 0, dtype)
    assert_carry_close(kind, carry_b, state, 1, dtype)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_two_layer_bidirectional_stack_matches_torch(torch, kind, x64):
    I, H, T, B = 3, 4, 5, 2
    module = make_module(torch, kind, I, H, jnp.float64, num_layers=2, bidirectional=True)
    xs = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        out, state = module(xs)

    cell = make_cell(kind, H)
    sd = module.state_dict()
    layer_in = jnp.asarray(xs.numpy())
    for layer in range(2):
        carry_f, hs_f = jr.unroll(cell, interop.from_torch(cell, sd, f"_l{layer}"), layer_in)
        params_b = interop.from_torch(cell, sd, f"_l{layer}_reverse")
        carry_b, hs_b = jr.unroll(cell, params_b, layer_in, reverse=True)
        assert_carry_close(kind, carry_f, state, 2 * layer, jnp.float64)
        assert_carry_close(kind, carry_b, state, 2 * layer + 1, jnp.float64)
        layer_in = jnp.concatenate([hs_f, hs_b], axis=-1)
    np.testing.assert_allclose(layer_in, out.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_matches_packed_sequence_both_directions(torch, kind, dtype):
    I, H, T = 3, 4, 7
    lengths = np.array([7, 3, 1, 5])
    B = len(lengths)
    module = make_module(torch, kind, I, H, dtype, bidirectional=True)
    xs = torch.randn(T, B, I, dtype=torch_dtype(torch, dtype))
    padding = torch.arange(T)[:, None] >= torch.from_numpy(lengths)[None, :]
    xs[padding] = float("nan")  # must reach neither library's outputs
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xs, torch.from_numpy(lengths), enforce_sorted=False
    )
    with torch.no_grad():
        out_packed, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, total_length=T)
    out = out.numpy()

    cell = make_cell(kind, H)
    sd = module.state_dict()
    xs_j, lengths_j = jnp.asarray(xs.numpy()), jnp.asarray(lengths, jnp.int32)
    params_f = interop.from_torch(cell, sd, "_l0")
    params_b = interop.from_torch(cell, sd, "_l0_reverse")
    carry_f, hs_f = jr.unroll(cell, params_f, xs_j, lengths=lengths_j)
    carry_b, hs_b = jr.unroll(cell, params_b, xs_j, lengths=lengths_j, reverse=True)

    valid = ~padding.numpy()
    for hs, half in ((hs_f, out[..., :H]), (hs_b, out[..., H:])):
        np.testing.assert_allclose(hs, half, **tolerance(dtype))  # torch pads with zeros too
        np.testing.assert_array_equal(np.asarray(hs)[~valid], 0)
        assert np.all(np.isfinite(np.asarray(hs)[valid]))
    assert_carry_close(kind, carry_f, state, 0, dtype)
    assert_carry_close(kind, carry_b, state, 1, dtype)


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_torch(torch, kind, padded, x64):
    I, H, T = 3, 4, 6
    lengths = np.array([6, 2, 4]) if padded else np.full(3, T)
    B = len(lengths)
    module = make_module(torch, kind, I, H, jnp.float64)
    xs = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    out_w = torch.randn(T, B, H, dtype=torch.float64)
    state_w = [torch.randn(B, H, dtype=torch.float64) for _ in range(2 if kind == "lstm" else 1)]

    if padded:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xs, torch.from_numpy(lengths), enforce_sorted=False
        )
        out_packed, state = module(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, total_length=T)
    else:
        out, state = module(xs)
    finals = state if kind == "lstm" else (state,)
    loss = (out * out_w).sum() + sum((s[0] * w).sum() for s, w in zip(finals, state_w, strict=True))
    loss.backward()
    tg = {name: p.grad.numpy() for name, p in module.named_parameters()}

    cell = make_cell(kind, H)
    params = interop.from_torch(cell, module.state_dict())
    out_wj = jnp.asarray(out_w.numpy())
    state_wj = [jnp.asarray(w.numpy()) for w in state_w]
    lengths_j = jnp.asarray(lengths, jnp.int32) if padded else None

    def jax_loss(params, xs, grad):
        carry, hs = jr.unroll(cell, params, xs, lengths=lengths_j, grad=grad)
        leaves = jax.tree.leaves(carry)
        return jnp.sum(hs * out_wj) + sum(
            jnp.sum(c * w) for c, w in zip(leaves, state_wj, strict=True)
        )

    modes = ["autodiff"] + (["bptt"] if isinstance(cell.step, jr.BpttStep) else [])
    for mode in modes:
        # One compilation for the whole loss and gradient, not one per eager op.
        loss_and_grad = jax.jit(jax.value_and_grad(jax_loss, argnums=(0, 1)), static_argnums=2)
        value, (g, gx) = loss_and_grad(params, jnp.asarray(xs.detach().numpy()), mode)
        close = {"rtol": 1e-10, "atol": 1e-12}
        np.testing.assert_allclose(value, loss.item(), **close)
        np.testing.assert_allclose(gx, xs.grad.numpy(), **close)
        np.testing.assert_allclose(g["w_x"], tg["weight_ih_l0"].T, **close)
        np.testing.assert_allclose(g["w_h"], tg["weight_hh_l0"].T, **close)
        np.testing.assert_allclose(g["b"], tg["bias_ih_l0"], **close)
        if kind == "gru":
            np.testing.assert_allclose(g["b"][: 2 * H], tg["bias_hh_l0"][: 2 * H], **close)
            np.testing.assert_allclose(g["b_hn"], tg["bias_hh_l0"][2 * H :], **close)
        else:
            np.testing.assert_allclose(g["b"], tg["bias_hh_l0"], **close)


# --- the mapping itself (NumPy only) ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_follows_the_documented_mapping(kind, x64):
    I, H = 3, 4
    sd = random_state_dict(kind, I, H, np.float64, suffix="_l1_reverse")
    sd["weight_ih_l0"] = np.zeros((7, 7))  # another layer: ignored
    params = interop.from_torch(make_cell(kind, H), sd, "_l1_reverse")

    w_ih, w_hh = sd["weight_ih_l1_reverse"], sd["weight_hh_l1_reverse"]
    b_ih, b_hh = sd["bias_ih_l1_reverse"], sd["bias_hh_l1_reverse"]
    assert all(isinstance(v, jax.Array) and v.dtype == jnp.float64 for v in params.values())
    np.testing.assert_array_equal(params["w_x"], w_ih.T)
    np.testing.assert_array_equal(params["w_h"], w_hh.T)
    if kind == "gru":
        assert sorted(params) == ["b", "b_hn", "w_h", "w_x"]
        np.testing.assert_array_equal(params["b"][: 2 * H], b_ih[: 2 * H] + b_hh[: 2 * H])
        np.testing.assert_array_equal(params["b"][2 * H :], b_ih[2 * H :])
        np.testing.assert_array_equal(params["b_hn"], b_hh[2 * H :])
    else:
        assert sorted(params) == ["b", "w_h", "w_x"]
        np.testing.assert_array_equal(params["b"], b_ih + b_hh)


def test_from_torch_accepts_lists_and_keeps_or_casts_dtype(x64):
    sd16 = random_state_dict("lstm", 2, 3, np.float16)
    kept = interop.from_torch(jr.lstm(3), sd16)
    assert {v.dtype for v in kept.values()} == {jnp.dtype(jnp.float16)}

    as_lists = {k: v.tolist() for k, v in random_state_dict("lstm", 2, 3, np.float64).items()}
    assert interop.from_torch(jr.lstm(3), as_lists)["w_x"].dtype == jnp.float64

    sd = random_state_dict("gru", 2, 3, np.float32)
    cast = interop.from_torch(jr.gru(3), sd, dtype=jnp.float64)
    assert {v.dtype for v in cast.values()} == {jnp.dtype(jnp.float64)}
    # Cast first, then sum, as module.double() followed by the forward pass would.
    b_hh = sd["bias_hh_l0"].astype(np.float64)
    np.testing.assert_array_equal(cast["b"][:6], sd["bias_ih_l0"][:6].astype(np.float64) + b_hh[:6])


def test_from_torch_accepts_tensors_that_require_grad(torch):
    module = torch.nn.GRU(3, 4)
    params = interop.from_torch(jr.gru(4), dict(module.named_parameters()))
    np.testing.assert_array_equal(params["w_h"], module.weight_hh_l0.detach().numpy().T)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("param_dtype", ["bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_of_to_torch_is_bit_identical(kind, param_dtype, x64):
    cell = make_cell(kind, 5)
    params = random_params(kind, 3, 5, jnp.dtype(param_dtype))
    # Signed zeros, infinities and NaN must all survive.
    params["b"][:3] = [-0.0, 0.0, np.inf]
    params["w_x"][0, 0] = np.nan
    if "b_hn" in params:
        params["b_hn"][0] = -0.0
    params = {k: jnp.asarray(v) for k, v in params.items()}
    assert {v.dtype for v in params.values()} == {jnp.dtype(param_dtype)}

    state = interop.to_torch(cell, params, "_l2")
    back = interop.from_torch(cell, state, "_l2")

    assert sorted(back) == sorted(params)
    for key in params:
        a, b = np.asarray(params[key]), np.asarray(back[key])
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=key)


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_layout(kind):
    H, I = 4, 3
    cell = make_cell(kind, H)
    params = {k: jnp.asarray(v) for k, v in random_params(kind, I, H).items()}
    state = interop.to_torch(cell, params, "_l0_reverse")
    gh = GATES[kind] * H
    assert list(state) == [
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    ]
    assert [v.shape for v in state.values()] == [(gh, I), (gh, H), (gh,), (gh,)]
    for v in state.values():
        assert isinstance(v, np.ndarray) and v.dtype == np.float32
        assert v.flags.c_contiguous and v.flags.writeable
    np.testing.assert_array_equal(state["weight_ih_l0_reverse"], np.asarray(params["w_x"]).T)
    np.testing.assert_array_equal(state["weight_hh_l0_reverse"], np.asarray(params["w_h"]).T)
    np.testing.assert_array_equal(state["bias_ih_l0_reverse"], params["b"])
    want_hh = np.zeros(gh, np.float32)
    if kind == "gru":
        want_hh[2 * H :] = params["b_hn"]
    np.testing.assert_array_equal(state["bias_hh_l0_reverse"], want_hh)


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_of_from_torch_loads_back_into_torch(torch, kind, dtype):
    I, H, T, B = 3, 5, 6, 2
    module = make_module(torch, kind, I, H, dtype, bidirectional=True)
    xs = torch.randn(T, B, I, dtype=torch_dtype(torch, dtype))
    with torch.no_grad():
        out, state = module(xs)

    cell = make_cell(kind, H)
    sd = module.state_dict()
    merged = {}
    for suffix in ("_l0", "_l0_reverse"):
        merged.update(interop.to_torch(cell, interop.from_torch(cell, sd, suffix), suffix))
    fresh = make_module(torch, kind, I, H, dtype, bidirectional=True)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in merged.items()})  # strict
    with torch.no_grad():
        out2, state2 = fresh(xs)
    # Only the bias sum is rounded differently.
    np.testing.assert_allclose(out2.numpy(), out.numpy(), **tolerance(dtype))
    for a, b in zip(final_states(kind, state2, 1), final_states(kind, state, 1), strict=True):
        np.testing.assert_allclose(a, b, **tolerance(dtype))


# --- errors -----------------------------------------------------------------------------------


def test_missing_keys_list_the_keys_present():
    sd = random_state_dict("lstm", 3, 5, suffix="_l1")
    with pytest.raises(ValueError, match=r"no key 'weight_ih_l0' .*keys present: \['bias_hh_l1'"):
        interop.from_torch(jr.lstm(5), sd)
    sd = random_state_dict("lstm", 3, 5)
    del sd["bias_hh_l0"]
    with pytest.raises(ValueError, match=r"no key 'bias_hh_l0' .*\['bias_ih_l0', 'weight_hh_l0'"):
        interop.from_torch(jr.lstm(5), sd)
    del sd["weight_hh_l0"]
    with pytest.raises(ValueError, match=r"no key 'weight_hh_l0'"):
        interop.from_torch(jr.lstm(5), sd)


@pytest.mark.parametrize(
    ("key", "bad_shape", "pattern"),
    [
        ("weight_ih_l0", (28, 3), r"'weight_ih_l0'\] has shape \(28, 3\) .* expects \(20, input_"),
        ("weight_ih_l0", (20,), r"'weight_ih_l0'\] has shape \(20,\) .* expects \(20, input_size"),
        ("weight_ih_l0", (20, 0), r"'weight_ih_l0'\] has shape \(20, 0\) .* expects \(20, input_"),
        ("weight_hh_l0", (20, 7), r"'weight_hh_l0'\] has shape \(20, 7\) .* expects \(20, 5\)"),
        ("bias_ih_l0", (7,), r"'bias_ih_l0'\] has shape \(7,\) .* expects \(20,\)"),
        ("bias_hh_l0", (20, 1), r"'bias_hh_l0'\] has shape \(20, 1\) .* expects \(20,\)"),
    ],
)
def test_shapes_that_disagree_with_the_cell(key, bad_shape, pattern):
    sd = random_state_dict("lstm", 3, 5)
    sd[key] = np.zeros(bad_shape, np.float32)
    with pytest.raises(ValueError, match=r"state_dict\[" + pattern):
        interop.from_torch(jr.lstm(5), sd)


def test_wrong_module_kind_or_hidden_size_is_named():
    with pytest.raises(
        ValueError,
        match=r"'weight_hh_l0'\] has shape \(21, 7\) but cell 'lstm' \(hidden_size=7, 4 gates\) "
        r"expects \(28, 7\).*looks like a torch nn.GRU with hidden_size=7",
    ):
        interop.from_torch(jr.lstm(7), random_state_dict("gru", 3, 7))
    with pytest.raises(
        ValueError, match=r"shape \(12, 3\) .* expects \(5, 5\).*torch nn.LSTM with hidden_size=3"
    ):
        interop.from_torch(jr.rnn(5), random_state_dict("lstm", 3, 3))


def test_gru_original_has_no_torch_counterpart():
    cell = jr.gru(4, reset_after=False)
    with pytest.raises(ValueError, match=r"from_torch .*'gru_original'.*PyTorch has no such GRU"):
        interop.from_torch(cell, random_state_dict("gru", 3, 4))
    params = random_params("gru", 3, 4)
    del params["b_hn"]
    with pytest.raises(ValueError, match=r"to_torch .*reset_after=False.*use jaxrnn.gru\(H\)"):
        interop.to_torch(cell, params)


def _peephole_like(cell):
    """A derived cell: the LSTM's params and carry, another step."""

    def step(params, carry, x):
        (h, c), y = cell.step(params, carry, x)
        return (h, 0.5 * c), y

    return cell._replace(step=step, name="peephole_lstm")


def test_cells_are_recognised_by_their_step_not_their_name():
    renamed = jr.lstm(4)._replace(name="my_lstm")  # same equations: converts
    state_dict = random_state_dict("lstm", 3, 4)
    params = interop.from_torch(renamed, state_dict)
    assert set(interop.to_torch(renamed, params)) == set(state_dict)
    custom = _peephole_like(jr.lstm(4))  # other equations: refused, whatever its name
    with pytest.raises(ValueError, match=r"supports the built-in cells .*'peephole_lstm'"):
        interop.from_torch(custom, state_dict)
    with pytest.raises(ValueError, match=r"'peephole_lstm' has another step"):
        interop.to_torch(custom, random_params("lstm", 3, 4))
    with pytest.raises(ValueError, match=r"supports the built-in cells"):
        interop.to_torch(_peephole_like(jr.lstm(4))._replace(name="lstm"), params)
    with pytest.raises(TypeError, match=r"cell must be a jaxrnn Cell .*got str"):
        interop.from_torch("lstm", random_state_dict("lstm", 3, 4))


@pytest.mark.parametrize(
    ("suffix", "error", "pattern"),
    [
        (0, TypeError, r"suffix must be a str .*got int 0"),
        ("l0", ValueError, r"suffix must be a str '_l<layer>' .*got str 'l0'"),
        ("_l0_rev", ValueError, r"suffix must be .*got str '_l0_rev'"),
        ("_L0", ValueError, r"suffix must be .*got str '_L0'"),
    ],
)
def test_bad_suffix(suffix, error, pattern):
    sd = random_state_dict("gru", 3, 4)
    with pytest.raises(error, match=pattern):
        interop.from_torch(jr.gru(4), sd, suffix)
    with pytest.raises(error, match=pattern):
        interop.to_torch(jr.gru(4), random_params("gru", 3, 4), suffix)


def test_bad_arrays_and_dtypes():
    cell = jr.gru(4)
    sd = random_state_dict("gru", 3, 4)
    sd["weight_hh_l0"] = sd["weight_hh_l0"].astype(np.float16)
    with pytest.raises(
        TypeError,
        match=r"state_dict\['weight_hh_l0'\] has dtype float16 but state_dict\['weight_ih_l0'\] "
        r"has dtype float32",
    ):
        interop.from_torch(cell, sd)
    sd = random_state_dict("gru", 3, 4)
    sd["bias_ih_l0"] = np.arange(12)
    with pytest.raises(TypeError, match=r"state_dict\['bias_ih_l0'\] must have a real floating"):
        interop.from_torch(cell, sd)
    sd["bias_ih_l0"] = None
    with pytest.raises(TypeError, match=r"state_dict\['bias_ih_l0'\] must be an array, got None"):
        interop.from_torch(cell, sd)
    with pytest.raises(TypeError, match=r"state_dict must be a mapping .*got list"):
        interop.from_torch(cell, list(sd.values()))
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype .*int32"):
        interop.from_torch(cell, random_state_dict("gru", 3, 4), dtype=jnp.int32)


def test_float64_without_x64_is_refused_not_truncated():
    with jax.enable_x64(False):
        sd = random_state_dict("rnn_tanh", 3, 4, np.float64)
        with pytest.raises(TypeError, match=r"state_dict\['weight_ih_l0'\] is float64 .*x64"):
            interop.from_torch(jr.rnn(4), sd)
        with pytest.raises(TypeError, match=r"dtype is float64 but JAX would store it as float32"):
            interop.from_torch(jr.rnn(4), random_state_dict("rnn_tanh", 3, 4), dtype=np.float64)


def test_lstm_with_projections_is_refused():
    sd = random_state_dict("lstm", 3, 4)
    sd["weight_hr_l0"] = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"'weight_hr_l0': an nn.LSTM with proj_size > 0"):
        interop.from_torch(jr.lstm(4), sd)


def test_bfloat16_tensor_is_refused_with_a_fix(torch):
    sd = {k: v.to(torch.bfloat16) for k, v in torch.nn.RNN(3, 4).state_dict().items()}
    with pytest.raises(TypeError, match=r"state_dict\['weight_ih_l0'\] is a tensor of dtype "):
        interop.from_torch(jr.rnn(4), sd)


def test_to_torch_validates_params():
    cell = jr.lstm(5)
    params = random_params("lstm", 3, 5)
    with pytest.raises(
        TypeError, match=r"params must be the dict that lstm.init returns, got list"
    ):
        interop.to_torch(cell, [params["w_x"]])
    with pytest.raises(ValueError, match=r"missing keys \['w_x'\], unexpected keys \[\]; expected"):
        interop.to_torch(cell, {k: v for k, v in params.items() if k != "w_x"})
    with pytest.raises(
        ValueError, match=r"params\['w_x'\] has shape \(20,\) but .*expects \(input_size, 20\)"
    ):
        interop.to_torch(cell, {**params, "w_x": params["b"]})
    with pytest.raises(ValueError, match=r"missing keys \[\], unexpected keys \['b_hn'\]"):
        interop.to_torch(cell, {**params, "b_hn": params["b"][:5]})
    with pytest.raises(
        ValueError,
        match=r"params\['w_h'\] has shape \(7, 20\) but cell 'lstm' .* expects \(5, 20\)",
    ):
        interop.to_torch(cell, {**params, "w_h": np.zeros((7, 20), np.float32)})
    with pytest.raises(
        ValueError, match=r"params\['b'\] has shape \(28,\) .*input_size=3 .* expects \(20,\)"
    ):
        interop.to_torch(cell, {**params, "b": np.zeros(28, np.float32)})
    with pytest.raises(
        TypeError, match=r"params\['b'\] has dtype float16 but params\['w_x'\] has dtype float32"
    ):
        interop.to_torch(cell, {**params, "b": params["b"].astype(jnp.float16)})
    with pytest.raises(TypeError, match=r"params\['w_h'\] must have a real floating dtype"):
        interop.to_torch(cell, {**params, "w_h": np.zeros((5, 20), np.int32)})


@pytest.mark.parametrize("module", [interop.torch, interop.flax, interop.equinox])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
