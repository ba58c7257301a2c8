"""Forecast a monthly time series with an LSTM (or GRU) and compare it with naive forecasts.

The bundled series is the monthly mean CO2 concentration at Mauna Loa, 1965-2001
(444 months, in ppm; see data/README.md): a rising trend with a yearly cycle. The
last `--test-size` months (default 84, seven years) are held out; everything the
model learns, including the normalisation, comes from the months before them.

Because of the trend, the held-out values lie above everything in the training
part, so the model reads and predicts month-to-month changes instead of levels,
normalised with the mean and standard deviation of the training part's changes.
It is trained many-to-many with teacher forcing: on random windows of `--seq-len`
consecutive changes it predicts, at every step, the next change:

    changes z (T, batch, 1) -> LSTM (T, batch, H) -> dense head (T, batch, 1)
        prediction at step t ~ z[t + 1]

(Many-to-many rather than many-to-one: every step of a window gives a training signal,
and a next-step model is what `jaxrnn.rollout` needs to forecast many steps ahead.)

The held-out months are forecast two ways, each turned back into ppm:

- one step ahead: for each held-out month the model reads the `--seq-len` true
  changes before it and predicts the next (the level is last month's value plus
  that change). Baselines: the last value (no change) and the seasonal naive
  forecast (the value one season, `--season` steps, earlier).
- many steps ahead: from the end of the training part, `jaxrnn.rollout` feeds each
  predicted change back as the next input for all held-out months at once, without
  seeing any of them. Baselines: the last training value repeated, and the last
  training season repeated.

The mean absolute error (MAE) in the series' own units is reported for the model
and each baseline, and DIR/forecast.png plots them against the truth. On the CO2
series the seasonal naive forecast is worse than the last value one step ahead: a
year's rise (about 1.5 ppm) is larger than a typical month's change.

Training goes through `jaxrnn.train` (Adam after clipping the global gradient
norm); each step's batch is drawn from the seed and the step number alone, so the
same seed gives the same run. With `--out DIR` the run keeps checkpoints in
DIR/checkpoints (every `--checkpoint-every` steps, at the end, and on Ctrl-C) and
writes DIR/metrics.json, DIR/forecast.png and DIR/loss_curve.png; `--resume`
continues it bit for bit. A NaN loss stops the run with the step it happened at.

Run it with the defaults (about 10 s on two CPU cores; held-out MAE about 0.25 ppm one
step ahead against 1.1 for the last value and 1.7 for the seasonal naive forecast, and
about 0.5 ppm many steps ahead against 7.0 and 7.2):

    python examples/forecast.py --out runs/co2
    python examples/forecast.py --steps 2000 --out runs/co2 --resume
    python examples/forecast.py --cell gru --seq-len 48 --out runs/co2_gru
    python examples/forecast.py --data my_series.csv --season 7 --test-size 28
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from cli import (
    add_optimizer_arguments,
    add_output_arguments,
    check_output_arguments,
    finish,
    make_optimizer,
    positive_int,
    train,
)

import jaxrnn as jr

Array = jax.Array
Params = dict[str, Any]

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "co2_monthly.csv"


# --------------------------------------------------------------------------- data


class Series(NamedTuple):
    """A time series read from a CSV file: its values and where each lies in time."""

    values: np.ndarray
    """The observations `(N,)`, float64, oldest first."""
    times: np.ndarray
    """The time of each observation `(N,)`: a decimal year for `year,month` files, else
    the step number."""
    time_label: str
    """What `times` measures, for a plot's axis."""
    name: str
    """The values' column name."""


def load_series(path: Path) -> Series:
    """Read a series from a CSV file: a header row, then one row per step, oldest first.

    The last column holds the values; when the first two columns are named `year`
    and `month`, they give each value's time as a decimal year, otherwise the time
    is the step number.

    Args:
      path: the CSV file.

    Returns:
      A `Series` of `N` values.

    Raises:
      OSError: the file cannot be read.
      ValueError: the file has no data rows, or a value is not a finite number; the
        message names the line.

    Examples:
      >>> s = load_series(DEFAULT_DATA)
      >>> s.values.shape, s.name, float(s.times[0]), s.values[:2]
      ((444,), 'co2_ppm', 1965.0, array([319.4 , 320.45]))
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = [c.strip() for c in lines[0].split(",")] if lines else []
    rows = [(n, line.split(",")) for n, line in enumerate(lines[1:], start=2) if line.strip()]
    if not rows:
        raise ValueError(f"{path} has no data rows after its header")
    dated = header[:2] == ["year", "month"]

    def number(text: str, line: int) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}, line {line}: {text.strip()!r} is not a number") from None
        if not np.isfinite(value):
            raise ValueError(f"{path}, line {line}: the value {text.strip()!r} is not finite")
        return value

    values = np.array([number(cells[-1], n) for n, cells in rows])
    if dated:
        times = np.array([number(c[0], n) + (number(c[1], n) - 1) / 12 for n, c in rows])
    else:
        times = np.arange(len(rows), dtype=np.float64)
    label = "year" if dated else "step"
    return Series(values, times, label, header[-1] if header else "value")


class Scale(NamedTuple):
    """The mean and standard deviation that normalise the model's inputs."""

    mean: float
    std: float


def fit_scale(changes: np.ndarray) -> Scale:
    """The mean and standard deviation of `changes (n,)`; the std is 1 if they are all equal.

    Examples:
      >>> fit_scale(np.array([1.0, 3.0]))
      Scale(mean=2.0, std=1.0)
    """
    std = float(np.std(changes))
    return Scale(float(np.mean(changes)), std if std > 0 else 1.0)


def random_windows(key: Array, data: Array, batch_size: int, seq_len: int) -> Array:
    """`batch_size` random windows of `seq_len + 1` consecutive values, time-major.

    Args:
      key: a PRNG key.
      data: values `(N,)` with `N > seq_len`.
      batch_size: number of windows `B`.
      seq_len: steps the model reads per window, `T`; each window has one more
        value so that inputs `[:-1]` and targets `[1:]` both have `T` steps.

    Returns:
      Values `(T + 1, B)`.

    Examples:
      >>> w = random_windows(jax.random.key(0), jnp.arange(50.0), batch_size=3, seq_len=4)
      >>> w.shape, bool(jnp.all(w[1:] - w[:-1] == 1))
      ((5, 3), True)
    """
    starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - seq_len)
    offsets = jnp.arange(seq_len + 1, dtype=starts.dtype)
    return data[offsets[:, None] + starts[None, :]]


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def batch_at(key: Array, step: int | Array, data: Array, batch_size: int, seq_len: int) -> Array:
    """The windows `(T + 1, B)` that training step `step` uses, from `key` and `step` alone.

    Each step draws from `jax.random.fold_in(key, step)`, so a resumed run sees
    exactly the batches it would have seen without stopping.

    Examples:
      >>> a = batch_at(jax.random.key(0), 3, jnp.arange(20.0), batch_size=2, seq_len=4)
      >>> b = batch_at(jax.random.key(0), 3, jnp.arange(20.0), batch_size=2, seq_len=4)
      >>> bool(jnp.all(a == b)), a.shape
      (True, (5, 2))
    """
    return random_windows(jax.random.fold_in(key, step), data, batch_size, seq_len)


# ---------------------------------------------------------------------- baselines


def mean_absolute_error(forecast: np.ndarray, truth: np.ndarray) -> float:
    """The mean of `|forecast - truth|` over `(K,)` values.

    Examples:
      >>> mean_absolute_error(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
      1.5
    """
    return float(np.mean(np.abs(np.asarray(forecast) - np.asarray(truth))))


def one_step_baselines(values: np.ndarray, test_size: int, season: int) -> dict[str, np.ndarray]:
    """Naive one-step-ahead forecasts of the last `test_size` values of `values (N,)`.

    The forecast of `values[t]` knows every value before it: `last_value` is
    `values[t - 1]`, `seasonal_naive` is `values[t - season]`.

    Args:
      values: the whole series `(N,)`, with `N >= test_size + season`.
      test_size: the number of held-out values `K` at the end.
      season: the season's length in steps (12 for monthly data with a yearly cycle).

    Returns:
      `{"last_value": (K,), "seasonal_naive": (K,)}`.

    Examples:
      >>> b = one_step_baselines(np.arange(10.0) ** 2, test_size=3, season=4)
      >>> b["last_value"], b["seasonal_naive"]
      (array([36., 49., 64.]), array([ 9., 16., 25.]))
    """
    n = len(values)
    return {
        "last_value": values[n - test_size - 1 : n - 1],
        "seasonal_naive": values[n - test_size - season : n - season],
    }


def multi_step_baselines(history: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Naive forecasts of the `horizon` values after `history (n,)`, seeing none of them.

    `last_value` repeats `history[-1]`; `seasonal_naive` repeats the last season,
    `history[-season:]`, so the forecast `h >= 1` steps ahead is the value a
    whole number of seasons before it.

    Args:
      history: the values up to the forecast origin `(n,)`, with `n >= season`.
      horizon: the number of values to forecast `K`.
      season: the season's length in steps.

    Returns:
      `{"last_value": (K,), "seasonal_naive": (K,)}`.

    Examples:
      >>> b = multi_step_baselines(np.array([1.0, 2.0, 5.0, 3.0]), horizon=5, season=3)
      >>> b["last_value"], b["seasonal_naive"]
      (array([3., 3., 3., 3., 3.]), array([2., 5., 3., 2., 5.]))
    """
    return {
        "last_value": np.full(horizon, history[-1]),
        "seasonal_naive": history[-season:][np.arange(horizon) % season],
    }


# -------------------------------------------------------------------------- model


def init_params(key: Array, cell: jr.Cell) -> Params:
    """Parameters of the recurrent cell (input size 1) and the dense head (output size 1).

    Examples:
      >>> p = init_params(jax.random.key(0), jr.lstm(8))
      >>> p["cell"]["w_x"].shape, p["head"]["w"].shape
      ((1, 32), (8, 1))
    """
    k_cell, k_head = jax.random.split(key)
    return {
        "cell": cell.init(k_cell, input_size=1),
        "head": jr.dense(1).init(k_head, cell.hidden_size),
    }


def readout(params: Params, hs: Array) -> Array:
    """Predictions `(..., 1)` from the cell's outputs `hs (..., H)`."""
    return jr.dense(1).apply(params["head"], hs)


def forward(cell: jr.Cell, params: Params, xs: Array) -> Array:
    """The model's prediction of the next value at every step of `xs`.

    Args:
      cell: the cell `params["cell"]` was made for.
      params: as `init_params` returns them.
      xs: normalised values `(T, *batch, 1)`, time-major.

    Returns:
      Predictions `(T, *batch, 1)`; step `t` predicts the value after `xs[t]`.

    Examples:
      >>> cell = jr.gru(8)
      >>> p = init_params(jax.random.key(0), cell)
      >>> forward(cell, p, jnp.zeros((7, 2, 1))).shape
      (7, 2, 1)
    """
    _, hs = jr.unroll(cell, params["cell"], xs)
    return readout(params, hs)


def loss_fn(cell: jr.Cell, params: Params, windows: Array, key: Array | None = None) -> Array:
    """Mean squared error of the next-step predictions over windows `(T + 1, *batch)`.

    Teacher forcing: every step reads the true value and predicts the next one.
    `key` is unused (the model has no dropout); it is there for `jaxrnn.train`.
    """
    predictions = forward(cell, params, windows[:-1, ..., None])
    return jr.sequence_mse(predictions, windows[1:, ..., None])


@functools.partial(jax.jit, static_argnames=("cell",))
def _last_predictions(params: Params, cell: jr.Cell, windows: Array) -> Array:
    """The prediction after the last step of each window `(T, K)`, shape `(K,)`."""
    return forward(cell, params, windows[..., None])[-1, :, 0]


@functools.partial(jax.jit, static_argnames=("cell", "horizon"))
def _rollout(params: Params, cell: jr.Cell, history: Array, horizon: int) -> Array:
    """`horizon` values `(K,)` after `history (T,)`, each prediction fed back as input."""
    carry, _ = jr.unroll(cell, params["cell"], history[:-1, None])
    _, predictions = jr.rollout(
        cell,
        params["cell"],
        carry,
        history[-1:],
        horizon,
        readout=lambda h: readout(params, h),
    )
    return predictions[:, 0]


class Forecasts(NamedTuple):
    """The model's forecasts of the held-out values, in the series' units."""

    one_step: np.ndarray
    """`(K,)`: each from the `seq_len` true values before it."""
    multi_step: np.ndarray
    """`(K,)`: all from the end of the training part, none seeing a held-out value."""


def forecast(
    params: Params,
    cell: jr.Cell,
    values: np.ndarray,
    test_size: int,
    seq_len: int,
    scale: Scale,
) -> Forecasts:
    """The model's one-step and multi-step forecasts of the last `test_size` values.

    The model works on the changes `d[i] = values[i + 1] - values[i]`, normalised
    by `scale`. One step ahead, the forecast of `values[t]` is `values[t - 1]`
    plus the change the model predicts after reading the `seq_len` true changes
    before it (from a zero state, as in training). Many steps ahead, the model
    reads the last `seq_len` changes of the training part and `jaxrnn.rollout`
    predicts the next `test_size` changes, each fed back as the next input; their
    running sum is added to the last training value.

    Args:
      params: as `init_params` returns them.
      cell: the cell `params["cell"]` was made for.
      values: the whole series `(N,)`, with `N > test_size + seq_len`.
      test_size: the number of held-out values `K` at the end.
      seq_len: the number of changes the model reads before forecasting, `T`.
      scale: the normalisation of the changes, from the training part.

    Returns:
      `Forecasts` of `(K,)` float64 values.

    Examples:
      >>> cell = jr.lstm(8)
      >>> p = init_params(jax.random.key(0), cell)
      >>> f = forecast(p, cell, np.arange(30.0), test_size=5, seq_len=6, scale=Scale(1.0, 1.0))
      >>> f.one_step.shape, f.multi_step.shape
      ((5,), (5,))
    """
    n = len(values)
    origin = n - test_size - 1  # the last training value
    z = ((np.diff(values) - scale.mean) / scale.std).astype(np.float32)
    # values[t] for t in [origin + 1, n) is values[t - 1] + d[t - 1]; the model reads
    # d[t - 1 - seq_len : t - 1].
    starts = np.arange(origin - seq_len, n - 1 - seq_len)
    windows = z[starts[None, :] + np.arange(seq_len)[:, None]]
    change = np.asarray(_last_predictions(params, cell, jnp.asarray(windows)), np.float64)
    one_step = values[origin : n - 1] + change * scale.std + scale.mean
    rolled = _rollout(params, cell, jnp.asarray(z[origin - seq_len : origin]), test_size)
    changes = np.asarray(rolled, np.float64) * scale.std + scale.mean
    return Forecasts(one_step, values[origin] + np.cumsum(changes))


def save_forecast_plot(
    path: Path,
    series: Series,
    test_size: int,
    season: int,
    forecasts: Forecasts,
    one_step: dict[str, np.ndarray],
    multi_step: dict[str, np.ndarray],
) -> Path:
    """Write a PNG of the held-out truth against the model's and the baselines' forecasts.

    The top panel shows the one-step-ahead forecasts, the bottom one the
    multi-step forecasts from the end of the training part; both show the
    last three seasons of training data for context. Each legend entry gives its MAE.

    Returns:
      `path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(series.values)
    truth = series.values[n - test_size :]
    context = slice(max(0, n - test_size - 3 * season), n - test_size + 1)
    held_out = series.times[n - test_size :]
    fig = Figure(figsize=(8, 7), dpi=100)
    FigureCanvasAgg(fig)
    panels = [
        ("one step ahead", forecasts.one_step, one_step),
        ("many steps ahead from the end of training", forecasts.multi_step, multi_step),
    ]
    for i, (title, model, baselines) in enumerate(panels):
        ax = fig.add_subplot(2, 1, i + 1)
        ax.plot(series.times[context], series.values[context], color="0.6", label="training data")
        ax.plot(held_out, truth, color="black", lw=2, label="held-out truth")
        for (name, forecast), style in zip(baselines.items(), (":", "--"), strict=True):
            mae = mean_absolute_error(forecast, truth)
            label = f"{name.replace('_', ' ')} (MAE {mae:.3g})"
            ax.plot(held_out, forecast, style, color="tab:gray", label=label)
        mae = mean_absolute_error(model, truth)
        ax.plot(held_out, model, color="tab:red", label=f"model (MAE {mae:.3g})")
        ax.axvline(series.times[n - test_size - 1], color="0.8", lw=1)
        ax.set_title(title)
        ax.set_xlabel(series.time_label)
        ax.set_ylabel(series.name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    return path


# ------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (`python examples/forecast.py --help`)."""
    parser = argparse.ArgumentParser(
        prog="forecast.py",
        description=(
            "Time-series forecasting with jaxrnn: train an LSTM or GRU on the month-to-month "
            "changes of a series (by default monthly Mauna Loa CO2, 1965-2001), forecast the "
            "held-out last --test-size steps one step ahead and many steps ahead "
            "(jaxrnn.rollout), and compare its mean absolute error with the last-value and "
            "seasonal naive forecasts."
        ),
        epilog=(
            "Same --seed, same run: the init and every batch come from keys split off the "
            "seed. With --out DIR the script writes checkpoints to DIR/checkpoints (every "
            "--checkpoint-every steps, at the end and on Ctrl-C), DIR/metrics.json (the MAE "
            "of the model and of each baseline, one step and many steps ahead, the final "
            "train loss, steps, wall time and the logged curve), DIR/forecast.png and "
            "DIR/loss_curve.png; --resume continues such a run exactly where it stopped. "
            "Example: python examples/forecast.py --out runs/co2"
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="PATH",
        help="CSV file with a header row and the series in its last column, oldest first "
        "(default: data/co2_monthly.csv next to this script)",
    )
    data.add_argument(
        "--test-size",
        type=positive_int,
        default=84,
        metavar="N",
        help="held-out steps at the end of the series (default: %(default)s)",
    )
    data.add_argument(
        "--season",
        type=positive_int,
        default=12,
        metavar="N",
        help="steps per season, for the seasonal naive baseline (default: %(default)s)",
    )
    data.add_argument(
        "--seq-len",
        type=positive_int,
        default=96,
        metavar="N",
        help="steps per training window, and steps the model reads before a forecast "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="windows per step (default: %(default)s)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--cell",
        choices=("lstm", "gru"),
        default="lstm",
        help="recurrent cell (default: %(default)s)",
    )
    model.add_argument(
        "--hidden",
        type=positive_int,
        default=32,
        metavar="N",
        help="hidden size (default: %(default)s)",
    )
    training = parser.add_argument_group("training")
    add_optimizer_arguments(training, steps=1000)
    training.add_argument(
        "--log-every",
        type=positive_int,
        default=100,
        metavar="N",
        help="log the mean training loss and the held-out MAE every N steps (default: %(default)s)",
    )
    add_output_arguments(parser.add_argument_group("output"), checkpoint_every=500)
    return parser


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Series:
    """Read `--data` and check it against the other arguments, or exit with a usage error."""
    try:
        series = load_series(args.data)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        parser.error(f"--data {str(args.data)!r}: cannot read a series from it ({e})")
    n = len(series.values)
    # The training part holds n - test_size values, so n - test_size - 1 changes: it must
    # hold a window of seq_len + 1 changes and a whole season.
    need = max(args.seq_len + 2, args.season)
    if n - args.test_size < need:
        parser.error(
            f"--data {str(args.data)!r} has {n} values; holding out --test-size "
            f"{args.test_size} leaves {n - args.test_size} for training, fewer than the "
            f"{need} that --seq-len {args.seq_len} and --season {args.season} need"
        )
    check_output_arguments(parser, args)
    return series


# Cached: jit keys compiled code on these static arguments, so repeated runs in one
# process (tests, notebooks) with the same settings compile once.
@functools.cache
def make_cell(kind: str, hidden_size: int) -> jr.Cell:
    """`jaxrnn.lstm(hidden_size)` or `jaxrnn.gru(hidden_size)`."""
    return jr.lstm(hidden_size) if kind == "lstm" else jr.gru(hidden_size)


@functools.cache
def make_step(
    kind: str, hidden_size: int, learning_rate: float, max_norm: float
) -> jr.train.StepFn:
    """The jitted train step `(state, windows) -> (state, loss)`."""
    return jr.train.make_train_step(
        functools.partial(loss_fn, make_cell(kind, hidden_size)),
        make_optimizer(learning_rate, max_norm),
    )


MODEL_OPTIONS = (
    "data", "test_size", "seq_len", "batch_size", "cell", "hidden", "lr", "clip", "seed",
)  # fmt: skip
"""The options a resumed run must share with the run it continues."""


def run(args: argparse.Namespace, series: Series) -> dict[str, Any]:
    """Train (or resume), forecast and compare as `args` says; returns the final metrics."""
    start = time.perf_counter()
    values, k = series.values, args.test_size
    n = len(values)
    train_changes = np.diff(values[: n - k])
    scale = fit_scale(train_changes)
    train_data = jnp.asarray((train_changes - scale.mean) / scale.std, jnp.float32)
    truth = values[n - k :]
    one_step = one_step_baselines(values, k, args.season)
    multi_step = multi_step_baselines(values[: n - k], k, args.season)
    baseline_mae = {
        f"{horizon}_{name}_mae": mean_absolute_error(f, truth)
        for horizon, baselines in (("one_step", one_step), ("multi_step", multi_step))
        for name, f in baselines.items()
    }
    cell = make_cell(args.cell, args.hidden)
    init_key, data_key, train_key = jax.random.split(jax.random.key(args.seed), 3)
    params = init_params(init_key, cell)
    print(
        f"series: {n} values of {series.name}; training on the first {n - k}, "
        f"forecasting the last {k}; {args.cell} hidden {args.hidden}, "
        f"{sum(x.size for x in jax.tree.leaves(params)):,} parameters"
    )

    def held_out(params: Params) -> dict[str, float]:
        f = forecast(params, cell, values, k, args.seq_len, scale)
        return {
            "one_step_mae": mean_absolute_error(f.one_step, truth),
            "multi_step_mae": mean_absolute_error(f.multi_step, truth),
        }

    trained = train(
        "examples/forecast.py",
        build_parser(),
        args,
        jr.train.init_state(params, make_optimizer(args.lr, args.clip), train_key),
        MODEL_OPTIONS,
        step_fn=make_step(args.cell, args.hidden, args.lr, args.clip),
        batches=lambda step: batch_at(data_key, step, train_data, args.batch_size, args.seq_len),
        evaluate=held_out,
        eval_every=args.log_every,
    )
    final = trained.final(held_out, "one_step_mae")
    mae = {
        "one_step_mae": final["one_step_mae"],
        **{k: v for k, v in baseline_mae.items() if k.startswith("one_step")},
        "multi_step_mae": final["multi_step_mae"],
        **{k: v for k, v in baseline_mae.items() if k.startswith("multi_step")},
    }
    print(f"\nheld-out MAE ({series.name}) over the last {k} steps:")
    for horizon in ("one_step", "multi_step"):
        print(
            f"  {horizon.replace('_', ' ')}: model {mae[f'{horizon}_mae']:.3f}, "
            f"last value {mae[f'{horizon}_last_value_mae']:.3f}, "
            f"seasonal naive {mae[f'{horizon}_seasonal_naive_mae']:.3f}"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        forecasts = forecast(trained.result.state.params, cell, values, k, args.seq_len, scale)
        plot = save_forecast_plot(
            args.out / "forecast.png", series, k, args.season, forecasts, one_step, multi_step
        )
        print(f"wrote {plot}")
    return finish(
        args,
        trained,
        start,
        mae,
        title=f"{args.cell.upper()} forecaster, next-step loss on normalised changes",
        ylabel="mean squared error (normalised)",
        log_scale=True,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv` (default: `sys.argv[1:]`), train, forecast and compare with the baselines.

    Args:
      argv: command-line arguments, as `python examples/forecast.py --help` lists them.

    Returns:
      The final metrics: `steps`, `train_loss` (mean over the last logged
      interval), the held-out MAE of the model and of the baselines one step and
      many steps ahead (`one_step_mae`, `one_step_last_value_mae`,
      `one_step_seasonal_naive_mae`, `multi_step_mae`, `multi_step_last_value_mae`,
      `multi_step_seasonal_naive_mae`), `wall_time_s`, `train_time_s`,
      `resumed_from_step`, `history` (the logged entries), `checkpoint` (the last
      one written, or None) and `config`.

    Raises:
      SystemExit: bad arguments (status 2, with a usage message on stderr),
        `--help`, Ctrl-C (status 130, after saving a checkpoint) or a
        non-finite loss (status 1, naming the step).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    series = _load(parser, args)
    return run(args, series)


if __name__ == "__main__":
    main(sys.argv[1:])
