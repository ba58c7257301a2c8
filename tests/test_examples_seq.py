"""The many-to-one and encoder-decoder examples: data, model wiring, tiny end-to-end runs and
resuming from checkpoints."""

from __future__ import annotations

import contextlib
import datetime
import doctest
import importlib.util
import json
import math
import random
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

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLASSIFY = EXAMPLES / "classify.py"
DATES = EXAMPLES / "seq2seq_dates.py"


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


classify = _load_script(CLASSIFY)
dates = _load_script(DATES)


# --------------------------------------------------------------- tiny end-to-end runs

CLASSIFY_TINY = ["--steps", "80", "--hidden", "16", "--min-len", "4", "--max-len", "8"]
CLASSIFY_TINY += ["--batch-size", "32", "--test-size", "256", "--log-every", "20", "--lr", "1e-2"]
DATES_TINY = ["--steps", "40", "--hidden", "24", "--train-size", "300"]
DATES_TINY += ["--test-size", "40", "--batch-size", "16", "--log-every", "10", "--examples", "3"]


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    return classify.main([*CLASSIFY_TINY, "--out", str(out)]), out


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dates")
    return dates.main([*DATES_TINY, "--out", str(out)]), out


def _check_outputs(metrics, out, names):
    saved = json.loads((out / "metrics.json").read_text())
    for name in names:
        assert math.isfinite(saved[name]), name
        assert saved[name] == metrics[name], name
    # The checkpoint written at the end holds the final step and the per-step losses.
    assert Path(saved["checkpoint"]) == out / "checkpoints" / f"ckpt_{metrics['steps']:08d}.npz"
    losses = jr.checkpoint.read_metadata(saved["checkpoint"])["losses"]
    assert len(losses) == metrics["steps"] and all(map(math.isfinite, losses))


def test_classify_tiny_run_learns_and_writes_outputs(classify_run):
    metrics, out = classify_run
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 20, 40, 60, 80]
    # Held-out metrics at every log entry but the first.
    assert all("test_mse" in h for h in history[1:]) and "test_mse" not in history[0]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    # Even this tiny model reads the markers a little: below the predict-the-mean error.
    assert metrics["test_mse"] < metrics["baseline_mse"]
    assert 0.1 < metrics["baseline_mse"] < 0.25  # the variance of a sum of two U(0, 1)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    _check_outputs(metrics, out, ["train_loss", "test_mse", "baseline_mse", "test_accuracy"])
    png = (out / "loss_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_dates_tiny_run_learns_and_writes_outputs(dates_run):
    metrics, out = dates_run
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 10, 20, 30, 40]
    # A fresh decoder is close to uniform over the 11 ISO characters.
    assert abs(history[0]["train_loss"] - math.log(11)) < 0.5
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.5
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert len(metrics["examples"]) == 3
    for example in metrics["examples"]:
        assert re.fullmatch(r"[0-9-]{10}", example["prediction"])
        assert example["target"] == _parse_human_date(example["source"]).isoformat()
    _check_outputs(metrics, out, ["train_loss", "test_accuracy"])
    # Held-out exact match at every log entry but the first, as the plot draws it.
    assert [h["step"] for h in history if "test_accuracy" in h] == [10, 20, 30, 40]
    png = (out / "training.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


@pytest.mark.parametrize("script", [CLASSIFY, DATES], ids=["classify", "seq2seq_dates"])
def test_help_exits_zero(script):
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for flag in ["--steps", "--seed", "--hidden", "--out", "--resume", "(default: 2000)"]:
        assert flag in result.stdout


def test_bad_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        classify.main(["--min-len", "9", "--max-len", "5"])
    assert exit_info.value.code == 2
    assert "need 2 <= --min-len <= --max-len, got 9 and 5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        dates.main(["--hidden", "0"])
    assert exit_info.value.code == 2
    assert "argument --hidden: must be a positive integer, got 0" in capsys.readouterr().err


# ---------------------------------------------------------- checkpoints and resuming

RESUMABLE = {
    # A decay period inside the run: the resumed half continues the schedule.
    "classify": (
        classify,
        [*CLASSIFY_TINY, "--lr-decay-steps", "5"],
        ["test_mse", "baseline_mse", "test_accuracy"],
    ),
    "seq2seq_dates": (dates, DATES_TINY, ["test_accuracy", "examples"]),
}


def _checkpoint(metrics):
    path = metrics["checkpoint"]
    return jax.tree.leaves(jr.checkpoint.load(path)["params"]), jr.checkpoint.read_metadata(path)


@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_continues_bit_for_bit(name, tmp_path, capsys):
    module, tiny, final = RESUMABLE[name]
    straight = module.main([*tiny, "--steps", "16", "--out", str(tmp_path / "straight")])
    part = tmp_path / "resumed"
    first = module.main([*tiny, "--steps", "8", "--out", str(part)])
    assert first["steps"] == 8 and first["resumed_from_step"] is None
    resumed = module.main([*tiny, "--steps", "16", "--out", str(part), "--resume"])
    assert "resuming from" in capsys.readouterr().out
    assert resumed["resumed_from_step"] == 8 and resumed["steps"] == 16
    (want, want_meta), (got, got_meta) = _checkpoint(straight), _checkpoint(resumed)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    losses = [want_meta["losses"], got_meta["losses"]]
    assert len(losses[0]) == 16 and losses[0] == losses[1]
    assert got_meta["config"] == want_meta["config"]
    assert got_meta["config"]["hidden"] == int(tiny[tiny.index("--hidden") + 1])
    for key in final:
        assert resumed[key] == straight[key], key
    # A run that has already reached --steps only evaluates.
    again = module.main([*tiny, "--steps", "16", "--out", str(part), "--resume"])
    for key in final:
        assert again[key] == straight[key], key


@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_refuses_other_settings(name, tmp_path, capsys):
    module, tiny, _ = RESUMABLE[name]
    out = str(tmp_path / "run")
    module.main([*tiny, "--steps", "2", "--out", out])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        module.main([*tiny, "--steps", "4", "--out", out, "--resume", "--seed", "5"])
    assert info.value.code == 2
    assert re.search(r"was made with another config: seed 0 \(now 5\)", capsys.readouterr().err)


@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_needs_out(name, capsys):
    module, tiny, _ = RESUMABLE[name]
    with pytest.raises(SystemExit) as info:
        module.main([*tiny, "--resume"])
    assert info.value.code == 2
    assert "resume=True needs the checkpoint_dir" in capsys.readouterr().err


def test_classify_learning_rate_decays_tenfold_per_period():
    optimizer = classify.make_optimizer(0.5, 1e9, 3)  # a clip that never bites
    params = {"w": jnp.zeros(2)}
    state = optimizer.init(params)
    grads = {"w": jnp.array([1.0, -2.0])}
    sizes = []
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(10):
            updates, state = optimizer.update(grads, state, params)
            sizes.append(np.asarray(updates["w"], np.float64))
    # Adam's step for a constant gradient is the learning rate times -sign(gradient).
    for k, size in enumerate(sizes):
        lr = 0.5 * 0.1 ** (max(0, k - 3) / 3)
        np.testing.assert_allclose(size, [-lr, lr], rtol=1e-4)


def test_docstring_examples_run():
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(classify, globs=vars(classify)) if t.examples]
    assert len(tests) >= 3
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


# ----------------------------------------------------------------- the date generator

_STRPTIME = {
    "{d}": "%d", "{dd}": "%d", "{th}": "", "{m}": "%m", "{mm}": "%m", "{Month}": "%B",
    "{Mon}": "%b", "{MON}": "%b", "{month}": "%B", "{Weekday}": "%A", "{Wkd}": "%a",
    "{Y}": "%Y", "{yy}": "%y",
}  # fmt: skip
_WEEKDAY_NAME = re.compile(r"[A-Z][a-z]+day|\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")


def _parse(source: str, fmt: str) -> datetime.date:
    """Read `source` back with `strptime`, an independent parser of the format."""
    pattern = fmt
    for token, directive in _STRPTIME.items():
        pattern = pattern.replace(token, directive)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", source) if "{th}" in fmt else source
    return datetime.datetime.strptime(text, pattern).date()


def _parse_human_date(source: str) -> datetime.date:
    """The one date that some format in FORMATS reads from `source`."""
    found = set()
    for fmt in dates.FORMATS:
        with contextlib.suppress(ValueError):  # not this format
            date = _parse(source, fmt)
            # Only dates the generator can draw count as readings.
            if dates.FIRST_DATE <= date <= dates.LAST_DATE:
                found.add(date)
    assert len(found) == 1, (source, found)
    return found.pop()


def test_every_format_parses_back_to_the_same_date():
    rng = random.Random(1)
    days = (dates.LAST_DATE - dates.FIRST_DATE).days
    samples = [dates.FIRST_DATE, dates.LAST_DATE, datetime.date(2000, 2, 29)]
    samples += [dates.FIRST_DATE + datetime.timedelta(rng.randrange(days + 1)) for _ in range(60)]
    for fmt in dates.FORMATS:
        for date in samples:
            source = dates.render_date(date, fmt)
            assert _parse(source, fmt) == date, (fmt, source)
            weekday = _WEEKDAY_NAME.search(source)
            if weekday:  # a weekday, when written, is the right one
                assert date.strftime("%A").startswith(weekday.group(0)), source
            assert set(source) <= set(dates.SOURCE_VOCAB), source


def test_the_formats_of_the_task_statement():
    date = datetime.date(1997, 5, 3)
    rendered = {dates.render_date(date, fmt) for fmt in dates.FORMATS}
    assert {"3rd of May 1997", "05/03/97", "May 3, 1997", "Saturday 3 May 1997"} <= rendered
    assert len(rendered) == len(dates.FORMATS)  # no two formats write a date the same way


def test_random_pairs_have_the_right_iso_target():
    train, test = dates.make_splits(250, 50, seed=7)
    for source, target in train + test:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", target)
        date = datetime.date.fromisoformat(target)
        assert _parse_human_date(source) == date
        assert dates.FIRST_DATE <= date <= dates.LAST_DATE


def test_splits_are_seeded_and_disjoint():
    train, test = dates.make_splits(500, 100, seed=3)
    again = dates.make_splits(500, 100, seed=3)
    assert (train, test) == again
    assert dates.make_splits(500, 100, seed=4)[0] != train
    sources = [s for s, _ in train + test]
    assert len(sources) == len(set(sources)) == 600
    for source, target in train[:50] + test[:50]:
        assert _parse_human_date(source).isoformat() == target


def test_ordinal_suffixes():
    expected = {1: "st", 2: "nd", 3: "rd", 4: "th", 11: "th", 12: "th", 13: "th", 21: "st"}
    expected.update({22: "nd", 23: "rd", 24: "th", 30: "th", 31: "st"})
    for day, suffix in expected.items():
        assert dates.render_date(datetime.date(2001, 1, day), "{d}{th}") == f"{day}{suffix}"


# --------------------------------------------------------------------------- padding


def test_source_padding():
    sources = ["May 3, 1997", "05/03/97", "Saturday 3 May 1997", ""]
    ids, lengths = dates.encode_sources(sources, max_len=25)
    assert ids.shape == (25, 4) and ids.dtype == np.int32
    assert lengths.tolist() == [11, 8, 19, 0]
    for b, source in enumerate(sources):
        assert "".join(dates.SOURCE_VOCAB[i] for i in ids[: len(source), b]) == source
        assert np.all(ids[len(source) :, b] == 0)
    with pytest.raises(ValueError, match="inhomogeneous"):  # 19 characters do not fit in 10
        dates.encode_sources(sources, max_len=10)
    with pytest.raises(ValueError, match="substring not found"):  # "k" is no source character
        dates.encode_sources(["3 Mai 1997k"], max_len=20)


def test_adding_batch_padding_and_targets():
    xs, lengths, ys = classify.adding_batch(jax.random.key(3), 64, min_len=5, max_len=12)
    xs, lengths, ys = np.asarray(xs), np.asarray(lengths), np.asarray(ys)
    assert xs.shape == (12, 64, 2) and lengths.dtype == np.int32
    assert lengths.min() >= 5 and lengths.max() <= 12 and len(set(lengths.tolist())) > 3
    for b in range(64):
        n = lengths[b]
        assert np.all(xs[n:, b] == 0), "padding must be zeros"
        values, markers = xs[:n, b, 0].astype(np.float64), xs[:n, b, 1]
        assert np.all((values >= 0) & (values < 1))
        marked = np.flatnonzero(markers == 1)
        assert len(marked) == 2 and np.all(markers[markers != 1] == 0)
        assert marked[0] < n // 2 <= marked[1]
        assert ys[b] == pytest.approx(values[marked].sum(), abs=1e-6)
    with pytest.raises(ValueError, match=r"need 2 <= min_len <= max_len, got min_len=6, max_len=4"):
        classify.adding_batch(jax.random.key(0), 2, min_len=6, max_len=4)


# --------------------------------------------------------------- the model, checked


def test_classify_prediction_ignores_padding():
    cell = jr.gru(8)
    params = classify.init_params(jax.random.key(0), cell)
    xs, lengths, _ = classify.adding_batch(jax.random.key(1), 5, min_len=3, max_len=7)
    longer = jnp.concatenate([xs, jnp.full((4, 5, 2), jnp.nan, xs.dtype)])
    short = classify.predict(cell, params, xs, lengths)
    padded = classify.predict(cell, params, longer, lengths)
    np.testing.assert_allclose(np.asarray(padded), np.asarray(short), rtol=1e-6, atol=1e-6)
    # Reference: each sequence alone, unpadded, through the final carry.
    for b in range(5):
        h, _ = jr.unroll(cell, params["cell"], xs[: int(lengths[b]), b : b + 1])
        alone = h[0] @ params["head"]["w"] + params["head"]["b"]
        assert float(short[b]) == pytest.approx(float(alone), abs=1e-5)


def _tiny_translator():
    encoder, decoder = jr.gru(12), jr.gru(16)
    params = dates.init_params(jax.random.key(0), encoder, decoder, embed_size=6)
    # Larger logits than the default init, so greedy choices are far from ties.
    params["head"]["w"] = params["head"]["w"] * 8.0
    return encoder, decoder, params


def test_encoder_ignores_padding():
    encoder, _, params = _tiny_translator()
    sources = ["3rd of May 1997", "5/3/97"]
    ids, lengths = dates.encode_sources(sources, max_len=15)
    longer, _ = dates.encode_sources(sources, max_len=30)
    for got, want in zip(
        dates.encode(encoder, params, longer, lengths),
        dates.encode(encoder, params, ids, lengths),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    # The backward direction has read the whole source: it matches running the
    # reversed, unpadded source forwards.
    context, _ = dates.encode(encoder, params, ids, lengths)
    xs = params["source_embed"][ids[: lengths[1], 1:2][::-1]]
    h_bwd, _ = jr.unroll(encoder, params["backward"], xs)
    np.testing.assert_allclose(np.asarray(context[1, 12:]), np.asarray(h_bwd[0]), atol=1e-6)


def test_greedy_translation_is_argmax_of_teacher_forcing_on_its_own_output():
    encoder, decoder, params = _tiny_translator()
    ids, lengths = dates.encode_sources(["May 3, 1997", "Saturday 3 May 1997", "05/03/97"], 19)
    tokens = np.asarray(dates.translate_ids(encoder, decoder, params, ids, lengths))
    # Reference: rerun the teacher-forced decoder on the prefix decoded so far; the
    # decoder is causal, so later (placeholder) tokens do not change step t.
    prefix = np.zeros((10, 3), np.int32)
    forced = jax.jit(dates.teacher_forced_logits, static_argnums=(0, 1))
    for t in range(10):
        logits = forced(encoder, decoder, params, ids, lengths, jnp.asarray(prefix))
        prefix[t] = np.argmax(np.asarray(logits[t]), axis=-1)
    np.testing.assert_array_equal(tokens, prefix)
