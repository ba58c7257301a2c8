"""The cells on their own: init, initial_carry, step, and bad input."""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
import registry

import jaxrnn as jr

pytestmark = pytest.mark.usefixtures("few_optimizations")

CELL_NAMES = list(reference.CELLS)
BATCH_SHAPES = [(), (3,), (2, 3)]
LAYOUT_FILE = Path(__file__).parent / "golden" / "param_layout.json"


def make(name, hidden_size=5):
    return reference.CELLS[name][0](hidden_size)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_is_recur_after_project(name):
    cell, params, carry, xs = registry.setup(name, (4,), jnp.float32, 1, 5, 3)
    x = xs[0]
    got = cell.step(params, carry, x)
    want = cell.step.recur(params, carry, cell.step.project(params, x), carry)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_project_runs_over_a_whole_sequence(name):
    cell = make(name)
    params = cell.init(jax.random.key(1), 3)
    xs = jax.random.normal(jax.random.key(3), (6, 2, 3))
    projected = cell.step.project(params, xs)
    for t in range(6):
        np.testing.assert_allclose(projected[t], cell.step.project(params, xs[t]), rtol=1e-6)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_init_is_deterministic_in_the_key(name):
    cell = make(name)
    a = cell.init(jax.random.key(7), 3)
    b = cell.init(jax.random.key(7), 3)
    c = cell.init(jax.random.key(8), 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_init_accepts_a_raw_uint32_key():
    params = jr.lstm(4).init(jax.random.PRNGKey(0), 3)
    assert params["w_x"].shape == (3, 16)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru"])
def test_recurrent_weights_are_orthogonal_per_gate(name):
    cell = make(name, hidden_size=6)
    w_h = np.asarray(cell.init(jax.random.key(0), 3, jnp.float32)["w_h"], np.float64)
    for g in range(w_h.shape[1] // 6):
        block = w_h[:, g * 6 : (g + 1) * 6]
        np.testing.assert_allclose(block.T @ block, np.eye(6), atol=1e-5)


def test_lstm_forget_bias_and_zero_biases():
    b = jr.lstm(3).init(jax.random.key(0), 2)["b"]
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    b = jr.lstm(3, forget_bias=0.0).init(jax.random.key(0), 2)["b"]
    np.testing.assert_array_equal(b, np.zeros(12))
    params = jr.gru(3).init(jax.random.key(0), 2)
    np.testing.assert_array_equal(params["b"], np.zeros(9))
    np.testing.assert_array_equal(params["b_hn"], np.zeros(3))


def test_initializers_can_be_overridden():
    ones = jax.nn.initializers.ones
    cell = jr.gru(3, input_init=ones, recurrent_init=jax.nn.initializers.zeros)
    params = cell.init(jax.random.key(0), 2)
    np.testing.assert_array_equal(params["w_x"], np.ones((2, 9)))
    np.testing.assert_array_equal(params["w_h"], np.zeros((3, 9)))


def test_input_weights_are_glorot_uniform_per_gate():
    w_x = np.asarray(jr.lstm(50).init(jax.random.key(0), 30)["w_x"])
    limit = np.sqrt(6 / (30 + 50))
    assert np.abs(w_x).max() <= limit
    assert np.abs(w_x).max() > 0.9 * limit


# bfloat16, float32 and float64 for every cell: test_battery.py.
@pytest.mark.parametrize("name", CELL_NAMES)
def test_init_and_carry_keep_float16(name):
    dtype = jnp.float16
    cell = make(name)
    params = cell.init(jax.random.key(0), 3, dtype)
    assert {v.dtype for v in params.values()} == {jnp.dtype(dtype)}
    carry = cell.initial_carry((2,), dtype)
    assert {x.dtype for x in jax.tree.leaves(carry)} == {jnp.dtype(dtype)}
    _, h = cell.step(params, carry, jnp.ones((2, 3), dtype))
    assert h.dtype == dtype
    assert np.all(np.isfinite(np.asarray(h, np.float32)))


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_initial_carry_is_zeros_of_the_right_shape(batch_shape):
    h, c = jr.lstm(4).initial_carry(batch_shape)
    assert h.shape == c.shape == (*batch_shape, 4)
    assert not np.any(h) and not np.any(c)
    h = jr.gru(4).initial_carry(batch_shape, jnp.float32)
    assert h.shape == (*batch_shape, 4) and not np.any(h)


def _layout():
    """Every built-in cell's param paths, shapes and dtypes (hidden size 5, input size 3)."""
    layout = {}
    for name in registry.BUILT_INS:
        cell = registry.CELLS[name].make(5)
        params = jax.eval_shape(lambda key, cell=cell: cell.init(key, 3), jax.random.key(0))
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        layout[name] = {
            jax.tree_util.keystr(path)[2:-2]: [list(v.shape), str(v.dtype)] for path, v in leaves
        }
    return layout


def test_param_layout_is_pinned():
    """Changing a cell's param names, shapes or dtypes breaks users' saved params."""
    layout = _layout()
    if os.environ.get("JAXRNN_UPDATE_GOLDEN") == "1":
        LAYOUT_FILE.parent.mkdir(exist_ok=True)
        LAYOUT_FILE.write_text(json.dumps(layout, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(LAYOUT_FILE.read_text())
    assert layout == pinned, (
        "The parameter layout changed. If this is intended, regenerate the pinned file with "
        "`JAXRNN_UPDATE_GOLDEN=1 pytest tests/test_cells.py -k layout` and say so in the "
        "changelog: saved params and converters depend on it."
    )


# Bad input. A prime bad size (7) so nothing divides by accident.


@pytest.mark.parametrize("factory", [jr.rnn, jr.lstm, jr.gru])
@pytest.mark.parametrize(
    ("size", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("8", TypeError)]
)
def test_bad_hidden_size(factory, size, error):
    with pytest.raises(error, match=r"hidden_size must be a positive int, got .*"):
        factory(size)


def test_bad_options():
    with pytest.raises(ValueError, match=r"nonlinearity must be one of 'tanh', 'relu'; got 'gelu'"):
        jr.rnn(4, nonlinearity="gelu")
    with pytest.raises(TypeError, match=r"reset_after must be a bool, got str"):
        jr.gru(4, reset_after="no")


@pytest.mark.parametrize("name", CELL_NAMES)
def test_init_rejects_bad_arguments(name):
    cell = make(name)
    with pytest.raises(TypeError, match=r"key must be a single PRNG key"):
        cell.init(0, 3)
    with pytest.raises(TypeError, match=r"key must be a single PRNG key"):
        cell.init(jax.random.split(jax.random.key(0), 2), 3)
    with pytest.raises(ValueError, match=r"input_size must be a positive int, got 0"):
        cell.init(jax.random.key(0), 0)
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype .* got int32"):
        cell.init(jax.random.key(0), 3, jnp.int32)


def test_initial_carry_rejects_bad_batch_shape():
    with pytest.raises(ValueError, match=r"batch_shape must be a tuple of non-negative ints"):
        jr.lstm(4).initial_carry((2, -1))
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype"):
        jr.lstm(4).initial_carry((2,), jnp.int32)


def test_unroll_rejects_wrong_input_size():
    cell = jr.lstm(4)
    params = cell.init(jax.random.key(0), 3)
    with pytest.raises(
        ValueError,
        match=r"xs has input_size 7 \(xs.shape\[-1\]\) but params were made for input_size 3",
    ):
        jr.unroll(cell, params, jnp.ones((1, 2, 7)))


def test_unroll_rejects_wrong_carry():
    cell = jr.lstm(4)
    params = cell.init(jax.random.key(0), 3)
    xs = jnp.ones((1, 2, 3))
    h, c = cell.initial_carry((2,))
    with pytest.raises(ValueError, match=r"carry\[1\] has shape \(2, 7\) but .* expects \(2, 4\)"):
        jr.unroll(cell, params, xs, (h, jnp.zeros((2, 7))))
    with pytest.raises(ValueError, match=r"carry\[0\] has shape \(2, 7\) but .* expects \(2, 4\)"):
        jr.unroll(cell, params, xs, (jnp.zeros((2, 7)), c))
    with pytest.raises(ValueError, match=r"carry must have the structure .* a tuple of 2"):
        jr.unroll(cell, params, xs, h)
    with pytest.raises(ValueError, match=r"xs must have at least 2 dims"):
        jr.unroll(cell, params, jnp.ones(3), (h, c))
    with pytest.raises(TypeError, match=r"xs must have a real floating dtype .* got int32"):
        jr.unroll(cell, params, jnp.ones((1, 2, 3), jnp.int32), (h, c))


def test_unroll_rejects_params_of_another_cell():
    params = jr.gru(4).init(jax.random.key(0), 3)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \[\"params\['b_hn'\]\"\]"):
        jr.unroll(jr.gru(4, reset_after=False), params, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"params\['b'\] has shape \(12,\) but cell 'lstm'"):
        jr.unroll(
            jr.lstm(4), jr.gru(4, reset_after=False).init(jax.random.key(0), 3), jnp.ones((1, 3))
        )
