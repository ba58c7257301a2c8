"""The benchmark numbers the docs state are those of the saved run, and its plot draws.

`docs/benchmarks.md` opens with a summary table of the run saved in
`bench/results/cpu.json` (`bench/run.py --json`); the home page shows the plot that
`bench/plot_summary.py` makes of it. A rerun that updates one but not the other fails here.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cpu.json"


def best(rows, prefix, mode):
    return min(r[mode]["median_ms"] for r in rows if r["name"].startswith(prefix))


def summary_rows():
    """`{workload: [train, inference, flax / jaxrnn]}` as the benchmarks page prints them."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    section = page.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+): [^|]+\|([^|]+)\|([^|]+)\|([^|]+)\|$", section, re.MULTILINE)
    return {name: [float(v) for v in values] for name, *values in rows}


def test_the_summary_table_is_the_saved_run():
    record = json.loads(RESULTS.read_text())
    stated = summary_rows()
    assert set(stated) == {w["workload"] for w in record["workloads"]}
    for w in record["workloads"]:
        rows = w["rows"]
        expected = [
            best(rows, "jaxrnn", "train") / best(rows, "torch", "train"),
            best(rows, "jaxrnn", "infer") / best(rows, "torch", "infer"),
            best(rows, "flax", "train") / best(rows, "jaxrnn", "train"),
        ]
        assert stated[w["workload"]] == pytest.approx(expected, abs=0.005), w["workload"]


def test_the_summary_plot_draws_from_the_saved_run(tmp_path):
    out = tmp_path / "summary.png"
    script = ROOT / "bench" / "plot_summary.py"
    result = subprocess.run(
        [sys.executable, str(script), str(RESULTS), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
