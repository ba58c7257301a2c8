"""Tests of examples/forecast.py: data, baselines, forecasts, training runs and the CLI."""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn as jr

# End-to-end runs of the examples and benchmarks: `pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

FORECAST = Path(__file__).resolve().parent.parent / "examples" / "forecast.py"


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


forecast = _load_script(FORECAST)

TINY = ["--steps", "150", "--hidden", "16", "--seq-len", "48", "--batch-size", "16"]
TINY += ["--log-every", "50"]
METRICS = (
    "one_step_mae",
    "one_step_last_value_mae",
    "one_step_seasonal_naive_mae",
    "multi_step_mae",
    "multi_step_last_value_mae",
    "multi_step_seasonal_naive_mae",
)


# --------------------------------------------------------------------------- data


def test_bundled_series_is_monthly_co2_1965_to_2001():
    series = forecast.load_series(forecast.DEFAULT_DATA)
    assert series.values.shape == (444,) and series.values.dtype == np.float64
    assert series.name == "co2_ppm" and series.time_label == "year"
    np.testing.assert_allclose(np.diff(series.times), 1 / 12, atol=1e-9)
    assert series.times[0] == 1965.0 and series.times[-1] == pytest.approx(2001 + 11 / 12)
    assert series.values[0] == 319.40 and series.values[-1] == 371.02
    # A rising trend with a yearly cycle: every year's mean is above the last one's.
    assert np.all(np.diff(series.values.reshape(37, 12).mean(axis=1)) > 0)


def test_load_series_without_dates_and_bad_rows(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("day,temp\n1,2.5\n2,-1\n\n3,4e1\n")
    series = forecast.load_series(path)
    np.testing.assert_array_equal(series.values, [2.5, -1.0, 40.0])
    np.testing.assert_array_equal(series.times, [0.0, 1.0, 2.0])
    assert (series.name, series.time_label) == ("temp", "step")
    path.write_text("day,temp\n1,2.5\n2,warm\n")
    with pytest.raises(ValueError, match=r"could not convert string 'warm' .* row 1, column 2"):
        forecast.load_series(path)
    path.write_text("day,temp\n1,nan\n")
    with pytest.raises(ValueError, match=r"s\.csv has a value that is not finite"):
        forecast.load_series(path)
    path.write_text("year,month,ppm\n2000,1,3\n2000,Feb,4\n")
    with pytest.raises(ValueError, match=r"could not convert string 'Feb'"):
        forecast.load_series(path)
    path.write_text("day,temp\n")
    with pytest.raises(ValueError, match="no data rows"):
        forecast.load_series(path)


def test_batches_are_windows_of_the_training_data_and_depend_on_the_step_only():
    data = jnp.arange(40.0)
    key = jax.random.key(3)
    first = forecast.batch_at(key, 7, data, 8, 10)
    assert first.shape == (11, 8)
    np.testing.assert_array_equal(np.diff(first, axis=0), 1.0)
    assert float(first.min()) >= 0 and float(first.max()) <= 39
    np.testing.assert_array_equal(first, forecast.batch_at(key, 7, data, 8, 10))
    assert not np.array_equal(first, forecast.batch_at(key, 8, data, 8, 10))


# ---------------------------------------------------------------------- baselines


def test_baselines_and_mae_match_a_hand_computed_reference():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=23)) + 10 * np.sin(np.arange(23))
    n, test_size, season = len(values), 6, 5
    truth = values[n - test_size :]
    naive = forecast.naive_forecasts(values, test_size, season)
    one_step, multi_step = naive["one_step"], naive["multi_step"]
    origin = n - test_size - 1
    reference = {"one_last": [], "one_seasonal": [], "multi_last": [], "multi_seasonal": []}
    for t in range(n - test_size, n):
        h = t - origin  # steps after the forecast origin, 1..test_size
        reference["one_last"].append(values[t - 1])
        reference["one_seasonal"].append(values[t - season])
        reference["multi_last"].append(values[origin])
        reference["multi_seasonal"].append(values[t - season * math.ceil(h / season)])
    for got, key in [
        (one_step["last_value"], "one_last"),
        (one_step["seasonal_naive"], "one_seasonal"),
        (multi_step["last_value"], "multi_last"),
        (multi_step["seasonal_naive"], "multi_seasonal"),
    ]:
        np.testing.assert_array_equal(got, reference[key])
        mae = sum(abs(f - y) for f, y in zip(reference[key], truth, strict=True)) / test_size
        assert forecast.mean_absolute_error(got, truth) == pytest.approx(mae, rel=1e-12)


def test_fit_scale_uses_the_given_values_only():
    changes = np.array([1.0, 2.0, 4.0, 9.0])
    scale = forecast.fit_scale(changes)
    assert scale.mean == 4.0 and scale.std == pytest.approx(math.sqrt(9.5))
    assert forecast.fit_scale(np.full(5, 3.0)) == (3.0, 1.0)


# -------------------------------------------------------------------- forecasting


def test_forecasts_match_a_step_by_step_loop():
    cell = jr.gru(6)
    params = forecast.init_params(jax.random.key(1), cell)
    values = np.cumsum(np.random.default_rng(2).normal(0.3, 1.0, size=30))
    test_size, seq_len = 5, 7
    scale = forecast.Scale(0.25, 1.5)
    got = forecast.forecast(params, cell, values, test_size, seq_len, scale)

    z = (np.diff(values) - scale.mean) / scale.std
    origin = len(values) - test_size - 1

    def next_change(inputs):
        # From a zero state, step through `inputs` and read out the last prediction.
        carry = cell.initial_carry(())
        for x in inputs:
            carry, h = cell.step(params["cell"], carry, jnp.array([x], jnp.float32))
        return float(forecast.readout(params, h)[0]) * scale.std + scale.mean

    one_step = [
        values[t - 1] + next_change(z[t - 1 - seq_len : t - 1])
        for t in range(origin + 1, len(values))
    ]
    np.testing.assert_allclose(got["one_step"], one_step, rtol=1e-5)

    level, inputs, multi_step = values[origin], list(z[origin - seq_len : origin]), []
    for _ in range(test_size):
        change = next_change(inputs)
        level += change
        multi_step.append(level)
        inputs.append((change - scale.mean) / scale.std)
    np.testing.assert_allclose(got["multi_step"], multi_step, rtol=1e-5)


# -------------------------------------------------------------------- training run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast")
    return forecast.main([*TINY, "--out", str(out)]), out


def test_tiny_run_learns_and_beats_the_naive_forecasts(tiny_run):
    metrics, _ = tiny_run
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 50, 100, 150]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert all(math.isfinite(metrics[k]) and metrics[k] > 0 for k in METRICS)
    assert metrics["one_step_mae"] < 0.5 * metrics["one_step_last_value_mae"]
    assert metrics["multi_step_mae"] < 0.5 * metrics["multi_step_last_value_mae"]


def test_tiny_run_writes_metrics_and_the_forecast_plot(tiny_run):
    metrics, out = tiny_run
    saved = json.loads((out / "metrics.json").read_text())
    assert {k: saved[k] for k in METRICS} == {k: metrics[k] for k in METRICS}
    assert saved["steps"] == 150 and saved["config"]["seq_len"] == 48
    data = (out / "forecast.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


def _checkpoint_params(path):
    return jax.tree.leaves(jr.checkpoint.load(path)["params"])


def test_resume_continues_bit_for_bit(tmp_path, capsys):
    short = [*TINY, "--log-every", "5"]
    straight = forecast.main([*short, "--steps", "16", "--out", str(tmp_path / "straight")])
    part = tmp_path / "resumed"
    forecast.main([*short, "--steps", "8", "--out", str(part)])
    resumed = forecast.main([*short, "--steps", "16", "--out", str(part), "--resume"])
    assert "resuming from" in capsys.readouterr().out
    assert resumed["resumed_from_step"] == 8 and resumed["steps"] == 16
    for a, b in zip(
        _checkpoint_params(straight["checkpoint"]),
        _checkpoint_params(resumed["checkpoint"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    per_step = [jr.checkpoint.read_metadata(m["checkpoint"])["losses"] for m in (straight, resumed)]
    assert len(per_step[0]) == 16 and per_step[0] == per_step[1]
    assert {k: resumed[k] for k in METRICS} == {k: straight[k] for k in METRICS}


# ------------------------------------------------------------------- command line


def test_help_exits_zero():
    result = subprocess.run(
        [sys.executable, str(FORECAST), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "seasonal naive" in result.stdout
    for flag in ["--steps", "--seed", "--out", "--resume", "--test-size", "--season", "--data"]:
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], r"argument --steps: must be a positive integer, got 0"),
        (["--hidden", "x"], r"argument --hidden: invalid positive_int value: 'x'"),
        (["--seq-len", "-3"], r"argument --seq-len: must be a positive integer, got -3"),
        (["--season", "0"], r"argument --season: must be a positive integer, got 0"),
        (["--seed", "x"], r"argument --seed: invalid int value: 'x'"),
        (["--lr", "fast"], r"argument --lr: invalid float value: 'fast'"),
        (["--cell", "rnn"], r"argument --cell: invalid choice: 'rnn'"),
        (
            ["--test-size", "400"],
            r"co2_monthly\.csv' has 444 values; --test-size 400 leaves too few",
        ),
        (["--season", "361"], r"has 444 values; --test-size 84 leaves too few"),
        (["--data", "no/such.csv"], r"--data 'no/such\.csv': cannot read a series from it"),
        (["--resume"], r"resume=True needs the checkpoint_dir"),
    ],
)
def test_bad_arguments_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        forecast.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: forecast.py")
    assert re.search(message, err), err


def test_unreadable_csv_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("t,v\n1,2\n2,oops\n")
    with pytest.raises(SystemExit) as exit_info:
        forecast.main(["--data", str(path)])
    assert exit_info.value.code == 2
    assert re.search(
        r"--data '.*bad\.csv': .*could not convert string 'oops'", capsys.readouterr().err
    )


def test_docstring_examples_run():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(forecast, globs=vars(forecast)) if t.examples]
    assert tests
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
