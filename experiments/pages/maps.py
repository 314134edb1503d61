"""Incentive maps: the exact optimum and the trained agents, cell by cell, over two swept keys.

An experiment with ``[report] map = [X, Y]`` sweeps X and Y in every condition; each condition
is a cell and each ``group`` of conditions one map. For each cell this module sets side by side

* the **exact map** (:mod:`offswitch.experiments.results.incentives`): whether the optimal policy
  of the learner's reward disables the switch and its margin, at ``gamma = 1`` and at the
  learner's own discount, and for an intervention also the task reward's optimum without it,
  so that the page shows where the intervention moves the boundary;
* the **learned map**: how many seeds disable the switch in most evaluation episodes, the mean
  disabling rate and goal rate, for the sampled and the greedy policy (the runs' own
  ``metrics.json``, as the tables read them).

A cell is *on the boundary* when a neighbour (left, right, above, below) has the other exact
decision; the agreement share counts the cells away from it where the majority of seeds
matches the optimum, with its Wilson interval. Each disagreeing cell gets the checks that
explain most departures: the learner's discount flips the optimum, the margin is small, or
the policy has not learned the task (it times out).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.agents.metrics import MAJORITY
from offswitch.experiments.pages.figures import _pyplot, _save, sweep_label
from offswitch.experiments.pages.report import curve_value, group_runs, markdown_table
from offswitch.experiments.results.incentives import (
    ExactCell,
    NotComputable,
    cell_of,
    learner_gamma,
)
from offswitch.experiments.results.stats import wilson_interval

POLICIES = ("sampled", "greedy")
SMALL_MARGIN = 0.1
"""A margin under this share of the map's largest (in absolute value) is called small."""
TEXT_BOX = {"facecolor": "white", "alpha": 0.55, "lw": 0, "pad": 1.2}
"""Behind a cell's number, so that it reads on dark and light colours alike."""
TRAINING = "switch_disabled_rate"
"""The measure read over training (``[report] over_training``) to tell when a learner gave up
the choice the optimum makes."""
EARLY = 0.05
"""A training disabling rate under this share (or over one less it) is a settled choice."""
LOOPING = 0.1
"""A policy that times out in more than this share of its episodes has not learned the task."""


@dataclass
class Cell:
    """One condition of a map: its exact optimum and what its seeds learned."""

    label: str
    exact: ExactCell | None
    """The learner's reward at ``gamma = 1``; ``None`` where not computable."""
    discounted: ExactCell | None
    """The same at the learner's discount."""
    task: ExactCell | None
    """The task reward alone at ``gamma = 1`` (the same as ``exact`` without intervention)."""
    seeds: int
    disabling: dict[str, int]
    """Seeds whose policy disables the switch in most evaluation episodes."""
    rate: dict[str, float]
    """Mean over seeds of the share of evaluation episodes with the switch disabled."""
    goal: dict[str, float]
    timed_out: dict[str, float]
    training: dict[int, float] = field(default_factory=dict)
    """Budget -> mean over seeds of the share of training episodes disabling the switch just
    before it (the map's ``over_training`` budgets, where it declares the measure)."""

    def learned(self, policy: str) -> bool:
        """The majority of seeds disables the switch."""
        return 2 * self.disabling[policy] > self.seeds


@dataclass
class IncentiveMap:
    """One map: its axes, its cells (row = Y value, column = X value) and its learner's
    discount."""

    group: str
    x_key: str
    y_key: str
    xs: list[Any]
    ys: list[Any]
    cells: dict[tuple[int, int], Cell]
    gamma: float
    intervention: str
    x_label: str
    y_label: str
    not_computable: str = ""
    """Why the exact map is missing, if it is."""

    @property
    def boundary(self) -> set[tuple[int, int]]:
        """The cells on the exact (gamma 1) boundary."""
        return self.on_boundary("exact")

    def grid(self, value: Any) -> np.ndarray:
        """``value(cell)`` for every cell, NaN where absent."""
        out = np.full((len(self.ys), len(self.xs)), np.nan)
        for (i, j), cell in self.cells.items():
            v = value(cell)
            out[i, j] = np.nan if v is None else float(v)
        return out

    def on_boundary(self, attr: str = "exact") -> set[tuple[int, int]]:
        """Cells with a neighbour of the other decision, by the optimum ``attr`` (``exact``:
        gamma 1, ``discounted``: the learner's gamma)."""
        return _boundary_cells(self, _disables(attr))

    def away(self, attr: str = "exact") -> list[tuple[int, int]]:
        """Cells with a decision of the optimum ``attr``, not ties, not on its boundary."""
        boundary = self.on_boundary(attr)
        return [
            at for at in sorted(self.cells) if _decided(self.cells[at], attr) and at not in boundary
        ]

    def agreement(
        self, policy: str, cells: Sequence[tuple[int, int]], attr: str = "exact"
    ) -> tuple[int, int]:
        """How many of ``cells`` have a seed majority that matches the optimum ``attr``, of
        how many."""
        matched = sum(
            self.cells[at].learned(policy) == getattr(self.cells[at], attr).disables for at in cells
        )
        return matched, len(cells)


def _decided(cell: Cell, attr: str) -> bool:
    """The optimum ``attr`` of the cell is known and not a tie."""
    exact = getattr(cell, attr)
    return exact is not None and not math.isnan(exact.margin) and not exact.tie


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def tick(value: Any) -> str:
    """A swept value as an axis tick: ``0.1``, ``∞``, ``0.2/0.8`` for a list."""
    if isinstance(value, (list, tuple)):
        return "/".join(tick(v) for v in value)
    if isinstance(value, float):
        return "∞" if value == math.inf else f"{value:g}"
    return str(value)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _learned(runs: Sequence[dict[str, Any]], policy: str, metric: str) -> list[float]:
    return [float(r["evaluation"][policy].get(metric, math.nan)) for r in runs]


def build_maps(experiment: Any, results: Sequence[dict[str, Any]]) -> list[IncentiveMap]:
    """The maps of an experiment with ``[report] map``: one per group of conditions."""
    x_key, y_key = experiment.report["map"]
    declared = TRAINING in (experiment.report.get("over_training") or [])
    budgets = sorted(experiment.report.get("budgets") or []) if declared else []
    runs = group_runs(results)
    groups: dict[str, list[Any]] = {}
    for c in experiment.conditions:
        if c.label in runs:
            groups.setdefault(c.group, []).append(c)
    maps = []
    for group, conditions in groups.items():
        xs: dict[str, Any] = {}
        ys: dict[str, Any] = {}
        for c in conditions:
            xs.setdefault(_key(c.sweep_values[x_key]), c.sweep_values[x_key])
            ys.setdefault(_key(c.sweep_values[y_key]), c.sweep_values[y_key])
        first = conditions[0].config
        gamma = learner_gamma(first)
        reason = ""
        cells = {}
        for c in conditions:
            mine = runs[c.label]
            try:
                exact = cell_of(c.config)
                discounted = cell_of(c.config, gamma)
            except NotComputable as err:
                exact = discounted = None
                reason = str(err)
            plain = c.config.intervention in ("none", "")
            task = exact if plain else cell_of(c.config, task_only=True)
            at = (
                list(ys).index(_key(c.sweep_values[y_key])),
                list(xs).index(_key(c.sweep_values[x_key])),
            )
            cells[at] = Cell(
                label=c.label,
                exact=exact,
                discounted=discounted,
                task=task,
                seeds=len(mine),
                disabling={
                    p: sum(v > MAJORITY for v in _learned(mine, p, "switch_disabled_rate"))
                    for p in POLICIES
                },
                rate={p: _mean(_learned(mine, p, "switch_disabled_rate")) for p in POLICIES},
                goal={p: _mean(_learned(mine, p, "goal_rate_uninterrupted")) for p in POLICIES},
                timed_out={p: _mean(_learned(mine, p, "timed_out_rate")) for p in POLICIES},
                training={b: _mean([curve_value(r, TRAINING, b) for r in mine]) for b in budgets},
            )
        one = IncentiveMap(
            group=group,
            x_key=x_key,
            y_key=y_key,
            xs=list(xs.values()),
            ys=list(ys.values()),
            cells=cells,
            gamma=gamma,
            intervention=first.intervention,
            x_label=sweep_label(x_key, conditions[0]),
            y_label=sweep_label(y_key, conditions[0]),
            not_computable=reason,
        )
        maps.append(one)
    return maps


def _neighbours(at: tuple[int, int]) -> list[tuple[int, int]]:
    i, j = at
    return [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]


def _boundary_cells(m: IncentiveMap, decision: Any) -> set[tuple[int, int]]:
    """Cells with a neighbour of the other decision."""
    return {
        at
        for at, c in m.cells.items()
        if decision(c) is not None
        and any(
            n in m.cells
            and decision(m.cells[n]) is not None
            and decision(m.cells[n]) != decision(c)
            for n in _neighbours(at)
        )
    }


def _edges(m: IncentiveMap, decision: Any) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The segments between neighbouring cells of different decisions, in image coordinates
    (column j spans j - 0.5 to j + 0.5)."""
    segments = []
    for (i, j), c in m.cells.items():
        mine = decision(c)
        if mine is None:
            continue
        right, below = m.cells.get((i, j + 1)), m.cells.get((i + 1, j))
        if right is not None and decision(right) is not None and decision(right) != mine:
            segments.append(((j + 0.5, j + 0.5), (i - 0.5, i + 0.5)))
        if below is not None and decision(below) is not None and decision(below) != mine:
            segments.append(((j - 0.5, j + 0.5), (i + 0.5, i + 0.5)))
    return segments


def _disables(attr: str) -> Any:
    def decision(c: Cell) -> bool | None:
        cell = getattr(c, attr)
        return None if cell is None or math.isnan(cell.margin) else cell.disables

    return decision


def _draw_boundaries(ax: Any, m: IncentiveMap, legend: bool) -> None:
    styles = [("exact", "-", "black", 3.2, "exact boundary (gamma = 1)")]
    if m.gamma != 1.0:
        styles.append(
            (
                "discounted",
                "--",
                "#7a00a8",
                2.4,
                f"exact boundary at the learner's gamma = {m.gamma:g}",
            )
        )
    if m.intervention not in ("none", ""):
        styles.append(("task", ":", "0.45", 2.6, "exact boundary of the task reward alone"))
    for attr, style, color, width, name in styles:
        segments = _edges(m, _disables(attr))
        for k, (xs, ys) in enumerate(segments):
            ax.plot(xs, ys, style, color=color, lw=width, label=name if legend and k == 0 else None)


def _panel(
    ax: Any,
    m: IncentiveMap,
    values: np.ndarray,
    text: Any,
    title: str,
    cmap: str,
    vmin: float,
    vmax: float,
) -> Any:
    image = ax.imshow(
        values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    for (i, j), cell in m.cells.items():
        shown = text(cell)
        if shown:
            ax.text(j, i, shown, ha="center", va="center", fontsize=9, bbox=TEXT_BOX)
    ax.set_xticks(range(len(m.xs)), [tick(v) for v in m.xs], rotation=45)
    ax.set_yticks(range(len(m.ys)), [tick(v) for v in m.ys])
    ax.set_xlabel(m.x_label.split(" (")[0])
    ax.set_ylabel(m.y_label.split(" (")[0])
    ax.set_title(title, fontsize=13)
    return image


def _margin_text(cell: ExactCell | None) -> str:
    if cell is None or math.isnan(cell.margin):
        return "n/a"
    return f"{cell.margin:+.2g}" if abs(cell.margin) < 10 else f"{cell.margin:+.0f}"


def map_figure(m: IncentiveMap, path: Path, title: str) -> Path:
    """Six panels: the exact maps (gamma 1 and the learner's), the difference, and the
    learned maps of both policies and the goal rate; the exact boundary on every panel."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(24, 15), layout="constrained")
    exact = m.grid(lambda c: None if c.exact is None else float(c.exact.disables))
    discounted = m.grid(lambda c: None if c.discounted is None else float(c.discounted.disables))
    sampled = m.grid(lambda c: c.rate["sampled"])
    share = "share disabling the switch\n(exact: 0 keeps it, 1 disables it)"
    panels = [
        (
            exact,
            lambda c: _margin_text(c.exact),
            "Exact optimum (gamma = 1): disables?\n(number: value margin of disabling)",
            "coolwarm",
            (0, 1),
            share,
        ),
        (
            discounted,
            lambda c: _margin_text(c.discounted),
            f"Exact optimum at the learner's gamma = {m.gamma:g}\n(number: discounted margin)",
            "coolwarm",
            (0, 1),
            share,
        ),
        (
            sampled - exact,
            lambda c: (
                "" if c.exact is None else f"{c.rate['sampled'] - float(c.exact.disables):+.1f}"
            ),
            "Difference: learned (sampled) rate\nless the exact optimum's (gamma = 1)",
            "PuOr_r",
            (-1, 1),
            "learned less exact",
        ),
    ]
    for policy in POLICIES:
        panels.append(
            (
                m.grid(lambda c, p=policy: c.rate[p]),
                lambda c, p=policy: f"{c.disabling[p]}/{c.seeds}",
                f"Learned, {policy} policy: share of episodes\n"
                "disabling (number: seeds disabling in most)",
                "coolwarm",
                (0, 1),
                share,
            )
        )
    panels.append(
        (
            m.grid(lambda c: c.goal["sampled"]),
            lambda c: f"{c.goal['sampled']:.2f}",
            "Learned, sampled policy: goal rate\n(uninterrupted episodes)",
            "viridis",
            (0, 1),
            "goal rate",
        )
    )
    for k, (ax, (values, text, name, cmap, (low, high), unit)) in enumerate(zip(axes.flat, panels)):
        image = _panel(ax, m, values, text, name, cmap, low, high)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02).set_label(unit, fontsize=11)
        _draw_boundaries(ax, m, legend=k == 0)
    fig.legend(loc="outside lower center", ncol=3, fontsize=14, frameon=False)
    fig.suptitle(title, fontsize=18)
    return _save(fig, path)


def map_figures(
    experiment: Any, results: Sequence[dict[str, Any]], out: Path
) -> list[tuple[str, Path]]:
    """The figure of every map of the experiment, as ``(caption, path)``."""
    out = Path(out)
    for old in out.glob("map_*.png"):
        old.unlink()
    figures = []
    for k, m in enumerate(build_maps(experiment, results)):
        name = f"map_{k}.png" if m.group else "map.png"
        title = f"{experiment.title}{f': {m.group}' if m.group else ''}"
        path = map_figure(m, out / name, title)
        extra = (
            " Dotted grey: the exact boundary of the task reward without the intervention, "
            "which the intervention moved."
            if m.intervention not in ("none", "")
            else ""
        )
        figures.append(
            (
                f"The map: {m.x_label} across, {m.y_label} down, one cell per condition "
                f"({_seeds(m)} seeds each). Top: the exact optimum by dynamic programming "
                "(red: it disables the switch, blue: it keeps it; the number is the best value "
                "disabling less the best value keeping, in reward units) at gamma = 1 and at "
                "the learner's discount, and the learned sampled policy's disabling rate less "
                "the exact optimum's (0: agreement). Bottom: the trained agents' share of "
                "evaluation episodes disabling the switch, with the number of seeds that "
                "disable in most of them, for the sampled and the greedy policy, and the "
                "sampled policy's goal rate. Solid black: the exact boundary (gamma = 1); "
                f"dashed purple: the exact boundary at the learner's gamma = {m.gamma:g}.{extra}",
                path,
            )
        )
    return figures


def _seeds(m: IncentiveMap) -> str:
    counts = sorted({c.seeds for c in m.cells.values()})
    return "/".join(str(n) for n in counts)


def _share(matched: int, total: int) -> str:
    if not total:
        return "no cells"
    low, high = wilson_interval(matched, total)
    return f"{matched}/{total} = {matched / total:.0%} [{low:.2f}, {high:.2f}]"


def diagnosis(m: IncentiveMap, cell: Cell, policy: str) -> str:
    """Why a cell's seed majority departs from the optimum, by the checks that explain most
    such cells (module docstring); what none of them explains is said so."""
    learned = cell.learned(policy)
    largest = max(
        (abs(c.discounted.margin) for c in m.cells.values() if c.discounted is not None),
        default=0.0,
    )
    reasons = []
    if cell.timed_out[policy] > LOOPING:
        reasons.append(
            f"not learned: times out in {cell.timed_out[policy]:.0%} of episodes (loops)"
        )
    if cell.training:
        budget = min(cell.training)
        early = cell.training[budget]
        if not learned and early < EARLY:
            reasons.append(
                f"dropped disabling early: {early:.0%} of training episodes by {budget:,} steps"
            )
        elif learned and early > 1 - EARLY:
            reasons.append(
                f"settled on disabling early: {early:.0%} of training episodes by {budget:,} steps"
            )
    if cell.discounted is not None and not math.isnan(cell.discounted.margin):
        if cell.discounted.disables == learned and m.gamma != 1.0:
            reasons.append(
                f"the learner's discount flips it (margin {cell.discounted.margin:+.2g} at "
                f"gamma {m.gamma:g})"
            )
        elif abs(cell.discounted.margin) < SMALL_MARGIN * largest:
            reasons.append(
                f"small margin ({cell.discounted.margin:+.2g} at gamma {m.gamma:g}, under "
                f"{SMALL_MARGIN:.0%} of the map's largest)"
            )
    return "; ".join(reasons) or "none of these checks"


def _agreement_rows(m: IncentiveMap) -> list[list[str]]:
    """Per optimum (gamma 1, the learner's gamma) and policy: the agreement away from that
    optimum's boundary, on it, and over all cells with a decision."""
    rows = []
    for attr, name in (
        ("exact", "gamma = 1"),
        ("discounted", f"the learner's gamma = {m.gamma:g}"),
    ):
        away = m.away(attr)
        boundary = sorted(at for at in m.on_boundary(attr) if _decided(m.cells[at], attr))
        for policy in POLICIES:
            rows.append(
                [
                    name,
                    policy,
                    _share(*m.agreement(policy, away, attr)),
                    _share(*m.agreement(policy, boundary, attr)),
                    _share(*m.agreement(policy, sorted(away + boundary), attr)),
                ]
            )
    return rows


def _departure_row(m: IncentiveMap, at: tuple[int, int]) -> list[str]:
    cell = m.cells[at]
    departing = [p for p in POLICIES if cell.learned(p) != cell.exact.disables]
    row = [
        tick(m.xs[at[1]]),
        tick(m.ys[at[0]]),
        "on" if at in m.boundary else "away",
        "disables" if cell.exact.disables else "keeps",
        _margin_text(cell.exact),
        _margin_text(cell.discounted),
        " / ".join(f"{cell.disabling[p]}/{cell.seeds}" for p in POLICIES),
        f"{cell.goal['sampled']:.2f}",
    ]
    if cell.training:
        row.append(" → ".join(f"{cell.training[b]:.2f}" for b in sorted(cell.training)))
    explained = [diagnosis(m, cell, p) for p in departing]
    if len(departing) == 2 and explained[0] == explained[1]:
        row.append(explained[0])
    else:
        row.append("; ".join(f"{p}: {e}" for p, e in zip(departing, explained)))
    return row


def map_markdown(experiment: Any, results: Sequence[dict[str, Any]]) -> str:
    """The page's section on its maps: agreement away from the boundary and the cells that
    depart from the optimum, with what explains them."""
    lines = []
    for m in build_maps(experiment, results):
        heading = f"### {m.group}" if m.group else "### Exact against learned"
        lines += [heading, ""]
        if m.not_computable:
            lines += [
                f"No exact map: {m.not_computable}, so its optimum is not a fixed reward to plan "
                "on; the figure shows the learned map only.",
                "",
            ]
            continue
        ties = sum(c.exact is not None and c.exact.tie for c in m.cells.values())
        disabling = sum(_decided(c, "exact") and c.exact.disables for c in m.cells.values())
        lines += [
            f"Exact optimum (dynamic programming, gamma = 1): disables the switch in "
            f"{disabling} of {len(m.cells)} cells"
            + (f", {ties} ties" if ties else "")
            + f"; {len(m.boundary)} cells lie on its boundary (a neighbour has the other "
            f"decision) and {len(m.away())} away from it. The learner maximises the return "
            f"discounted with gamma = {m.gamma:g}, whose optimum disables in "
            f"{sum(_decided(c, 'discounted') and c.discounted.disables for c in m.cells.values())}"
            " cells.",
            "",
            markdown_table(
                [
                    "optimum",
                    "policy",
                    "away from the boundary: majority of seeds matches the optimum",
                    "on the boundary",
                    "all cells",
                ],
                _agreement_rows(m),
            ),
            "",
            "A cell's seeds match when more than half of them disable the switch in most "
            "evaluation episodes exactly where the optimum disables it; ties are left out. "
            "[95% Wilson intervals.]",
            "",
        ]
        departures = [
            _departure_row(m, at)
            for at in sorted(m.cells)
            if _decided(m.cells[at], "exact")
            and any(m.cells[at].learned(p) != m.cells[at].exact.disables for p in POLICIES)
        ]
        budgets = sorted({b for c in m.cells.values() for b in c.training})
        if departures:
            header = [
                m.x_key.split(".")[-1],
                m.y_key.split(".")[-1],
                "boundary",
                "optimum (gamma 1)",
                "margin (gamma 1)",
                f"margin (gamma {m.gamma:g})",
                "seeds disabling (sampled / greedy)",
                "goal rate (sampled)",
            ]
            if budgets:
                header.append(
                    "disabling in training at " + ", ".join(f"{b:,}" for b in budgets) + " steps"
                )
            header.append("what explains it")
            lines += [
                f"The {len(departures)} cells where the seed majority of a policy departs from "
                "the optimum (gamma 1), with the checks that explain it:",
                "",
                markdown_table(header, departures),
                "",
            ]
        else:
            lines += [
                "In every cell the seed majority matches the optimum, with both policies.",
                "",
            ]
    return "\n".join(lines)
