"""Eager call overhead: what a tiny `jr.unroll` and a two-layer `stack` cost per call.

The work itself (5 steps of an 8-unit LSTM) takes microseconds, so the median time of an
eager call is the cost of checking the inputs and dispatching to the compiled run. Run it
once per version to compare, e.g. with `PYTHONPATH` pointing at another checkout:

    python bench/overhead.py
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxrnn as jr


def median_ms(fn, calls: int) -> float:
    for _ in range(20):
        jax.block_until_ready(fn())
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per case")
    args = parser.parse_args()
    xs = jnp.ones((5, 2, 4))
    cell = jr.lstm(8)
    params = cell.init(jax.random.key(0), 4)
    net = jr.stack([jr.lstm(8), jr.lstm(8)])
    net_params = net.init(jax.random.key(0), 4)
    unroll_ms = median_ms(lambda: jr.unroll(cell, params, xs), args.calls)
    stack_ms = median_ms(lambda: net.apply(net_params, xs), args.calls)
    print(f"unroll {unroll_ms:.3f} ms  stack {stack_ms:.3f} ms  (median of {args.calls})")


if __name__ == "__main__":
    main()
