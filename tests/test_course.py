"""The course module: forwards against float64 NumPy, backwards against jax.vjp and
finite differences, caches, converters, dtypes and errors."""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr
from jaxrnn import course
from jaxrnn.gradient_check import gradcheck

TIGHT = {"rtol": 1e-12, "atol": 1e-12}
GRAD = {"rtol": 1e-10, "atol": 1e-10}
LSTM_GATES = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo")


@pytest.fixture(autouse=True)
def x64_flag_unchanged():
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before


# ---------------------------------------------------------------- NumPy reference


def np_softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_rnn_cell(xt, a_prev, p):
    a_next = np.tanh(p["Waa"] @ a_prev + p["Wax"] @ xt + p["ba"])
    return a_next, np_softmax(p["Wya"] @ a_next + p["by"])


def np_lstm_cell(xt, a_prev, c_prev, p):
    concat = np.concatenate([a_prev, xt], axis=0)
    ft = np_sigmoid(p["Wf"] @ concat + p["bf"])
    it = np_sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = np_sigmoid(p["Wo"] @ concat + p["bo"])
    c_next = ft * c_prev + it * cct
    a_next = ot * np.tanh(c_next)
    return a_next, c_next, np_softmax(p["Wy"] @ a_next + p["by"]), (ft, it, cct, ot)


def np_rnn_forward(x, a0, p):
    a, y, a_next = [], [], a0
    for t in range(x.shape[2]):
        a_next, yt = np_rnn_cell(x[:, :, t], a_next, p)
        a.append(a_next)
        y.append(yt)
    return np.stack(a, axis=2), np.stack(y, axis=2)


def np_lstm_forward(x, a0, p):
    a, y, c = [], [], []
    a_next, c_next = a0, np.zeros_like(a0)
    for t in range(x.shape[2]):
        a_next, c_next, yt, _ = np_lstm_cell(x[:, :, t], a_next, c_next, p)
        a.append(a_next)
        c.append(c_next)
        y.append(yt)
    return np.stack(a, axis=2), np.stack(y, axis=2), np.stack(c, axis=2)


# ------------------------------------------------------------------------- inputs


def seed_rnn_example():
    """The tutorial's example, drawn in its order from `np.random.seed(1)`'s stream."""
    random = np.random.RandomState(1)  # the stream np.random.seed(1) starts, without global state
    xt = random.randn(3, 10)
    a_prev = random.randn(5, 10)
    Waa = random.randn(5, 5)
    Wax = random.randn(5, 3)
    Wya = random.randn(2, 5)
    ba = random.randn(5, 1)
    by = random.randn(2, 1)
    return xt, a_prev, {"Waa": Waa, "Wax": Wax, "Wya": Wya, "ba": ba, "by": by}


def rnn_parameters(rng, n_x=3, n_a=5, n_y=2):
    shapes = {"Wax": (n_a, n_x), "Waa": (n_a, n_a), "Wya": (n_y, n_a), "ba": (n_a, 1)}
    return {k: rng.standard_normal(s) for k, s in {**shapes, "by": (n_y, 1)}.items()}


def lstm_parameters(rng, n_x=3, n_a=5, n_y=2, scale=1.0):
    shapes = {k: (n_a, n_a + n_x) if k[0] == "W" else (n_a, 1) for k in LSTM_GATES}
    shapes.update(Wy=(n_y, n_a), by=(n_y, 1))
    return {k: scale * rng.standard_normal(s) for k, s in shapes.items()}


def cast(tree, dtype):
    return jax.tree.map(lambda v: np.asarray(v, dtype), tree)


# ------------------------------------------------------------------------ forward


def test_rnn_cell_forward_reproduces_seed_example():
    xt, a_prev, parameters = seed_rnn_example()
    a_next, yt_pred, cache = course.rnn_cell_forward(xt, a_prev, parameters)
    want_a, want_y = np_rnn_cell(xt, a_prev, parameters)
    assert a_next.shape == (5, 10) and yt_pred.shape == (2, 10)
    assert isinstance(a_next, np.ndarray) and isinstance(yt_pred, np.ndarray)
    np.testing.assert_allclose(a_next, want_a, **TIGHT)
    np.testing.assert_allclose(yt_pred, want_y, **TIGHT)
    np.testing.assert_allclose(yt_pred.sum(axis=0), 1.0, **TIGHT)

    assert isinstance(cache, tuple) and len(cache) == 4
    np.testing.assert_array_equal(cache[0], a_next)
    np.testing.assert_array_equal(cache[1], a_prev)
    np.testing.assert_array_equal(cache[2], xt)
    assert set(cache[3]) == set(parameters)
    for k, v in parameters.items():
        np.testing.assert_array_equal(cache[3][k], v)


def test_rnn_forward_matches_numpy():
    rng = np.random.default_rng(0)
    parameters = rnn_parameters(rng)
    x, a0 = rng.standard_normal((3, 10, 4)), rng.standard_normal((5, 10))
    a, y_pred, caches = course.rnn_forward(x, a0, parameters)
    want_a, want_y = np_rnn_forward(x, a0, parameters)
    assert a.shape == (5, 10, 4) and y_pred.shape == (2, 10, 4)
    np.testing.assert_allclose(a, want_a, **TIGHT)
    np.testing.assert_allclose(y_pred, want_y, **TIGHT)

    steps, x_cached = caches
    np.testing.assert_array_equal(x_cached, x)
    assert isinstance(steps, list) and len(steps) == 4
    for t, (a_next, a_prev, xt, p) in enumerate(steps):
        np.testing.assert_array_equal(a_next, a[:, :, t])
        np.testing.assert_array_equal(a_prev, a0 if t == 0 else a[:, :, t - 1])
        np.testing.assert_array_equal(xt, x[:, :, t])
        assert set(p) == set(course.RNN_KEYS)


def test_rnn_forward_step_equals_cell_forward():
    rng = np.random.default_rng(1)
    parameters = rnn_parameters(rng)
    x, a0 = rng.standard_normal((3, 4, 3)), rng.standard_normal((5, 4))
    a, y_pred, _ = course.rnn_forward(x, a0, parameters)
    a_next, yt, _ = course.rnn_cell_forward(x[:, :, 0], a0, parameters)
    np.testing.assert_array_equal(a[:, :, 0], a_next)
    np.testing.assert_array_equal(y_pred[:, :, 0], yt)


def test_lstm_cell_forward_matches_numpy():
    rng = np.random.default_rng(2)
    parameters = lstm_parameters(rng)
    xt = rng.standard_normal((3, 10))
    a_prev, c_prev = rng.standard_normal((5, 10)), rng.standard_normal((5, 10))
    a_next, c_next, yt, cache = course.lstm_cell_forward(xt, a_prev, c_prev, parameters)
    want_a, want_c, want_y, want_gates = np_lstm_cell(xt, a_prev, c_prev, parameters)
    assert a_next.shape == c_next.shape == (5, 10) and yt.shape == (2, 10)
    np.testing.assert_allclose(a_next, want_a, **TIGHT)
    np.testing.assert_allclose(c_next, want_c, **TIGHT)
    np.testing.assert_allclose(yt, want_y, **TIGHT)

    assert isinstance(cache, tuple) and len(cache) == 10
    a_n, c_n, a_p, c_p, ft, it, cct, ot, x_c, p = cache
    np.testing.assert_array_equal(a_n, a_next)
    np.testing.assert_array_equal(c_n, c_next)
    np.testing.assert_array_equal(a_p, a_prev)
    np.testing.assert_array_equal(c_p, c_prev)
    np.testing.assert_array_equal(x_c, xt)
    for got, want in zip((ft, it, cct, ot), want_gates, strict=True):
        assert got.shape == (5, 10)
        np.testing.assert_allclose(got, want, **TIGHT)
    # The cached gates and the cell's states are one computation.
    np.testing.assert_allclose(c_next, ft * c_prev + it * cct, **TIGHT)
    np.testing.assert_allclose(a_next, ot * np.tanh(c_next), **TIGHT)
    assert set(p) == set(course.LSTM_KEYS)


def test_lstm_forward_matches_numpy():
    rng = np.random.default_rng(3)
    parameters = lstm_parameters(rng)
    x, a0 = rng.standard_normal((3, 10, 7)), rng.standard_normal((5, 10))
    a, y, c, caches = course.lstm_forward(x, a0, parameters)
    want_a, want_y, want_c = np_lstm_forward(x, a0, parameters)
    assert a.shape == c.shape == (5, 10, 7) and y.shape == (2, 10, 7)
    np.testing.assert_allclose(a, want_a, **TIGHT)
    np.testing.assert_allclose(y, want_y, **TIGHT)
    np.testing.assert_allclose(c, want_c, **TIGHT)

    steps, x_cached = caches
    np.testing.assert_array_equal(x_cached, x)
    assert len(steps) == 7 and all(len(s) == 10 for s in steps)
    np.testing.assert_array_equal(steps[0][3], np.zeros((5, 10)))  # c0 = 0
    for t in range(1, 7):
        np.testing.assert_array_equal(steps[t][2], a[:, :, t - 1])
        np.testing.assert_array_equal(steps[t][3], c[:, :, t - 1])


def test_main_api_equals_course_forward(x64):
    rng = np.random.default_rng(4)
    parameters = lstm_parameters(rng)
    x, a0 = rng.standard_normal((3, 6, 5)), rng.standard_normal((5, 6))
    a, *_ = course.lstm_forward(x, a0, parameters)
    cell, params, _ = course.to_cell_params(parameters)
    carry = (jnp.asarray(a0.T), jnp.zeros((6, 5)))
    _, hs = jr.unroll(cell, params, jnp.asarray(x.transpose(2, 1, 0)), carry)
    np.testing.assert_allclose(np.transpose(hs, (2, 1, 0)), a, **TIGHT)


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_dtype_in_is_dtype_out(np_dtype):
    rng = np.random.default_rng(5)
    rp, lp = cast(rnn_parameters(rng), np_dtype), cast(lstm_parameters(rng), np_dtype)
    x = rng.standard_normal((3, 4, 3)).astype(np_dtype)
    a0 = rng.standard_normal((5, 4)).astype(np_dtype)
    tol = TIGHT if np_dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}

    a, y_pred, caches = course.rnn_forward(x, a0, rp)
    for got, want in zip((a, y_pred), np_rnn_forward(*cast((x, a0, rp), np.float64)), strict=True):
        assert got.dtype == np_dtype
        np.testing.assert_allclose(got, want, **tol)
    grads = course.rnn_backward(rng.standard_normal(a.shape).astype(np_dtype), caches)
    assert all(g.dtype == np_dtype for g in grads.values())

    a, y, c, caches = course.lstm_forward(x, a0, lp)
    want = np_lstm_forward(*cast((x, a0, lp), np.float64))
    for got, w in zip((a, y, c), want, strict=True):
        assert got.dtype == np_dtype
        np.testing.assert_allclose(got, w, **tol)
    assert all(v.dtype == np_dtype for v in caches[0][0][:9])
    grads = course.lstm_backward(rng.standard_normal(a.shape).astype(np_dtype), caches)
    assert all(g.dtype == np_dtype for g in grads.values())


def test_float64_without_global_x64_flag():
    assert not jax.config.jax_enable_x64
    xt, a_prev, parameters = seed_rnn_example()
    a_next, _, cache = course.rnn_cell_forward(xt, a_prev, parameters)
    grads = course.rnn_cell_backward(np.ones((5, 10)), cache)
    assert a_next.dtype == np.float64 and grads["dWax"].dtype == np.float64
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32


def test_accepts_lists_and_jax_arrays(x64):
    xt, a_prev, parameters = seed_rnn_example()
    want, _, _ = course.rnn_cell_forward(xt, a_prev, parameters)
    got, _, _ = course.rnn_cell_forward(xt.tolist(), jnp.asarray(a_prev), parameters)
    np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------- backward


def rnn_hidden_jax(parameters, x, a0):
    cell, params, _ = course.to_cell_params(parameters)
    _, hs = jr.unroll(cell, params, jnp.transpose(x, (2, 1, 0)), a0.T)
    return jnp.transpose(hs, (2, 1, 0))


def lstm_hidden_jax(parameters, x, a0):
    cell, params, _ = course.to_cell_params(parameters)
    carry = (a0.T, jnp.zeros_like(a0.T))
    _, hs = jr.unroll(cell, params, jnp.transpose(x, (2, 1, 0)), carry)
    return jnp.transpose(hs, (2, 1, 0))


def to_jax(tree):
    return jax.tree.map(jnp.asarray, tree)


def test_rnn_cell_backward_equals_vjp(x64):
    rng = np.random.default_rng(6)
    parameters = rnn_parameters(rng)
    xt, a_prev, da_next = (rng.standard_normal(s) for s in [(3, 10), (5, 10), (5, 10)])
    _, _, cache = course.rnn_cell_forward(xt, a_prev, parameters)
    grads = course.rnn_cell_backward(da_next, cache)

    def step(parameters, xt, a_prev):
        cell, params, _ = course.to_cell_params(parameters)
        return cell.step(params, a_prev.T, xt.T)[1].T

    _, vjp = jax.vjp(step, *to_jax((parameters, xt, a_prev)))
    dp, dxt, da_prev = vjp(jnp.asarray(da_next))
    assert list(grads) == ["dxt", "da_prev", "dWax", "dWaa", "dba"]
    want = {"dxt": dxt, "da_prev": da_prev, "dWax": dp["Wax"], "dWaa": dp["Waa"], "dba": dp["ba"]}
    for k, v in want.items():
        assert grads[k].shape == v.shape and grads[k].dtype == np.float64
        np.testing.assert_allclose(grads[k], v, **GRAD, err_msg=k)


def test_rnn_backward_equals_vjp(x64):
    rng = np.random.default_rng(7)
    parameters = rnn_parameters(rng)
    x, a0, da = (rng.standard_normal(s) for s in [(3, 10, 4), (5, 10), (5, 10, 4)])
    a, _, caches = course.rnn_forward(x, a0, parameters)
    grads = course.rnn_backward(da, caches)

    got_a, vjp = jax.vjp(rnn_hidden_jax, *to_jax((parameters, x, a0)))
    np.testing.assert_allclose(got_a, a, **TIGHT)
    dp, dx, da0 = vjp(jnp.asarray(da))
    assert list(grads) == ["dx", "da0", "dWax", "dWaa", "dba"]
    want = {"dx": dx, "da0": da0, "dWax": dp["Wax"], "dWaa": dp["Waa"], "dba": dp["ba"]}
    for k, v in want.items():
        assert grads[k].shape == v.shape
        np.testing.assert_allclose(grads[k], v, **GRAD, err_msg=k)


def test_lstm_cell_backward_equals_vjp(x64):
    rng = np.random.default_rng(8)
    parameters = lstm_parameters(rng)
    xt, a_prev, c_prev = (rng.standard_normal(s) for s in [(3, 10), (5, 10), (5, 10)])
    da_next, dc_next = rng.standard_normal((5, 10)), rng.standard_normal((5, 10))
    *_, cache = course.lstm_cell_forward(xt, a_prev, c_prev, parameters)
    grads = course.lstm_cell_backward(da_next, dc_next, cache)

    def step(parameters, xt, a_prev, c_prev):
        cell, params, _ = course.to_cell_params(parameters)
        (h, c), _ = cell.step(params, (a_prev.T, c_prev.T), xt.T)
        return h.T, c.T

    _, vjp = jax.vjp(step, *to_jax((parameters, xt, a_prev, c_prev)))
    dp, dxt, da_prev, dc_prev = vjp((jnp.asarray(da_next), jnp.asarray(dc_next)))
    assert list(grads) == [
        "dxt", "da_prev", "dc_prev", "dWf", "dWi", "dWc", "dWo", "dbf", "dbi", "dbc", "dbo"
    ]  # fmt: skip
    want = {"dxt": dxt, "da_prev": da_prev, "dc_prev": dc_prev}
    want.update({f"d{k}": dp[k] for k in LSTM_GATES})
    for k, v in want.items():
        assert grads[k].shape == v.shape
        np.testing.assert_allclose(grads[k], v, **GRAD, err_msg=k)
    assert grads["dc_prev"].shape == (5, 10)  # not (n_a, m, T_x) as the course's docstring says


def test_lstm_backward_equals_vjp(x64):
    rng = np.random.default_rng(9)
    parameters = lstm_parameters(rng)
    x, a0, da = (rng.standard_normal(s) for s in [(3, 10, 7), (5, 10), (5, 10, 7)])
    a, _, _, caches = course.lstm_forward(x, a0, parameters)
    grads = course.lstm_backward(da, caches)

    got_a, vjp = jax.vjp(lstm_hidden_jax, *to_jax((parameters, x, a0)))
    np.testing.assert_allclose(got_a, a, **TIGHT)
    dp, dx, da0 = vjp(jnp.asarray(da))
    assert list(grads) == ["dx", "da0", "dWf", "dWi", "dWc", "dWo", "dbf", "dbi", "dbc", "dbo"]
    want = {"dx": dx, "da0": da0, **{f"d{k}": dp[k] for k in LSTM_GATES}}
    for k, v in want.items():
        assert grads[k].shape == v.shape
        np.testing.assert_allclose(grads[k], v, **GRAD, err_msg=k)


def test_shorter_da_walks_first_steps(x64):
    """The course's own example: a 7-step forward, a 4-step da."""
    rng = np.random.default_rng(10)
    parameters = lstm_parameters(rng)
    x, a0, da = (rng.standard_normal(s) for s in [(3, 10, 7), (5, 10), (5, 10, 4)])
    *_, caches = course.lstm_forward(x, a0, parameters)
    grads = course.lstm_backward(da, caches)
    padded = np.concatenate([da, np.zeros((5, 10, 3))], axis=2)
    _, vjp = jax.vjp(lstm_hidden_jax, *to_jax((parameters, x, a0)))
    dp, dx, da0 = vjp(jnp.asarray(padded))
    assert grads["dx"].shape == (3, 10, 4)
    np.testing.assert_array_equal(dx[:, :, 4:], 0.0)
    np.testing.assert_allclose(grads["dx"], dx[:, :, :4], **GRAD)
    np.testing.assert_allclose(grads["da0"], da0, **GRAD)
    np.testing.assert_allclose(grads["dWc"], dp["Wc"], **GRAD)


def test_dropping_the_recurrent_gradient_is_wrong(x64):
    """The widely copied `lstm_cell_backward(da[:, :, t], ...)` loses da_prev."""
    rng = np.random.default_rng(11)
    parameters = lstm_parameters(rng)
    x, a0, da = (rng.standard_normal(s) for s in [(3, 4, 5), (5, 4), (5, 4, 5)])
    *_, caches = course.lstm_forward(x, a0, parameters)
    dc, dWf = np.zeros((5, 4)), 0.0
    for t in reversed(range(5)):
        g = course.lstm_cell_backward(da[:, :, t], dc, caches[0][t])
        dc, dWf = g["dc_prev"], dWf + g["dWf"]
    right = course.lstm_backward(da, caches)["dWf"]
    assert np.linalg.norm(dWf - right) > 1e-3 * np.linalg.norm(right)


def test_backwards_match_finite_differences():
    rng = np.random.default_rng(12)
    lp = lstm_parameters(rng, n_a=4, scale=0.5)
    gates, head = {k: lp[k] for k in LSTM_GATES}, {"Wy": lp["Wy"], "by": lp["by"]}
    point = {"gates": gates, "x": rng.standard_normal((3, 3, 4)), "a0": rng.standard_normal((4, 3))}
    weights = rng.standard_normal((4, 3, 4))

    def loss(p, weights, head):
        a, *_ = course.lstm_forward(p["x"], p["a0"], {**p["gates"], **head})
        return np.sum(a * weights)

    def backward(p, weights, head):
        *_, caches = course.lstm_forward(p["x"], p["a0"], {**p["gates"], **head})
        g = course.lstm_backward(weights, caches)
        return {"gates": {k: g[f"d{k}"] for k in LSTM_GATES}, "x": g["dx"], "a0": g["da0"]}

    result = gradcheck(loss, point, weights, head, grad=backward)
    assert result.passed, str(result)
    assert result.relative_error < 1e-8

    rp = rnn_parameters(rng, n_a=4)
    point = {"p": {k: rp[k] for k in ("Wax", "Waa", "ba")}, "x": rng.standard_normal((3, 3, 4))}
    a0, head = rng.standard_normal((4, 3)), {"Wya": rp["Wya"], "by": rp["by"]}

    def rnn_loss(p, weights, a0, head):
        a, _, _ = course.rnn_forward(p["x"], a0, {**p["p"], **head})
        return np.sum(a * weights)

    def rnn_backward(p, weights, a0, head):
        *_, caches = course.rnn_forward(p["x"], a0, {**p["p"], **head})
        g = course.rnn_backward(weights, caches)
        return {"p": {k: g[f"d{k}"] for k in ("Wax", "Waa", "ba")}, "x": g["dx"]}

    result = gradcheck(rnn_loss, point, weights, a0, head, grad=rnn_backward)
    assert result.passed, str(result)


# --------------------------------------------------------------------- converters


def test_rnn_converters_round_trip_exactly():
    parameters = rnn_parameters(np.random.default_rng(13), n_x=3, n_a=5, n_y=2)
    cell, params, head = course.to_cell_params(parameters)
    assert cell.name == "rnn_tanh" and cell.hidden_size == 5
    np.testing.assert_array_equal(params["w_x"], parameters["Wax"].T)
    np.testing.assert_array_equal(params["w_h"], parameters["Waa"].T)
    np.testing.assert_array_equal(params["b"], parameters["ba"][:, 0])
    np.testing.assert_array_equal(head["w_y"], parameters["Wya"].T)
    assert head["b_y"].shape == (2,)
    back = course.from_cell_params(params, head)
    assert list(back) == list(course.RNN_KEYS)
    for k, v in parameters.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def test_lstm_converters_round_trip_exactly():
    cell = jr.lstm(5)
    params = jax.tree.map(np.asarray, cell.init(jax.random.key(0), input_size=3))
    head = {"w_y": np.arange(10.0, dtype=np.float32).reshape(5, 2), "b_y": np.ones(2, np.float32)}
    parameters = course.from_cell_params(params, head)
    assert list(parameters) == list(course.LSTM_KEYS)
    assert parameters["Wf"].shape == (5, 8) and parameters["bo"].shape == (5, 1)
    # Gate order i, f, g, o; recurrent columns first.
    np.testing.assert_array_equal(parameters["Wi"][:, :5], params["w_h"][:, :5].T)
    np.testing.assert_array_equal(parameters["Wf"][:, 5:], params["w_x"][:, 5:10].T)
    np.testing.assert_array_equal(parameters["bf"][:, 0], params["b"][5:10])
    np.testing.assert_array_equal(parameters["Wc"][:, 5:], params["w_x"][:, 10:15].T)
    np.testing.assert_array_equal(parameters["Wo"][:, :5], params["w_h"][:, 15:].T)
    again, params2, head2 = course.to_cell_params(parameters)
    assert again.name == "lstm" and again.hidden_size == 5
    for k in params:
        assert params2[k].dtype == params[k].dtype and np.array_equal(params2[k], params[k]), k
    for k in head:
        assert np.array_equal(head2[k], head[k]), k


def test_converters_are_traceable(x64):
    parameters = to_jax(lstm_parameters(np.random.default_rng(14)))

    @jax.jit
    def round_trip(parameters):
        _, params, head = course.to_cell_params(parameters)
        return course.from_cell_params(params, head)

    back = round_trip(parameters)
    for k, v in parameters.items():
        assert isinstance(back[k], jax.Array)
        np.testing.assert_array_equal(back[k], v)


def test_converters_do_not_alias_inputs():
    parameters = rnn_parameters(np.random.default_rng(15))
    _, params, _ = course.to_cell_params(parameters)
    params["w_x"][0, 0] += 1.0
    assert parameters["Wax"][0, 0] != params["w_x"][0, 0]


# ------------------------------------------------------------------------- errors


def test_rnn_forward_errors_name_the_argument():
    xt, a_prev, parameters = seed_rnn_example()
    bad = {**parameters, "Wax": np.zeros((5, 7))}
    with pytest.raises(
        ValueError,
        match=r"xt has shape \(3, 10\) but expected \(7, 10\).*\['Wax'\] of shape \(5, 7\)",
    ):
        course.rnn_cell_forward(xt, a_prev, bad)
    with pytest.raises(ValueError, match=r"a_prev has shape \(7, 10\) but expected \(5, 10\)"):
        course.rnn_cell_forward(xt, np.zeros((7, 10)), parameters)
    with pytest.raises(ValueError, match=r"a_prev has shape \(5, 7\) but expected \(5, 10\)"):
        course.rnn_cell_forward(xt, np.zeros((5, 7)), parameters)
    with pytest.raises(ValueError, match=r"missing \['ba'\]"):
        course.rnn_cell_forward(xt, a_prev, {k: v for k, v in parameters.items() if k != "ba"})
    with pytest.raises(ValueError, match=r"unexpected \['Wxx'\]"):
        course.rnn_cell_forward(xt, a_prev, {**parameters, "Wxx": np.zeros((5, 3))})
    with pytest.raises(ValueError, match=r"xt must have 2 dims \(n_x, m\), got shape \(3,\)"):
        course.rnn_cell_forward(np.zeros(3), a_prev, parameters)
    with pytest.raises(ValueError, match=r"parameters\['ba'\] must have 2 dims.*reshape"):
        course.rnn_cell_forward(xt, a_prev, {**parameters, "ba": np.zeros(5)})
    with pytest.raises(ValueError, match=r"parameters\['Waa'\] has shape \(5, 7\).*\(5, 5\)"):
        course.rnn_cell_forward(xt, a_prev, {**parameters, "Waa": np.zeros((5, 7))})
    with pytest.raises(ValueError, match=r"parameters\['by'\] has shape \(7, 1\).*\(2, 1\)"):
        course.rnn_cell_forward(xt, a_prev, {**parameters, "by": np.zeros((7, 1))})
    with pytest.raises(TypeError, match=r"a_prev has dtype float32 but xt has dtype float64"):
        course.rnn_cell_forward(xt, a_prev.astype(np.float32), parameters)
    with pytest.raises(TypeError, match=r"xt must have a real floating dtype.*int64"):
        course.rnn_cell_forward(np.zeros((3, 10), np.int64), a_prev, parameters)
    with pytest.raises(TypeError, match=r"parameters must be a dict"):
        course.rnn_cell_forward(xt, a_prev, list(parameters.values()))
    with pytest.raises(
        ValueError, match=r"x must have 3 dims \(n_x, m, T_x\), got shape \(3, 10\)"
    ):
        course.rnn_forward(xt, a_prev, parameters)
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        course.rnn_forward(np.zeros((3, 10, 0)), a_prev, parameters)
    with pytest.raises(ValueError, match=r"a0 has shape \(5, 7\) but expected \(5, 10\)"):
        course.rnn_forward(np.zeros((3, 10, 2)), np.zeros((5, 7)), parameters)


def test_lstm_forward_errors_name_the_argument():
    rng = np.random.default_rng(16)
    parameters = lstm_parameters(rng)
    xt, a_prev, c_prev = np.zeros((3, 10)), np.zeros((5, 10)), np.zeros((5, 10))
    with pytest.raises(
        ValueError,
        match=r"xt has shape \(7, 10\) but expected \(3, 10\).*\['Wf'\] of shape \(5, 8\)",
    ):
        course.lstm_cell_forward(np.zeros((7, 10)), a_prev, c_prev, parameters)
    with pytest.raises(ValueError, match=r"c_prev has shape \(5, 7\) but expected \(5, 10\)"):
        course.lstm_cell_forward(xt, a_prev, np.zeros((5, 7)), parameters)
    with pytest.raises(ValueError, match=r"parameters\['Wi'\] has shape \(5, 7\).*\(5, 8\)"):
        course.lstm_cell_forward(xt, a_prev, c_prev, {**parameters, "Wi": np.zeros((5, 7))})
    with pytest.raises(ValueError, match=r"parameters\['Wf'\] of shape \(5, 5\).*n_x >= 1"):
        course.lstm_cell_forward(xt, a_prev, c_prev, {**parameters, "Wf": np.zeros((5, 5))})
    with pytest.raises(ValueError, match=r"missing \['Wy', 'by'\]"):
        course.lstm_forward(np.zeros((3, 10, 2)), a_prev, {k: parameters[k] for k in LSTM_GATES})
    with pytest.raises(TypeError, match=r"parameters\['bo'\] has dtype float32"):
        course.lstm_forward(
            np.zeros((3, 10, 2)), a_prev, {**parameters, "bo": np.zeros((5, 1), np.float32)}
        )


def test_backward_errors_name_the_argument():
    rng = np.random.default_rng(17)
    parameters = rnn_parameters(rng)
    x, a0 = rng.standard_normal((3, 10, 4)), rng.standard_normal((5, 10))
    _, _, caches = course.rnn_forward(x, a0, parameters)
    cache = caches[0][0]
    with pytest.raises(ValueError, match=r"da_next has shape \(7, 10\) but expected \(5, 10\)"):
        course.rnn_cell_backward(np.zeros((7, 10)), cache)
    with pytest.raises(TypeError, match=r"cache must be the 4-tuple \(a_next, a_prev, xt"):
        course.rnn_cell_backward(np.zeros((5, 10)), cache[:3])
    with pytest.raises(
        ValueError, match=r"da has 7 time steps \(da.shape\[2\]\) but caches holds 4"
    ):
        course.rnn_backward(np.zeros((5, 10, 7)), caches)
    with pytest.raises(ValueError, match=r"da has shape \(7, 10, 4\) but expected \(5, 10, 4\)"):
        course.rnn_backward(np.zeros((7, 10, 4)), caches)
    with pytest.raises(TypeError, match=r"caches must be the 2-tuple \(list_of_caches, x\)"):
        course.rnn_backward(np.zeros((5, 10, 4)), caches[0])
    with pytest.raises(TypeError, match=r"caches\[0\]\[0\] must be the 10-tuple \(a_next, c_next"):
        course.lstm_backward(np.zeros((5, 10, 4)), caches)
    with pytest.raises(TypeError, match=r"da has dtype float32"):
        course.rnn_backward(np.zeros((5, 10, 4), np.float32), caches)

    lp = lstm_parameters(rng)
    *_, cache = course.lstm_cell_forward(np.zeros((3, 10)), a0, a0, lp)
    with pytest.raises(ValueError, match=r"dc_next has shape \(5, 7\) but expected \(5, 10\)"):
        course.lstm_cell_backward(np.zeros((5, 10)), np.zeros((5, 7)), cache)
    broken = (*cache[:4], np.zeros((7, 10)), *cache[5:])
    with pytest.raises(ValueError, match=r"cache\[4\] \(ft\) has shape \(7, 10\)"):
        course.lstm_cell_backward(np.zeros((5, 10)), np.zeros((5, 10)), broken)


def test_converter_errors():
    with pytest.raises(ValueError, match=r"RNN keys \(Wax, Waa, Wya, ba, by\) or LSTM keys"):
        course.to_cell_params({"W": np.zeros((2, 2))})
    with pytest.raises(TypeError, match=r"parameters must be a course parameter dict"):
        course.to_cell_params([np.zeros((2, 2))])
    gru = jax.tree.map(np.asarray, jr.gru(5).init(jax.random.key(0), input_size=3))
    head = {"w_y": np.zeros((5, 2), np.float32), "b_y": np.zeros(2, np.float32)}
    with pytest.raises(ValueError, match=r"params must have exactly the keys w_x, w_h, b"):
        course.from_cell_params(gru, head)
    gru.pop("b_hn")
    with pytest.raises(ValueError, match=r"params\['w_h'\] has shape \(5, 15\).*GRU"):
        course.from_cell_params(gru, head)
    params = jax.tree.map(np.asarray, jr.rnn(5).init(jax.random.key(0), input_size=3))
    with pytest.raises(ValueError, match=r"head\['w_y'\] has shape \(7, 2\) but expected \(5, 2\)"):
        course.from_cell_params(params, {**head, "w_y": np.zeros((7, 2), np.float32)})
    with pytest.raises(TypeError, match=r"head\['b_y'\] has dtype float64"):
        course.from_cell_params(params, {**head, "b_y": np.zeros(2)})


def test_course_page_snippets_run(capsys):
    """Every python block of docs/course.md, run in order as one script."""
    page = Path(__file__).resolve().parents[1] / "docs" / "course.md"
    code = "\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
    exec(compile(code, str(page), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[0.59584544 0.18141802 0.61311866 0.99808218]"
    assert lines.count("True") == 4 and lines[-1].startswith("False ")


def test_results_are_writable_numpy_copies():
    """Course code updates and clips gradients in place."""
    xt, a_prev, parameters = seed_rnn_example()
    a_next, yt_pred, cache = course.rnn_cell_forward(xt, a_prev, parameters)
    grads = course.rnn_cell_backward(np.ones((5, 10)), cache)
    for value in (a_next, yt_pred, *grads.values()):
        assert type(value) is np.ndarray and value.flags.writeable
    np.clip(grads["dWax"], -0.5, 0.5, out=grads["dWax"])
    assert np.abs(grads["dWax"]).max() <= 0.5
    assert cache[0] is a_next  # as in the course, the cache holds a_next itself
