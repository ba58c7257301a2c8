"""Draw the benchmark summary: each implementation's step time relative to PyTorch's.

Reads the JSON that `bench/run.py --json FILE` writes and saves one figure with a
panel per mode (train step, inference), a group of bars per workload: the best
jaxrnn variant, the best Flax cell, Equinox and the hand-written `lax.scan`, each as
its median time divided by PyTorch's median in the same run (below 1 is faster
than PyTorch). This is the picture on the documentation's home page:

    python bench/run.py --rounds 7 --json run.json
    python bench/plot_summary.py run.json docs/img/bench_summary.png
"""

from __future__ import annotations

import argparse
import json
from typing import Any

GROUPS = (  # (label, name prefix): the best (lowest median) row of each prefix
    ("jaxrnn", "jaxrnn"),
    ("Flax (best cell)", "flax"),
    ("Equinox", "equinox"),
    ("hand-written scan", "hand-written scan"),
)


def best(rows: list[dict[str, Any]], prefix: str, mode: str) -> float | None:
    times = [r[mode]["median_ms"] for r in rows if r["name"].startswith(prefix)]
    return min(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="the JSON file of `bench/run.py --json`")
    parser.add_argument("out", help="the PNG to write")
    args = parser.parse_args()
    with open(args.results) as f:
        record = json.load(f)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    workloads = record["workloads"]
    modes = [m for m in ("train", "infer") if m in workloads[0]["rows"][0]]
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    width = 0.8 / len(GROUPS)
    for ax, mode in zip(axes, modes, strict=True):
        for g, (label, prefix) in enumerate(GROUPS):
            ratios = []
            for w in workloads:
                torch, ours = best(w["rows"], "torch", mode), best(w["rows"], prefix, mode)
                ratios.append(np.nan if torch is None or ours is None else ours / torch)
            x = np.arange(len(workloads)) + (g - (len(GROUPS) - 1) / 2) * width
            ax.bar(x, ratios, width, label=label)
        ax.axhline(1.0, color="black", linewidth=1, label="PyTorch = 1")
        ax.set_xticks(np.arange(len(workloads)), [w["workload"] for w in workloads])
        ax.tick_params(axis="x", labelrotation=20)
        ax.set_title({"train": "train step", "infer": "inference"}[mode])
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("median time / PyTorch's\n(lower is faster)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle("Time per step against PyTorch, CPU (2 cores), float32")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
