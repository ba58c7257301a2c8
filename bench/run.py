"""Benchmark: jaxrnn against PyTorch, Flax, Equinox and a hand-written `lax.scan`.

Runs the same model (a recurrent layer, a dense head at every step, the mean softmax
cross-entropy against integer targets; float32, time-major) in every implementation and,
for each workload:

1. checks that each computes the same loss and gradients as jaxrnn (`grad="autodiff"`),
   reporting the largest relative difference `max |g - g_ref| / max |g_ref|` over the
   loss and the parameter arrays;
2. times a train step (loss and all gradients) and an inference step (the logits):
   warm-up runs, then rounds that visit every implementation in turn (A B C, C B A, ...),
   so a change in the machine's load hits all of them alike; the median and the minimum
   over all timed runs, GFLOP/s (matmul FLOPs only), the percentage of the float32 matmul
   peak measured in the same run, the compile time (JAX) and the ratio to jaxrnn, and
   the minor page faults per run: memory the step touches that the kernel must map
   first. With glibc's malloc every run maps its large buffers afresh, in 4 KiB pages;
   `--hugepages` runs every worker with glibc's `hugetlb` tunable, so they fault in
   2 MiB pages.

Each framework runs in its own worker process (`--worker NAME`, JSON over stdin/stdout):
PyTorch and XLA in one process fight over the cores' threads and slow each other down.
Every worker makes the same weights and data from one NumPy seed, so gradients can be
compared across processes.

Then, for jaxrnn alone: a sweep over the sequence length (compile time and train-step
time, and whether a second batch of the same shape retraces), and the peak memory of a
train step (XLA's `memory_analysis`) with and without `remat` (and the head in
`jr.map_chunks`).

Run `python bench/run.py --help` for the options; `--quick` runs tiny sizes in seconds
as a smoke test.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import workers
from workers import HUGEPAGES_TUNABLE, WORKLOADS, Workload

PEERS = ("torch", "flax", "equinox", "scan")
SWEEP_STEPS = (50, 100, 200, 400, 800)
QUICK_SCALE = 1 / 8


# --- worker side -------------------------------------------------------------------------


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(args: argparse.Namespace) -> None:
    """Build one framework's implementations, save their gradients, then time on request."""
    w = WORKLOADS[args.workload].scaled(args.scale)
    data = workers.make_data(w, args.seed)
    impls = workers.BUILDERS[args.worker](w, data, args.mode)
    described = []
    for i, impl in enumerate(impls):
        path = Path(args.outdir) / f"{args.worker}_{i}.npz"
        np.savez(path, **impl.grads)
        for call in impl.calls.values():
            for _ in range(args.warmup):
                call()
        described.append({"name": impl.name, "compile_s": impl.compile_s, "grads": str(path)})
    _emit({"impls": described})
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            return
        if request["cmd"] == "peak":
            gflops = workers.matmul_peak(args.worker, request["size"], request["runs"])
            _emit({"gflops": gflops})
            continue
        call = impls[request["impl"]].calls[request["mode"]]
        times, faults = [], []
        for _ in range(request["runs"]):
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            call()
            times.append(1e3 * (time.perf_counter() - start))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
        _emit({"times": times, "faults": faults})


def extras(args: argparse.Namespace) -> None:
    """The jaxrnn-only measurements: the T sweep and the train-step memory."""
    steps = [max(2, round(t * args.scale)) for t in SWEEP_STEPS]
    if args.scale < 1:
        steps = sorted(set(steps))[:2]
    sweep_w = WORKLOADS["lstm_medium"].scaled(args.scale)
    memory_w = WORKLOADS["lstm_long"].scaled(args.scale)
    _emit(
        {
            # T is what the sweep varies, so the description leaves it out.
            "sweep_workload": re.sub(r" T=\d+", "", sweep_w.describe()),
            "sweep": workers.sweep(sweep_w, steps, args.seed, args.runs),
            "memory_workload": memory_w.describe(),
            "memory": workers.memory(memory_w, args.seed, args.rounds, args.runs),
        }
    )


# --- parent side -------------------------------------------------------------------------


class Worker:
    """A worker process: started with its arguments, then driven by JSON lines."""

    def __init__(self, argv: list[str], hugepages: bool = False) -> None:
        env = workers.with_hugepages(dict(os.environ)) if hugepages else None
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"worker {self.proc.args[2:]} exited with code {code}")
        return json.loads(line)

    def ask(self, **request: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        self.proc.wait()


def relative_difference(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    worst = 0.0
    for key in ("loss", *workers.PARAM_KEYS):
        if key not in reference:
            continue
        a, b = reference[key], other[key]
        if a.shape != b.shape:
            raise ValueError(f"gradient {key}: shape {b.shape}, expected {a.shape}")
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30)))
    return worst


def worker_argv(framework: str, w: Workload, args: argparse.Namespace, outdir: str) -> list[str]:
    return [
        "--worker",
        framework,
        "--workloads",
        w.name,
        "--scale",
        str(args.scale),
        "--seed",
        str(args.seed),
        "--mode",
        *args.mode,
        "--warmup",
        str(args.warmup),
        "--outdir",
        outdir,
    ]


def run_workload(w: Workload, args: argparse.Namespace, peak: dict[str, float]) -> dict[str, Any]:
    """Start one worker per framework, check gradients, time in interleaved rounds."""
    frameworks = ["jaxrnn", *[p for p in args.peers if not (p == "equinox" and w.cell == "rnn")]]
    entries, started = [], []
    with tempfile.TemporaryDirectory() as outdir:
        try:
            # One at a time, so that compile times are not measured under each other's load.
            for framework in frameworks:
                worker = Worker(worker_argv(framework, w, args, outdir), args.hugepages)
                started.append(worker)
                for i, impl in enumerate(worker.read()["impls"]):
                    impl["grads"] = dict(np.load(impl["grads"]))
                    entries.append({"worker": worker, "index": i, **impl})
                if framework not in peak and framework in ("jaxrnn", "torch"):
                    size, runs = (256, 3) if args.quick else (2048, 5)
                    peak[framework] = worker.ask(cmd="peak", size=size, runs=runs)["gflops"]
            reference = next(e for e in entries if e["name"] == "jaxrnn autodiff")["grads"]
            for e in entries:
                e["difference"] = relative_difference(reference, e.pop("grads"))
                e["times"] = {mode: [] for mode in args.mode}
                e["faults"] = {mode: [] for mode in args.mode}
            for r in range(args.rounds):
                for e in entries if r % 2 == 0 else reversed(entries):
                    for mode in args.mode:
                        reply = e["worker"].ask(
                            cmd="time", impl=e["index"], mode=mode, runs=args.runs
                        )
                        e["times"][mode] += reply["times"]
                        e["faults"][mode] += reply["faults"]
        finally:
            for worker in started:
                worker.close()
    rows = []
    for e in entries:
        row = {"name": e["name"], "difference": e["difference"]}
        for mode in args.mode:
            times = e["times"][mode]
            row[mode] = {
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "compile_s": e["compile_s"].get(mode),
                "page_faults": statistics.median(e["faults"][mode]),
            }
        rows.append(row)
    return {"workload": w.name, "description": w.describe(), "rows": rows}


# --- tables -------------------------------------------------------------------------------


def _fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def print_workload(result: dict[str, Any], modes: list[str], peak: float, flops: dict) -> None:
    print(f"\n### {result['workload']}: {result['description']}\n")
    for mode in modes:
        rows = result["rows"]
        ours = min(
            (r for r in rows if r["name"].startswith("jaxrnn")), key=lambda r: r[mode]["median_ms"]
        )
        print(f"{mode}, best jaxrnn: {ours['name']}\n")
        print(
            "| implementation | median ms | min ms | GFLOP/s | % of peak | compile s "
            "| jaxrnn / this | rel. diff | page faults |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            m = r[mode]
            gflops = flops[mode] / m["median_ms"] / 1e6
            print(
                f"| {r['name']} | {m['median_ms']:.1f} | {m['min_ms']:.1f} | {gflops:.1f} "
                f"| {100 * gflops / peak:.0f}% | {_fmt_s(m['compile_s'])} "
                f"| {ours[mode]['median_ms'] / m['median_ms']:.2f}x | {r['difference']:.1e} "
                f"| {m['page_faults']:.0f} |"
            )
        print()


def targets(result: dict[str, Any], modes: list[str]) -> dict[str, Any]:
    """The summary row: best jaxrnn against PyTorch and the best Flax cell."""
    rows = result["rows"]
    out: dict[str, Any] = {"workload": result["workload"]}
    for mode in modes:

        def best(prefix: str, mode: str = mode) -> dict[str, Any] | None:
            found = [r for r in rows if r["name"].startswith(prefix)]
            return min(found, key=lambda r: r[mode]["median_ms"]) if found else None

        ours, torch, flax = best("jaxrnn"), best("torch"), best("flax")
        entry: dict[str, Any] = {"jaxrnn": ours["name"], "jaxrnn_ms": ours[mode]["median_ms"]}
        if torch:
            entry["torch_ms"] = torch[mode]["median_ms"]
            entry["vs_torch"] = entry["jaxrnn_ms"] / entry["torch_ms"]
        if flax:
            entry["flax"] = flax["name"]
            entry["flax_ms"] = flax[mode]["median_ms"]
            entry["flax_speedup"] = entry["flax_ms"] / entry["jaxrnn_ms"]
        out[mode] = entry
    return out


def print_summary(summary: list[dict[str, Any]], modes: list[str]) -> None:
    print("\n### Summary: best jaxrnn (median) against PyTorch and the best Flax cell\n")
    print(
        "| workload | train jaxrnn ms | train torch ms | train jaxrnn / torch "
        "| train best flax ms | best flax / jaxrnn | infer jaxrnn ms | infer torch ms "
        "| infer jaxrnn / torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")

    def get(entry: dict[str, Any] | None, key: str, fmt: str) -> str:
        return "—" if not entry or key not in entry else format(entry[key], fmt)

    for s in summary:
        train, infer = s.get("train"), s.get("infer")
        print(
            f"| {s['workload']} | {get(train, 'jaxrnn_ms', '.1f')} "
            f"| {get(train, 'torch_ms', '.1f')} "
            f"| {get(train, 'vs_torch', '.2f')} | {get(train, 'flax_ms', '.1f')} "
            f"| {get(train, 'flax_speedup', '.2f')} | {get(infer, 'jaxrnn_ms', '.1f')} "
            f"| {get(infer, 'torch_ms', '.1f')} | {get(infer, 'vs_torch', '.2f')} |"
        )


def print_extras(extra: dict[str, Any]) -> None:
    print(f"\n### Sequence-length sweep, jaxrnn train step: {extra['sweep_workload']}\n")
    print("| T | grad | compile s | median ms | min ms | jit cache size after 2 batches |")
    print("|---|---|---|---|---|---|")
    for r in extra["sweep"]:
        print(
            f"| {r['T']} | {r['grad']} | {r['compile_s']:.2f} | {r['median_ms']:.1f} "
            f"| {r['min_ms']:.1f} | {r['cache_size']} |"
        )
    print(f"\n### Train-step memory (XLA memory_analysis): {extra['memory_workload']}\n")
    print("| variant | peak MiB | temporaries MiB | median ms | min ms |")
    print("|---|---|---|---|---|")
    for r in extra["memory"]:
        print(
            f"| {r['variant']} | {r['peak_bytes'] / 2**20:.2f} | {r['temp_bytes'] / 2**20:.2f} "
            f"| {r['median_ms']:.1f} | {r['min_ms']:.1f} |"
        )


def plot(extra: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_c, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
    for grad in ("bptt", "autodiff"):
        rows = [r for r in extra["sweep"] if r["grad"] == grad]
        steps = [r["T"] for r in rows]
        ax_c.plot(steps, [r["compile_s"] for r in rows], "o-", label=f'grad="{grad}"')
        ax_t.plot(steps, [r["median_ms"] for r in rows], "o-", label=f'grad="{grad}"')
    ax_c.set(xlabel="sequence length T", ylabel="compile time (s)", ylim=(0, None))
    ax_t.set(xlabel="sequence length T", ylabel="train step, median (ms)", ylim=(0, None))
    ax_c.set_title("compile time stays flat")
    ax_t.set_title("step time grows linearly")
    for ax in (ax_c, ax_t):  # linear axes, so that "linearly" reads as a straight line
        ax.set_xticks(steps)
        ax.set_xlim(0, None)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"jaxrnn train step, {extra['sweep_workload']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS))
    parser.add_argument("--mode", nargs="+", choices=("train", "infer"), default=["train", "infer"])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per round (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="NumPy seed of weights and data")
    parser.add_argument("--no-extras", action="store_true", help="skip the T sweep and memory")
    parser.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="save a PNG of the T sweep")
    parser.add_argument(
        "--hugepages",
        action="store_true",
        help=f"run every worker with GLIBC_TUNABLES={HUGEPAGES_TUNABLE} (glibc >= 2.35): "
        "fresh memory faults in 2 MiB pages instead of 4 KiB ones",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes scaled by {QUICK_SCALE}, 2 rounds of 1 run: a smoke test, not a measurement",
    )
    # Worker-process options (set by the parent).
    parser.add_argument("--worker", choices=[*workers.BUILDERS, "extras"], help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.rounds, args.runs, args.warmup = QUICK_SCALE, 2, 1, 1
    if args.rounds < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--rounds and --runs must be >= 1 and --warmup >= 0")
    return args


def main() -> None:
    args = parse_args()
    if args.worker == "extras":
        extras(args)
        return
    if args.worker:
        args.workload = args.workloads[0]
        serve(args)
        return

    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}"
        for package in ("jax", "jaxlib", "torch", "flax", "equinox")
    )
    versions += f", python {platform.python_version()}, {os.cpu_count()} CPUs, float32"
    print(versions)
    print(
        f"median and min of {args.rounds} interleaved rounds x {args.runs} runs "
        f"after {args.warmup} warm-up runs; ratios use medians; page faults: the median "
        "count of minor page faults per run"
    )
    if args.hugepages:
        print(f"every worker runs with GLIBC_TUNABLES={HUGEPAGES_TUNABLE}")
    results, summary, peak = [], [], {}
    for name in args.workloads:
        w = WORKLOADS[name].scaled(args.scale)
        result = run_workload(w, args, peak)
        if len(results) == 0:
            print(
                "float32 matmul peak (best GFLOP/s of a square matmul): "
                + ", ".join(f"{k.replace('jaxrnn', 'jax')} {v:.0f}" for k, v in peak.items())
            )
        flops = {mode: w.flops(mode) for mode in args.mode}
        print_workload(result, args.mode, max(peak.values()), flops)
        results.append(result)
        summary.append(targets(result, args.mode))
    print_summary(summary, args.mode)
    extra = None
    if not args.no_extras:
        worker = Worker(
            [
                "--worker",
                "extras",
                "--scale",
                str(args.scale),
                "--seed",
                str(args.seed),
                "--rounds",
                str(args.rounds),
                "--runs",
                str(max(args.runs, 3)),
            ],
            args.hugepages,
        )
        try:
            extra = worker.read()
        finally:
            worker.close()
        print_extras(extra)
        if args.plot:
            plot(extra, args.plot)
    if args.json:
        record = {
            "versions": versions,
            "peak_gflops": peak,
            "args": {k: v for k, v in vars(args).items() if k not in ("worker", "outdir")},
            "workloads": results,
            "summary": summary,
            "extras": extra,
        }
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
