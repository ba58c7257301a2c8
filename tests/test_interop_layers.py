"""PyTorch interop for whole modules: `stack` and `bidirectional` against multi-layer
`nn.LSTM`, `nn.GRU` and `nn.RNN`, their carries, round trips and errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr
from jaxrnn import interop

torch = pytest.importorskip("torch")

KINDS = ["lstm", "gru", "rnn_tanh"]
I, H, T = 3, 4, 6


@functools.cache  # one network per shape, so `unroll`'s compilations are shared between tests
def make_net(kind, bidirectional, num_layers=2, **kwargs):
    cell = jr.rnn(H) if kind == "rnn_tanh" else {"lstm": jr.lstm, "gru": jr.gru}[kind](H)
    layer = jr.bidirectional(cell, cell) if bidirectional else cell
    return jr.stack([layer] * num_layers, **kwargs)


def make_module(kind, bidirectional, num_layers=2, seed=0):
    torch.manual_seed(seed)
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}[kind]
    return module_class(I, H, num_layers=num_layers, bidirectional=bidirectional).double()


def assert_trees_equal(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


@pytest.mark.parametrize("padded", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_stack_matches_torch_module(kind, bidirectional, padded, x64):
    module = make_module(kind, bidirectional)
    net = make_net(kind, bidirectional)
    D = 2 if bidirectional else 1
    lengths = np.array([6, 2, 1, 4]) if padded else np.full(4, T)
    B = len(lengths)
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(T, B, I, dtype=torch.float64, generator=gen)
    xs[torch.arange(T)[:, None] >= torch.from_numpy(lengths)[None, :]] = float("nan")
    h0 = torch.randn(2 * D, B, H, dtype=torch.float64, generator=gen)
    c0 = torch.randn(2 * D, B, H, dtype=torch.float64, generator=gen)
    hx = (h0, c0) if kind == "lstm" else h0
    with torch.no_grad():
        if padded:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xs, torch.from_numpy(lengths), enforce_sorted=False
            )
            out, state = module(packed, hx)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
        else:
            out, state = module(xs, hx)

    params = interop.from_torch(net, module.state_dict())
    template = jax.eval_shape(lambda k: net.init(k, I, jnp.float64), jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(template)
    for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(template), strict=True):
        assert (p.shape, p.dtype) == (t.shape, t.dtype)

    carry = interop.carry_from_torch(net, *(hx if kind == "lstm" else (hx,)))
    carries, ys = net.apply(
        params,
        jnp.asarray(xs.numpy()),
        carry,
        lengths=jnp.asarray(lengths, jnp.int32) if padded else None,
    )
    np.testing.assert_allclose(ys, out.numpy(), rtol=1e-12, atol=1e-12)
    final = interop.carry_to_torch(net, carries)
    want = state if kind == "lstm" else (state,)
    got = final if kind == "lstm" else (final,)
    for g, w in zip(got, want, strict=True):
        assert g.shape == (2 * D, B, H)
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trips(kind, bidirectional, x64):
    net = make_net(kind, bidirectional)
    params = net.init(jax.random.key(0), I, jnp.float64)
    state = interop.to_torch(net, params)
    assert_trees_equal(interop.from_torch(net, state), params)

    module = make_module(kind, bidirectional)
    state = interop.to_torch(net, interop.from_torch(net, module.state_dict()))
    fresh = make_module(kind, bidirectional, seed=1)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    xs = torch.randn(T, 2, I, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(fresh(xs)[0].numpy(), module(xs)[0].numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_layer_by_suffix(kind, x64):
    module = make_module(kind, True)
    layer = make_net(kind, True).layers[0]
    sd = module.state_dict()
    params = interop.from_torch(layer, sd, "_l1")
    cell = layer.fwd
    assert_trees_equal(params["fwd"], interop.from_torch(cell, sd, "_l1"))
    assert_trees_equal(params["bwd"], interop.from_torch(cell, sd, "_l1_reverse"))
    state = interop.to_torch(layer, params, "_l1")
    assert sorted(state) == sorted(k for k in sd if "_l1" in k)
    assert_trees_equal(interop.from_torch(layer, state, "_l1"), params)


def test_carry_converters_round_trip_and_unbatched(x64):
    rng = np.random.default_rng(0)
    net = make_net("lstm", True)
    h_n, c_n = rng.standard_normal((2, 4, 3, H))
    carries = interop.carry_from_torch(net, h_n, c_n)
    np.testing.assert_array_equal(carries[1][0][1], c_n[2])  # layer 1, forward, c
    back = interop.carry_to_torch(net, carries)
    np.testing.assert_array_equal(back[0], h_n)
    np.testing.assert_array_equal(back[1], c_n)
    # Unbatched torch input: (L * D, hidden).
    gru = make_net("gru", False)
    h_n = rng.standard_normal((2, H))
    carries = interop.carry_from_torch(gru, torch.from_numpy(h_n))
    assert [c.shape for c in carries] == [(H,), (H,)]
    np.testing.assert_array_equal(interop.carry_to_torch(gru, carries), h_n)
    # A single cell and a bidirectional layer.
    cell = gru.layers[0]
    np.testing.assert_array_equal(interop.carry_from_torch(cell, h_n[:1]), h_n[0])
    bi = make_net("gru", True).layers[0]
    fwd, bwd = interop.carry_from_torch(bi, h_n)
    np.testing.assert_array_equal(bwd, h_n[1])
    np.testing.assert_array_equal(interop.carry_to_torch(bi, (fwd, bwd)), h_n)


def test_learned_initial_carry_is_zero_from_torch(x64):
    net = make_net("gru", True, learn_initial_carry=True)
    module = make_module("gru", True)
    params = interop.from_torch(net, module.state_dict())
    template = jax.eval_shape(lambda k: net.init(k, I, jnp.float64), jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(template)
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(params["initial_carry"]))
    assert_trees_equal(interop.from_torch(net, interop.to_torch(net, params)), params)
    params["initial_carry"][1] = (
        params["initial_carry"][1][0] + 1.0,
        params["initial_carry"][1][1],
    )
    with pytest.raises(ValueError, match=r"params\['initial_carry'\]\[1\] has nonzero values"):
        interop.to_torch(net, params)


def test_layer_count_errors(x64):
    sd = make_module("lstm", False, num_layers=3).state_dict()
    with pytest.raises(
        ValueError, match=r"num_layers=3 and bidirectional=False, but the stack has 2 layers"
    ):
        interop.from_torch(make_net("lstm", False), sd)
    sd = make_module("lstm", False, num_layers=1).state_dict()
    with pytest.raises(
        ValueError, match=r"num_layers=1 and bidirectional=False, but the stack has 2 layers"
    ):
        interop.from_torch(make_net("lstm", False), sd)
    with pytest.raises(ValueError, match=r"suffix must be left at its default '_l0'; got '_l1'"):
        interop.from_torch(make_net("lstm", False), sd, "_l1")


def test_direction_errors(x64):
    uni = make_module("gru", False).state_dict()
    bi = make_module("gru", True).state_dict()
    with pytest.raises(
        ValueError,
        match=r"bidirectional=False, but the stack has 2 layers and bidirectional=True",
    ):
        interop.from_torch(make_net("gru", True), uni)
    with pytest.raises(
        ValueError,
        match=r"bidirectional=True, but the stack has 2 layers and bidirectional=False",
    ):
        interop.from_torch(make_net("gru", False), bi)
    layer = make_net("gru", True).layers[0]
    with pytest.raises(ValueError, match=r"no key 'weight_ih_l1_reverse'"):
        interop.from_torch(layer, uni, "_l1")
    with pytest.raises(ValueError, match=r"suffix names the layer.*got '_l0_reverse'"):
        interop.from_torch(layer, bi, "_l0_reverse")


def test_module_shape_errors():
    lstm, gru = jr.lstm(H), jr.gru(H)
    with pytest.raises(
        ValueError, match=r"layers\[0\] has cell 'lstm'.*layers\[1\] has cell 'gru'"
    ):
        interop.to_torch(jr.stack([lstm, gru]), {"layers": [{}, {}]})
    with pytest.raises(
        ValueError,
        match=r"layers\[0\].fwd has cell 'gru' \(hidden_size=4\) in a bidirectional layer but "
        r"layers\[1\] has cell 'gru' \(hidden_size=4\) in a unidirectional layer",
    ):
        interop.from_torch(jr.stack([jr.bidirectional(gru, gru), gru]), {})
    with pytest.raises(ValueError, match=r"residual=True"):
        interop.from_torch(jr.stack([gru, gru], residual=True), {})
    with pytest.raises(ValueError, match=r"layers\[0\] is bidirectional with merge='sum'"):
        interop.from_torch(jr.stack([jr.bidirectional(gru, gru, "sum")] * 2), {})
    with pytest.raises(TypeError, match=r"layer_or_cell must be .* got str"):
        interop.carry_from_torch("lstm", np.zeros((1, H)))
    net = make_net("lstm", False)
    params = net.init(jax.random.key(0), I)
    params["layers"][1]["w_h"] = params["layers"][1]["w_h"][:, :4]
    with pytest.raises(ValueError, match=r"params\['layers'\]\[1\]\['w_h'\] has shape \(4, 4\)"):
        interop.to_torch(net, params)
    with pytest.raises(
        TypeError, match=r"params must be the dict that stack\(...\).init .*got a list of 2"
    ):
        interop.to_torch(net, params["layers"])
    with pytest.raises(
        ValueError,
        match=r"learn_initial_carry=False\), with keys \['layers'\]; got a dict with keys "
        r"\['initial_carry', 'layers'\]",
    ):
        interop.to_torch(net, {**params, "initial_carry": []})
    with pytest.raises(
        TypeError, match=r"params\['layers'\] must be a list of 2 .*, got a list of 1"
    ):
        interop.to_torch(net, {"layers": params["layers"][:1]})


def test_carry_errors():
    net = make_net("lstm", True)
    h_n = np.zeros((4, 3, H), np.float32)
    with pytest.raises(
        ValueError, match=r"h_n has shape \(2, 3, 4\) but must be \(4, \*batch, 4\)"
    ):
        interop.carry_from_torch(net, h_n[:2], h_n[:2])
    with pytest.raises(ValueError, match=r"c_n must be given for an LSTM"):
        interop.carry_from_torch(net, h_n)
    with pytest.raises(ValueError, match=r"c_n has shape \(4, 3, 5\) but must be"):
        interop.carry_from_torch(net, h_n, np.zeros((4, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"c_n must be None for cell 'gru'"):
        interop.carry_from_torch(make_net("gru", True), h_n, h_n)
    carries = interop.carry_from_torch(net, h_n, h_n)
    with pytest.raises(TypeError, match=r"carry must be a list of 2 carries.*got a list of 1"):
        interop.carry_to_torch(net, carries[:1])
    carries[1] = (carries[1][0], carries[1][1][0])
    with pytest.raises(TypeError, match=r"carry\[1\]\[1\] of cell 'lstm' must be a pair \(h, c\)"):
        interop.carry_to_torch(net, carries)
    bad = interop.carry_from_torch(net, h_n, h_n)
    bad[0] = (bad[0][0], (bad[0][1][0][:2], bad[0][1][1]))
    with pytest.raises(
        ValueError,
        match=r"carry\[0\]\[1\]\[0\] \(h\) .* must have the shape of carry\[0\]\[0\]\[0\] "
        r"\(h\), \(3, 4\); got \(2, 4\)",
    ):
        interop.carry_to_torch(net, bad)
