"""Benchmark: autodiff through `lax.scan` against the hand-derived BPTT.

Times one jitted training step, `jax.value_and_grad` of a sum-of-squares loss
through `jaxrnn.unroll`, with `grad="autodiff"` and with `grad="bptt"`, on the
same inputs in the same process, and prints a markdown table: the median (and
minimum) milliseconds of each, their ratio (above 1 means BPTT is faster) and
the largest relative difference between the two gradients,
`max |g_autodiff - g_bptt| / max |g_autodiff|` over the parameter arrays.

Run `python bench/bptt.py --help` for the options; `--quick` runs tiny sizes
as a smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn as jr


class Workload(NamedTuple):
    name: str
    cell: Callable[[int], jr.Cell]
    batch: int
    steps: int
    input_size: int
    hidden_size: int


WORKLOADS = [
    Workload("lstm", jr.lstm, 64, 200, 128, 256),
    Workload("gru", jr.gru, 64, 200, 128, 256),
    Workload("gru_original", lambda h: jr.gru(h, reset_after=False), 64, 200, 128, 256),
    Workload("rnn_tanh", jr.rnn, 32, 100, 64, 128),
    Workload("lstm_long", jr.lstm, 8, 2000, 32, 64),
]


def train_step(cell: jr.Cell, grad: str) -> Callable:
    """A jitted `(params, xs, targets) -> (loss, grads)` through `unroll(..., grad=grad)`."""

    def loss(params, xs, targets):
        _, hs = jr.unroll(cell, params, xs, grad=grad)
        return 0.5 * jnp.sum((hs - targets) ** 2)

    return jax.jit(jax.value_and_grad(loss))


def time_ms(fn: Callable, args: tuple, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(1e3 * (time.perf_counter() - start))
    return times


def max_relative_difference(reference, other) -> float:
    worst = 0.0
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(other), strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30)))
    return worst


def run(workload: Workload, scale: float, warmup: int, runs: int, seed: int) -> dict:
    batch = max(1, round(workload.batch * scale))
    steps = max(1, round(workload.steps * scale))
    input_size = max(1, round(workload.input_size * scale))
    hidden = max(1, round(workload.hidden_size * scale))
    cell = workload.cell(hidden)
    k_params, k_xs, k_targets = jax.random.split(jax.random.key(seed), 3)
    params = cell.init(k_params, input_size)
    xs = jax.random.normal(k_xs, (steps, batch, input_size))
    targets = jax.random.normal(k_targets, (steps, batch, hidden))
    args = (params, xs, targets)

    results = {}
    for grad in ("autodiff", "bptt"):
        step = train_step(cell, grad)
        results[grad] = (time_ms(step, args, warmup, runs), step(*args)[1])
    (times_a, grads_a), (times_b, grads_b) = results["autodiff"], results["bptt"]
    return {
        "workload": f"{workload.name} B={batch} T={steps} I={input_size} H={hidden}",
        "autodiff": (statistics.median(times_a), min(times_a)),
        "bptt": (statistics.median(times_b), min(times_b)),
        "difference": max_relative_difference(grads_a, grads_b),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [w.name for w in WORKLOADS]
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=names,
        default=names,
        help="which workloads to run (default: all)",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per mode (default 7)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed runs first, compile included (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed for params and data")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="scale every size down 16x and time 2 runs: a smoke test, not a measurement",
    )
    args = parser.parse_args()
    scale, runs = (1 / 16, 2) if args.quick else (1.0, args.runs)
    if runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.devices()[0]}, float32")
    print(f"median (min) ms of {runs} runs after {args.warmup} warm-up runs\n")
    print("| workload | autodiff ms | bptt ms | autodiff / bptt | max rel. grad diff |")
    print("|---|---|---|---|---|")
    for workload in WORKLOADS:
        if workload.name not in args.workloads:
            continue
        r = run(workload, scale, args.warmup, runs, args.seed)
        (med_a, min_a), (med_b, min_b) = r["autodiff"], r["bptt"]
        print(
            f"| {r['workload']} | {med_a:.1f} ({min_a:.1f}) | {med_b:.1f} ({min_b:.1f}) "
            f"| {med_a / med_b:.2f}x | {r['difference']:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
