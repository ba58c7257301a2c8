"""The benchmark scripts run (tiny sizes): a broken benchmark is found before it is needed."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("hoist.py", ["--quick", "--workloads", "rnn_small"]),
        ("bptt.py", ["--quick", "--workloads", "rnn_tanh"]),
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
