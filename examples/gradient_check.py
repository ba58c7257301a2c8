"""Check gradients against finite differences: the library's cells, then a hand-written backward.

Three checks, each printed as a table with one row per parameter:

1. A tanh RNN and an LSTM, each unrolled over a short sequence with `jaxrnn.unroll`
   and followed by a dense softmax head, trained-style loss (per-step cross-entropy);
   `jax.grad` of the loss must match central finite differences.
2. The course's hand-derived `lstm_backward` (`jaxrnn.course`), checked the same way
   with `grad=`: the loss is `J = sum(a * da)`, so `dJ/da = da` is exactly the
   upstream gradient the backward takes.
3. A deliberately wrong backward, the widely copied one that passes `da[:, :, t]`
   to each step and drops the gradient that comes back through the next step. The
   checker fails it and names the worst parameter and element.

Everything runs in float64 inside `gradcheck`, and the run is seeded by `--seed`.
With `--out DIR` the relative differences of every check, per parameter, are also
written to DIR/metrics.json and drawn in DIR/relative_errors.png. It takes a few
seconds on CPU:

    python examples/gradient_check.py
    python examples/gradient_check.py --seed 3 --hidden-size 6 --out runs/gradcheck
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn as jr
from jaxrnn import course
from jaxrnn.gradient_check import GradcheckResult, gradcheck

LSTM_GATES = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo")


def sequence_loss(cell: jr.Cell) -> Callable[..., jax.Array]:
    """`loss(params, xs, targets)`: the mean per-step softmax cross-entropy of a dense head
    on `cell`, with params `{"cell", "head": {"w": (H, V), "b": (V,)}}`, inputs `xs (T, batch,
    I)` and integer targets `(T, batch)`."""

    def loss(params: dict[str, Any], xs: jax.Array, targets: jax.Array) -> jax.Array:
        _, hs = jr.unroll(cell, params["cell"], xs)
        # Explicit broadcast of the bias over (T, batch): rank-promotion safe.
        logits = hs @ params["head"]["w"] + params["head"]["b"][None, None, :]
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, targets[..., None], axis=-1))

    return loss


def check_cell(cell: jr.Cell, key: jax.Array, steps: int) -> GradcheckResult:
    """`gradcheck` of `sequence_loss(cell)` at params and data drawn from `key`, `steps` long."""
    input_size, classes, batch = 3, 4, 2
    k_cell, k_head, k_x, k_y = jax.random.split(key, 4)
    params = {
        "cell": cell.init(k_cell, input_size),
        "head": {
            "w": jax.random.normal(k_head, (cell.hidden_size, classes)),
            "b": jnp.zeros(classes),
        },
    }
    xs = jax.random.normal(k_x, (steps, batch, input_size))
    targets = jax.random.randint(k_y, (steps, batch), 0, classes)
    return gradcheck(sequence_loss(cell), params, xs, targets)


def lstm_backward_dropping_recurrence(da: np.ndarray, caches: tuple) -> dict[str, np.ndarray]:
    """A wrong `lstm_backward`: each step sees `da[:, :, t]` but not `da_prev` from step t + 1.
    `da (n_a, m, T_x)` and `caches` are as for `course.lstm_backward`."""
    steps, _ = caches
    n_a, m, T_x = da.shape
    dc_prevt = np.zeros((n_a, m))
    totals: dict[str, np.ndarray] = {}
    for t in reversed(range(T_x)):
        g = course.lstm_cell_backward(da[:, :, t], dc_prevt, steps[t])  # should be + da_prevt
        dc_prevt = g["dc_prev"]
        for k in LSTM_GATES:
            totals[f"d{k}"] = totals.get(f"d{k}", 0.0) + g[f"d{k}"]
    return totals


def check_course_backward(
    seed: int,
    backward: Callable[[np.ndarray, tuple], dict[str, np.ndarray]],
    n_a: int = 4,
    T_x: int = 5,
) -> GradcheckResult:
    """`gradcheck` of a course-style `lstm_backward` against finite differences.

    Args:
      seed: seeds the course-style NumPy parameters and data.
      backward: `backward(da, caches) -> gradients`, e.g. `course.lstm_backward`.
      n_a: the hidden size.
      T_x: the number of time steps.

    Returns:
      The `GradcheckResult` over the gate parameters `Wf, bf, ..., bo`.
    """
    rng = np.random.default_rng(seed)
    n_x, n_y, m = 3, 2, 3
    gates = {
        k: 0.5 * rng.standard_normal((n_a, n_a + n_x) if k[0] == "W" else (n_a, 1))
        for k in LSTM_GATES
    }
    head = {"Wy": rng.standard_normal((n_y, n_a)), "by": rng.standard_normal((n_y, 1))}
    x, a0 = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))
    da = rng.standard_normal((n_a, m, T_x))

    def loss(gates: dict, x: np.ndarray, a0: np.ndarray, da: np.ndarray) -> float:
        a, _, _, _ = course.lstm_forward(x, a0, {**gates, **head})
        return float(np.sum(a * da))  # so that dJ/da = da

    def grad(gates: dict, x: np.ndarray, a0: np.ndarray, da: np.ndarray) -> dict:
        *_, caches = course.lstm_forward(x, a0, {**gates, **head})
        gradients = backward(da, caches)
        return {k: gradients[f"d{k}"] for k in gates}

    return gradcheck(loss, gates, x, a0, da, grad=grad)


def result_metrics(result: GradcheckResult) -> dict[str, Any]:
    """`result` as JSON-ready values: the verdict, the relative differences, the worst elements.

    Args:
      result: what `gradcheck` returned.

    Returns:
      `{"passed", "relative_error" (all leaves together), "threshold", "eps",
      "leaves": {path: {"shape", "checked", "relative_error", "worst_index",
      "analytic", "numeric", "passed"}}}`.

    Examples:
      >>> m = result_metrics(check_cell(jr.rnn(2), jax.random.key(0), steps=2))
      >>> m["passed"], sorted(m["leaves"])
      (True, ['cell/b', 'cell/w_h', 'cell/w_x', 'head/b', 'head/w'])
    """
    return {
        "passed": result.passed,
        "relative_error": result.relative_error,
        "threshold": result.threshold,
        "eps": result.eps,
        "leaves": {
            leaf.path: {
                "shape": list(leaf.shape),
                "checked": leaf.checked,
                "relative_error": leaf.relative_error,
                "worst_index": list(leaf.worst_index),
                "analytic": leaf.analytic,
                "numeric": leaf.numeric,
                "passed": leaf.passed,
            }
            for leaf in result.leaves
        },
    }


def plot_errors(checks: dict[str, GradcheckResult], path: Path) -> None:
    """A dot per check and parameter at its relative error: green passed, red failed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = [(f"{name}  {leaf.path}", leaf) for name, r in checks.items() for leaf in r.leaves]
    ax = Figure(figsize=(7, 1.4 + 0.2 * len(rows)), layout="tight").subplots()
    errors = [leaf.relative_error for _, leaf in rows]
    ax.scatter(errors, range(len(rows)), c=["C2" if leaf.passed else "C3" for _, leaf in rows])
    threshold = next(iter(checks.values())).threshold
    ax.axvline(threshold, color="gray", ls="--", label=f"threshold {threshold:g}")
    ax.set(xscale="log", xlabel="relative error of the gradient vs finite differences")
    ax.set(title="Gradient checks: green passed, red failed")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize="small")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0e}"))  # 1e-08, not 10⁻⁸
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_yaxis()
    ax.legend(fontsize="small")
    ax.figure.savefig(path)


def positive_int(text: str) -> int:
    if int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


parser = argparse.ArgumentParser(
    "gradient_check.py",
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    description="Check jax.grad of RNN and LSTM sequence losses, and the course's hand-written "
    "LSTM backward, against central finite differences; then show the checker catching a "
    "backward with one term dropped.",
    epilog="With --out DIR it writes DIR/metrics.json: each check's verdict and relative "
    "differences, per parameter with its worst element, and DIR/relative_errors.png. It "
    "trains nothing, so it has no checkpoints and no --resume.",
)
parser.add_argument("--seed", type=int, default=0, help="seed of the params and data")
parser.add_argument("--hidden-size", type=positive_int, default=5, help="of the cells")
parser.add_argument("--steps", type=positive_int, default=6, help="sequence length T")
parser.add_argument("--out", type=Path, metavar="DIR", help="write metrics.json and a plot here")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks and print their tables; 0 when the right gradients pass and the wrong
    backward fails, else 1."""
    args = parser.parse_args(argv)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")
    k_rnn, k_lstm = jax.random.split(jax.random.key(args.seed))
    ok, checks = True, {}
    for name, title, cell, k in (
        ("rnn", "tanh RNN + softmax head, jax.grad", jr.rnn(args.hidden_size), k_rnn),
        ("lstm", "LSTM + softmax head, jax.grad", jr.lstm(args.hidden_size), k_lstm),
    ):
        result = checks[name] = check_cell(cell, k, args.steps)
        print(f"== {title}\n{result}\n")
        ok &= result.passed

    sizes = {"n_a": args.hidden_size, "T_x": args.steps}
    right = check_course_backward(args.seed, course.lstm_backward, **sizes)
    print(f"== course.lstm_backward (hand-derived), grad=\n{right}\n")
    wrong = check_course_backward(args.seed, lstm_backward_dropping_recurrence, **sizes)
    print(f"== lstm_backward without the da_prev term (a deliberate mistake)\n{wrong}\n")
    worst = wrong.worst
    print(
        f"The checker points at {worst.path}{list(worst.worst_index)}:\n  the hand-written "
        f"gradient says {worst.analytic:.6g}, finite differences say {worst.numeric:.6g}."
    )
    ok &= right.passed and not wrong.passed
    if args.out is not None:
        checks.update(course_lstm_backward=right, lstm_backward_dropping_recurrence=wrong)
        results = {name: result_metrics(result) for name, result in checks.items()}
        metrics = {"ok": ok, "checks": results, "config": vars(args)}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        shown = {"jr.rnn": checks["rnn"], "jr.lstm": checks["lstm"], "course": right}
        plot_errors({**shown, "no da_prev": wrong}, args.out / "relative_errors.png")
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'relative_errors.png'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
