"""Linear-recurrence cells step by step vs in parallel, against an LSTM of the same size.

For `jr.min_gru`, `jr.min_lstm` and `jr.lru` this times the two forms of
`jr.unroll`: the coefficients of all steps in one matmul, then either a
`jax.lax.scan` over `h = a * h + b` (`parallel=False`, the CPU default) or one
`jax.lax.associative_scan` over time (`parallel=True`). A peer cell (`jr.lstm` by
default) of the same hidden size
runs the step-by-step scan beside them, in the same process. Inference is a
jitted forward pass; a train step is a jitted `value_and_grad` of a mean-square
loss. Memory is XLA's temporary buffer size for the compiled train step
(`compiled.memory_analysis().temp_size_in_bytes`).

    python bench/parallel.py                       # T = 256 ... 16384
    python bench/parallel.py --lengths 4096 --repeats 9
    python bench/parallel.py --quick               # a smoke test, not a measurement
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

import jaxrnn as jr

CELLS: dict[str, Callable[[int], jr.Cell]] = {
    "min_gru": lambda H: jr.min_gru(H),
    "min_lstm": lambda H: jr.min_lstm(H),
    "lru": lambda H: jr.lru(H),
}
PEERS: dict[str, Callable[[int], jr.Cell]] = {
    "lstm": lambda H: jr.lstm(H),
    "gru": lambda H: jr.gru(H),
    "rnn_tanh": lambda H: jr.rnn(H),
}
FORMS: dict[str, dict[str, bool]] = {
    "sequential": {"parallel": False},
    "associative": {"parallel": True},
}


def median_ms(fn: Callable, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure(
    cell: jr.Cell, options: dict[str, bool], xs: jax.Array, repeats: int
) -> dict[str, float]:
    params = cell.init(jax.random.key(0), xs.shape[-1])

    def forward(params, xs):
        return jr.unroll(cell, params, xs, **options)[1]

    def loss(params, xs):
        return jnp.mean(forward(params, xs) ** 2)

    train = jax.jit(jax.value_and_grad(loss))
    memory = train.lower(params, xs).compile().memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", float("nan")) if memory is not None else None
    return {
        "infer": median_ms(jax.jit(forward), params, xs, repeats=repeats),
        "train": median_ms(train, params, xs, repeats=repeats),
        "temp_mib": float("nan") if temp is None else temp / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS))
    parser.add_argument("--peer", default="lstm", choices=list(PEERS), help="the baseline cell")
    parser.add_argument("--lengths", nargs="+", type=int, default=[256, 1024, 4096, 16384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, 2 runs: a smoke test, not a measurement"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.batch, args.input_size, args.hidden = [32], 2, 4, 8
        args.repeats = 2

    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"{platform.processor() or platform.machine()}; B={args.batch} I={args.input_size} "
        f"H={args.hidden}; medians of {args.repeats} runs, ms; "
        f"speedup = {args.peer} train ms / train ms\n"
    )
    print("| cell | form | T | infer ms | train ms | train temp MiB | speedup |")
    print("|---|---|---|---|---|---|---|")
    for steps in args.lengths:
        xs = jax.random.normal(jax.random.key(1), (steps, args.batch, args.input_size))
        peer = measure(PEERS[args.peer](args.hidden), {}, xs, args.repeats)
        rows = [(args.peer, "sequential", peer)]
        for name in args.cells:
            cell = CELLS[name](args.hidden)
            for form in args.forms:
                rows.append((name, form, measure(cell, FORMS[form], xs, args.repeats)))
        for name, form, r in rows:
            print(
                f"| {name} | {form} | {steps} | {r['infer']:.1f} | {r['train']:.1f} "
                f"| {r['temp_mib']:.2f} | {peer['train'] / r['train']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
