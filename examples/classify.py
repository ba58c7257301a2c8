"""Many-to-one: an LSTM (or GRU) reads a padded batch of sequences and outputs one number each.

The task is the adding problem (Hochreiter & Schmidhuber, 1997): each step holds a
random value in [0, 1) and a marker that is 1 at exactly two steps, one in each half;
the target is the sum of the two marked values. Sequences have random lengths from
`--min-len` to `--max-len` and are padded into one batch:

    inputs (T, batch, 2), lengths (batch,) -> jr.unroll(cell, lengths=) -> hs (T, batch, H)
        -> jr.last_valid(hs, lengths) (batch, H) -> dense head -> prediction (batch,)

Predicting 1 without reading the sequence scores a mean squared error of about 1/6;
a prediction within 0.04 of the target counts as correct. The learning rate stays at
`--lr` for `--lr-decay-steps` steps, then falls tenfold every `--lr-decay-steps`. With
`--out DIR` the run keeps checkpoints (`--resume` goes on bit for bit) and writes
DIR/metrics.json and DIR/loss_curve.png.

    python examples/classify.py                     # 17 to 23 s on two CPU cores
    python examples/classify.py --cell gru --max-len 80 --steps 3000 --out runs/adding
    python examples/classify.py --cell gru --max-len 80 --steps 6000 --out runs/adding --resume
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn as jr

TOLERANCE = 0.04  # a prediction this close to the target counts as correct


@functools.partial(jax.jit, static_argnames=("batch_size", "min_len", "max_len"))
def adding_batch(key: jax.Array, batch_size: int, min_len: int, max_len: int):
    """`(inputs (T, B, 2), lengths (B,), targets (B,))`, zero past each length, `T = max_len`.

    >>> xs, lengths, ys = adding_batch(jax.random.key(0), 4, min_len=5, max_len=9)
    >>> xs.shape, lengths.shape, ys.shape, [int(m) for m in xs[..., 1].sum(axis=0)]
    ((9, 4, 2), (4,), (4,), [2, 2, 2, 2])
    """
    if not 2 <= min_len <= max_len:
        raise ValueError(f"need 2 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    k_len, k_val, k_first, k_second = jax.random.split(key, 4)
    lengths = jax.random.randint(k_len, (batch_size,), min_len, max_len + 1, dtype=jnp.int32)
    first = jax.random.randint(k_first, (batch_size,), 0, lengths // 2)
    second = jax.random.randint(k_second, (batch_size,), lengths // 2, lengths)
    steps = jnp.arange(max_len, dtype=jnp.int32)[:, None]
    values = jax.random.uniform(k_val, (max_len, batch_size))
    values = jnp.where(steps < lengths[None], values, jnp.zeros_like(values))
    markers = (steps == first[None]) | (steps == second[None])
    inputs = jnp.stack([values, markers.astype(values.dtype)], axis=-1)
    return inputs, lengths, jnp.sum(jnp.where(markers, values, jnp.zeros_like(values)), axis=0)


def init_params(key: jax.Array, cell: jr.Cell) -> dict:
    """`{"cell": the cell's params for input size 2, "head": {"w": (H,), "b": ()}}`.

    >>> p = init_params(jax.random.key(0), jr.gru(8))
    >>> p["cell"]["w_x"].shape, p["head"]["w"].shape
    ((2, 24), (8,))
    """
    k_cell, k_head = jax.random.split(key)
    w = jax.random.normal(k_head, (cell.hidden_size,)) / math.sqrt(cell.hidden_size)
    return {"cell": cell.init(k_cell, input_size=2), "head": {"w": w, "b": jnp.ones(())}}


def predict(cell: jr.Cell, params: dict, inputs: jax.Array, lengths: jax.Array) -> jax.Array:
    """Predicted sums `(B,)` of padded `inputs (T, B, 2)` with `lengths (B,)`.

    >>> xs, lengths, _ = adding_batch(jax.random.key(0), 3, min_len=4, max_len=6)
    >>> predict(jr.lstm(8), init_params(jax.random.key(1), jr.lstm(8)), xs, lengths).shape
    (3,)
    """
    _, hs = jr.unroll(cell, params["cell"], inputs, lengths=lengths)
    last = jr.last_valid(hs, lengths)  # (B, H): each sequence's output at its last step
    return last @ params["head"]["w"] + params["head"]["b"]


def loss_fn(cell: jr.Cell, params: dict, batch: tuple, key=None) -> jax.Array:
    """Mean squared error of the predictions of `batch = (inputs, lengths, targets)`."""
    inputs, lengths, targets = batch
    return jnp.mean((predict(cell, params, inputs, lengths) - targets) ** 2)


@functools.partial(jax.jit, static_argnames="cell")
def evaluate(params: dict, cell: jr.Cell, batch: tuple) -> dict:
    """Held-out `test_mse` and `test_accuracy` (the share within `TOLERANCE`) on `batch`."""
    inputs, lengths, targets = batch
    error = predict(cell, params, inputs, lengths) - targets
    return {"test_mse": jnp.mean(error**2), "test_accuracy": jnp.mean(jnp.abs(error) < TOLERANCE)}


def make_optimizer(lr: float, clip: float, decay_steps: int) -> optax.GradientTransformation:
    """Adam after clipping the gradients to norm `clip`, at `lr` for `decay_steps` steps,
    then smoothly ten times lower every `decay_steps` (a function of the step alone)."""
    rate = optax.exponential_decay(lr, decay_steps, 0.1, transition_begin=decay_steps)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(rate))


def decimal_log_ticks(axis) -> None:
    """Label a log-scaled matplotlib `axis` 0.01, 0.1 (not 10⁻²), and 0.02, 0.05 between
    its decades when it spans fewer than three."""
    from matplotlib.ticker import FuncFormatter

    def label(y: float, _: int | None = None) -> str:
        return np.format_float_positional(y, precision=3, fractional=False, trim="-")

    def minor(y: float, _: int | None) -> str:
        low, high = axis.get_view_interval()
        return label(y) if high < 1000 * low and f"{y:.0e}"[0] in "25" else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(minor))


def positive_int(text: str) -> int:
    if int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


parser = argparse.ArgumentParser(
    "classify.py",
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    description=__doc__.split("\n\n")[0],
)
parser.add_argument("--min-len", type=positive_int, default=10, help="shortest sequence, >= 2")
parser.add_argument("--max-len", type=positive_int, default=60, help="longest sequence")
parser.add_argument("--batch-size", type=positive_int, default=64, help="sequences per step")
parser.add_argument("--test-size", type=positive_int, default=2000, help="held-out sequences")
parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="recurrent cell")
parser.add_argument("--hidden", type=positive_int, default=64, help="hidden size")
parser.add_argument("--steps", type=positive_int, default=2000, help="steps in all, if resumed")
parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate at first")
parser.add_argument("--lr-decay-steps", type=positive_int, default=1000, help="steps per lr level")
parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
parser.add_argument("--seed", type=int, default=0, help="seed of the init and the batches")
parser.add_argument("--log-every", type=positive_int, default=100, help="log and evaluate")
parser.add_argument("--out", type=Path, help="write checkpoints, metrics.json and a plot here")
parser.add_argument("--checkpoint-every", type=positive_int, default=500, help="with --out")
parser.add_argument("--resume", action="store_true", help="continue the run in --out")
MODEL_OPTIONS = ("cell", "hidden", "min_len", "max_len", "batch_size", "test_size", "lr")
MODEL_OPTIONS += ("lr_decay_steps", "clip", "seed")
NOTHING_SAVED = "nothing was saved (--out DIR keeps checkpoints that --resume continues)"


def main(argv: list[str] | None = None) -> dict:
    """Train and evaluate as `argv` says; returns the metrics it writes to metrics.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, start = parser.parse_args(argv), time.perf_counter()
    if not 2 <= args.min_len <= args.max_len:
        parser.error(f"need 2 <= --min-len <= --max-len, got {args.min_len} and {args.max_len}")
    cell = jr.lstm(args.hidden) if args.cell == "lstm" else jr.gru(args.hidden)
    init_key, data_key, train_key, test_key = jax.random.split(jax.random.key(args.seed), 4)
    test_batch = adding_batch(test_key, args.test_size, args.min_len, args.max_len)
    optimizer = make_optimizer(args.lr, args.clip, args.lr_decay_steps)
    sizes = (args.batch_size, args.min_len, args.max_len)
    try:
        result = jr.train.fit(
            jr.train.init_state(init_params(init_key, cell), optimizer, train_key),
            jr.train.make_train_step(functools.partial(loss_fn, cell), optimizer),
            lambda step: adding_batch(jax.random.fold_in(data_key, step), *sizes),
            steps=args.steps,
            log_every=args.log_every,
            evaluate=lambda params: evaluate(params, cell, test_batch),
            eval_every=args.log_every,
            checkpoint_dir=args.out and args.out / "checkpoints",
            checkpoint_every=args.checkpoint_every,
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

    final = {k: float(v) for k, v in evaluate(result.state.params, cell, test_batch).items()}
    final["baseline_mse"] = float(jnp.mean((1.0 - test_batch[2]) ** 2))  # of predicting 1
    print(
        f"\nheld-out MSE {final['test_mse']:.3g} (predicting 1: {final['baseline_mse']:.3g}), "
        f"accuracy (|error| < {TOLERANCE}) {final['test_accuracy']:.3f}"
    )
    metrics = {
        "steps": int(result.state.step),
        "train_loss": result.history[-1]["train_loss"],
        **final,
        "wall_time_s": time.perf_counter() - start,
        "resumed_from_step": result.resumed_from,
        "checkpoint": result.checkpoint,
        "history": result.history,
        "config": vars(args),
    }
    if args.out is not None:
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        from matplotlib.figure import Figure

        ax = Figure(figsize=(7, 4)).subplots()
        steps = np.arange(1, len(result.losses) + 1)
        ax.plot(steps, result.losses, lw=0.5, label="training batches")
        tested = [(h["step"], h["test_mse"]) for h in result.history if "test_mse" in h]
        ax.plot(*zip(*tested, strict=True), "o-", label="held-out sequences")
        ax.axhline(final["baseline_mse"], color="gray", ls="--", label="predicting 1")
        ax.set(xlabel="step", ylabel="mean squared error", yscale="log")
        cell_name = f"{args.cell.upper()} {args.hidden}"
        ax.set(title=f"Adding problem, lengths {args.min_len} to {args.max_len}, {cell_name}")
        decimal_log_ticks(ax.yaxis)
        ax.legend()
        ax.figure.savefig(args.out / "loss_curve.png")
    return metrics


if __name__ == "__main__":
    main()
