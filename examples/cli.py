"""Command-line pieces shared by the example scripts.

The argument types make argparse report a bad value by name; `add_optimizer_arguments`
adds the options every training script has.
"""

from __future__ import annotations

import argparse
import math


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
