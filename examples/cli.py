"""Command-line pieces shared by the example scripts.

The argument types make argparse report a bad value by name; `add_optimizer_arguments`
and `add_output_arguments` add the options every training script has; `train` runs
`jaxrnn.train.fit` the way every script uses it (resuming from `--out`, checkpointing
there, exiting cleanly on Ctrl-C or a diverged loss) and `finish` writes the metrics
and the loss curve.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optax
from plots import save_loss_curve

import jaxrnn as jr


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_optimizer_arguments(group: argparse._ArgumentGroup, *, steps: int) -> None:
    """Add `--steps`, `--lr`, `--clip` and `--seed` (Adam with global-norm clipping)."""
    group.add_argument(
        "--steps",
        type=positive_int,
        default=steps,
        metavar="N",
        help="optimizer steps (default: %(default)s)",
    )
    group.add_argument(
        "--lr",
        type=positive_float,
        default=3e-3,
        metavar="X",
        help="Adam learning rate (default: %(default)s)",
    )
    group.add_argument(
        "--clip",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="clip gradients to this global norm (default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="seed of the data and of every PRNG key (default: %(default)s)",
    )


def add_out_argument(group: argparse._ArgumentGroup, *, what: str) -> None:
    """Add `--out DIR`, the folder the script writes `what` to."""
    group.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"write {what} here (default: write nothing)",
    )


def add_output_arguments(group: argparse._ArgumentGroup, *, checkpoint_every: int) -> None:
    """Add `--out`, `--resume` and `--checkpoint-every`."""
    add_out_argument(group, what="checkpoints (DIR/checkpoints), plots and metrics.json")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose checkpoints are in --out DIR, up to --steps in all; "
        "the result is the same as if it had never stopped",
    )
    group.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=checkpoint_every,
        metavar="N",
        help="with --out, save a checkpoint every N steps, at the end and on Ctrl-C "
        "(default: %(default)s)",
    )


def check_out_argument(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error when `--out` names something that is not a folder."""
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")


def check_output_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error when `--out` and `--resume` do not fit together."""
    if args.resume and args.out is None:
        parser.error("--resume needs --out DIR: the folder that holds the run's checkpoints")
    check_out_argument(parser, args)


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as JSON values (paths as strings), for metrics and checkpoints."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


# Cached: jit keys compiled steps on the optimizer, so repeated runs in one process
# (tests, notebooks) with the same settings compile once.
@functools.cache
def make_optimizer(
    learning_rate: float, max_norm: float, decay_steps: int | None = None
) -> optax.GradientTransformation:
    """Adam after clipping the gradients' global norm to `max_norm`.

    With `decay_steps`, the learning rate stays at `learning_rate` for that many
    steps, then falls smoothly by a factor of ten every `decay_steps` steps. The
    schedule depends on the step count alone (not on `--steps`), so a resumed run
    continues it exactly.
    """
    if decay_steps is None:
        rate: float | optax.Schedule = learning_rate
    else:
        rate = optax.exponential_decay(
            learning_rate,
            transition_steps=decay_steps,
            decay_rate=0.1,
            transition_begin=decay_steps,
        )
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(rate))


def checkpoint_dir(args: argparse.Namespace, name: str | None = None) -> Path | None:
    """Where a run keeps its checkpoints: `--out DIR/checkpoints[/name]`, or None."""
    if args.out is None:
        return None
    return args.out / "checkpoints" if name is None else args.out / "checkpoints" / name


def start_or_resume(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    fresh: jr.train.TrainState,
    config: dict[str, Any],
    name: str | None = None,
) -> tuple[jr.train.TrainState, jr.train.Restored | None]:
    """The state to train from: `fresh`, or with `--resume` the newest checkpoint in `--out`.

    `config` holds the options that shape the model and its data; a checkpoint
    saved with other values cannot be resumed, and the usage error names them.
    Without `--resume`, a `--out` that already holds checkpoints is refused
    rather than mixed with a new run. `name` tells apart several models trained
    by one script (each in its own `checkpoints/name` folder).
    """
    directory = checkpoint_dir(args, name)
    if directory is None:
        return fresh, None
    path = jr.checkpoint.latest(directory)
    if path is None:
        if args.resume:
            print(f"no checkpoint in {directory}: starting from step 0")
        return fresh, None
    saved = jr.checkpoint.read_metadata(path).get("user", {}).get("config", {})
    if not args.resume:
        parser.error(
            f"--out {str(args.out)!r} already holds a run (checkpoint {path.name}); "
            "pass --resume to continue it, or choose another --out"
        )
    differ = [
        f"--{k.replace('_', '-')} {saved.get(k)!r} (now {v!r})"
        for k, v in config.items()
        if saved.get(k) != v
    ]
    if differ:
        parser.error(
            "--resume: the checkpoint was made with other settings: "
            + ", ".join(differ)
            + "; use the same ones or another --out"
        )
    try:
        restored = jr.train.restore(path, like=fresh)
    except ValueError as e:
        parser.error(f"--resume: {e}")
    print(f"resuming from {restored.path} (step {int(restored.state.step)})")
    return restored.state, restored


def fit_or_exit(script: str, args: argparse.Namespace, **fit_kwargs: Any) -> jr.train.FitResult:
    """`jaxrnn.train.fit(**fit_kwargs)`, turning Ctrl-C and a diverged loss into clean exits.

    Ctrl-C exits with status 130 after the checkpoint is saved, printing the
    command that resumes; a NaN or infinite loss exits with status 1 and the
    step it happened at.
    """
    try:
        return jr.train.fit(**fit_kwargs)
    except jr.train.TrainingInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        if e.checkpoint is not None:
            print(
                f"resume with: python {script} --out {args.out} --resume [same options]",
                file=sys.stderr,
            )
        sys.exit(130)
    except jr.train.NonFiniteLossError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(1)


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path:
    """Write `metrics` to `out/metrics.json`, paths and NumPy scalars as JSON values."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"cannot write {type(value).__name__} to JSON")

    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, default=plain) + "\n")
    return path


class Trained(NamedTuple):
    """What `train` returns: the `fit` result, the checkpoint it resumed from, timings."""

    result: jr.train.FitResult
    restored: jr.train.Restored | None
    train_time_s: float
    config: dict[str, Any]

    def final(self, evaluate: Callable[[Any], dict[str, float]], key: str) -> dict[str, float]:
        """The last evaluation: the last log entry if it has `key`, else `evaluate(params)`.

        A resumed run that had already reached `--steps` trained no step, so it
        evaluates here.
        """
        last = self.result.history[-1] if self.result.history else {}
        return last if key in last else evaluate(self.result.state.params)


def train(
    script: str,
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    fresh: jr.train.TrainState,
    model_options: Sequence[str],
    *,
    name: str | None = None,
    **fit_kwargs: Any,
) -> Trained:
    """Train from `fresh`, or resume from `--out`, up to `--steps`, as every script does.

    Checkpoints go to `--out DIR/checkpoints` every `--checkpoint-every` steps with
    the `model_options` (the options a resumed run must share) as metadata; a
    resumed run with other values of those is refused with a usage error. Ctrl-C
    and a non-finite loss end the process (see `fit_or_exit`).

    Args:
      script: the script's path as the user runs it, for the resume hint.
      parser: the script's parser, for usage errors.
      args: the parsed options; uses `steps`, `log_every`, `out`, `resume` and
        `checkpoint_every`.
      fresh: the state of a new run.
      model_options: names of options in `args` that define the model and data.
      name: for a script that trains several models, this one's name: its
        checkpoints go to `--out DIR/checkpoints/name` and its progress bar is
        labelled with it.
      **fit_kwargs: `step_fn`, `batches`, and optionally `evaluate`, `eval_every`,
        `progress` for `jaxrnn.train.fit`.
    """
    config = config_of(args)
    model_config = {k: config[k] for k in model_options}
    state, restored = start_or_resume(parser, args, fresh, model_config, name)
    if name is not None:
        fit_kwargs.setdefault("description", name)
    start = time.perf_counter()
    result = fit_or_exit(
        script,
        args,
        state=state,
        steps=args.steps,
        log_every=args.log_every,
        checkpoint_dir=checkpoint_dir(args, name),
        checkpoint_every=args.checkpoint_every,
        resume_from=restored,
        metadata={"config": model_config},
        **fit_kwargs,
    )
    return Trained(result, restored, time.perf_counter() - start, config)


def finish(
    args: argparse.Namespace,
    trained: Trained,
    start: float,
    task_metrics: dict[str, Any],
    **plot_kwargs: Any,
) -> dict[str, Any]:
    """The run's metrics; with `--out`, also written to metrics.json and a loss_curve.png.

    Args:
      args: the parsed options (uses `out`).
      trained: what `train` returned.
      start: `time.perf_counter()` at the start of the run.
      task_metrics: the script's own final metrics.
      **plot_kwargs: `plots.save_loss_curve` options (`title`, `ylabel`, ...).

    Returns:
      `steps`, `train_loss` (the mean over the last logged interval), then
      `task_metrics`, then `wall_time_s`, `train_time_s`, `resumed_from_step`,
      `history`, `checkpoint` and `config`.
    """
    result, restored = trained.result, trained.restored
    metrics: dict[str, Any] = {
        "steps": int(result.state.step),
        "train_loss": result.history[-1]["train_loss"],
        **task_metrics,
        "wall_time_s": time.perf_counter() - start,
        "train_time_s": trained.train_time_s,
        "resumed_from_step": None if restored is None else int(restored.state.step),
        "history": result.history,
        "checkpoint": result.checkpoint,
        "config": trained.config,
    }
    if args.out is not None:
        metrics_path = write_metrics(args.out, metrics)
        plot = save_loss_curve(
            args.out / "loss_curve.png", result.losses, result.history, **plot_kwargs
        )
        print(f"wrote {metrics_path}, {plot} and {result.checkpoint}")
    print(f"wall time {metrics['wall_time_s']:.1f} s (training {trained.train_time_s:.1f} s)")
    return metrics
