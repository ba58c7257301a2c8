"""The benchmark scripts run (tiny sizes): a broken benchmark is found before it is needed."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

# End-to-end runs of the examples and benchmarks: `pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("hoist.py", ["--quick", "--workloads", "rnn_small"]),
        ("bptt.py", ["--quick", "--workloads", "rnn_tanh"]),
        ("parallel.py", ["--quick", "--cells", "min_gru", "--peer", "rnn_tanh"]),
        ("run.py", ["--quick", "--workloads", "rnn_small"]),
    ],
)
def test_benchmark_runs_and_prints_a_table(script, args):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| rnn")]
    assert len(rows) == 1, result.stdout
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert all(c for c in cells), rows[0]


def test_peer_benchmark_agrees_with_jaxrnn_and_does_not_retrace(tmp_path):
    out = tmp_path / "run.json"
    args = ["--quick", "--workloads", "gru_medium", "--peers", "torch", "--mode", "train"]
    args.append("--hugepages")
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    (workload,) = record["workloads"]
    names = {row["name"] for row in workload["rows"]}
    assert names == {"jaxrnn bptt", "jaxrnn autodiff", "torch nn.GRU"}
    # Loss and gradients of every implementation, across processes, to float32 round-off.
    assert all(row["difference"] < 1e-4 for row in workload["rows"]), workload["rows"]
    assert all(row["train"]["median_ms"] > 0 for row in workload["rows"])
    assert all(row["train"]["page_faults"] >= 0 for row in workload["rows"])
    assert "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in result.stdout
    assert {row["cache_size"] for row in record["extras"]["sweep"]} == {1}
    memory = {row["variant"]: row["peak_bytes"] for row in record["extras"]["memory"]}
    assert memory["autodiff, remat=True"] < memory["autodiff"]
    assert memory["autodiff, remat=True, head in map_chunks"] < memory["autodiff"]


def test_profile_adds_up_the_kernels_of_a_step():
    result = subprocess.run(
        [sys.executable, str(BENCH / "profile_step.py"), "--quick", "--workload", "lstm_medium"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Each kind's share of the call, in percent: at --quick sizes a kind can take under
    # 0.05 ms, which the ms column rounds to 0.0, while its share stays readable.
    shares = {
        cells[0]: float(cells[2].rstrip("%"))
        for line in result.stdout.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 3
        and cells[2].endswith("%")
    }
    # The recurrent matmul runs once per step; the weight gradients once after the loop.
    assert shares["matmul, in the loop"] > 0, result.stdout
    assert shares["matmul, once"] > 0, result.stdout


def test_overhead_benchmark_prints_both_times():
    result = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--calls", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unroll_ms, stack_ms = (float(v) for v in re.findall(r"(\d+\.\d+) ms", result.stdout))
    assert 0 < unroll_ms < stack_ms * 10 and stack_ms > 0, result.stdout
