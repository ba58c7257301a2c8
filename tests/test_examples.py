"""The example scripts run end to end, train, write their outputs and reject bad input."""

from __future__ import annotations

import doctest
import functools
import importlib.util
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn as jr

# End-to-end runs of the examples and benchmarks: `pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHAR_LM = EXAMPLES / "char_lm.py"
CORPUS = EXAMPLES / "data" / "tiny_shakespeare.txt"


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


char_lm = _load_script(CHAR_LM)


# optax's Adam computes its bias correction as `decay ** count` (a Python float to
# the power of an int32 step count), which the suite's strict dtype promotion
# rejects. Runs that step an optax optimizer therefore use standard promotion;
# rank promotion stays "raise".
def optax_promotion():
    return jax.numpy_dtype_promotion("standard")


TINY = ["--steps", "40", "--hidden", "32", "--embed", "16", "--seq-len", "16"]
TINY += ["--batch-size", "8", "--log-every", "10", "--sample-len", "57"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("char_lm")
    with optax_promotion():
        metrics = char_lm.main([*TINY, "--out", str(out)])
    return metrics, out


def test_tiny_run_loss_falls_from_uniform(tiny_run):
    metrics, _ = tiny_run
    vocab_size = len(set(CORPUS.read_text(encoding="utf-8")))
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 10, 20, 30, 40]
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    # A fresh model predicts nearly uniformly: cross-entropy close to ln(V).
    assert abs(first - math.log(vocab_size)) < 0.3
    assert last < first - 0.5
    val = [h["val_loss"] for h in history if "val_loss" in h]
    assert len(val) == 4
    assert val[-1] < val[0]
    assert metrics["val_loss"] == val[-1]
    assert metrics["val_bits_per_char"] == pytest.approx(metrics["val_loss"] / math.log(2))
    assert metrics["train_loss"] == last
    assert metrics["steps"] == 40


def test_tiny_run_writes_metrics_and_plot(tiny_run):
    metrics, out = tiny_run
    saved = json.loads((out / "metrics.json").read_text())
    for name in ["train_loss", "val_loss", "val_bits_per_char", "wall_time_s"]:
        assert math.isfinite(saved[name]) and saved[name] > 0, name
        assert saved[name] == metrics[name]
    assert saved["steps"] == 40
    assert saved["sample"] == metrics["sample"]
    png = (out / "loss_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000


def test_tiny_run_sample_has_requested_length_and_vocabulary(tiny_run):
    metrics, _ = tiny_run
    assert len(metrics["sample"]) == 57
    assert set(metrics["sample"]) <= set(CORPUS.read_text(encoding="utf-8"))


def test_same_seed_same_run_and_other_seed_differs(tiny_run):
    # Same sizes as the tiny run, so the compiled functions are reused.
    with optax_promotion():
        first = char_lm.main([*TINY, "--steps", "3", "--seed", "3"])
        again = char_lm.main([*TINY, "--steps", "3", "--seed", "3"])
        other = char_lm.main([*TINY, "--steps", "3", "--seed", "4"])
    for name in ["train_loss", "val_loss", "sample", "history"]:
        assert first[name] == again[name], name
    assert first["sample"] != other["sample"]
    assert first["train_loss"] != other["train_loss"]


# ------------------------------------------------------------- the pieces, checked


def test_windows_are_consecutive_text():
    data = jnp.arange(100, dtype=jnp.int32) * 3
    windows = char_lm.random_windows(jax.random.key(0), data, batch_size=16, seq_len=9)
    assert windows.shape == (10, 16)
    np.testing.assert_array_equal(np.diff(np.asarray(windows), axis=0), 3)
    assert int(windows.max()) <= 297

    val = char_lm.validation_windows(np.arange(23, dtype=np.int32), seq_len=5)
    np.testing.assert_array_equal(val[:, 0], [0, 5, 10, 15])
    np.testing.assert_array_equal(val[:, -1], [5, 10, 15, 20])


def _tiny_model(key=0, vocab_size=7, hidden=8, embed=5):
    cell = jr.lstm(hidden)
    params = char_lm.init_params(jax.random.key(key), cell, vocab_size, embed)
    # Larger logits than the default init, so greedy choices are far from ties.
    params["head"]["w"] = params["head"]["w"] * 8.0
    return cell, params


def test_cold_sampling_is_greedy_decoding_by_full_forward_passes():
    cell, params = _tiny_model()
    prompt = [3, 1, 4]
    length = 8
    ids = char_lm.sample(params, cell, jnp.array(prompt), jax.random.key(5), 1e-6, length=length)
    # Reference: rerun the whole model on the text so far and take the argmax. The
    # model is causal, so a fixed-size buffer (one compilation) padded with zeros
    # after the current position gives the same logits there.
    forward = jax.jit(char_lm.forward, static_argnums=0)
    text = np.zeros(len(prompt) + length, np.int32)
    text[: len(prompt)] = prompt
    for t in range(len(prompt), len(text)):
        logits = forward(cell, params, jnp.asarray(text)[:, None])
        text[t] = int(jnp.argmax(logits[t - 1, 0]))
    assert np.asarray(ids).tolist() == text[len(prompt) :].tolist()


def test_sampling_follows_the_tempered_distribution():
    cell, params = _tiny_model()
    prompt = jnp.array([2])
    logits = char_lm.forward(cell, params, prompt[:, None])[-1, 0]
    for temperature in [0.5, 2.0]:
        keys = jax.random.split(jax.random.key(1), 4000)
        first = jax.vmap(
            lambda k, t=temperature: char_lm.sample(params, cell, prompt, k, t, length=1)
        )(keys)[:, 0]
        freq = np.bincount(np.asarray(first), minlength=7) / len(keys)
        expected = np.asarray(jax.nn.softmax(logits / temperature), dtype=np.float64)
        np.testing.assert_allclose(freq, expected, atol=0.03)


def test_evaluate_chunks_agree_with_one_pass(monkeypatch):
    cell, params = _tiny_model()
    rng = np.random.default_rng(0)
    windows = char_lm.validation_windows(rng.integers(0, 7, 71).astype(np.int32), seq_len=10)
    assert windows.shape == (7, 11)
    logits = np.asarray(char_lm.forward(cell, params, jnp.asarray(windows.T[:-1])), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = windows.T[1:]
    reference = -np.take_along_axis(logp, targets[..., None], axis=-1).mean()
    monkeypatch.setattr(char_lm, "EVAL_CHUNK", 3)  # 7 windows: chunks 3 + 3 + 1 padded
    assert char_lm.evaluate(params, cell, windows) == pytest.approx(reference, rel=1e-5)


def test_train_step_lowers_the_loss_on_a_fixed_text():
    cell, params = _tiny_model(hidden=16)
    data = jnp.asarray(np.tile(np.arange(7, dtype=np.int32), 30))
    optimizer = optax.adam(2e-2)
    step = jr.train.make_train_step(functools.partial(char_lm.loss_fn, cell), optimizer)
    state = jr.train.init_state(params, optimizer, jax.random.key(0))
    losses = []
    for i in range(40):
        windows = char_lm.random_windows(jax.random.fold_in(jax.random.key(1), i), data, 4, 8)
        state, loss = step(state, windows)
        assert np.isfinite(float(loss))
        losses.append(float(loss))
    # The text is a cycle, so the next character is fully predictable.
    assert losses[-1] < 0.3 < losses[0]


def test_batches_depend_on_the_key_only():
    data = jnp.arange(500, dtype=jnp.int32)
    key = jax.random.key(3)
    first = char_lm.random_windows(key, data, 4, 9)
    np.testing.assert_array_equal(first, char_lm.random_windows(key, data, 4, 9))
    assert first.shape == (10, 4)
    assert not np.array_equal(first, char_lm.random_windows(jax.random.key(4), data, 4, 9))


def test_top_k_one_is_greedy():
    cell, params = _tiny_model()
    prompt = jnp.array([3, 1, 4])
    greedy = char_lm.sample(params, cell, prompt, jax.random.key(5), 1e-6, length=8)
    for seed in range(3):
        top1 = char_lm.sample(params, cell, prompt, jax.random.key(seed), 5.0, length=8, top_k=1)
        np.testing.assert_array_equal(top1, greedy)


def test_docstring_examples_run():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(char_lm, globs=vars(char_lm)) if t.examples]
    assert len(tests) >= 4
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


# ------------------------------------------------------------------- command line


def test_help_exits_zero():
    result = subprocess.run(
        [sys.executable, str(CHAR_LM), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "character-level LSTM" in result.stdout
    for flag in ["--steps", "--seed", "--temperature", "--prompt", "--data", "--out", "--resume"]:
        assert flag in result.stdout
    assert "(default: 1000)" in result.stdout


def test_bad_argument_exits_nonzero_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, str(CHAR_LM), "--steps", "-5"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "argument --steps: must be a positive integer, got -5" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hidden", "0"], r"argument --hidden: must be a positive integer, got 0"),
        (["--batch-size", "two"], r"argument --batch-size: invalid positive_int value: 'two'"),
        (["--seq-len", "-3"], r"argument --seq-len: must be a positive integer, got -3"),
        (["--sample-len", "0"], r"argument --sample-len: must be a positive integer"),
        (["--temperature", "0"], r"argument --temperature: must be a finite number > 0, got 0"),
        (["--temperature", "-1"], r"argument --temperature: must be a finite number > 0"),
        (["--lr", "nan"], r"argument --lr: must be a finite number > 0, got nan"),
        (["--seed", "x"], r"argument --seed: invalid int value: 'x'"),
        (["--prompt", "Xerxes$"], r"--prompt needs characters of --data"),
        (["--prompt", ""], r"--prompt needs characters of --data"),
        (["--top-k", "63"], r"--top-k at most 62"),
        (["--seq-len", "100000"], r"299868 characters, too few for --seq-len 100000"),
        (["--data", "no/such/file.txt"], r"--data 'no/such/file.txt': cannot read it"),
    ],
)
def test_bad_arguments_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        char_lm.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: char_lm.py")
    assert re.search(message, err), err


# ---------------------------------------------------------- checkpoints and resuming

SHORT = [*TINY, "--sample-len", "20"]


def _checkpoint_params(path: Path):
    return jax.tree.leaves(jr.checkpoint.load(path)["params"])


def test_resume_continues_bit_for_bit(tmp_path, capsys):
    straight = char_lm.main([*SHORT, "--steps", "20", "--out", str(tmp_path / "straight")])
    part = tmp_path / "resumed"
    char_lm.main([*SHORT, "--steps", "10", "--out", str(part)])
    resumed = char_lm.main([*SHORT, "--steps", "20", "--out", str(part), "--resume"])
    assert "resuming from" in capsys.readouterr().out
    assert resumed["resumed_from_step"] == 10 and resumed["steps"] == 20
    for a, b in zip(
        _checkpoint_params(straight["checkpoint"]),
        _checkpoint_params(resumed["checkpoint"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert resumed["val_loss"] == straight["val_loss"]
    assert resumed["sample"] == straight["sample"]
    per_step = [jr.checkpoint.read_metadata(m["checkpoint"])["losses"] for m in (straight, resumed)]
    assert len(per_step[0]) == 20 and per_step[0] == per_step[1]
    # A resumed run that has already reached --steps only evaluates and samples.
    again = char_lm.main([*SHORT, "--steps", "20", "--out", str(part), "--resume"])
    assert again["val_loss"] == straight["val_loss"]


def test_resume_falls_back_past_a_truncated_checkpoint(tmp_path):
    straight = char_lm.main([*SHORT, "--steps", "12", "--out", str(tmp_path / "straight")])
    out = tmp_path / "run"
    char_lm.main([*SHORT, "--steps", "8", "--checkpoint-every", "4", "--out", str(out)])
    newest = out / "checkpoints" / "ckpt_00000008.npz"
    newest.write_bytes(newest.read_bytes()[: len(newest.read_bytes()) // 2])
    with pytest.warns(RuntimeWarning, match="skipping checkpoint .*ckpt_00000008"):
        resumed = char_lm.main([*SHORT, "--steps", "12", "--out", str(out), "--resume"])
    assert resumed["resumed_from_step"] == 4
    for a, b in zip(
        _checkpoint_params(straight["checkpoint"]),
        _checkpoint_params(resumed["checkpoint"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ([], ["--resume"], r"ckpt_00000002.npz was made with another config: hidden 32 \(now 24\)"),
        ([], [], r"checkpoint_dir '.*checkpoints' holds a run; resume=True resumes it"),
    ],
)
def test_resume_refuses_a_mixed_up_run(tmp_path, capsys, first, second, message):
    out = str(tmp_path / "run")
    char_lm.main([*SHORT, "--steps", "2", "--out", out, *first])
    capsys.readouterr()
    hidden = ["--hidden", "24"] if second else []
    with pytest.raises(SystemExit) as info:
        char_lm.main([*SHORT, "--steps", "4", "--out", out, *hidden, *second])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_resume_needs_out(capsys):
    with pytest.raises(SystemExit) as info:
        char_lm.main([*SHORT, "--resume"])
    assert info.value.code == 2
    assert "resume=True needs the checkpoint_dir" in capsys.readouterr().err


def test_resume_with_fewer_steps_than_done_says_so(tmp_path, capsys):
    out = str(tmp_path / "run")
    char_lm.main([*SHORT, "--steps", "4", "--out", out])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        char_lm.main([*SHORT, "--steps", "2", "--out", out, "--resume"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: char_lm.py")
    assert "error: --steps 2 is below 4, the step of the checkpoint in --out" in err


def test_a_diverging_run_stops_naming_the_step(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        char_lm.main([*SHORT, "--lr", "1e38", "--checkpoint-every", "1", "--out", str(out)])
    assert info.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    step = int(re.fullmatch(r"error: the training loss became nan at step (\d+); .*", message)[1])
    # Every checkpoint on disk is from before that step, and loads; the message names the last.
    saved = sorted((out / "checkpoints").iterdir())
    assert saved and saved[-1].name == f"ckpt_{step - 1:08d}.npz"
    assert f"{str(saved[-1])!r} holds the last state saved" in message
    jr.checkpoint.load(saved[-1])


# What every training example makes of what `fit` raises, with a stand-in for `fit`.
FEW = {
    "char_lm": [],
    "classify": ["--test-size", "8"],
    "long_range": ["--length", "10", "--test-size", "4"],
    "forecast": [],
    "seq2seq_dates": ["--train-size", "40", "--test-size", "8"],
}


def _main_with_fit_raising(monkeypatch, name, error, argv):
    def fit(*args, **kwargs):
        raise error

    monkeypatch.setattr(jr.train, "fit", fit)
    module = char_lm if name == "char_lm" else _load_script(EXAMPLES / f"{name}.py")
    with pytest.raises(SystemExit) as info:
        module.main([*FEW[name], *argv])
    return info.value.code


@pytest.mark.parametrize("name", FEW)
def test_steps_below_the_checkpoint_is_a_usage_error_naming_both(name, monkeypatch, capsys):
    error = jr.train.ResumeError("steps=3 is below the step the state is at, 8", 8)
    code = _main_with_fit_raising(monkeypatch, name, error, ["--steps", "3", "--out", "o"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"usage: {name}.py")
    assert "error: --steps 3 is below 8, the step of the checkpoint in --out" in err


@pytest.mark.parametrize("name", FEW)
def test_other_refusals_are_usage_errors_with_fits_message(name, monkeypatch, capsys):
    error = jr.train.ResumeError("checkpoint_dir 'o' holds a run; resume=True resumes it")
    assert _main_with_fit_raising(monkeypatch, name, error, []) == 2
    assert (
        "error: checkpoint_dir 'o' holds a run; resume=True resumes it" in capsys.readouterr().err
    )


@pytest.mark.parametrize("name", FEW)
def test_a_value_error_during_training_is_not_a_usage_error(name, monkeypatch):
    with pytest.raises(ValueError, match="raised by evaluate"):
        _main_with_fit_raising(monkeypatch, name, ValueError("raised by evaluate"), [])


@pytest.mark.parametrize("name", FEW)
def test_a_non_finite_loss_is_one_line_and_status_1(name, monkeypatch, capsys):
    error = jr.train.NonFiniteLossError(7, math.nan, None)
    assert _main_with_fit_raising(monkeypatch, name, error, []) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith("the training loss became nan at step 7")
    )


@pytest.mark.parametrize("name", FEW)
@pytest.mark.parametrize("saved", [True, False], ids=["out", "no-out"])
def test_ctrl_c_says_how_to_resume_only_when_it_saved(name, saved, monkeypatch, capsys):
    where = "; saved 'o/ckpt_00000003.npz'" if saved else " (no checkpoint_dir)"
    path = Path("o/ckpt_00000003.npz") if saved else None
    error = jr.train.TrainingInterrupted(f"interrupted after step 3{where}", None, path)
    argv = ["--out", "o"] if saved else []
    assert _main_with_fit_raising(monkeypatch, name, error, argv) == 130
    err = capsys.readouterr().err
    assert f"interrupted after step 3{where}" in err
    if saved:
        assert re.search(r"resume with: python \S+ .*--out o --resume$", err.strip())
    else:
        assert "resume with" not in err
        assert "nothing was saved (--out DIR keeps checkpoints" in err


def _run_script(args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-u", str(CHAR_LM), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        **kwargs,
    )


def _interrupt_when_training(args) -> tuple[int, str]:
    """Run char_lm.py with `args`, send SIGINT once it logs a step; its status and stderr."""
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-u", str(CHAR_LM), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:  # wait until training runs
            if line.startswith("step "):
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, err


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    out = tmp_path / "run"
    args = [*SHORT, "--steps", "100000", "--log-every", "5", "--out", str(out)]
    code, err = _interrupt_when_training(args)
    assert code == 130, err
    match = re.search(r"interrupted after step (\d+); saved '([^']+)'", err)
    assert match, err
    # The command that resumes: this one, quoted for the shell, with --resume.
    assert f"resume with: {shlex.join(['python', str(CHAR_LM), *args, '--resume'])}" in err
    step = int(match.group(1))
    assert Path(match.group(2)) == out / "checkpoints" / f"ckpt_{step:08d}.npz"
    resumed = _run_script([*SHORT, "--steps", str(step + 3), "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"(step {step})" in resumed.stdout
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 3


@pytest.mark.slow
def test_ctrl_c_without_out_says_nothing_was_saved():
    code, err = _interrupt_when_training([*SHORT, "--steps", "100000", "--log-every", "5"])
    assert code == 130, err
    assert re.search(r"interrupted after step \d+ \(no checkpoint_dir\)", err), err
    assert "nothing was saved (--out DIR keeps checkpoints" in err
    assert "resume with" not in err and "Traceback" not in err


@pytest.mark.slow
def test_data_parallel_on_8_simulated_devices_equals_one_device(tmp_path):
    import os

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    metrics = {}
    for name, flag in [("single", []), ("sharded", ["--data-parallel"])]:
        out = tmp_path / name
        result = _run_script([*SHORT, "--steps", "20", "--out", str(out), *flag], env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        metrics[name] = json.loads((out / "metrics.json").read_text())
    for a, b in zip(metrics["single"]["history"], metrics["sharded"]["history"], strict=True):
        assert a["step"] == b["step"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert metrics["sharded"]["val_loss"] == pytest.approx(metrics["single"]["val_loss"], rel=1e-5)
    odd = _run_script([*SHORT, "--data-parallel", "--batch-size", "12"], env=env)
    assert odd.returncode == 2
    assert "error: --batch-size 12 does not split across 8 devices" in odd.stderr
