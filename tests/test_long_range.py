"""examples/long_range.py runs end to end, learns, writes its outputs and rejects bad input."""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxrnn as jr

# End-to-end runs of the examples and benchmarks: `pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "long_range.py"


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


long_range = _load_script(SCRIPT)

TINY = ["--length", "24", "--hidden", "8", "--batch-size", "16", "--test-size", "64"]
TINY += ["--steps", "60", "--log-every", "20", "--cells", "min_gru", "lstm"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("long_range")
    return long_range.main([*TINY, "--out", str(out)]), out


def test_tiny_run_lowers_the_loss_for_every_cell(tiny_run):
    summary, _ = tiny_run
    assert list(summary["cells"]) == ["min_gru", "lstm"]
    for name, metrics in summary["cells"].items():
        history = metrics["history"]
        assert [h["step"] for h in history] == [1, 20, 40, 60], name
        assert len(metrics["losses"]) == 60
        assert all(math.isfinite(x) for x in metrics["losses"]), name
        # On the fixed held-out set (one training batch of 16 is too noisy to compare),
        # against the untrained model's error there.
        cell = long_range.make_cell(name, 8)
        init_key, _, test_key = jax.random.split(jax.random.key(0), 3)
        untrained = long_range.evaluate(
            long_range.init_params(init_key, name, cell, 24),
            cell,
            long_range.adding_batch(test_key, 64, 24),
        )
        assert history[-1]["test_mse"] < 0.9 * float(untrained["test_mse"]), name
        assert [h["step"] for h in history if "test_mse" in h] == [20, 40, 60], name
        assert metrics["test_mse"] == history[-1]["test_mse"]
        assert metrics["train_loss"] == history[-1]["train_loss"]
        assert 0.1 < metrics["baseline_mse"] < 0.25


def test_tiny_run_writes_metrics_and_plot(tiny_run):
    summary, out = tiny_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["length"] == 24 and saved["config"]["out"] == str(out)
    for name in ("min_gru", "lstm"):
        for key in ("train_loss", "test_mse", "baseline_mse", "train_time_s"):
            assert saved["cells"][name][key] == summary["cells"][name][key], (name, key)
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("min_gru", "lstm"):
        assert (out / "checkpoints" / name / "ckpt_00000060.npz").is_file()


def test_chrono_initialisation_sets_the_documented_gate_biases():
    T, H = 101, 4
    expected = {"min_gru": (0, -1), "min_lstm": (H, -1), "lstm": (H, 1), "gru": (H, 1)}
    for name, (start, sign) in expected.items():
        cell = long_range.CELLS[name](H)
        bias = np.asarray(long_range.init_params(jax.random.key(0), name, cell, T)["cell"]["b"])
        np.testing.assert_allclose(bias[start : start + H], sign * math.log(T - 1), rtol=1e-6)
    # minGRU's update gate starts at 1 / T: memory of about T steps.
    cell = jr.min_gru(H)
    params = long_range.init_params(jax.random.key(0), "min_gru", cell, T)
    np.testing.assert_allclose(jax.nn.sigmoid(params["cell"]["b"][:H]), 1 / T, rtol=1e-5)


def test_adding_batch_targets_are_the_marked_sums():
    xs, ys = long_range.adding_batch(jax.random.key(3), 5, 30)
    values, markers = np.asarray(xs[..., 0]), np.asarray(xs[..., 1])
    np.testing.assert_allclose(ys, (values * markers).sum(axis=0), rtol=1e-6)
    first_half = markers[:15].sum(axis=0)
    np.testing.assert_array_equal(first_half, 1)


def test_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(long_range, "long_range", globs=vars(long_range).copy()):
        result = runner.run(test)
        assert result.failed == 0, test.name


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--length", "1"], "--length must be at least 2"),
        (["--steps", "0"], "must be a positive integer"),
        (["--cells", "transformer"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        long_range.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_describes_the_task(capsys):
    with pytest.raises(SystemExit) as exit_info:
        long_range.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "adding problem" in text and "--out DIR" in text and "--seed" in text


def test_resume_continues_every_cell_bit_for_bit(tiny_run, tmp_path, capsys):
    straight, _ = tiny_run
    out = tmp_path / "run"
    long_range.main([*TINY, "--steps", "30", "--out", str(out)])
    resumed = long_range.main([*TINY, "--out", str(out), "--resume"])
    assert capsys.readouterr().out.count("resuming from") == 2
    for name in ("min_gru", "lstm"):
        a, b = straight["cells"][name], resumed["cells"][name]
        assert b["resumed_from_step"] == 30 and b["steps"] == 60
        assert a["losses"] == b["losses"], name
        assert a["test_mse"] == b["test_mse"], name
        saved = [jr.checkpoint.load(m["checkpoint"])["params"] for m in (a, b)]
        for x, y in zip(jax.tree.leaves(saved[0]), jax.tree.leaves(saved[1]), strict=True):
            np.testing.assert_array_equal(x, y)


def test_resume_needs_out(capsys):
    with pytest.raises(SystemExit) as exit_info:
        long_range.main([*TINY, "--resume"])
    assert exit_info.value.code == 2
    assert "resume=True needs the checkpoint_dir" in capsys.readouterr().err
