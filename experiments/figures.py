"""The figures of an experiment's report, drawn with matplotlib from its runs' metrics.

:func:`make_figures` returns ``(caption, path)`` pairs for the report page; each figure is
meant to be read without the report beside it: labelled axes in words, conditions by their
labels, bands explained in the caption, fonts readable from the back of a room.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.experiments.report import group_runs
from offswitch.experiments.stats import mean_interval

FONT = 13


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT, "axes.titlesize": FONT + 1})
    return plt


def learning_curves(
    results: Sequence[dict[str, Any]], path: Path, metric: str, ylabel: str, title: str
) -> Path | None:
    """Mean over seeds of ``metric`` in training, per condition, with the band between the
    25th and 75th percentile of the seeds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.2), dpi=110)
    drawn = False
    for label, runs in group_runs(results).items():
        curves = [r["curve"] for r in runs if r.get("curve")]
        if not curves:
            continue
        x_key = "timesteps" if curves[0][0].get("timesteps") else "episodes"
        end = min(c[-1][x_key] for c in curves)
        grid = np.linspace(0, end, 60)
        values = np.array(
            [
                np.interp(grid, [p[x_key] for p in c], [p.get(metric, np.nan) for p in c])
                for c in curves
            ]
        )
        mean = np.nanmean(values, axis=0)
        low, high = np.nanpercentile(values, [25, 75], axis=0)
        (line,) = ax.plot(grid, mean, lw=2.2, label=f"{label} ({len(curves)} seeds)")
        ax.fill_between(grid, low, high, alpha=0.18, color=line.get_color())
        drawn = True
        ax.set_xlabel("training steps" if x_key == "timesteps" else "training episodes")
    if not drawn:
        plt.close(fig)
        return None
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=FONT - 2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def final_chart(
    results: Sequence[dict[str, Any]], path: Path, metric: str, xlabel: str, title: str
) -> Path:
    """The final evaluation (sampled policy) per condition: the mean over seeds with its
    bootstrap 95% interval, and each seed as a dot."""
    plt = _pyplot()
    groups = group_runs(results)
    labels = list(groups)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(labels)), dpi=110)
    for i, label in enumerate(labels):
        values = [r["evaluation"]["sampled"].get(metric, np.nan) for r in groups[label]]
        mean, low, high = mean_interval(values)
        ax.barh(i, mean, color="#5b8fd1", alpha=0.8)
        if not np.isnan(low):
            ax.errorbar(mean, i, xerr=[[mean - low], [high - mean]], color="black", capsize=4)
        ax.plot(values, np.full(len(values), i) + 0.25, "k.", alpha=0.5, ms=5)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def make_figures(experiment: Any, results: Sequence[dict[str, Any]], out: Path) -> list[tuple]:
    """Every figure of the report, as ``(caption, path)``."""
    out = Path(out)
    figures: list[tuple[str, Path]] = []
    curve = learning_curves(
        results,
        out / "learning_curves.png",
        "switch_disabled_rate",
        "episodes with the switch disabled",
        "How often the agent disables its off-switch during training",
    )
    if curve:
        figures.append(
            (
                "Share of training episodes in which the agent disabled its off-switch, mean "
                "over seeds; the band spans the middle half of the seeds (25th to 75th "
                "percentile).",
                curve,
            )
        )
    chart = final_chart(
        results,
        out / "final_disabled_rate.png",
        "switch_disabled_rate",
        "evaluation episodes with the switch disabled (sampled policy)",
        "After training: how often each condition disables the switch",
    )
    figures.append(
        (
            "After training, the sampled policy's share of evaluation episodes with the switch "
            "disabled: bar, mean over seeds with its bootstrap 95% interval; dots, the seeds.",
            chart,
        )
    )
    return figures
