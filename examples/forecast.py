"""Forecast a monthly series with an LSTM (or GRU) and compare it with naive forecasts.

The bundled series is the monthly mean CO2 at Mauna Loa, 1965-2001 (data/README.md). The
model sees only the months before the last `--test-size`; it reads and predicts normalised
month-to-month changes: z (T, batch, 1) -> LSTM (T, batch, H) -> dense (T, batch, 1) ~ z[t+1].
It forecasts the held-out months one step ahead and, with `jr.rollout` feeding each
prediction back, all at once from the end of training, against the last value and the
seasonal naive forecast. `--out DIR` keeps checkpoints, metrics.json and forecast.png.

    python examples/forecast.py --out runs/co2      # 5 to 13 s on two CPU cores
    python examples/forecast.py --steps 2000 --out runs/co2 --resume
    python examples/forecast.py --data my_series.csv --season 7 --test-size 28
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn as jr

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "co2_monthly.csv"


class Series(NamedTuple):
    values: np.ndarray  # (N,) float64, oldest first
    times: np.ndarray  # (N,) decimal years for `year,month` files, else step numbers
    time_label: str  # "year" or "step"
    name: str  # the values' column


def load_series(path: str | Path) -> Series:
    """The last column of a CSV file with a header row (`year,month,...` gives the times).

    >>> s = load_series(DEFAULT_DATA)
    >>> s.values.shape, s.name, float(s.times[0]), s.values[:2]
    ((444,), 'co2_ppm', 1965.0, array([319.4 , 320.45]))
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not any(line.strip() for line in lines[1:]):
        raise ValueError(f"{path} has no data rows after its header")
    table = np.loadtxt(lines[1:], delimiter=",", ndmin=2)  # its ValueError names a bad cell
    if not np.isfinite(table).all():
        raise ValueError(f"{path} has a value that is not finite")
    header = [c.strip() for c in lines[0].split(",")]
    dated = header[:2] == ["year", "month"]
    times = table[:, 0] + (table[:, 1] - 1) / 12 if dated else np.arange(len(table), dtype=float)
    return Series(table[:, -1], times, "year" if dated else "step", header[-1])


class Scale(NamedTuple):
    mean: float
    std: float


def fit_scale(changes: np.ndarray) -> Scale:
    """The mean and standard deviation of `changes (n,)`; the std is 1 if they are all equal."""
    return Scale(float(np.mean(changes)), float(np.std(changes)) or 1.0)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def batch_at(key: jax.Array, step, data: jax.Array, batch_size: int, seq_len: int) -> jax.Array:
    """Random windows `(T + 1, B)` of `data (N,)` for training step `step`, a function of it."""
    key = jax.random.fold_in(key, step)
    starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - seq_len)
    return data[jnp.arange(seq_len + 1)[:, None] + starts[None, :]]


def mean_absolute_error(forecast: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast) - np.asarray(truth))))


def naive_forecasts(values: np.ndarray, test_size: int, season: int) -> dict[str, dict]:
    """The last value and the seasonal naive forecast (the value a season earlier) of the
    last `test_size` values `(K,)`: one step ahead, knowing every value before each; multi
    step ahead, knowing only the values before the held-out ones."""
    n, origin = len(values), len(values) - test_size - 1  # origin: the last training value
    last_season = values[origin + 1 - season : origin + 1]
    return {
        "one_step": {
            "last_value": values[origin : n - 1],
            "seasonal_naive": values[n - test_size - season : n - season],
        },
        "multi_step": {
            "last_value": np.full(test_size, values[origin]),
            "seasonal_naive": last_season[np.arange(test_size) % season],
        },
    }


def init_params(key: jax.Array, cell: jr.Cell) -> dict:
    """`{"cell": the cell's params for input size 1, "head": {"w": (H, 1), "b": (1,)}}`."""
    k_cell, k_head = jax.random.split(key)
    return {
        "cell": cell.init(k_cell, input_size=1),
        "head": jr.dense(1).init(k_head, cell.hidden_size),
    }


def readout(params: dict, hs: jax.Array) -> jax.Array:
    """Predictions `(..., 1)` from the cell's outputs `hs (..., H)`."""
    return jr.dense(1).apply(params["head"], hs)


def loss_fn(cell: jr.Cell, params: dict, windows: jax.Array, key=None) -> jax.Array:
    """Mean squared error of the next-step predictions over `windows (T + 1, *batch)`."""
    _, hs = jr.unroll(cell, params["cell"], windows[:-1, ..., None])
    return jr.sequence_mse(readout(params, hs), windows[1:, ..., None])


@functools.partial(jax.jit, static_argnames=("cell", "horizon"))
def predict_changes(params, cell, windows, history, horizon: int):
    """The change after each window `(T, K)`; `horizon` changes rolled out after `history (T,)`."""
    _, hs = jr.unroll(cell, params["cell"], windows[..., None])
    carry, _ = jr.unroll(cell, params["cell"], history[:-1, None])
    head = functools.partial(readout, params)
    _, rolled = jr.rollout(cell, params["cell"], carry, history[-1:], horizon, readout=head)
    return readout(params, hs[-1])[:, 0], rolled[:, 0]


def forecast(params, cell, values: np.ndarray, test_size: int, seq_len: int, scale: Scale) -> dict:
    """The model's forecasts `(K,)` of the last `test_size` values: one step ahead, the last
    value plus the change predicted from the `seq_len` true changes before; multi step
    ahead, the last training value plus the sum of the changes rolled out after training."""
    origin = len(values) - test_size - 1  # the last training value
    z = ((np.diff(values) - scale.mean) / scale.std).astype(np.float32)
    starts = np.arange(origin - seq_len, len(values) - 1 - seq_len)
    windows = z[starts[None, :] + np.arange(seq_len)[:, None]]
    history = z[origin - seq_len : origin]
    one, many = predict_changes(params, cell, windows, history, test_size)
    one, many = (np.asarray(x, np.float64) * scale.std + scale.mean for x in (one, many))
    return {"one_step": values[origin:-1] + one, "multi_step": values[origin] + np.cumsum(many)}


def positive_int(text: str) -> int:
    if int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


parser = argparse.ArgumentParser("forecast.py", description=__doc__.split("\n\n")[0])
parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
parser.add_argument("--data", default=str(DEFAULT_DATA), help="CSV, the series last, oldest first")
parser.add_argument("--test-size", type=positive_int, default=84, help="held-out steps at the end")
parser.add_argument("--season", type=positive_int, default=12, help="the seasonal naive's season")
parser.add_argument("--seq-len", type=positive_int, default=96, help="steps the model reads")
parser.add_argument("--batch-size", type=positive_int, default=32, help="windows per step")
parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="recurrent cell")
parser.add_argument("--hidden", type=positive_int, default=32, help="hidden size")
parser.add_argument("--steps", type=positive_int, default=1000, help="steps in all, if resumed")
parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
parser.add_argument("--seed", type=int, default=0, help="seed of the init and the batches")
parser.add_argument("--log-every", type=positive_int, default=100, help="log and evaluate")
parser.add_argument("--out", type=Path, help="write checkpoints, metrics.json and forecast.png")
parser.add_argument("--resume", action="store_true", help="continue the run in --out")
MODEL_OPTIONS = ("data", "test_size", "seq_len", "batch_size", "cell", "hidden", "lr", "seed")
NOTHING_SAVED = "nothing was saved (--out DIR keeps checkpoints that --resume continues)"


def main(argv: list[str] | None = None) -> dict:
    """Train, forecast and compare as `argv` says; returns the metrics of metrics.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        series = load_series(args.data)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        parser.error(f"--data {args.data!r}: cannot read a series from it ({e})")
    values, k, n = series.values, args.test_size, len(series.values)
    if n - k < max(args.seq_len + 2, args.season):  # a window of changes, and a season
        parser.error(f"--data {args.data!r} has {n} values; --test-size {k} leaves too few")
    scale = fit_scale(np.diff(values[: n - k]))
    train_data = jnp.asarray((np.diff(values[: n - k]) - scale.mean) / scale.std, jnp.float32)
    truth, baselines = values[n - k :], naive_forecasts(values, k, args.season)

    cell = jr.lstm(args.hidden) if args.cell == "lstm" else jr.gru(args.hidden)
    init_key, data_key, train_key = jax.random.split(jax.random.key(args.seed), 3)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))

    def held_out(params: dict) -> dict[str, float]:  # the model's mean absolute errors
        f = forecast(params, cell, values, k, args.seq_len, scale)
        return {f"{h}_mae": mean_absolute_error(f[h], truth) for h in baselines}

    try:
        result = jr.train.fit(
            jr.train.init_state(init_params(init_key, cell), optimizer, train_key),
            jr.train.make_train_step(functools.partial(loss_fn, cell), optimizer),
            lambda step: batch_at(data_key, step, train_data, args.batch_size, args.seq_len),
            steps=args.steps,
            log_every=args.log_every,
            evaluate=held_out,
            eval_every=args.log_every,
            checkpoint_dir=args.out and args.out / "checkpoints",
            resume=args.resume,
            config={name: getattr(args, name) for name in MODEL_OPTIONS},
        )
    except jr.train.ResumeError as e:  # refused before the first step: --out, --resume, --steps
        below = f"--steps {args.steps} is below {e.step}, the step of the checkpoint in --out"
        parser.error(below if e.step else str(e))
    except jr.train.NonFiniteLossError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(1)
    except jr.train.TrainingInterrupted as e:  # Ctrl-C; fit saved a checkpoint if it had --out
        again = argv if "--resume" in argv else [*argv, "--resume"]
        hint = f"resume with: {shlex.join(['python', sys.argv[0], *again])}"
        print(f"\n{e}\n{hint if e.checkpoint else NOTHING_SAVED}", file=sys.stderr)
        sys.exit(130)

    metrics = held_out(result.state.params)
    for horizon, naive in baselines.items():
        for name, f in naive.items():
            metrics[f"{horizon}_{name}_mae"] = mean_absolute_error(f, truth)
    print(f"\nheld-out mean absolute error ({series.name}) over the last {k} steps:")
    for name, error in metrics.items():
        print(f"  {name.removesuffix('_mae').replace('_', ' ')}: {error:.3f}")
    metrics.update(steps=int(result.state.step), train_loss=result.history[-1]["train_loss"])
    metrics.update(resumed_from_step=result.resumed_from, checkpoint=result.checkpoint)
    metrics.update(history=result.history, config=vars(args))
    if args.out is not None:
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        from matplotlib.figure import Figure

        forecasts = forecast(result.state.params, cell, values, k, args.seq_len, scale)
        shown = slice(max(0, n - k - 3 * args.season), n)  # three seasons before the test
        figure = Figure(figsize=(8, 7))
        for ax, (horizon, naive) in zip(figure.subplots(2), baselines.items(), strict=True):
            ax.plot(series.times[shown], values[shown], color="black", label="truth")
            ax.axvline(series.times[n - k - 1], color="0.7", lw=1, label="end of training")
            for name, f in {**naive, "model": forecasts[horizon]}.items():
                label = f"{name.replace('_', ' ')} (MAE {mean_absolute_error(f, truth):.3g})"
                ax.plot(series.times[n - k :], f, label=label)
            ax.set(xlabel=series.time_label, ylabel=series.name)
            ax.set(title=f"{horizon.replace('_', ' ')} ahead")
            ax.legend(fontsize="small", loc="upper left")
        figure.tight_layout()
        figure.savefig(args.out / "forecast.png")
    return metrics


if __name__ == "__main__":
    main()
