"""gradcheck: passes correct gradients, points at wrong ones, samples, validates, and
the gradient-check example runs."""

import importlib.util
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr
from jaxrnn.gradient_check import GradcheckResult, LeafCheck, gradcheck

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gradient_check.py"


@pytest.fixture(autouse=True)
def x64_flag_unchanged():
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before


def sequence_problem(cell, seed=0, steps=5, batch=2, input_size=3, outputs=2):
    """Params `{"cell", "head"}`, inputs and targets for a per-step squared-error loss."""
    k_cell, k_head, k_x, k_y = jax.random.split(jax.random.key(seed), 4)
    params = {
        "cell": cell.init(k_cell, input_size),
        "head": {"w": jax.random.normal(k_head, (cell.hidden_size, outputs)), "b": jnp.ones(2)},
    }
    xs = jax.random.normal(k_x, (steps, batch, input_size))
    targets = jax.random.normal(k_y, (steps, batch, outputs))
    return params, xs, targets


def make_loss(cell):
    def loss(params, xs, targets):
        _, hs = jr.unroll(cell, params["cell"], xs)
        out = hs @ params["head"]["w"] + params["head"]["b"][None, None, :]
        return jnp.sum((out - targets) ** 2) / xs.shape[1]

    return loss


def float64_grad(loss, params, *args):
    """`jax.grad(loss)` in float64, as NumPy: the precision gradcheck compares in."""
    with jax.enable_x64(True):
        params, args = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), (params, args))
        return jax.tree.map(np.array, jax.grad(loss)(params, *args))


CELLS = {"rnn": lambda: jr.rnn(4), "lstm": lambda: jr.lstm(4)}


@pytest.mark.parametrize("name", list(CELLS))
def test_passes_a_correct_gradient(name):
    cell = CELLS[name]()
    params, xs, targets = sequence_problem(cell)
    result = gradcheck(make_loss(cell), params, xs, targets)
    assert isinstance(result, GradcheckResult) and result.passed, str(result)
    assert [r.path for r in result.leaves] == ["cell/b", "cell/w_h", "cell/w_x", "head/b", "head/w"]
    for r, leaf in zip(result.leaves, jax.tree.leaves(params), strict=True):
        assert isinstance(r, LeafCheck)
        assert r.shape == leaf.shape and r.checked == leaf.size
        assert 0.0 <= r.relative_error < 1e-8 and r.passed
    assert result.relative_error < 1e-8


def test_points_at_the_wrong_leaf_and_element():
    cell = jr.lstm(4)
    params, xs, targets = sequence_problem(cell, seed=1)
    loss = make_loss(cell)
    wrong = float64_grad(loss, params, xs, targets)
    wrong["cell"]["w_h"][1, 6] += 0.05

    result = gradcheck(loss, params, xs, targets, grad=wrong)
    assert not result.passed
    failed = [r.path for r in result.leaves if not r.passed]
    assert failed == ["cell/w_h"]
    row = result.worst
    assert row.path == "cell/w_h" and row.worst_index == (1, 6)
    np.testing.assert_allclose(row.analytic - row.numeric, 0.05, rtol=1e-6)
    np.testing.assert_allclose(row.analytic, float(wrong["cell"]["w_h"][1, 6]), rtol=1e-12)

    # The same through a gradient function.
    result = gradcheck(loss, params, xs, targets, grad=lambda p, x, t: wrong)
    assert [r.path for r in result.leaves if not r.passed] == ["cell/w_h"]


def test_relative_difference_is_the_course_formula():
    a = np.array([1.0, -2.0, 3.0])
    params = {"p": np.array([0.5, 0.25, -1.0])}

    def f(params, a):
        return jnp.sum(a * params["p"] ** 2)

    exact = {"p": 2 * a * params["p"]}
    scaled = {"p": 1.01 * exact["p"]}
    result = gradcheck(f, params, a, grad=scaled)
    # ||1.01 g - g|| / (||1.01 g|| + ||g||) = 0.01 / 2.01
    np.testing.assert_allclose(result.relative_error, 0.01 / 2.01, rtol=1e-6)
    np.testing.assert_allclose(result.leaves[0].relative_error, 0.01 / 2.01, rtol=1e-6)
    assert gradcheck(f, params, a, grad=exact).relative_error < 1e-9


def test_unused_leaf_scores_zero():
    def f(params):
        return jnp.sum(jnp.sin(params["used"]))

    params = {"unused": np.ones((2, 3)), "used": np.linspace(0.0, 1.0, 4)}
    result = gradcheck(f, params)
    unused = result.leaves[[r.path for r in result.leaves].index("unused")]
    assert unused.relative_error == 0.0 and unused.analytic == 0.0 and unused.numeric == 0.0
    assert result.passed


def test_nan_gradient_fails():
    params = {"w": np.array([1.0, 2.0])}
    result = gradcheck(lambda p: jnp.sum(p["w"] ** 2), params, grad={"w": np.array([2.0, np.nan])})
    assert not result.passed and result.worst.worst_index == (1,)


def test_sampling_with_a_key():
    cell = jr.rnn(4)
    params, xs, targets = sequence_problem(cell, seed=2)
    loss = make_loss(cell)
    result = gradcheck(loss, params, xs, targets, num_samples=5, key=jax.random.key(0))
    assert result.passed, str(result)
    sizes = [leaf.size for leaf in jax.tree.leaves(params)]
    assert [r.checked for r in result.leaves] == [min(5, s) for s in sizes]

    wrong = float64_grad(loss, params, xs, targets)
    wrong["cell"]["w_x"] += 0.01
    sampled = gradcheck(loss, params, xs, targets, num_samples=5, key=jax.random.key(3), grad=wrong)
    again = gradcheck(loss, params, xs, targets, num_samples=5, key=jax.random.key(3), grad=wrong)
    assert [r.path for r in sampled.leaves if not r.passed] == ["cell/w_x"]
    assert sampled == again  # the same key checks the same elements


def test_sampling_needs_a_key():
    params = {"w": np.ones(3)}
    with pytest.raises(ValueError, match=r"num_samples needs key="):
        gradcheck(lambda p: jnp.sum(p["w"]), params, num_samples=2)
    with pytest.raises(ValueError, match=r"key is only used with num_samples"):
        gradcheck(lambda p: jnp.sum(p["w"]), params, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"num_samples must be a positive int, got 0"):
        gradcheck(lambda p: jnp.sum(p["w"]), params, num_samples=0, key=jax.random.key(0))


def test_inputs_are_not_mutated():
    cell = jr.rnn(3)
    params, xs, targets = sequence_problem(cell, seed=4)
    numpy_params = jax.tree.map(lambda v: np.array(v, np.float32), params)
    numpy_xs = np.array(xs, np.float32)
    before = jax.tree.map(np.copy, (numpy_params, numpy_xs, params, xs, targets))
    result = gradcheck(make_loss(cell), numpy_params, numpy_xs, targets)
    assert result.passed
    after = (numpy_params, numpy_xs, params, xs, targets)
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(b, a)


def test_str_is_a_table_with_leaf_names():
    cell = jr.rnn(3)
    params, xs, targets = sequence_problem(cell, seed=5)
    text = str(gradcheck(make_loss(cell), params, xs, targets))
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck passed")
    assert "rel. diff" in lines[1] and "worst at" in lines[1]
    for name in ("cell/w_x", "cell/w_h", "cell/b", "head/w", "head/b"):
        assert sum(line.startswith(name + " ") for line in lines) == 1
    assert len(lines) == 2 + 5

    wrong = float64_grad(make_loss(cell), params, xs, targets)
    wrong["head"]["b"] *= -1
    text = str(gradcheck(make_loss(cell), params, xs, targets, grad=wrong))
    assert text.startswith("gradcheck FAILED")
    assert [line.split()[0] for line in text.splitlines() if line.endswith("FAIL")] == ["head/b"]


def test_single_array_params():
    result = gradcheck(lambda w, a: jnp.sum(jnp.tanh(a @ w)), np.ones((3, 2)), np.eye(3))
    assert result.passed and result.leaves[0].path == "params"


def test_eager_function_with_hand_written_gradient():
    def f(w, a):
        return float(np.sum(np.tanh(np.asarray(a) @ np.asarray(w))))

    def grad(w, a):
        return np.asarray(a).T @ (1 - np.tanh(np.asarray(a) @ np.asarray(w)) ** 2)

    a = np.arange(6.0).reshape(2, 3) / 6
    w = np.ones((3, 2)) / 3
    assert gradcheck(f, w, a, grad=grad).passed
    with pytest.raises(TypeError, match=r"jax.grad cannot trace f.*grad="):
        gradcheck(f, w, a)


def test_bad_input():
    params = {"w": np.ones(3)}

    def f(p):
        return jnp.sum(p["w"] ** 2)

    with pytest.raises(TypeError, match=r"f must be a function f\(params, \*args\) -> scalar"):
        gradcheck("loss", params)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got 0.0"):
        gradcheck(f, params, eps=0.0)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got -1e-06"):
        gradcheck(f, params, eps=-1e-6)
    with pytest.raises(TypeError, match=r"threshold must be a finite number > 0, got str"):
        gradcheck(f, params, threshold="1e-7")
    with pytest.raises(TypeError, match=r"params leaf 'n' has dtype int32"):
        gradcheck(lambda p: jnp.sum(p["w"]), {"w": np.ones(2), "n": np.int32(3)})
    with pytest.raises(ValueError, match=r"params has no leaves"):
        gradcheck(f, {})
    with pytest.raises(ValueError, match=r"f must return a scalar loss, got shape \(3,\)"):
        gradcheck(lambda p: p["w"] ** 2, params)
    with pytest.raises(ValueError, match=r"grad must have the structure of params"):
        gradcheck(f, params, grad={"v": np.ones(3)})
    with pytest.raises(ValueError, match=r"grad leaf 'w' has shape \(7,\) but params \(3,\)"):
        gradcheck(f, params, grad={"w": np.ones(7)})


def _load_example():
    spec = importlib.util.spec_from_file_location("gradient_check_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradient_check_example_runs(capsys, tmp_path):
    module = _load_example()
    out_dir = tmp_path / "run"
    args = ["--seed", "1", "--hidden-size", "3", "--steps", "4"]
    assert module.main([*args, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("gradcheck passed") == 3
    assert out.count("gradcheck FAILED") == 1
    assert "course.lstm_backward" in out
    worst = re.search(r"The checker points at ([Wb][fico])\[(\d+), (\d+)\]", out)
    assert worst

    # metrics.json holds the numbers the tables print, per check and per leaf.
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert saved["ok"] is True
    assert (out_dir / "relative_errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["config"]["seed"] == 1 and saved["config"]["out"] == str(out_dir)
    checks = saved["checks"]
    assert list(checks) == [
        "rnn",
        "lstm",
        "course_lstm_backward",
        "lstm_backward_dropping_recurrence",
    ]
    assert [c["passed"] for c in checks.values()] == [True, True, True, False]
    right = module.check_course_backward(1, jr.course.lstm_backward, n_a=3, T_x=4)
    assert checks["course_lstm_backward"]["relative_error"] == right.relative_error
    for leaf in right.leaves:
        saved_leaf = checks["course_lstm_backward"]["leaves"][leaf.path]
        assert saved_leaf["relative_error"] == leaf.relative_error
        assert saved_leaf["shape"] == list(leaf.shape) and saved_leaf["passed"] is leaf.passed
    wrong = checks["lstm_backward_dropping_recurrence"]
    name, row, col = worst.group(1), int(worst.group(2)), int(worst.group(3))
    assert wrong["leaves"][name]["worst_index"] == [row, col]
    assert wrong["leaves"][name]["relative_error"] > wrong["threshold"]
    assert (
        max(leaf["relative_error"] for leaf in wrong["leaves"].values())
        == (wrong["leaves"][name]["relative_error"])
    )
    for check in ("rnn", "lstm"):
        errors = [leaf["relative_error"] for leaf in checks[check]["leaves"].values()]
        assert errors and max(errors) <= checks[check]["threshold"]


def test_gradient_check_example_arguments(capsys, tmp_path):
    module = _load_example()
    with pytest.raises(SystemExit) as info:
        module.main(["--steps", "0"])
    assert info.value.code == 2
    assert "argument --steps: must be a positive integer, got 0" in capsys.readouterr().err
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(SystemExit) as info:
        module.main(["--out", str(not_a_folder)])
    assert info.value.code == 2
    assert re.search(r"--out '.*file' exists and is not a directory", capsys.readouterr().err)
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    assert "no checkpoints and no --resume" in " ".join(capsys.readouterr().out.split())
