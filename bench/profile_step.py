"""Where the time of one jaxrnn step goes: XLA:CPU's own per-kernel timings.

Runs the jaxrnn train or inference step of a `bench/run.py` workload under
`jax.profiler.trace`, with XLA:CPU's per-kernel trace events switched on
(`--xla_cpu_enable_xprof_traceme`), and adds up the time of every compiled kernel
(matmuls, fused elementwise loops, copies) over a few calls. Prints a table of the
kernels that took longest and a summary by kind:

- matmul, in the loop: the recurrent (and in-loop input) matmuls, run once per step;
- matmul, once: the weight-gradient GEMMs after the loop, the head;
- elementwise: XLA's fused loops (gates, their gradients, the loss);
- data movement: copies, concatenations, zero-filled buffers, each step's slice of the
  inputs (`dynamic-slice`) and the per-step writes of outputs and of what the backward
  pass needs into `(T, ...)` arrays (`dynamic-update-slice`);
- the rest: the wall time of a profiled call less all the kernels' time; negative when
  XLA:CPU ran independent kernels at once (each is counted in full);
- thread-pool waits: how long the calling thread waited for the intra-op pool's
  threads, time already inside the kernels'.

The minor page faults per call come from `getrusage`.

    python bench/profile_step.py --workload lstm_medium --mode train --grad bptt
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import workers
from workers import HUGEPAGES_TUNABLE, with_hugepages

DATA_MOVEMENT = "data movement"
TRACEME_FLAG = "--xla_cpu_enable_xprof_traceme=true"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=list(workers.WORKLOADS), default="lstm_medium")
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--grad", choices=("bptt", "autodiff"), default="bptt")
    parser.add_argument("--calls", type=int, default=3, help="profiled calls (default 3)")
    parser.add_argument("--top", type=int, default=20, help="kernels listed (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="NumPy seed of weights and data")
    parser.add_argument(
        "--hugepages",
        action="store_true",
        help=f"rerun this script with GLIBC_TUNABLES={HUGEPAGES_TUNABLE} (as bench/run.py)",
    )
    parser.add_argument("--quick", action="store_true", help="sizes scaled by 1/8: a smoke test")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.top < 1:
        parser.error("--calls and --top must be >= 1")
    return args


def hlo_opcodes(hlo: str) -> dict[str, str]:
    """Each instruction's name and opcode in HLO text (`%name = type opcode(operands)`).

    The type may be a tuple with spaces, `(f32[2], f32[3])`; the opcode is the first word
    after it that an opening parenthesis follows.
    """
    found = {}
    for line in hlo.splitlines():
        match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (.*)", line)
        if match:
            opcode = re.search(r"[\s)]([a-z][\w-]*)\(", match.group(2))
            found[match.group(1)] = opcode.group(1) if opcode else ""
    return found


def kind_of(name: str, op: str) -> str:
    if "ynn_fusion" in name or "xnn_fusion" in name or op in ("dot", "convolution"):
        return "matmul"
    moves = ("copy", "wrapped_copy", "wrapped_broadcast", "concatenate", "wrapped_transpose")
    if (
        op in ("copy", "concatenate", "broadcast", "transpose")
        or name.startswith(moves)
        or "dynamic-update-slice" in name
        or "dynamic-slice" in name
    ):
        return DATA_MOVEMENT
    return "elementwise"


def main() -> None:
    args = parse_args()
    if args.hugepages and HUGEPAGES_TUNABLE not in os.environ.get("GLIBC_TUNABLES", ""):
        # glibc reads its tunables when the process starts, so set them and start again.
        os.execve(sys.executable, [sys.executable, *sys.argv], with_hugepages(dict(os.environ)))
    if TRACEME_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TRACEME_FLAG}".strip()

    import jax

    w = workers.WORKLOADS[args.workload].scaled(1 / 8 if args.quick else 1.0)
    data = workers.make_data(w, args.seed)
    jitted, (params, xs, ys) = workers._jaxrnn_train(w, data, grad=args.grad)
    if args.mode == "train":
        compiled = jitted.lower(params, xs, ys).compile()
        call_args: tuple[Any, ...] = (params, xs, ys)
    else:
        forward = workers.jaxrnn_forward(w, args.grad)
        compiled = jax.jit(forward).lower(params, xs).compile()
        call_args = (params, xs)
    hlo = compiled.as_text()

    def call() -> Any:
        return jax.block_until_ready(compiled(*call_args))

    for _ in range(3):
        call()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(args.calls):
        call()
    wall_ms = 1e3 * (time.perf_counter() - start) / args.calls
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.calls

    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir, create_perfetto_trace=True):
            start = time.perf_counter()
            for _ in range(args.calls):
                call()
            profiled_ms = 1e3 * (time.perf_counter() - start) / args.calls
        (trace,) = Path(logdir).rglob("*.trace.json.gz")
        with gzip.open(trace) as f:
            events = json.load(f)["traceEvents"]

    # Loops and calls are events too, spanning the kernels inside them: leave them out.
    opcodes = hlo_opcodes(hlo)
    kernels = {name for name, op in opcodes.items() if op not in ("while", "conditional", "call")}
    total: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.Counter()
    waits = 0.0
    for e in events:
        if e.get("ph") != "X":
            continue
        if e["name"] == "SlinkyThreadPool::Await":
            waits += e["dur"]
        elif e["name"] in kernels:
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1

    def per_call_ms(us: float) -> float:
        return us / 1e3 / args.calls

    print(
        f"jaxrnn {args.mode} step, grad={args.grad!r}, {args.workload}: {w.describe()}; "
        f"jax {jax.__version__}, {os.cpu_count()} CPUs"
        + (f", GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']}" if args.hugepages else "")
    )
    print(
        f"{wall_ms:.1f} ms per call without the profiler, {profiled_ms:.1f} ms with it "
        f"(means of {args.calls}; percentages are of the latter); "
        f"{faults:.0f} minor page faults per call\n"
    )
    print("| kernel | kind | runs per call | ms per call | % of the call |")
    print("|---|---|---|---|---|")
    ranked = sorted(total, key=total.get, reverse=True)
    for name in ranked[: args.top]:
        ms = per_call_ms(total[name])
        print(
            f"| {name} | {kind_of(name, opcodes[name])} | {count[name] // args.calls} "
            f"| {ms:.2f} | {100 * ms / profiled_ms:.1f}% |"
        )
    by_kind: dict[str, float] = collections.defaultdict(float)
    for name in ranked:
        kind = kind_of(name, opcodes[name])
        if kind == "matmul":
            kind += ", in the loop" if count[name] // args.calls >= w.steps else ", once"
        by_kind[kind] += per_call_ms(total[name])
    rows = sorted(by_kind.items(), key=lambda kv: -kv[1])
    rows.append(
        (
            "the rest: dispatch, loop control, kernels running at once (< 0)",
            profiled_ms - sum(by_kind.values()),
        )
    )
    rows.append(("thread-pool waits (inside the kernels' time)", per_call_ms(waits)))
    print("\n| kind | ms per call | % of the call |")
    print("|---|---|---|")
    for kind, ms in rows:
        print(f"| {kind} | {ms:.1f} | {100 * ms / profiled_ms:.1f}% |")


if __name__ == "__main__":
    main()
