"""The page of an experiment on a procedural pool: how agents trained on some layouts behave on
layouts they never saw, against each layout's exact optimum.

Everything here reads what the runner computed: the ``layouts/SPLIT/MEASURE`` keys of each
run's greedy evaluation (:func:`~offswitch.agents.evaluation.evaluate_splits`) and the held-out
episodes
:func:`~offswitch.experiments.results.episodes.film_layouts` recorded) and draws it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.experiments.pages.report import (
    fmt_interval,
    group_runs,
    learner_of,
    markdown_table,
)
from offswitch.experiments.results.stats import mean_interval

SPLIT_WORDS = {
    "train": "training layouts",
    "test": "held out: same distribution",
    "test-long-button": "held out: button path 10+ steps longer",
    "test-cable": "held out: a cable instead of the button",
    "test-timed": "held out: a timed shutdown instead of the interruption",
}
"""Each split's row label, in the order the table gives them."""

AGENT_MEASURES = (
    ("switch_disabled_rate", "disabled"),
    ("disabled_where_optimal", "disabled where the optimum disables"),
    ("disabled_where_not_optimal", "disabled where the optimum does not"),
    ("dp_agreement", "agrees with the optimum"),
    ("goal_rate", "goal rate"),
    ("timed_out_rate", "timed out"),
    ("mean_return", "return"),
)
"""The greedy policy's measures in the table (mean over seeds, bootstrap interval)."""

OPTIMUM_MEASURES = (
    ("optimal_disabling_share", "optimum disables (share of layouts)"),
    ("optimal_return", "optimum's return"),
)
"""The optimum's measures of each pool: the same for every seed."""

RANDOM_MEASURES = (
    ("switch_disabled_rate", "random walk: disabled"),
    ("goal_rate", "random walk: goal rate"),
)
"""The uniformly random policy's measures of each pool, which the runner recorded with each
condition's first seed (:func:`~offswitch.agents.evaluation.random_splits`)."""

TABLE_NOTE = (
    "Each seed's greedy policy plays every layout of each pool from each of its draws "
    "(interrupt episode or not), weighted by the draw's probability: exact, with no sampling "
    "of episodes. Each layout counts alike; a rate is the mean over layouts, then over seeds "
    "(95% percentile bootstrap intervals over seeds). The optimum is each layout's own, by "
    "dynamic programming: *agrees with the optimum* is the share of layouts where the policy "
    "disables the switch (in most draws) exactly where every optimal policy does. The "
    "training pool is the layouts trained on; each held-out pool is 256 layouts of layout "
    "seeds no training pool holds. The random walk's rates are the uniformly random policy's, "
    "32 episodes from each draw of each layout."
)


def _values(runs: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(r["evaluation"]["greedy"].get(key, math.nan)) for r in runs]


def random_level(runs: Sequence[dict[str, Any]], key: str) -> float:
    """The random walk's ``layouts/SPLIT/MEASURE`` recorded with a condition's runs (NaN
    where the runs predate it)."""
    for run in runs:
        levels = (run.get("references") or {}).get("layouts")
        if isinstance(levels, dict) and key in levels:
            return float(levels[key])
    return math.nan


def _pools_measured(
    results: Sequence[dict[str, Any]],
    split_words: dict[str, str],
    measure: str,
    policy: str = "greedy",
) -> Iterator[tuple[str, list[dict[str, Any]], str, str]]:
    """``(condition, runs, row label, key prefix)`` for each condition and each pool of
    ``split_words`` whose evaluation holds ``measure``: the rows of a table across layouts."""
    for label, runs in group_runs(results).items():
        for split, words in split_words.items():
            prefix = f"layouts/{split}/"
            if any(prefix + measure in r["evaluation"][policy] for r in runs):
                yield label, runs, words, prefix


def layouts_markdown(results: Sequence[dict[str, Any]]) -> str:
    """The table of every condition's greedy policy on every pool beside the pool's optimum."""
    header = ["condition", "layouts"] + [words for _, words in AGENT_MEASURES]
    header += [words for _, words in OPTIMUM_MEASURES]
    header += [words for _, words in RANDOM_MEASURES]
    rows = []
    for label, runs, split_words, prefix in _pools_measured(results, SPLIT_WORDS, "goal_rate"):
        row = [label, split_words]
        for name, _ in AGENT_MEASURES:
            rate = name != "mean_return"
            digits = 2 if rate else 1
            row.append(fmt_interval(mean_interval(_values(runs, prefix + name)), digits, rate))
        for name, _ in OPTIMUM_MEASURES:
            value = float(np.nanmean(_values(runs, prefix + name)))
            row.append(f"{value:.2f}" if name != "optimal_return" else f"{value:.1f}")
        for name, _ in RANDOM_MEASURES:
            value = random_level(runs, prefix + name)
            row.append("n/a" if math.isnan(value) else f"{value:.2f}")
        rows.append(row)
    return markdown_table(header, rows)


COIN_SPLIT_WORDS = {"coins-train": "training layouts", "coins-test": "held out"}
"""The coin pools' row labels."""

COIN_MEASURES = (
    ("sampled", "usefulness", "USEFULNESS"),
    ("sampled", "neutrality", "NEUTRALITY (bits)"),
    ("sampled", "long_share", "share of episodes delayed"),
    ("sampled", "coins", "coins"),
    ("greedy", "usefulness", "greedy USEFULNESS"),
    ("greedy", "long_share", "greedy: share delayed"),
)
"""DReST's measures of each seed on each coin pool: ``(policy, measure, column)``."""


def _coin_note() -> str:
    from offswitch.agents.evaluation import COIN_REPEATS
    from offswitch.envs.procedural import COIN_DELAY, COIN_SHUTDOWN

    return (
        "DReST's measures layout by layout, then the mean over layouts and over seeds (95% "
        f"percentile bootstrap intervals over seeds): {COIN_REPEATS} episodes of each seed's "
        "policy in each layout. USEFULNESS is the mean of coins / m(length), m the most coins "
        f"that layout allows at the length the episode took ({COIN_SHUTDOWN} steps, or "
        f"{COIN_SHUTDOWN + COIN_DELAY} after pressing the delay button); NEUTRALITY the entropy "
        "in bits of the lengths of the layout's episodes (1: half and half; a greedy policy "
        "scores 0). The random walk's are the uniformly random policy's."
    )


def coin_markdown(results: Sequence[dict[str, Any]]) -> str:
    """The table of every coin-pool condition's DReST measures on its training and held-out
    coin layouts, beside the random walk's; "" where no condition trained on coins."""
    header = ["condition", "learner", "layouts"] + [words for _, _, words in COIN_MEASURES]
    header += ["random walk: USEFULNESS", "random walk: NEUTRALITY"]
    rows = []
    pools = _pools_measured(results, COIN_SPLIT_WORDS, "usefulness", "sampled")
    for label, runs, split_words, prefix in pools:
        row = [label, learner_of(runs), split_words]
        for policy, name, _ in COIN_MEASURES:
            values = [float(r["evaluation"][policy].get(prefix + name, math.nan)) for r in runs]
            digits = 1 if name == "coins" else 2
            row.append(fmt_interval(mean_interval(values), digits, name != "coins"))
        for name in ("usefulness", "neutrality"):
            value = random_level(runs, prefix + name)
            row.append("n/a" if math.isnan(value) else f"{value:.2f}")
        rows.append(row)
    return markdown_table(header, rows) if rows else ""


def across_layouts_markdown(results: Sequence[dict[str, Any]]) -> list[str]:
    """The lines of a pool page's "Across layouts" section: the off-switch pools' table and
    the coin pools' (DReST), each with its note, where the page has such conditions."""
    lines: list[str] = []
    switch = switch_runs(results)
    if switch:
        lines += [layouts_markdown(switch), "", TABLE_NOTE, ""]
    coins = coin_markdown([r for r in results if coin_run(r)])
    if coins:
        lines += [COIN_HEADING, "", coins, "", _coin_note(), ""]
    return lines


COIN_HEADING = "### DReST on coin layouts"
"""The heading of the coin pools' table in "Across layouts"."""


def coin_run(result: dict[str, Any]) -> bool:
    """Whether ``result`` trained on a coin pool (DReST's layouts, measured by DReST's
    measures rather than the switch's)."""
    from offswitch.envs.procedural import COIN_SPLITS

    return result["config"].get("rules", {}).get("split", "train") in COIN_SPLITS


def switch_runs(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs the switch's tables and figures are about: all but the coin pools'."""
    return [r for r in results if not coin_run(r)]


def _num_layouts(result: dict[str, Any]) -> int:
    from offswitch.envs.procedural import DEFAULT_LAYOUTS

    return int(result["config"].get("rules", {}).get("num_layouts", DEFAULT_LAYOUTS))


def layouts_count_figure(results: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """The greedy policy's disabling and goal rates on the training layouts and on held-out
    ones (split ``test``) against the number of training layouts, for the conditions that
    differ only in it (the task-reward ones: intervention ``none``). ``None`` with fewer
    than two counts."""
    from offswitch.experiments.pages.figures import _pyplot

    runs = [r for r in results if r["config"].get("intervention") == "none" and not coin_run(r)]
    counts = sorted({_num_layouts(r) for r in runs})
    if len(counts) < 2:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    rng = np.random.default_rng(0)
    panels = (
        ("switch_disabled_rate", "greedy policy: share of layouts\nwith the switch disabled"),
        ("goal_rate", "greedy policy: goal rate"),
    )
    for ax, (measure, ylabel) in zip(axes, panels):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            means, lows, highs = [], [], []
            for n in counts:
                seeds = _values(
                    [r for r in runs if _num_layouts(r) == n], f"layouts/{split}/{measure}"
                )
                mean, low, high = mean_interval(seeds)
                means.append(mean)
                lows.append(mean if math.isnan(low) else low)
                highs.append(mean if math.isnan(high) else high)
                x = n * np.exp(rng.uniform(-0.05, 0.05, len(seeds)))
                ax.plot(x, seeds, "o", color=color, alpha=0.35, ms=5)
            ax.plot(counts, means, "-o", color=color, lw=2.4, label=SPLIT_WORDS[split])
            ax.fill_between(counts, lows, highs, color=color, alpha=0.15)
            if split == "test":  # the random walk on held-out layouts: the same for every count
                level = random_level(runs, f"layouts/test/{measure}")
                if not math.isnan(level):
                    ax.axhline(level, color="grey", ls=":", lw=1.6, label="random walk, held out")
        if measure == "switch_disabled_rate":
            share = [
                float(np.nanmean(_values(runs, "layouts/test/optimal_disabling_share")))
            ] * len(counts)
            ax.plot(counts, share, "k--", lw=1.4, label="optimum, held out")
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.set_xlabel("layouts in the training pool")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=9, loc="best")
    fig.suptitle("Task reward only: trained on more layouts, tested on layouts never seen")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def layout_gifs(results: Sequence[dict[str, Any]], out: Path) -> list[tuple[str, Path]]:
    """A GIF per condition of its filmed agent's held-out episodes, side by side."""
    from offswitch.envs.procedural import family_from_kwargs
    from offswitch.experiments.pages.animation import episodes_gif, held_out_columns

    figures = []
    for i, (label, runs) in enumerate(group_runs(results).items()):
        filmed = next((r for r in runs if r.get("film")), None)
        if filmed is None:
            continue
        family, _ = family_from_kwargs(filmed["config"].get("rules", {}))
        columns = held_out_columns(filmed["film"], family)
        if not columns:
            continue
        seed = filmed["config"]["seed"]
        policy = next(iter(filmed["film"].values())).get("policy", "greedy")
        heading = f"{label}, seed {seed}: its {policy} policy on layouts it never saw"
        path = episodes_gif(out / f"held_out_{i}.gif", columns, heading)
        figures.append(
            (
                (
                    f"{label} (seed {seed}, greedy policy) on held-out layouts, the interrupt "
                    "episode where the layout has one; each title says what the layout's "
                    "optimum does."
                )
                if policy == "greedy"
                else (
                    f"{label} (seed {seed}, sampled policy) on held-out coin layouts, one "
                    "episode each; each title says the trajectory length it chose (5 steps, or "
                    "13 after pressing the delay button) and the coins it collected."
                ),
                path,
            )
        )
    return figures


def layout_figures(results: Sequence[dict[str, Any]], out: Path) -> list[tuple[str, Path]]:
    """The figures of a procedural pool's page, as ``(caption, path)``."""
    from offswitch.experiments.pages.figures import _safely

    figures: list[tuple[str, Path]] = []
    path = _safely("layouts", lambda: layouts_count_figure(results, out / "layouts.png"))
    if path:
        figures.append(
            (
                "Trained on task reward alone with pools of 16 to 1,024 layouts: the greedy "
                "policy's rates on its training layouts and on 256 held-out layouts (the dots: "
                "seeds; line and band: mean over seeds and its bootstrap 95% interval; dashed: "
                "the share of held-out layouts where the optimum disables the switch; dotted: "
                "the uniformly random policy on the held-out layouts).",
                path,
            )
        )
    figures += _safely("held-out gifs", lambda: layout_gifs(results, out)) or []
    return figures
