"""Command-line pieces shared by the example scripts.

The argument types make argparse report a bad value by name; `add_optimizer_arguments`
and `add_output_arguments` add the options every training script has, and
`start_or_resume` / `fit_or_exit` wrap `jaxrnn.train` the way every script uses it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

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


def add_output_arguments(group: argparse._ArgumentGroup, *, checkpoint_every: int) -> None:
    """Add `--out`, `--resume` and `--checkpoint-every`."""
    group.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write checkpoints (DIR/checkpoints), plots and metrics.json here "
        "(default: write nothing)",
    )
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


def check_output_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error when `--out` and `--resume` do not fit together."""
    if args.resume and args.out is None:
        parser.error("--resume needs --out DIR: the folder that holds the run's checkpoints")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")


def start_or_resume(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    fresh: jr.train.TrainState,
    config: dict[str, Any],
) -> tuple[jr.train.TrainState, jr.train.Restored | None]:
    """The state to train from: `fresh`, or with `--resume` the newest checkpoint in `--out`.

    `config` holds the options that shape the model and its data; a checkpoint
    saved with other values cannot be resumed, and the usage error names them.
    Without `--resume`, a `--out` that already holds checkpoints is refused
    rather than mixed with a new run.
    """
    if args.out is None:
        return fresh, None
    directory = args.out / "checkpoints"
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
