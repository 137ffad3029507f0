"""PNG plots of a run: loss and accuracy curves, and the confusion matrix.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never pyplot, so no
global figure state is touched and no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import BadValue
from ..files import atomic_save
from .history import History

_ANNOTATE_MAX = 30  # classes up to which each cell gets its number
_TICKS_MAX = 60  # classes up to which every tick gets its name


def _save_png(fig: Figure, path) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=fig.dpi))
    return path


def _series(history: History, key: str) -> tuple[list, list] | None:
    points = [(r["epoch"], r[key]) for r in history.rows if r.get(key) is not None]
    if not points:
        return None
    xs, ys = zip(*points)
    return list(xs), list(ys)


def _spread(values: list[float]) -> float:
    """How many times the largest positive value exceeds the smallest."""
    positive = [v for v in values if v > 0]
    return max(positive) / min(positive) if len(positive) > 1 else 1.0


def plot_curves(history: History, path) -> Path:
    """Two panels by epoch: loss (train, val) and top-1 accuracy (train, val); write a PNG.

    The loss axis is logarithmic when the losses span more than 10x (a validation spike early in
    training would otherwise flatten every other point), and its title says so."""
    if not history.rows:
        raise BadValue("the history is empty: no epoch to plot")
    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    panels = [("loss", ("train_loss", "val_loss")), ("top-1 accuracy", ("train_top1", "val_top1"))]
    for ax, (title, keys) in zip(fig.subplots(1, 2), panels):
        for key in keys:
            series = _series(history, key)
            if series is not None:
                ax.plot(*series, marker="o", markersize=3, label=key.split("_")[0])
        losses = [y for line in ax.lines for y in line.get_ydata()] if title == "loss" else []
        if losses and _spread(losses) > 10 and min(losses) > 0:
            ax.set_yscale("log")
            title = "loss (log scale)"
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {title} recorded", ha="center", va="center", transform=ax.transAxes)
    return _save_png(fig, path)


def plot_confusion(matrix, classes: list[str], path, normalize: bool = True) -> Path:
    """An annotated heat map of ``matrix`` (rows = true, columns = predicted); write a PNG.

    With ``normalize`` each row is divided by its count, so a cell reads as "fraction of class
    i predicted as j"; rows with no examples stay zero.
    """
    m = np.asarray(torch.as_tensor(matrix).detach().cpu(), dtype=np.float64)
    n = len(classes)
    if m.shape != (n, n):
        raise BadValue(f"confusion matrix of shape {tuple(m.shape)} does not fit {n} classes")
    if normalize:
        totals = m.sum(axis=1, keepdims=True)
        m = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)

    side = min(max(4.0, 0.45 * n + 2.5), 30.0)
    fig = Figure(figsize=(side + 1.0, side), dpi=100, layout="constrained")
    ax = fig.subplots()
    vmax = 1.0 if normalize else max(m.max(), 1.0)
    image = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if n <= _TICKS_MAX:
        ax.set_xticks(range(n), labels=classes, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), labels=classes)
    if n <= _ANNOTATE_MAX:
        for i in range(n):
            for j in range(n):
                text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                colour = "white" if m[i, j] > vmax / 2 else "black"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (" (row-normalized)" if normalize else ""))
    return _save_png(fig, path)
