"""The cell contract: a cell runs only its own step, and a step that breaks the contract
is refused before tracing with a message that names the cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")

BUILT_INS = {
    "rnn": lambda: jr.rnn(4),
    "lstm": lambda: jr.lstm(4),
    "gru": lambda: jr.gru(4),
    "gru_original": lambda: jr.gru(4, reset_after=False),
    "min_gru": lambda: jr.min_gru(4),
    "min_lstm": lambda: jr.min_lstm(4),
    "lru": lambda: jr.lru(4),
}


def derived(cell):
    """The built-in's params and carry, another step: the carry halved before each step."""

    def step(params, carry, x):
        return cell.step(params, jax.tree.map(lambda a: 0.5 * a, carry), x)

    return cell._replace(step=step, name=f"halved_{cell.name}")


def python_loop(cell, params, xs):
    carry, ys = cell.initial_carry(xs.shape[1:-1]), []
    for x in xs:
        carry, y = cell.step(params, carry, x)
        ys.append(y)
    return jnp.stack(ys)


@pytest.mark.parametrize("name", BUILT_INS)
def test_a_derived_cell_runs_its_own_step_on_every_path(name):
    base = BUILT_INS[name]()
    cell = derived(base)
    params = base.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(1), (6, 2, 3))
    # The default path equals a Python loop of the derived step: test_battery.py.
    options = [{"hoist": True}, {"remat": True}, {"parallel": False}]

    @jax.jit
    def run(params, xs):
        runs = [jr.unroll(cell, params, xs, **o)[1] for o in [{}, *options]]
        return jr.unroll(base, params, xs)[1], runs

    base_ys, (want, *others) = run(params, xs)
    assert not np.allclose(want, base_ys, atol=1e-3)
    for option, got in zip(options, others, strict=True):
        np.testing.assert_allclose(got, want, 1e-5, 1e-6, err_msg=str(option))
    with pytest.raises(ValueError, match=r"parallel=True needs .*LinearStep"):
        jr.unroll(cell, params, xs, parallel=True)
    with pytest.raises(ValueError, match=r"grad='bptt' needs .*BpttStep"):
        jr.unroll(cell, params, xs, grad="bptt")


def tiny(step, initial_carry=None, hidden_size=4):
    def init(key, input_size, dtype=jnp.float32):
        return {"w": jax.random.normal(key, (input_size, 4), dtype)}

    def zeros(batch_shape=(), dtype=jnp.float32):
        return jnp.zeros((*batch_shape, 4), dtype)

    return jr.Cell(init, initial_carry or zeros, step, hidden_size, "tiny")


@pytest.mark.parametrize(
    ("step", "hidden_size", "error", "message"),
    [
        (lambda p, h, x: (h, (h, h)), 4, TypeError, r"'tiny'.*y must be one array"),
        (lambda p, h, x: (h, h[..., :3]), 4, ValueError, r"'tiny'.*y must have shape .*\(2, 4\)"),
        (lambda p, h, x: (h, h), 5, ValueError, r"y must have shape .*\(2, 5\).*got \(2, 4\)"),
        (lambda p, h, x: ((h, h), h), 4, ValueError, r"'tiny'.*carry it returns is a tuple"),
        (
            lambda p, h, x: (h.astype(jnp.float16), h),
            4,
            ValueError,
            r"carry went in as \(2, 4\) float32 and came out as \(2, 4\) float16",
        ),
        (lambda p, h, x: h, 4, TypeError, r"'tiny'.*must return a pair \(carry, y\)"),
    ],
)
def test_a_step_that_breaks_the_contract_is_refused(step, hidden_size, error, message):
    cell = tiny(step, hidden_size=hidden_size)
    params = cell.init(jax.random.key(0), 3)
    with pytest.raises(error, match=message):
        jr.unroll(cell, params, jnp.ones((5, 2, 3)))


def test_initial_carry_must_honour_dtype():
    cell = tiny(
        lambda p, h, x: (h, h),
        initial_carry=lambda batch_shape=(), dtype=jnp.float32: jnp.zeros((*batch_shape, 4)),
    )
    params = cell.init(jax.random.key(0), 3, jnp.bfloat16)
    with pytest.raises(
        TypeError, match=r"'tiny' .*: initial_carry\(.*bfloat16\) returned .*float32"
    ):
        jr.unroll(cell, params, jnp.ones((5, 2, 3), jnp.bfloat16))


def nested_cell():
    """A cell that wraps a built-in's params: {"cell": ..., "scale": ...}."""
    inner = jr.gru(4)

    def init(key, input_size, dtype=jnp.float32):
        return {"cell": inner.init(key, input_size, dtype), "scale": jnp.ones((4,), dtype)}

    def step(params, h, x):
        h, y = inner.step(params["cell"], h, x)
        return h, y * params["scale"].reshape((1,) * (y.ndim - 1) + (4,))

    return jr.Cell(init, inner.initial_carry, step, 4, "scaled_gru")


def test_params_may_nest_and_errors_name_the_path():
    cell = nested_cell()
    params = cell.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
    np.testing.assert_allclose(jr.unroll(cell, params, xs)[1], python_loop(cell, params, xs), 1e-6)
    bad = {**params, "cell": {**params["cell"], "w_h": jnp.zeros((4, 7))}}
    with pytest.raises(ValueError, match=r"params\['cell'\]\['w_h'\] has shape \(4, 7\)"):
        jr.unroll(cell, bad, xs)
    with pytest.raises(ValueError, match=r"missing \[\"params\['scale'\]\"\]"):
        jr.unroll(cell, {"cell": params["cell"]}, xs)
    net = jr.stack([cell, jr.bidirectional(cell, cell)], dropout=0.2, recurrent_dropout=0.2)
    net_params = net.init(jax.random.key(2), 3)
    _, ys = net.apply(net_params, xs, lengths=jnp.array([5, 2]), key=jax.random.key(3))
    assert ys.shape == (5, 2, 8) and bool(jnp.all(ys[2:, 1] == 0))
    with pytest.raises(ValueError, match=r"params\['layers'\]\[1\]\['bwd'\]\['scale'\] has shape"):
        bad = jax.tree_util.tree_map(lambda a: a, net_params)
        bad["layers"][1]["bwd"]["scale"] = jnp.ones(7)
        net.apply(bad, xs)


def test_generate_with_a_traced_temperature_out_of_range_gives_no_valid_token():
    cell = jr.gru(4)
    params = cell.init(jax.random.key(0), 3)
    table = jax.random.normal(jax.random.key(1), (5, 3))
    w_out = jax.random.normal(jax.random.key(2), (4, 5))

    @jax.jit
    def run(temperature):
        return jr.generate(
            cell, params, None, table[jnp.zeros(2, int)], 4, readout=lambda h: h @ w_out,
            embed=lambda t: table[t], key=jax.random.key(3), temperature=temperature,
        )[1]  # fmt: skip

    assert bool(jnp.all(run(jnp.float32(0.7)) >= 0))
    for bad in (0.0, -1.0, jnp.nan):
        assert bool(jnp.all(run(jnp.float32(bad)) == -1))
