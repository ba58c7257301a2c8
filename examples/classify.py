"""Many-to-one: an LSTM (or GRU) reads a whole sequence and emits one number.

The task is the adding problem (Hochreiter & Schmidhuber, 1997). Each step of a
sequence holds two features: a random value in `[0, 1)` and a marker that is 1 at
exactly two steps (one in each half of the sequence) and 0 elsewhere. The target
is the sum of the two marked values. Sequences have random lengths between
`--min-len` and `--max-len` and are padded into one batch:

    inputs (T, batch, 2), lengths (batch,) -> unroll(cell, lengths=lengths) -> hs (T, batch, H)
        -> jaxrnn.last_valid(hs, lengths) (batch, H) -> dense head -> prediction (batch,)

Predicting the mean, 1, without reading the sequence gives a mean squared error
of about 1/6 (the variance of a sum of two uniform values); a model that has
learned the task gets far below it. The held-out accuracy counts predictions
within 0.04 of the target (the usual criterion for this task).

Run it with the defaults (about 30 s on two CPU cores; LSTM held-out accuracy about 0.99):

    python examples/classify.py
    python examples/classify.py --cell gru --max-len 80 --steps 3000 --out runs/adding
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cli import add_optimizer_arguments, positive_int
from tqdm import tqdm

import jaxrnn as jr

Array = jax.Array
Params = dict[str, Any]

TOLERANCE = 0.04
"""A prediction within this distance of the target counts as correct."""


# --------------------------------------------------------------------------- data


def adding_batch(
    key: Array, batch_size: int, min_len: int, max_len: int
) -> tuple[Array, Array, Array]:
    """A padded batch of adding-problem sequences, time-major.

    Sequence `b` has a length drawn uniformly from `[min_len, max_len]`. Its valid
    steps hold `(value, marker)` with values uniform in `[0, 1)`; the marker is 1 at
    one step of the first half and one step of the second half. Padded steps (at or
    past the length) are all zeros.

    Args:
      key: a PRNG key; the same key gives the same batch.
      batch_size: number of sequences `B`.
      min_len: the shortest length, at least 2.
      max_len: the longest length `T`, at least `min_len`; the padded time axis.

    Returns:
      `(inputs, lengths, targets)`: float32 `(T, B, 2)`, int32 `(B,)` and float32
      `(B,)`, the sum of the two marked values.

    Raises:
      ValueError: `min_len < 2` or `max_len < min_len`.

    Examples:
      >>> xs, lengths, ys = adding_batch(jax.random.key(0), 4, min_len=5, max_len=9)
      >>> xs.shape, lengths.shape, ys.shape
      ((9, 4, 2), (4,), (4,))
      >>> [int(m) for m in xs[..., 1].sum(axis=0)]      # two markers per sequence
      [2, 2, 2, 2]
    """
    if min_len < 2:
        raise ValueError(f"min_len must be at least 2 (one marker per half), got {min_len}")
    if max_len < min_len:
        raise ValueError(f"max_len must be at least min_len={min_len}, got {max_len}")
    k_len, k_val, k_first, k_second = jax.random.split(key, 4)
    lengths = jax.random.randint(k_len, (batch_size,), min_len, max_len + 1, dtype=jnp.int32)
    half = lengths // 2
    first = jax.random.randint(k_first, (batch_size,), 0, half)
    second = jax.random.randint(k_second, (batch_size,), half, lengths)
    steps = jnp.arange(max_len, dtype=jnp.int32)[:, None]
    valid = steps < lengths[None, :]
    values = jax.random.uniform(k_val, (max_len, batch_size))
    values = jnp.where(valid, values, jnp.zeros((), values.dtype))
    markers = (steps == first[None, :]) | (steps == second[None, :])
    inputs = jnp.stack([values, markers.astype(values.dtype)], axis=-1)
    targets = jnp.sum(jnp.where(markers, values, jnp.zeros((), values.dtype)), axis=0)
    return inputs, lengths, targets


# -------------------------------------------------------------------------- model


def init_params(key: Array, cell: jr.Cell) -> Params:
    """Parameters of the recurrent cell (input size 2) and the dense head.

    Examples:
      >>> p = init_params(jax.random.key(0), jr.gru(8))
      >>> p["cell"]["w_x"].shape, p["head"]["w"].shape
      ((2, 24), (8,))
    """
    k_cell, k_head = jax.random.split(key)
    scale = 1.0 / math.sqrt(cell.hidden_size)
    return {
        "cell": cell.init(k_cell, input_size=2),
        "head": {
            "w": jax.random.normal(k_head, (cell.hidden_size,)) * scale,
            "b": jnp.ones(()),  # start at the mean target
        },
    }


def predict(cell: jr.Cell, params: Params, inputs: Array, lengths: Array) -> Array:
    """The model's predicted sums `(B,)` for padded `inputs (T, B, 2)` and `lengths (B,)`.

    Examples:
      >>> cell = jr.lstm(8)
      >>> xs, lengths, _ = adding_batch(jax.random.key(0), 3, min_len=4, max_len=6)
      >>> predict(cell, init_params(jax.random.key(1), cell), xs, lengths).shape
      (3,)
    """
    _, hs = jr.unroll(cell, params["cell"], inputs, lengths=lengths)
    last = jr.last_valid(hs, lengths)  # (B, H): each sequence's output at its last step
    return last @ params["head"]["w"] + params["head"]["b"]


def loss_fn(params: Params, cell: jr.Cell, batch: tuple[Array, Array, Array]) -> Array:
    """Mean squared error of the predictions on `batch = (inputs, lengths, targets)`."""
    inputs, lengths, targets = batch
    return jnp.mean((predict(cell, params, inputs, lengths) - targets) ** 2)


@functools.partial(
    jax.jit, static_argnames=("cell", "optimizer", "batch_size", "min_len", "max_len")
)
def train_step(
    params: Params,
    opt_state: optax.OptState,
    key: Array,
    *,
    cell: jr.Cell,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    min_len: int,
    max_len: int,
) -> tuple[Params, optax.OptState, Array, Array]:
    """One optimizer step on a fresh batch; returns `(params, opt_state, key, loss)`."""
    key, batch_key = jax.random.split(key)
    batch = adding_batch(batch_key, batch_size, min_len, max_len)
    loss, grads = jax.value_and_grad(loss_fn)(params, cell, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, key, loss


@functools.partial(jax.jit, static_argnames=("cell",))
def evaluate(params: Params, cell: jr.Cell, batch: tuple[Array, Array, Array]) -> dict[str, Array]:
    """Held-out metrics on `batch`: `mse`, `baseline_mse` (always predicting 1) and `accuracy`.

    Examples:
      >>> cell = jr.lstm(8)
      >>> batch = adding_batch(jax.random.key(0), 500, min_len=4, max_len=6)
      >>> m = evaluate(init_params(jax.random.key(1), cell), cell, batch)
      >>> 0.1 < float(m["baseline_mse"]) < 0.25
      True
    """
    inputs, lengths, targets = batch
    predictions = predict(cell, params, inputs, lengths)
    return {
        "mse": jnp.mean((predictions - targets) ** 2),
        "baseline_mse": jnp.mean((1.0 - targets) ** 2),
        "accuracy": jnp.mean(jnp.abs(predictions - targets) < TOLERANCE),
    }


# ------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (`python examples/classify.py --help`)."""
    parser = argparse.ArgumentParser(
        prog="classify.py",
        description=(
            "Many-to-one sequence model: train an LSTM or GRU on the adding problem "
            "(variable-length, padded batches read with jaxrnn.unroll(lengths=...) and "
            "jaxrnn.last_valid) and report its held-out mean squared error against the "
            "trivial baseline (about 0.167) and its accuracy (predictions within "
            f"{TOLERANCE} of the target)."
        ),
        epilog=(
            "Same --seed, same run. With --out DIR the script writes DIR/metrics.json and "
            "DIR/loss_curve.png."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--min-len",
        type=positive_int,
        default=10,
        metavar="N",
        help="shortest sequence, at least 2 (default: %(default)s)",
    )
    data.add_argument(
        "--max-len",
        type=positive_int,
        default=60,
        metavar="N",
        help="longest sequence, the padded length (default: %(default)s)",
    )
    data.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        metavar="N",
        help="sequences per step (default: %(default)s)",
    )
    data.add_argument(
        "--test-size",
        type=positive_int,
        default=2000,
        metavar="N",
        help="held-out sequences (default: %(default)s)",
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
        default=64,
        metavar="N",
        help="hidden size (default: %(default)s)",
    )
    train = parser.add_argument_group("training")
    add_optimizer_arguments(train, steps=2000)
    train.add_argument(
        "--log-every",
        type=positive_int,
        default=100,
        metavar="N",
        help="log and evaluate every N steps (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write metrics.json and loss_curve.png here",
    )
    return parser


@functools.cache
def make_cell(kind: str, hidden_size: int) -> jr.Cell:
    """`jaxrnn.lstm(hidden_size)` or `jaxrnn.gru(hidden_size)`, cached so jit reuses it."""
    return jr.lstm(hidden_size) if kind == "lstm" else jr.gru(hidden_size)


@functools.cache
def make_optimizer(learning_rate: float, max_norm: float) -> optax.GradientTransformation:
    """Adam after clipping the gradients' global norm to `max_norm`."""
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(learning_rate))


def save_loss_curve(path: Path, losses: np.ndarray, history: list[dict[str, Any]]) -> None:
    """Write a PNG of the training loss, the held-out MSE and the baseline (log scale)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(np.arange(1, len(losses) + 1), losses, alpha=0.4, lw=0.8, label="train MSE")
    ax.plot(
        [h["step"] for h in history], [h["test_mse"] for h in history], "o-", label="held-out MSE"
    )
    ax.axhline(history[-1]["baseline_mse"], color="gray", ls="--", label="predict 1 (baseline)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error")
    ax.set_title("Adding problem (many-to-one)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate as `args` says; returns the final metrics."""
    start = time.perf_counter()
    cell = make_cell(args.cell, args.hidden)
    optimizer = make_optimizer(args.lr, args.clip)
    init_key, train_key, test_key = jax.random.split(jax.random.key(args.seed), 3)
    params = init_params(init_key, cell)
    opt_state = optimizer.init(params)
    test_batch = adding_batch(test_key, args.test_size, args.min_len, args.max_len)
    print(
        f"adding problem: lengths {args.min_len}..{args.max_len}, {args.cell} hidden "
        f"{args.hidden}, {sum(x.size for x in jax.tree.leaves(params)):,} parameters"
    )
    step_fn = functools.partial(
        train_step,
        cell=cell,
        optimizer=optimizer,
        batch_size=args.batch_size,
        min_len=args.min_len,
        max_len=args.max_len,
    )
    losses: list[Array] = []
    history: list[dict[str, Any]] = []
    key = train_key
    bar = tqdm(range(1, args.steps + 1), desc="training", unit="step", dynamic_ncols=True)
    for step in bar:
        params, opt_state, key, loss = step_fn(params, opt_state, key)
        losses.append(loss)
        if step == 1 or step % args.log_every == 0 or step == args.steps:
            recent = np.asarray(jax.device_get(losses[-args.log_every :]), np.float64)
            metrics = {k: float(v) for k, v in evaluate(params, cell, test_batch).items()}
            entry = {
                "step": step,
                "train_loss": float(recent.mean()),
                "test_mse": metrics["mse"],
                "baseline_mse": metrics["baseline_mse"],
                "test_accuracy": metrics["accuracy"],
            }
            if not math.isfinite(entry["train_loss"]):
                bar.close()
                raise FloatingPointError(f"training loss became {entry['train_loss']}")
            history.append(entry)
            bar.write(
                f"step {step:>{len(str(args.steps))}}  train MSE {entry['train_loss']:.4f}  "
                f"held-out MSE {entry['test_mse']:.4f} (baseline {entry['baseline_mse']:.4f})  "
                f"accuracy {entry['test_accuracy']:.3f}"
            )
    bar.close()
    last = history[-1]
    result: dict[str, Any] = {
        "steps": args.steps,
        "train_loss": last["train_loss"],
        "test_mse": last["test_mse"],
        "baseline_mse": last["baseline_mse"],
        "test_accuracy": last["test_accuracy"],
        "wall_time_s": time.perf_counter() - start,
        "history": history,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    print(
        f"\nheld-out MSE {last['test_mse']:.4f} vs baseline {last['baseline_mse']:.4f}; "
        f"accuracy (|error| < {TOLERANCE}) {last['test_accuracy']:.3f}"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        all_losses = np.asarray(jax.device_get(losses), np.float64)
        save_loss_curve(args.out / "loss_curve.png", all_losses, history)
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'loss_curve.png'}")
    print(f"wall time {result['wall_time_s']:.1f} s")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv` (default: `sys.argv[1:]`), train and evaluate.

    Returns:
      The final metrics: `steps`, `train_loss` (mean over the last `--log-every`
      steps), `test_mse`, `baseline_mse`, `test_accuracy`, `wall_time_s`,
      `history` and `config`.

    Raises:
      SystemExit: bad arguments (status 2), or `--help`.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_len < 2:
        parser.error(f"--min-len must be at least 2 (one marker per half), got {args.min_len}")
    if args.max_len < args.min_len:
        parser.error(f"--max-len ({args.max_len}) must be at least --min-len ({args.min_len})")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
