"""Where should the input matmul run: hoisted before the scan, or inside each step?

`jr.unroll(..., hoist=True)` projects the whole sequence with one large GEMM
before the scan (cuDNN's trick); `hoist=False` projects one step at a time
inside the loop. This script times both on the current backend, for inference
and for a train step (loss and all gradients), and prints a markdown table of
medians. `jr.default_hoist()` follows what it measures.

    python bench/hoist.py              # the default workloads
    python bench/hoist.py --repeats 15
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import jaxrnn as jr

WORKLOADS = {
    # name: (cell, B, T, I, H)
    "rnn_small": (lambda: jr.rnn(128), 32, 100, 64, 128),
    "lstm_medium": (lambda: jr.lstm(256), 64, 200, 128, 256),
    "gru_medium": (lambda: jr.gru(256), 64, 200, 128, 256),
    "lstm_long": (lambda: jr.lstm(64), 8, 2000, 32, 64),
}


def median_ms(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure(name: str, repeats: int, scale: float = 1.0) -> dict[str, float]:
    make_cell, batch, steps, inputs, _ = WORKLOADS[name]
    cell = make_cell()
    batch, steps, inputs = (max(1, int(n * scale)) for n in (batch, steps, inputs))
    params = cell.init(jax.random.key(0), inputs)
    xs = jax.random.normal(jax.random.key(1), (steps, batch, inputs))
    result = {}
    for hoist in (False, True):

        def forward(params, xs, hoist=hoist):
            return jr.unroll(cell, params, xs, hoist=hoist)[1]

        def loss(params, xs, hoist=hoist):
            return jnp.mean(forward(params, xs, hoist) ** 2)

        label = "hoisted" if hoist else "in-loop"
        result[f"infer {label}"] = median_ms(jax.jit(forward), params, xs, repeats=repeats)
        train = jax.jit(jax.value_and_grad(loss))
        result[f"train {label}"] = median_ms(train, params, xs, repeats=repeats)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=9, help="timed runs after one warm-up")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, 2 runs: a smoke test, not a measurement"
    )
    args = parser.parse_args(argv)
    scale, repeats = (1 / 16, 2) if args.quick else (1.0, args.repeats)

    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"{platform.processor() or platform.machine()}; medians of {repeats} runs, ms\n"
    )
    print("| workload | infer in-loop | infer hoisted | train in-loop | train hoisted |")
    print("|---|---|---|---|---|")
    for name in args.workloads:
        r = measure(name, repeats, scale)
        print(
            f"| {name} | {r['infer in-loop']:.1f} | {r['infer hoisted']:.1f} "
            f"| {r['train in-loop']:.1f} | {r['train hoisted']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
