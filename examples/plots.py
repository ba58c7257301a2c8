"""The loss-curve figure the training examples save next to their checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def save_loss_curve(
    path: Path,
    losses: np.ndarray,
    history: Sequence[dict[str, Any]],
    *,
    title: str,
    ylabel: str,
    eval_key: str | None = None,
    eval_label: str = "validation",
    log_scale: bool = False,
) -> Path:
    """Write a PNG of the per-step training loss, its running mean, and evaluation points.

    Args:
      path: the PNG to write.
      losses: the training loss of every step, `(steps,)`.
      history: logged entries (`jaxrnn.train.FitResult.history`); those holding
        `eval_key` are plotted as points.
      title: the figure's title.
      ylabel: the loss axis label (what the loss is, in which units).
      eval_key: the history key of the evaluation metric to plot, if any.
      eval_label: its legend label.
      log_scale: a logarithmic loss axis (for losses that fall by decades).

    Returns:
      `path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=0.8, label="train (per step)")
    window = min(50, max(1, len(losses) // 10))
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"train ({window}-step mean)")
    points = [(h["step"], h[eval_key]) for h in history if eval_key and eval_key in h]
    if points:
        ax.plot(*zip(*points, strict=True), "o-", color="tab:orange", label=eval_label)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path
