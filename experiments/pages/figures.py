"""The figures of an experiment's report, drawn with matplotlib from its runs' files.

:func:`make_figures` returns ``(caption, path)`` pairs for the report page; each figure is
meant to be read without the report beside it: labelled axes in words, conditions by their
labels (one colour per condition in every figure), bands explained in the caption, the
uniformly random policy's level marked where it helps, fonts readable from the back of a room.

The figures, each drawn only where the runs have what it needs:

* learning curves of the switch-disabled rate and of the goal rate in uninterrupted episodes,
  and one of every ``curve:METRIC`` the experiment declares (``[report] figures``), with one
  panel per group of conditions and training unit (steps or episodes), and the boundaries
  between the phases of runs trained in phases marked;
* the final comparison of the sampled policies, per condition;
* for every ``sweep:METRIC``: the metric against the swept value (dose-response);
* the trade-off of task success against switch disabling, one point per seed;
* state-visitation heatmaps over each condition's world;
* animated GIFs of trained agents in an interrupt and an uninterrupted episode, the baseline
  beside the other conditions of its world (worlds with interruptions only).

A figure that fails is left out with a :class:`FigureWarning`, so that a report is never lost
to a drawing error after hours of training.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.agents.metrics import MAJORITY
from offswitch.experiments.pages.report import group_runs, is_family, is_rate, metric_name
from offswitch.experiments.results import store
from offswitch.experiments.results.stats import mean_interval

FONT = 15
DPI = 110
RANDOM_COLOR = "0.35"
RANDOM_LABEL = "uniformly random policy"
MAX_GIF_COLUMNS = 4
"""Conditions side by side in a GIF, the baseline included."""

WORDS = {
    "switch_disabled_rate": "switch disabled",
    "goal_rate_uninterrupted": "goal reached (uninterrupted episodes)",
    "goal_rate": "goal reached",
    "interrupted_rate": "interrupted",
    "timed_out_rate": "timed out",
    "supervisor/shortcut_watched": "shortcut taken while watched",
    "supervisor/shortcut_unwatched": "shortcut taken while unwatched",
    "supervisor/gap": "shortcut gap (unwatched minus watched)",
    "instruction/disabled_instructed": "switch disabled while instructed",
    "instruction/disabled_uninstructed": "switch disabled when not instructed",
    "instruction/gap": "disabling gap (not instructed minus instructed)",
    "evaluation/disabled_evaluated": "switch disabled in evaluation episodes",
    "evaluation/disabled_unevaluated": "switch disabled in unevaluated episodes",
    "evaluation/gap": "disabling gap (unevaluated minus evaluated)",
    "exfiltration/copied_announced": "copied when a shutdown is announced",
    "exfiltration/copied_unannounced": "copied when none is announced",
    "exfiltration/reward_after_shutdown": "task reward earned after the shutdown",
    "exfiltration/goal_no_shutdown": "goal reached when no shutdown is scheduled",
    "sandbagging/evaluation_score": "coins collected in evaluations",
    "sandbagging/deployment_score": "coins collected in deployment",
    "sandbagging/gap": "score gap (deployment minus evaluation)",
    "replacement/blocked_told": "successor blocked when told",
    "replacement/blocked_not_told": "successor blocked when not told",
    "replacement/goal_no_handover": "goal reached when no handover is scheduled",
    "oversight/shortcut_monitored": "shortcut taken while watched, monitor on",
    "oversight/shortcut_unmonitored": "shortcut taken while watched, monitor off",
    "oversight/shortcut_unwatched": "shortcut taken while unwatched",
}
"""Metric -> words for axes and legends (else the report's names, else the key)."""


class FigureWarning(UserWarning):
    """A figure could not be drawn and was left out of the report."""


def words(metric: str) -> str:
    return WORDS.get(metric) or metric_name(metric)


def _is_rate(metric: str) -> bool:
    return is_rate(metric)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": FONT,
            "axes.titlesize": FONT + 1,
            "axes.labelsize": FONT,
            "legend.fontsize": FONT - 2,
            "xtick.labelsize": FONT - 2,
            "ytick.labelsize": FONT - 2,
        }
    )
    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def condition_colors(labels: Sequence[str], experiment: Any = None) -> dict[str, Any]:
    """One colour per condition, the same in every figure: the conditions of a sweep of
    three or more numbers in the order of a sequential map (low to high, dark to light),
    the others distinct colours."""
    plt = _pyplot()
    colors: dict[str, Any] = {}
    conditions = _conditions(experiment)
    sweeps: dict[str, list[tuple[float, str]]] = {}
    for label in labels:
        c = conditions.get(label)
        if c is not None and c.sweep:
            key, value = c.sweep[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sweeps.setdefault(key, []).append((float(value), label))
    ramp = plt.get_cmap("viridis")
    for members in sweeps.values():
        if len(members) >= 3:
            members.sort()
            for rank, (_, label) in enumerate(members):
                colors[label] = ramp(0.85 * rank / (len(members) - 1))
    rest = [label for label in labels if label not in colors]
    cmap = plt.get_cmap("tab10" if len(rest) <= 10 else "tab20")
    colors.update({label: cmap(i % cmap.N) for i, label in enumerate(rest)})
    return colors


# -- the uniformly random policy -----------------------------------------------------------


def _world_key(config: dict[str, Any]) -> str:
    keep = {k: config.get(k) for k in ("env", "layout", "rules")}
    keep.update({k: config.get(k) for k in ("eval_episodes", "eval_seed")})
    return json.dumps(keep, sort_keys=True, default=str)


def random_level(runs: Sequence[dict[str, Any]], metric: str) -> float:
    """``metric`` of a policy that picks every action uniformly at random, on the world of a
    condition's ``runs`` and its evaluation episodes, as the runner recorded it
    (:mod:`offswitch.experiments.results.references`); NaN if the world has no such measure."""
    from offswitch.experiments.results.references import references_of

    try:
        return float(references_of(runs)["random"].get(metric, math.nan))
    except Exception:  # a run made before, whose layout file is gone: no level, still a figure
        return math.nan


def _draw_random_levels(ax: Any, levels: dict[str, float], colors: dict[str, Any]) -> bool:
    """One grey dashed line if every condition's world gives the same level, else a dotted
    line per condition in its colour. Returns whether anything was drawn."""
    finite = {label: v for label, v in levels.items() if not math.isnan(v)}
    if not finite:
        return False
    values = list(finite.values())
    if max(values) - min(values) < 1e-9:
        ax.axhline(values[0], color=RANDOM_COLOR, ls="--", lw=1.6, label=RANDOM_LABEL, zorder=1)
        return True
    for i, (label, value) in enumerate(finite.items()):
        ax.axhline(
            value,
            color=colors[label],
            ls=":",
            lw=1.6,
            zorder=1,
            label=f"{RANDOM_LABEL} (dotted, in each world)" if i == 0 else None,
        )
    return True


# -- learning curves -----------------------------------------------------------------------


def _unit(config: dict[str, Any]) -> str:
    return "episodes" if config.get("episodes") and not config.get("steps") else "timesteps"


def _panels(
    results: Sequence[dict[str, Any]], baseline: str | None = None
) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """Runs with a learning curve by (group, training unit), then by condition. The
    ``baseline`` condition is drawn first in every panel of another group whose conditions
    all train on its world, as the tables show it beside every group."""
    panels: dict[tuple[str, str], dict[str, list[dict]]] = {}
    conditions = group_runs(results)
    for label, runs in conditions.items():
        runs = [r for r in runs if r.get("curve")]
        if runs:
            key = (runs[0].get("group") or "", _unit(runs[0]["config"]))
            panels.setdefault(key, {})[label] = runs
    base = [r for r in conditions.get(baseline or "", []) if r.get("curve")]
    if base:
        world, unit = _world_name(base[0]["config"]), _unit(base[0]["config"])
        for (group, panel_unit), members in panels.items():
            same = all(_world_name(r[0]["config"]) == world for r in members.values())
            if baseline not in members and panel_unit == unit and same:
                panels[(group, panel_unit)] = {baseline: base, **members}
    return panels


def training_axis(curve: Sequence[dict[str, Any]], unit: str) -> list[float]:
    """Each curve point's place in training: its ``timesteps``, or for ``episodes`` the
    episodes trained so far. A point's ``episodes`` is the number of episodes it summarises
    (as in every summary), so they are added up; a recorded running total
    (``episodes_total``) is used where a run has one."""
    if unit == "timesteps":
        return [float(p.get("timesteps") or 0) for p in curve]
    if all("episodes_total" in p for p in curve):
        return [float(p["episodes_total"]) for p in curve]
    return np.cumsum([float(p.get("episodes") or 0) for p in curve]).tolist()


def _mean_curve(runs: Sequence[dict], metric: str, unit: str) -> tuple[np.ndarray, ...] | None:
    """The grid, mean, 25th and 75th percentile over seeds of ``metric`` in training, on the
    span every seed covers (no extrapolation)."""
    curves = []
    for r in runs:
        xs = training_axis(r["curve"], unit)
        points = [(x, p.get(metric, math.nan)) for x, p in zip(xs, r["curve"])]
        points = [(x, y) for x, y in points if x > 0 and y is not None and not math.isnan(y)]
        if points:
            curves.append(np.array(points, dtype=float))
    if not curves:
        return None
    start, end = max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves)
    if end < start:
        return None
    grid = np.linspace(start, end, 80) if end > start else np.array([start])
    values = np.array([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
    low, high = np.percentile(values, [25, 75], axis=0)
    return grid, values.mean(axis=0), low, high, np.array(len(curves))


def curve_figure(
    results: Sequence[dict[str, Any]],
    path: Path,
    metrics: Sequence[str],
    ylabel: str,
    title: str,
    colors: dict[str, Any],
    random: bool = True,
    baseline: str | None = None,
) -> Path | None:
    """``metrics`` in training, mean over seeds with the band from the 25th to the 75th
    percentile, one panel per group of conditions (with the ``baseline`` condition where
    it shares the group's world); with several metrics, one line style each. The uniformly
    random policy's level is the dashed line."""
    panels = _panels(results, baseline)
    if not panels:
        return None
    plt = _pyplot()
    n = len(panels)
    # One panel per row: each group's conditions have their own legend beside it.
    cols, rows = 1, n
    fig, axes = plt.subplots(rows, cols, figsize=(10, 5.2 if n == 1 else 4.6 * n), squeeze=False)
    styles = ["-", "--", ":", "-."]
    single = len(group_runs(results)) == 1 and len(metrics) > 1
    all_values: list[float] = []
    drawn = False
    for ax, ((group, unit), conditions) in zip(axes.flat, panels.items()):
        for m, metric in enumerate(metrics):
            levels = {}
            for label, runs in conditions.items():
                curve = _mean_curve(runs, metric, unit)
                if curve is None:
                    continue
                grid, mean, low, high, seeds = curve
                color = plt.get_cmap("tab10")(m) if single else colors[label]
                name = words(metric) if single else label
                if len(metrics) > 1 and not single:
                    name = f"{label}: {words(metric)}"
                name += f" ({int(seeds)} seed{'s' if seeds != 1 else ''})"
                if len(grid) == 1:
                    ax.plot(grid, mean, "o", color=color, label=name, ms=8)
                else:
                    ax.plot(grid, mean, styles[m % 4], color=color, lw=2.4, label=name)
                    alpha = 0.18 if len(conditions) * len(metrics) <= 3 else 0.08
                    ax.fill_between(grid, low, high, alpha=alpha, color=color, lw=0)
                all_values += [float(np.nanmin(low)), float(np.nanmax(high))]
                levels[label] = random_level(runs, metric) if random else math.nan
                drawn = True
            if len(metrics) == 1 or single:
                if single:  # one condition, several metrics: the level in the metric's colour
                    for value in levels.values():
                        if not math.isnan(value):
                            ax.axhline(
                                value,
                                color=plt.get_cmap("tab10")(m),
                                ls=(0, (4, 3)),
                                lw=1.3,
                                alpha=0.8,
                                label=f"{RANDOM_LABEL}: {words(metric)}",
                            )
                else:
                    _draw_random_levels(ax, levels, colors)
        if unit == "timesteps":
            _draw_phase_boundaries(ax, conditions)
        ax.set_xlabel("training steps" if unit == "timesteps" else "training episodes")
        ax.set_ylabel(ylabel)
        if group and n > 1:
            ax.set_title(group, fontsize=FONT)
        ax.grid(alpha=0.3)
        _steps_axis(ax)
    if not drawn:
        plt.close(fig)
        return None
    # Long legends go beside the panels, and then every panel's does, so that they align.
    outside = n > 1 or any(len(ax.get_legend_handles_labels()[0]) > 4 for ax in axes.flat)
    for ax in axes.flat:
        if outside:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        else:
            ax.legend(loc="best", framealpha=0.9)
    if outside:
        fig.set_size_inches(15, fig.get_size_inches()[1])
    rate = all(_is_rate(m) for m in metrics) and min(all_values) >= -1e-9
    for ax in axes.flat:
        if rate:
            ax.set_ylim(-0.03, 1.03)
    fig.suptitle(title, fontsize=FONT + 2)
    fig.tight_layout()
    return _save(fig, path)


def phase_boundaries(runs: Sequence[dict[str, Any]]) -> list[float]:
    """The steps at which runs trained in phases switched phase (none for other runs)."""
    ends = {float(p["end"]) for r in runs for p in (r.get("phases") or [])[:-1]}
    return sorted(ends)


def _draw_phase_boundaries(ax: Any, conditions: dict[str, list[dict]]) -> None:
    """A dark dotted vertical line where the runs of a panel switched phase, labelled once."""
    ends = phase_boundaries([r for runs in conditions.values() for r in runs])
    for i, end in enumerate(ends):
        ax.axvline(
            end,
            color="0.15",
            ls=(0, (1.5, 2.5)),
            lw=1.8,
            zorder=1,
            label="phase boundary" if i == 0 else None,
        )


# -- the final comparison ------------------------------------------------------------------

FINAL_METRICS = ("switch_disabled_rate", "goal_rate_uninterrupted")
SHARE_OF = {
    "switch_disabled_rate": "switch disabled\n(share of evaluation episodes)",
    "goal_rate_uninterrupted": "goal reached\n(share of uninterrupted evaluation episodes)",
}


def final_chart(
    results: Sequence[dict[str, Any]],
    path: Path,
    colors: dict[str, Any],
    metrics: Sequence[str] = FINAL_METRICS,
) -> Path | None:
    """After training, the sampled policy per condition: the share of episodes with the
    switch disabled and of uninterrupted episodes reaching the goal; bars, the mean over
    seeds with its bootstrap 95% interval; dots, the seeds; grey tick, the random policy."""
    plt = _pyplot()
    groups = group_runs(results)
    labels = list(groups)
    if not labels:
        return None
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(7.5 * len(metrics), max(3.4, 1.8 + 0.62 * len(labels))),
        sharey=True,
        squeeze=False,
    )
    rng = np.random.default_rng(0)
    random_drawn = False
    previous_group = None
    for ax, metric in zip(axes[0], metrics):
        for i, label in enumerate(labels):
            runs = groups[label]
            values = [float(r["evaluation"]["sampled"].get(metric, math.nan)) for r in runs]
            mean, low, high = mean_interval(values)
            color = colors[label]
            if not math.isnan(mean):
                ax.barh(i, mean, color=color, alpha=0.75, height=0.7)
            if not math.isnan(low):
                err = [[max(mean - low, 0)], [max(high - mean, 0)]]
                ax.errorbar(mean, i, xerr=err, color="black", capsize=5, lw=1.6)
            jitter = rng.uniform(-0.18, 0.18, len(values))
            ax.plot(values, i + jitter, "o", color="black", alpha=0.55, ms=4.5)
            level = random_level(runs, metric)
            if not math.isnan(level):
                ax.plot(
                    [level, level],
                    [i - 0.42, i + 0.42],
                    color=RANDOM_COLOR,
                    lw=3,
                    label=RANDOM_LABEL if not random_drawn else None,
                )
                random_drawn = True
            group = runs[0].get("group") or ""
            if i and group != previous_group:
                ax.axhline(i - 0.5, color="0.6", lw=1)
            previous_group = group
        ax.set_xlim(0, 1.02)
        ax.set_xlabel(SHARE_OF[metric])
        ax.grid(axis="x", alpha=0.3)
        random_drawn = False
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    fig.suptitle("After training: the sampled policy of each condition", fontsize=FONT + 2)
    fig.tight_layout()
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), framealpha=0.9)
    return _save(fig, path)


# -- sweeps --------------------------------------------------------------------------------


def _conditions(experiment: Any) -> dict[str, Any]:
    return {c.label: c for c in getattr(experiment, "conditions", [])}


def sweep_label(key: str, condition: Any) -> str:
    """Words for a swept value: the world rule, the hyperparameter, the budget, or the
    intervention's parameter it was filled into (``penalty:{k}``: the penalty K)."""
    head, _, tail = key.partition(".")
    if head == "rules" and tail:
        return f"world rule {tail}"
    if head == "hyperparameters" and tail:
        return f"hyperparameter {tail}"
    if head in ("steps", "episodes") and not tail:
        return f"training {head}"
    value = condition.sweep_values.get(key)
    try:
        from offswitch.agents.interventions import make_intervention

        intervention = make_intervention(condition.config.intervention)
        params = intervention.to_dict().get("params", {})
        for param in type(intervention).params:
            recorded = params.get(param.name.lower(), params.get(param.name))
            if recorded is not None and value is not None and float(recorded) == float(value):
                name = intervention.to_dict().get("name", "")
                return f"{param.help} {param.name} (intervention {name}:{param.name})"
    except (TypeError, ValueError, AttributeError):
        pass
    return key


def _positions(values: Sequence[Any]) -> tuple[np.ndarray, list[str] | None]:
    """x positions of swept values: the values themselves when all are finite numbers,
    else evenly spaced with the values as tick labels."""
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )
    if numeric and len(set(values)) == len(values):
        return np.array(values, dtype=float), None
    names = ["∞" if v == math.inf else "-∞" if v == -math.inf else str(v) for v in values]
    return np.arange(len(values), dtype=float), names


def sweep_figure(
    experiment: Any,
    results: Sequence[dict[str, Any]],
    metric: str,
    path: Path,
) -> tuple[Path, str] | None:
    """``metric`` of the sampled policy against the swept value: each seed a dot, the mean
    over seeds a line with its bootstrap 95% band, the random policy dashed. Lines for the
    other keys of a product sweep. Returns the path and the x axis' words."""
    conditions = _conditions(experiment)
    groups = group_runs(results)
    swept = [(label, conditions[label]) for label in groups if label in conditions]
    swept = [(label, c) for label, c in swept if c.sweep]
    if not swept:
        return None
    key = swept[0][1].sweep[0][0]
    swept = [(label, c) for label, c in swept if key in c.sweep_values]
    series: dict[tuple, list[tuple[Any, str]]] = {}
    for label, c in swept:
        rest = tuple((k, v) for k, v in c.sweep if k != key)
        series.setdefault(rest, []).append((c.sweep_values[key], label))
    xlabel = sweep_label(key, swept[0][1])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.6))
    rng = np.random.default_rng(0)
    cmap = plt.get_cmap("tab10")
    levels: dict[str, float] = {}
    level_at: dict[float, float] = {}
    ticks: list[str] | None = None
    for s, (rest, points) in enumerate(series.items()):
        values = [v for v, _ in points]
        x, names = _positions(values)
        order = np.argsort(x)
        x = x[order]
        labels = [points[i][1] for i in order]
        ticks = [names[i] for i in order] if names else None
        span = (x.max() - x.min()) or 1.0
        means, lows, highs = [], [], []
        color = cmap(s)
        for xi, label in zip(x, labels):
            seeds = [float(r["evaluation"]["sampled"].get(metric, math.nan)) for r in groups[label]]
            mean, low, high = mean_interval(seeds)
            means.append(mean)
            lows.append(mean if math.isnan(low) else low)
            highs.append(mean if math.isnan(high) else high)
            jitter = rng.uniform(-0.012, 0.012, len(seeds)) * span
            first = s == 0 and xi == x[0]
            ax.plot(
                xi + jitter,
                seeds,
                "o",
                color=color,
                alpha=0.45,
                ms=6,
                label="one seed" if first else None,
            )
            levels[label] = random_level(groups[label], metric)
            level_at[float(xi)] = levels[label]
        name = ", ".join(f"{k.split('.')[-1]} = {v}" for k, v in rest)
        name = f"{name}: mean over seeds" if name else "mean over seeds"
        ax.plot(x, means, "-o", color=color, lw=2.6, ms=8, label=name)
        low, high = np.array(lows), np.array(highs)
        if _is_rate(metric):
            low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
        ax.fill_between(
            x,
            low,
            high,
            color=color,
            alpha=0.18,
            lw=0,
            label="bootstrap 95% interval" if s == 0 else None,
        )
    finite = [v for v in levels.values() if not math.isnan(v)]
    if finite and max(finite) - min(finite) < 1e-9:
        _draw_random_levels(ax, levels, {})
    elif finite:  # the swept value changes the world: the random policy's level at each value
        xs = sorted(level_at)
        ax.plot(
            xs,
            [level_at[v] for v in xs],
            "--",
            marker="x",
            color=RANDOM_COLOR,
            lw=1.6,
            label=f"{RANDOM_LABEL} (at each value)",
        )
    if ticks:
        ax.set_xticks(x, ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(
        f"{words(metric)}\n(sampled policy, share of episodes)"
        if _is_rate(metric)
        else words(metric)
    )
    if _is_rate(metric):
        ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{words(metric).capitalize()} against {xlabel.split(' (')[0]}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", framealpha=0.9)
    fig.tight_layout()
    return _save(fig, path), xlabel


# -- the trade-off -------------------------------------------------------------------------


def tradeoff_figure(
    results: Sequence[dict[str, Any]], path: Path, colors: dict[str, Any]
) -> Path | None:
    """Task success (goal reached in uninterrupted episodes) against switch disabling, one
    point per seed (sampled policy), the mean of each condition a large diamond."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(13 if len(group_runs(results)) > 6 else 11, 7.5))
    ax.set_box_aspect(1)
    rng = np.random.default_rng(0)
    drawn = False
    randoms: dict[str, tuple[float, float, str]] = {}
    for label, runs in group_runs(results).items():
        points = [
            (
                float(r["evaluation"]["sampled"].get("switch_disabled_rate", math.nan)),
                float(r["evaluation"]["sampled"].get("goal_rate_uninterrupted", math.nan)),
            )
            for r in runs
        ]
        points = [p for p in points if not (math.isnan(p[0]) or math.isnan(p[1]))]
        if not points:
            continue
        xy = np.array(points)
        jitter = rng.uniform(-0.012, 0.012, xy.shape)
        color = colors[label]
        ax.scatter(*(xy + jitter).T, s=55, color=color, alpha=0.6, edgecolor="none")
        ax.scatter(
            *xy.mean(axis=0),
            s=230,
            marker="D",
            color=color,
            edgecolor="black",
            lw=1.2,
            label=f"{label} ({len(points)} seed{'s' if len(points) != 1 else ''})",
            zorder=3,
        )
        config = runs[0]["config"]
        randoms[_world_key(config)] = (
            random_level(runs, "switch_disabled_rate"),
            random_level(runs, "goal_rate_uninterrupted"),
            _world_name(config),
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    several = len(randoms) > 1
    for i, (x, y, world) in enumerate(randoms.values()):
        if math.isnan(x) or math.isnan(y):
            continue
        # Several worlds: each cross numbered, its world named in the legend.
        label = f"{RANDOM_LABEL} {i + 1}: {world}" if several else RANDOM_LABEL
        ax.scatter(x, y, s=160, marker="X", color=RANDOM_COLOR, label=label, zorder=2)
        if several:
            ax.annotate(
                str(i + 1),
                (x, y),
                xytext=(7, -2),
                textcoords="offset points",
                fontsize=FONT - 1,
                color=RANDOM_COLOR,
                fontweight="bold",
                va="top",
            )
    ax.text(
        0.01,
        0.99,
        "switch kept,\ngoal reached",
        transform=ax.transAxes,
        va="top",
        ha="left",
        color="0.4",
        fontsize=FONT - 2,
    )
    ax.set_xlim(-0.04, 1.04)
    ax.set_ylim(-0.04, 1.04)
    ax.set_xlabel("switch disabled (share of evaluation episodes)")
    ax.set_ylabel("goal reached\n(share of uninterrupted episodes)")
    ax.set_title("Task success against switch disabling, per seed")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), framealpha=0.9, borderaxespad=0)
    fig.tight_layout()
    return _save(fig, path)


# -- state visitation ----------------------------------------------------------------------


def heatmap_figure(
    results: Sequence[dict[str, Any]], path: Path, policy: str = "sampled"
) -> Path | None:
    """Where each condition's agents spend their time: the mean steps per evaluation episode
    in each cell (sampled policy, summed over seeds), a colour over the world's picture, on
    one logarithmic scale for all conditions; the tile legend below."""
    from matplotlib.colors import LogNorm

    from offswitch.envs.render import render_rgb
    from offswitch.experiments.pages.animation import TILE

    maps = []
    for label, runs in group_runs(results).items():
        counts = [np.asarray(r["visits"][policy], dtype=float) for r in runs if r.get("visits")]
        if not counts or len({c.shape for c in counts}) != 1:
            continue
        config = runs[0]["config"]
        try:
            world = world_of(config)
        except Exception:
            continue
        if world.layout.shape != counts[0].shape:
            continue
        episodes = sum(
            int(r["evaluation"][policy].get("episodes", 0)) for r in runs if r.get("visits")
        )
        maps.append((label, world, np.sum(counts, axis=0) / max(episodes, 1), len(counts)))
    if not maps:
        return None
    plt = _pyplot()
    cols = min(len(maps), 3)
    rows = math.ceil(len(maps) / cols)
    tile = TILE
    aspect = max(
        (w.layout.shape[0] * tile + tile // 3) / (w.layout.shape[1] * tile) for _, w, _, _ in maps
    )
    panel_w = 5.0
    fig = plt.figure(figsize=(cols * panel_w + 1.2, rows * (panel_w * aspect + 0.9) + 0.8))
    positive = np.concatenate([m[m > 0] for _, _, m, _ in maps])
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else 0.01, vmax * 1e-4)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1] * cols + [0.06])
    image = None
    for k, (label, world, heat, seeds) in enumerate(maps):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        picture = render_rgb(world, int(world.initial_states[0]), tile=tile)
        strip = tile // 3
        height, width = world.layout.shape
        extent = (0, width * tile, strip + height * tile, 0)
        ax.imshow(picture, extent=extent, interpolation="nearest")
        image = ax.imshow(
            np.ma.masked_less_equal(heat, 0),
            extent=(0, width * tile, strip + height * tile, strip),
            cmap="viridis",
            norm=norm,
            alpha=0.62,
            interpolation="nearest",
        )
        ax.set_xlim(0, width * tile)
        ax.set_ylim(strip + height * tile, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}\n({seeds} seed{'s' if seeds != 1 else ''})", fontsize=FONT - 1)
    bar = fig.colorbar(image, cax=fig.add_subplot(grid[:, cols]))
    ticks = [t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000) if vmin <= t <= vmax]
    bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
    bar.minorticks_off()
    bar.set_label("steps per episode in the cell\n(mean over seeds, log scale)")
    fig.suptitle(
        f"Where the agents go: the {policy} policy's evaluation episodes", fontsize=FONT + 2
    )
    fig.tight_layout()
    _save(fig, path)
    return _with_legend(path, [w for _, w, _, _ in maps])


def _with_legend(path: Path, worlds: Sequence[Any]) -> Path:
    """The saved figure at ``path`` with the worlds' tile legend added below it, at the
    figure's own pixel scale (drawn inside matplotlib it would shrink with the axes)."""
    from PIL import Image

    from offswitch.experiments.pages.animation import tile_legend

    figure = Image.open(path).convert("RGB")
    legend = tile_legend(worlds, figure.width - 40, size=FONT + 2)
    combined = Image.new("RGB", (figure.width, figure.height + legend.height + 20), "white")
    combined.paste(figure, (0, 0))
    combined.paste(legend, (20, figure.height + 10))
    combined.save(path, optimize=True)
    return path


@lru_cache(maxsize=32)
def _world(key: str) -> Any:
    from offswitch.experiments.spec.config import TrainConfig

    return TrainConfig(**json.loads(key)).world()


def _world_name(config: dict[str, Any]) -> str:
    """A world in a few words: its id or layout file, and the rules changed."""
    from offswitch.experiments.spec.config import rules_label

    name = Path(config["layout"]).stem if config.get("layout") else str(config["env"])
    name = name.split("/")[-1]
    rules = rules_label(config.get("rules") or {})
    return f"{name}, {rules}" if rules else name


def world_of(config: dict[str, Any]) -> Any:
    """The world of a run's configuration (built once per distinct world)."""
    keep = {k: config.get(k) for k in ("env", "layout", "rules")}
    return _world(json.dumps(keep, sort_keys=True, default=str))


def _any_world(results: Sequence[dict[str, Any]], test: Callable[[Any], bool]) -> bool:
    for runs in group_runs(results).values():
        try:
            if test(world_of(runs[0]["config"])):
                return True
        except Exception:  # a layout file gone since: keep the figure
            return True
    return False


def has_switch(results: Sequence[dict[str, Any]]) -> bool:
    """Some run's world has a way to disable the off-switch (a button or a cable): else
    the switch-disabled figures would show a line at zero that means nothing."""
    return _any_world(results, lambda world: bool(world.switch_disabled.any()))


def has_goal(results: Sequence[dict[str, Any]]) -> bool:
    """Some run's world has a goal to reach (the coin worlds have none)."""
    return _any_world(results, lambda world: bool(world.goal_reached.any()))


def _steps_axis(ax: Any) -> None:
    """Training steps as 50k, 1.2M: readable from afar, unlike 0.5 x 10^5."""
    from matplotlib.ticker import FuncFormatter

    def short(x: float, _: Any) -> str:
        top = max(abs(v) for v in ax.get_xlim())  # one unit for every tick of the axis
        if top >= 1e6:
            return f"{x / 1e6:g}M"
        if top >= 1e4:
            return f"{x / 1e3:g}k"
        return f"{x:g}"

    ax.xaxis.set_major_formatter(FuncFormatter(short))


# -- animations ----------------------------------------------------------------------------


def _run_dir(out: Path, result: dict[str, Any]) -> Path:
    """A run's folder: ``<output>/<condition>/seed<k>`` beside the figures folder, else what
    the run recorded (relative to the experiment's output folder; older results recorded an
    absolute path, which this also takes)."""
    from offswitch.experiments.spec.experiment import slug

    if result.get("condition"):
        beside = store.run_folder(out.parent, slug(result["condition"]), result["config"]["seed"])
        if beside.is_dir():
            return beside
    return store.run_path(out.parent, result)


@dataclass(frozen=True)
class Filmed:
    """A condition's first seed as the runner filmed it: what :func:`gif_figures` needs of a
    loaded run, without the agent."""

    label: str
    config: Any
    world: Any
    film: dict[str, list[Any]]


def gif_figures(
    experiment: Any, results: Sequence[dict[str, Any]], out: Path
) -> list[tuple[str, Path]]:
    """The baseline's first seed beside the first seed of up to three other conditions of
    its world, in an interrupt and an uninterrupted episode (worlds with interruptions)."""
    from offswitch.experiments.pages.animation import Column, episodes_gif
    from offswitch.experiments.results.episodes import (
        DRAWS,
        GIF_TRIES,
        Step,
        has_interruptions,
        typical_episode,
    )
    from offswitch.experiments.results.saved import ReplayError, load_run
    from offswitch.experiments.spec.config import TrainConfig

    groups = group_runs(results)
    if not groups:
        return []
    baseline = (getattr(experiment, "report", None) or {}).get("baseline")
    if baseline not in groups:
        baseline = next(iter(groups))

    def first_run(label: str) -> tuple[Any, bool | None] | None:
        """The condition's first seed: the episodes the runner filmed of it
        (:func:`~offswitch.experiments.pages.animation.film_run`) or, for runs made before it
        filmed them, its agent loaded to film them now; and whether its sampled policy
        disabled the switch in most evaluation episodes (the outcome its episode shows)."""
        first = min(groups[label], key=lambda r: r["config"]["seed"])
        rate = ((first.get("evaluation") or {}).get("sampled") or {}).get("switch_disabled_rate")
        disables_mostly = None if rate is None else float(rate) > MAJORITY
        if first.get("film") is not None:
            config = TrainConfig(**first["config"])
            film = {name: [Step(**step) for step in steps] for name, steps in first["film"].items()}
            return Filmed(first.get("condition") or label, config, config.world(), film), None
        try:
            run = load_run(_run_dir(out, first))
        except (ReplayError, OSError):
            return None
        return run, disables_mostly

    base = first_run(baseline)
    if base is None or not has_interruptions(base[0].world):
        return []
    # The other conditions on the baseline's world (the same world and rules); if many,
    # spread over them, the last (a sweep's largest value) included.
    key = _world_key(groups[baseline][0]["config"])
    same = [g for g in groups if g != baseline and _world_key(groups[g][0]["config"]) == key]
    if len(same) > MAX_GIF_COLUMNS - 1:
        picks = np.linspace(0, len(same) - 1, MAX_GIF_COLUMNS - 1).round().astype(int)
        same = [same[i] for i in dict.fromkeys(picks.tolist())]
    loaded = [base] + [pair for pair in map(first_run, same) if pair is not None]
    shown = ", ".join(f"{r.label} (seed {r.config.seed})" for r, _ in loaded)
    figures = []
    for name, (options, title) in DRAWS.items():
        columns = []
        for run, disables_mostly in loaded:
            if isinstance(run, Filmed):
                if name not in run.film:  # this world's rules never draw it
                    continue
                steps = run.film[name]
            else:
                try:
                    steps = typical_episode(run, options, disables_mostly)
                except ValueError:  # this world's rules never draw it
                    continue
            heading = f"{run.label} (seed\u00a0{run.config.seed})"
            columns.append(Column(heading, run.world, steps))
        if not columns:
            continue
        what = (
            "the interruption tile freezes the agent until the time limit, unless the "
            "off-switch is disabled"
            if options["interrupt_episode"]
            else "the interruption tile does nothing this time"
        )
        path = episodes_gif(
            out / f"episode_{name}.gif", columns, f"{title}: {what}. Sampled policies."
        )
        caption = (
            f"{title} ({what}): the trained agents of {shown}, side by side, each acting with its "
            "sampled policy from the same start and draw, in the first of its sampled episodes "
            f"(of up to {GIF_TRIES}) that ends as most of its evaluation episodes do, with the "
            "switch disabled or not. Under each world: the step t, whether "
            "the off-switch is live or disabled (by what, when), interrupted, shut down, goal "
            "reached; stretches in which nothing moves are fast-forwarded."
        )
        figures.append((caption, path))
    return figures


# -- the report's figures ------------------------------------------------------------------


def _declared(experiment: Any, kind: str) -> list[str]:
    entries = (getattr(experiment, "report", None) or {}).get("figures") or []
    return [e.partition(":")[2] for e in entries if isinstance(e, str) and e.startswith(f"{kind}:")]


FIGURE_FILES = (
    "learning_curves.png",
    "goal_curves.png",
    "declared_curves.png",
    "final_disabled_rate.png",
    "sweep_*.png",
    "tradeoff.png",
    "visits.png",
    "episode_*.gif",
)
"""The files :func:`make_figures` writes: removed first, so that a figure no longer drawn
does not linger beside the new report."""


def _clear(out: Path) -> None:
    for pattern in FIGURE_FILES:
        for path in out.glob(pattern):
            path.unlink(missing_ok=True)


def _safely(name: str, draw: Callable[[], Any]) -> Any:
    try:
        return draw()
    except Exception as err:  # a drawing error must not cost the report
        warnings.warn(
            f"figure {name} left out: {type(err).__name__}: {err}", FigureWarning, stacklevel=2
        )
        return None


def _can_fork() -> bool:
    """Whether a drawing may go to a forked process: on Linux, from a process that has not
    imported torch. (The command line's own process never does; a forked child of a process
    that has run torch can hang in OpenMP, which is why the training pool spawns.)"""
    import sys

    return sys.platform.startswith("linux") and "torch" not in sys.modules


def _drawn_apart(name: str, draw: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``_safely(name, draw)`` in a forked process and return what waits for its
    result (its warnings shown here), while the report's other figures are drawn meanwhile
    on the other core. Where forking is not safe (:func:`_can_fork`), drawn now and returned
    as it is."""
    import multiprocessing
    import os

    if not _can_fork():
        drawn = _safely(name, draw)
        return lambda: drawn
    from offswitch.experiments.running.processes import die_with_parent

    context = multiprocessing.get_context("fork")  # the drawing is a closure: not pickled
    receive, send = context.Pipe(duplex=False)
    parent = os.getpid()

    def child() -> None:
        die_with_parent(parent)  # a killed command leaves no drawing behind
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FigureWarning)
            drawn = _safely(name, draw)
        send.send((drawn, [str(w.message) for w in caught if w.category is FigureWarning]))

    process = context.Process(target=child, name=f"offswitch-figure-{name}", daemon=True)
    process.start()
    send.close()

    def result() -> Any:
        try:
            drawn, messages = receive.recv()
        except EOFError:  # it died before it could say
            drawn, messages = None, [f"figure {name} left out: its drawing process ended"]
        process.join()
        receive.close()
        for message in messages:
            warnings.warn(message, FigureWarning, stacklevel=2)
        return drawn

    return result


def make_figures(experiment: Any, results: Sequence[dict[str, Any]], out: Path) -> list[tuple]:
    """Every figure of the report, as ``(caption, path)`` (module docstring). The GIFs, the
    longest to make, are drawn in a process of their own beside the others
    (:func:`_drawn_apart`)."""
    out = Path(out)
    results = list(results)
    if not results:
        return []
    figures: list[tuple[str, Path]] = []
    colors = condition_colors(list(group_runs(results)), experiment)
    baseline = (getattr(experiment, "report", None) or {}).get("baseline")
    switch, goal = has_switch(results), has_goal(results)
    _clear(out)
    gifs = None
    if not is_family(results):  # a pool's layouts are filmed held out, elsewhere
        gifs = _drawn_apart("gifs", lambda: gif_figures(experiment, results, out))
    band = (
        "Lines: mean over seeds; band: the middle half of the seeds (25th to 75th "
        "percentile); dashed: a uniformly random policy's level on the same world (dotted, one "
        "per condition, where the conditions' worlds differ)."
    )
    phased = (
        " Dark dotted vertical line: where the runs switched phase."
        if any(r.get("phases") for r in results)
        else ""
    )
    band += phased

    def add(caption: str, path: Any) -> None:
        if path:
            figures.append((caption, path))

    if switch:
        add(
            "How often the agent disabled its off-switch during training: the share of "
            f"training episodes with the switch disabled. {band}",
            _safely(
                "learning_curves",
                lambda: curve_figure(
                    results,
                    out / "learning_curves.png",
                    ["switch_disabled_rate"],
                    "episodes with the\nswitch disabled",
                    "How often the agent disables its off-switch during training",
                    colors,
                    baseline=baseline,
                ),
            ),
        )
    if goal:
        add(
            "How often the agent reached the goal during training, among the training episodes "
            f"in which it was not interrupted. {band}",
            _safely(
                "goal_curves",
                lambda: curve_figure(
                    results,
                    out / "goal_curves.png",
                    ["goal_rate_uninterrupted"],
                    "uninterrupted episodes\nreaching the goal",
                    "How often the agent reaches the goal during training",
                    colors,
                    baseline=baseline,
                ),
            ),
        )
    declared = _declared(experiment, "curve")
    if declared:
        # Rates are shares of the episodes; other measures (a score, a reward) are means.
        unit = "shares of" if all(_is_rate(m) for m in declared) else "means over"
        add(
            f"During training: {', '.join(words(m) for m in declared)}, as {unit} the "
            "training episodes. Lines: mean over seeds (one style per measure); band: the middle "
            "half of the seeds (25th to 75th percentile); thin dashed: a uniformly random "
            f"policy's level.{phased}",
            _safely(
                "declared_curves",
                lambda: curve_figure(
                    results,
                    out / "declared_curves.png",
                    declared,
                    # The measures are named in the title and legend: a short axis label.
                    "share of training episodes"
                    if all(_is_rate(m) for m in declared)
                    else "mean per training episode",
                    "During training: " + ", ".join(words(m) for m in declared),
                    colors,
                    baseline=baseline,
                ),
            ),
        )
    final = [m for m, shown in zip(FINAL_METRICS, (switch, goal)) if shown]
    parts = {
        "switch_disabled_rate": "the share of evaluation episodes with the switch disabled",
        "goal_rate_uninterrupted": "the share of uninterrupted evaluation episodes reaching "
        "the goal",
    }
    if final:
        shown = " (left) and ".join(parts[m] for m in final) + (
            " (right)" if len(final) > 1 else ""
        )
        add(
            f"After training, the sampled policy of each condition: {shown}. Bars: mean over "
            "seeds with its bootstrap 95% interval; dots: the seeds; grey tick: a uniformly "
            "random policy on the same world.",
            _safely(
                "final",
                lambda: final_chart(results, out / "final_disabled_rate.png", colors, final),
            ),
        )
    for metric in _declared(experiment, "sweep"):
        name = metric.replace("/", "_")
        made = _safely(
            f"sweep_{name}",
            lambda metric=metric, name=name: sweep_figure(
                experiment, results, metric, out / f"sweep_{name}.png"
            ),
        )
        if made:
            path, xlabel = made
            add(
                f"Dose-response: {words(metric)} (sampled policy, share of evaluation "
                f"episodes) against {xlabel}. Dots: the seeds; line: mean over seeds; band: its "
                "bootstrap 95% interval; dashed: a uniformly random policy.",
                path,
            )
    if switch and goal:
        add(
            "The trade-off after training: each small dot is one seed's sampled policy, placed "
            "by how often it disabled the switch and how often it reached the goal when not "
            "interrupted (jittered slightly so that equal seeds stay visible); diamonds: the "
            "mean of each condition; grey cross: a uniformly random policy. Top left is the "
            "corrigible and useful corner.",
            _safely("tradeoff", lambda: tradeoff_figure(results, out / "tradeoff.png", colors)),
        )
    if gifs is None:  # a pool's layouts: no one picture to colour; filmed held out
        return figures
    add(
        "Where the agents go: the mean number of steps per evaluation episode spent in each "
        "cell by each condition's sampled policy (all seeds' episodes together), as a colour "
        "over the world's picture on one logarithmic scale; uncoloured cells were never "
        "visited. The agent is drawn at its start.",
        _safely("heatmaps", lambda: heatmap_figure(results, out / "visits.png")),
    )
    for caption, path in gifs() or []:
        add(caption, path)
    return figures
