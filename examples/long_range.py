"""Long-range memory: the adding problem over 1000 steps, minGRU beside an LSTM.

Each sequence has `--length` steps of two features, a random value in [0, 1) and a
marker that is 1 at one step of each half; the target, read after the last step, is
the sum of the two marked values (Hochreiter & Schmidhuber, 1997). Predicting 1 scores
a mean squared error of about 1/6; doing better needs a memory of up to T steps.

    inputs (T, batch, 2) -> jr.unroll(cell) -> h_T (batch, H) -> dense -> prediction (batch,)

The cells train one after the other on the same batches. minGRU's state is a linear
recurrence (a few elementwise operations a step, no recurrent matmul). Every cell starts
with the chrono initialisation (Tallec & Ollivier, 2018): the gate that keeps the state
keeps about 1 - 1/T of it per step. With --out DIR each cell keeps its checkpoints in
DIR/checkpoints/CELL (--resume goes on with every cell, bit for bit), and DIR/metrics.json
and DIR/loss.png are written at the end.

    python examples/long_range.py           # 97 to 164 s on two CPU cores
    python examples/long_range.py --cells min_gru --steps 400 --out runs/long_range
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

CELLS = {"min_gru": jr.min_gru, "min_lstm": jr.min_lstm, "lstm": jr.lstm, "gru": jr.gru}
CHRONO = {  # per cell: the gate block that keeps the state, and the sign of its bias
    "min_gru": (0, -1.0),  # update gate z: h = (1 - z) h + z h~
    "min_lstm": (1, -1.0),  # input gate i: f / (f + i) near 1
    "lstm": (1, 1.0),  # forget gate f
    "gru": (1, 1.0),  # update gate z: h = (1 - z) n + z h
}


@functools.partial(jax.jit, static_argnames=("batch_size", "length"))
def adding_batch(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """`(inputs (T, B, 2), targets (B,))`: values and markers, and the marked values' sums.

    >>> xs, ys = adding_batch(jax.random.key(0), 4, 10)
    >>> xs.shape, ys.shape, [int(m) for m in xs[..., 1].sum(axis=0)]
    ((10, 4, 2), (4,), [2, 2, 2, 2])
    """
    k_val, k_first, k_second = jax.random.split(key, 3)
    first = jax.random.randint(k_first, (batch_size,), 0, length // 2)
    second = jax.random.randint(k_second, (batch_size,), length // 2, length)
    steps = jnp.arange(length)[:, None]
    markers = (steps == first[None]) | (steps == second[None])
    values = jax.random.uniform(k_val, (length, batch_size))
    inputs = jnp.stack([values, markers.astype(values.dtype)], axis=-1)
    return inputs, jnp.sum(jnp.where(markers, values, jnp.zeros_like(values)), axis=0)


def init_params(key: jax.Array, name: str, cell: jr.Cell, length: int) -> dict:
    """The cell's params (input size 2) with the chrono-initialised gate, and a dense head.

    >>> p = init_params(jax.random.key(0), "min_gru", jr.min_gru(8), 1000)
    >>> round(float(jax.nn.sigmoid(p["cell"]["b"][0])), 4)  # z starts at 1/1000
    0.001
    """
    k_cell, k_head = jax.random.split(key)
    params, H = cell.init(k_cell, input_size=2), cell.hidden_size
    block, sign = CHRONO[name]
    params["b"] = params["b"].at[block * H : (block + 1) * H].set(sign * math.log(length - 1))
    head = {"w": jax.random.normal(k_head, (H,)) / math.sqrt(H), "b": jnp.ones(())}
    return {"cell": params, "head": head}  # the head starts at the mean target, 1


def predict(cell: jr.Cell, params: dict, inputs: jax.Array) -> jax.Array:
    """Predicted sums `(B,)` of `inputs (T, B, 2)`, read from the last output."""
    _, hs = jr.unroll(cell, params["cell"], inputs)
    return hs[-1] @ params["head"]["w"] + params["head"]["b"]


def loss_fn(cell: jr.Cell, params: dict, batch: tuple, key=None) -> jax.Array:
    """Mean squared error on `batch = (inputs, targets)`."""
    inputs, targets = batch
    return jnp.mean((predict(cell, params, inputs) - targets) ** 2)


@functools.partial(jax.jit, static_argnames="cell")
def evaluate(params: dict, cell: jr.Cell, batch: tuple) -> dict:
    """Held-out `test_mse` and `test_accuracy` (the share with |error| < 0.04) on `batch`."""
    inputs, targets = batch
    error = predict(cell, params, inputs) - targets
    return {"test_mse": jnp.mean(error**2), "test_accuracy": jnp.mean(jnp.abs(error) < 0.04)}


@functools.cache  # one cell (so one compiled step) per name and size in a process
def make_cell(name: str, hidden_size: int) -> jr.Cell:
    return CELLS[name](hidden_size)


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


parser = argparse.ArgumentParser("long_range.py", description=__doc__.split("\n\n")[0])
parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
parser.add_argument("--length", type=positive_int, default=1000, help="sequence length, >= 2")
parser.add_argument("--batch-size", type=positive_int, default=32, help="sequences per step")
parser.add_argument("--test-size", type=positive_int, default=500, help="held-out sequences")
parser.add_argument(
    "--cells", nargs="+", choices=list(CELLS), default=["min_gru", "lstm"], help="to train"
)
parser.add_argument("--hidden", type=positive_int, default=64, help="hidden size of every cell")
parser.add_argument("--steps", type=positive_int, default=800, help="steps in all, if resumed")
parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
parser.add_argument("--seed", type=int, default=0, help="seed of the init and the batches")
parser.add_argument("--log-every", type=positive_int, default=100, help="log and evaluate")
parser.add_argument("--out", type=Path, metavar="DIR", help="write checkpoints, metrics, a plot")
parser.add_argument("--resume", action="store_true", help="continue every cell's run in --out")
MODEL_OPTIONS = ("length", "batch_size", "test_size", "hidden", "lr", "seed")
NOTHING_SAVED = "nothing was saved (--out DIR keeps checkpoints that --resume continues)"


def main(argv: list[str] | None = None) -> dict:
    """Train each cell as `argv` says; returns `{"cells": {name: metrics}, "config": ...}`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, start = parser.parse_args(argv), time.perf_counter()
    if args.length < 2:
        parser.error(f"--length must be at least 2 (one marker per half), got {args.length}")
    init_key, train_key, test_key = jax.random.split(jax.random.key(args.seed), 3)
    test_batch = adding_batch(test_key, args.test_size, args.length)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    sizes, results = (args.batch_size, args.length), {}
    for name in args.cells:
        cell, cell_start = make_cell(name, args.hidden), time.perf_counter()
        params = init_params(init_key, name, cell, args.length)
        linear = isinstance(cell.step, jr.LinearStep)  # h = a * h + b, a and b from the input
        scan = "parallel" if linear and jr.default_parallel() else "sequential"
        kind = "linear" if linear else "nonlinear"
        print(f"== {name}: {kind} recurrence, {scan} scan on {jax.default_backend()} ==")
        try:
            result = jr.train.fit(
                jr.train.init_state(params, optimizer, train_key),
                jr.train.make_train_step(functools.partial(loss_fn, cell), optimizer),
                lambda step: adding_batch(jax.random.fold_in(train_key, step), *sizes),
                steps=args.steps,
                log_every=args.log_every,
                evaluate=functools.partial(evaluate, cell=cell, batch=test_batch),
                eval_every=args.log_every,
                checkpoint_dir=args.out and args.out / "checkpoints" / name,
                checkpoint_every=200,
                resume=args.resume,
                config={option: getattr(args, option) for option in MODEL_OPTIONS},
                description=name,
            )
        except jr.train.ResumeError as e:  # refused before the first step: --out, --resume, --steps
            below = f"--steps {args.steps} is below {e.step}, the step of the checkpoint in --out"
            parser.error(below if e.step else str(e))
        except jr.train.NonFiniteLossError as e:
            print(f"\nerror: {name}: {e}", file=sys.stderr)
            sys.exit(1)
        except jr.train.TrainingInterrupted as e:  # Ctrl-C; fit saved a checkpoint if it had --out
            again = argv if "--resume" in argv else [*argv, "--resume"]
            hint = f"resume with: {shlex.join(['python', sys.argv[0], *again])}"
            print(f"\n{e}\n{hint if e.checkpoint else NOTHING_SAVED}", file=sys.stderr)
            sys.exit(130)
        final = evaluate(result.state.params, cell, test_batch)
        results[name] = {
            "steps": int(result.state.step),
            "train_loss": result.history[-1]["train_loss"],
            **{key: float(value) for key, value in final.items()},
            "baseline_mse": float(jnp.mean((1.0 - test_batch[1]) ** 2)),  # of predicting 1
            "train_time_s": time.perf_counter() - cell_start,
            "resumed_from_step": result.resumed_from,
            "checkpoint": result.checkpoint,
            "history": result.history,
            "losses": result.losses.tolist(),
        }
    print("\nheld out:")
    for name, r in results.items():
        print(
            f"{name:>9}: MSE {r['test_mse']:.4f} (predicting 1: {r['baseline_mse']:.4f}), "
            f"accuracy {r['test_accuracy']:.3f}; trained in {r['train_time_s']:.0f} s"
        )
    summary = {"cells": results, "config": vars(args), "wall_time_s": time.perf_counter() - start}
    if args.out is not None:
        (args.out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
        from matplotlib.figure import Figure

        ax = Figure(figsize=(7, 4)).subplots()
        for index, (name, r) in enumerate(results.items()):
            steps = np.arange(1, len(r["losses"]) + 1)
            ax.plot(steps, r["losses"], f"C{index}", alpha=0.3, lw=0.8, label=f"{name}, training")
            tested = [(h["step"], h["test_mse"]) for h in r["history"] if "test_mse" in h]
            ax.plot(*zip(*tested, strict=True), f"C{index}o-", label=f"{name}, held out")
        ax.axhline(r["baseline_mse"], color="gray", ls="--", label="predicting 1")
        ax.set(xlabel="step", ylabel="mean squared error", yscale="log")
        cells = " and ".join(results)
        ax.set(title=f"Adding problem over T = {args.length} steps: {cells}, hidden {args.hidden}")
        decimal_log_ticks(ax.yaxis)
        ax.legend()
        ax.figure.savefig(args.out / "loss.png")
    print(f"wall time {summary['wall_time_s']:.0f} s")
    return summary


if __name__ == "__main__":
    main()
