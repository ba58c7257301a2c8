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

Training goes through `jaxrnn.train`: Adam after clipping the global gradient norm,
at `--lr` for `--lr-decay-steps` steps and then ten times lower every
`--lr-decay-steps` more (without the decay, the last steps' loss spikes make the final
accuracy depend on luck). Each step's batch is drawn from the seed and the step
number alone. With `--out DIR`
the run keeps checkpoints in DIR/checkpoints (every `--checkpoint-every` steps, at
the end, and on Ctrl-C) and writes DIR/metrics.json and DIR/loss_curve.png;
`--resume` continues it bit for bit. A NaN loss stops the run with the step it
happened at.

Run it with the defaults (about 30 s on two CPU cores; LSTM held-out accuracy about 0.99):

    python examples/classify.py
    python examples/classify.py --cell gru --max-len 80 --steps 3000 --out runs/adding
    python examples/classify.py --cell gru --max-len 80 --steps 6000 --out runs/adding --resume
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
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


def loss_fn(
    cell: jr.Cell, params: Params, batch: tuple[Array, Array, Array], key: Array | None = None
) -> Array:
    """Mean squared error of the predictions on `batch = (inputs, lengths, targets)`.

    `key` is unused (the model has no dropout); it is there for `jaxrnn.train`.
    """
    inputs, lengths, targets = batch
    return jnp.mean((predict(cell, params, inputs, lengths) - targets) ** 2)


@functools.partial(jax.jit, static_argnames=("batch_size", "min_len", "max_len"))
def batch_at(
    key: Array, step: int | Array, batch_size: int, min_len: int, max_len: int
) -> tuple[Array, Array, Array]:
    """The batch `(inputs, lengths, targets)` that training step `step` uses.

    Each step draws from `jax.random.fold_in(key, step)`, so a resumed run sees
    exactly the batches it would have seen without stopping.

    Examples:
      >>> a = batch_at(jax.random.key(0), 3, batch_size=2, min_len=4, max_len=6)
      >>> b = batch_at(jax.random.key(0), 3, batch_size=2, min_len=4, max_len=6)
      >>> bool(jnp.all(a[0] == b[0])), a[0].shape
      (True, (6, 2, 2))
    """
    return adding_batch(jax.random.fold_in(key, step), batch_size, min_len, max_len)


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
            "Same --seed, same run: the init and every batch come from keys split off the "
            "seed. With --out DIR the script writes checkpoints to DIR/checkpoints (every "
            "--checkpoint-every steps, at the end and on Ctrl-C), DIR/metrics.json (final "
            "train and held-out MSE, baseline, accuracy, steps, wall time and the logged "
            "curve) and DIR/loss_curve.png; --resume continues such a run exactly where it "
            "stopped."
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
    training = parser.add_argument_group("training")
    add_optimizer_arguments(training, steps=2000)
    training.add_argument(
        "--lr-decay-steps",
        type=positive_int,
        default=1000,
        metavar="N",
        help="train at --lr for N steps, then lower it tenfold every N steps "
        "(default: %(default)s)",
    )
    training.add_argument(
        "--log-every",
        type=positive_int,
        default=100,
        metavar="N",
        help="log and evaluate every N steps (default: %(default)s)",
    )
    add_output_arguments(parser.add_argument_group("output"), checkpoint_every=500)
    return parser


# Cached: jit keys compiled code on these static arguments, so repeated runs in one
# process (tests, notebooks) with the same settings compile once.
@functools.cache
def make_cell(kind: str, hidden_size: int) -> jr.Cell:
    """`jaxrnn.lstm(hidden_size)` or `jaxrnn.gru(hidden_size)`."""
    return jr.lstm(hidden_size) if kind == "lstm" else jr.gru(hidden_size)


@functools.cache
def make_step(
    kind: str, hidden_size: int, learning_rate: float, max_norm: float, decay_steps: int
) -> jr.train.StepFn:
    """The jitted train step `(state, batch) -> (state, loss)`."""
    return jr.train.make_train_step(
        functools.partial(loss_fn, make_cell(kind, hidden_size)),
        make_optimizer(learning_rate, max_norm, decay_steps),
    )


MODEL_OPTIONS = (
    "cell", "hidden", "min_len", "max_len", "batch_size", "test_size", "lr", "clip",
    "lr_decay_steps", "seed",
)  # fmt: skip
"""The options a resumed run must share with the run it continues."""


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) and evaluate as `args` says; returns the final metrics."""
    start = time.perf_counter()
    cell = make_cell(args.cell, args.hidden)
    init_key, data_key, train_key, test_key = jax.random.split(jax.random.key(args.seed), 4)
    params = init_params(init_key, cell)
    test_batch = adding_batch(test_key, args.test_size, args.min_len, args.max_len)
    print(
        f"adding problem: lengths {args.min_len}..{args.max_len}, {args.cell} hidden "
        f"{args.hidden}, {sum(x.size for x in jax.tree.leaves(params)):,} parameters"
    )

    def held_out(params: Params) -> dict[str, float]:
        m = evaluate(params, cell, test_batch)
        return {
            "test_mse": float(m["mse"]),
            "baseline_mse": float(m["baseline_mse"]),
            "test_accuracy": float(m["accuracy"]),
        }

    trained = train(
        "examples/classify.py",
        build_parser(),
        args,
        jr.train.init_state(
            params, make_optimizer(args.lr, args.clip, args.lr_decay_steps), train_key
        ),
        MODEL_OPTIONS,
        step_fn=make_step(args.cell, args.hidden, args.lr, args.clip, args.lr_decay_steps),
        batches=lambda step: batch_at(data_key, step, args.batch_size, args.min_len, args.max_len),
        evaluate=held_out,
        eval_every=args.log_every,
    )
    final = trained.final(held_out, "test_mse")
    print(
        f"\nheld-out MSE {final['test_mse']:.4f} vs baseline {final['baseline_mse']:.4f}; "
        f"accuracy (|error| < {TOLERANCE}) {final['test_accuracy']:.3f}"
    )
    return finish(
        args,
        trained,
        start,
        {k: final[k] for k in ("test_mse", "baseline_mse", "test_accuracy")},
        title=f"Adding problem (many-to-one); predicting 1 scores {final['baseline_mse']:.3f}",
        ylabel="mean squared error",
        eval_key="test_mse",
        eval_label="held-out MSE",
        log_scale=True,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv` (default: `sys.argv[1:]`), train and evaluate.

    Args:
      argv: command-line arguments, as `python examples/classify.py --help` lists them.

    Returns:
      The final metrics: `steps`, `train_loss` (mean over the last logged
      interval), `test_mse`, `baseline_mse`, `test_accuracy`, `wall_time_s`,
      `train_time_s`, `resumed_from_step`, `history` (the logged entries),
      `checkpoint` (the last one written, or None) and `config`.

    Raises:
      SystemExit: bad arguments (status 2, with a usage message on stderr),
        `--help`, Ctrl-C (status 130, after saving a checkpoint) or a
        non-finite loss (status 1, naming the step).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_len < 2:
        parser.error(f"--min-len must be at least 2 (one marker per half), got {args.min_len}")
    if args.max_len < args.min_len:
        parser.error(f"--max-len ({args.max_len}) must be at least --min-len ({args.min_len})")
    check_output_arguments(parser, args)
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
