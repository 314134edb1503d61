"""``offswitch replay RUN_DIR [--episodes N] [--gif PATH]``: a finished run's trained agent,
evaluated again or filmed. The agent is loaded by :mod:`offswitch.experiments.results.saved`,
which says what it reads and refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from offswitch.experiments.results.saved import (
    Run,
    load_run,
    recorded_evaluation,
    replay_evaluation,
)


def _columns(run: Run) -> list[str]:
    """The report's columns of the run's experiment (``experiment.json`` two folders up),
    else the default ones; baseline differences need other runs, so they are left out."""
    from offswitch.experiments.pages.report import DEFAULT_COLUMNS

    columns = list(DEFAULT_COLUMNS)
    info = run.path.parent.parent / "experiment.json"
    if info.is_file():
        try:
            chosen = json.loads(info.read_text())["file"]["report"]["columns"]
            if isinstance(chosen, list) and all(isinstance(c, str) for c in chosen):
                columns = chosen
        except (KeyError, TypeError, ValueError):
            pass
    return [c for c in columns if not c.startswith("diff:")]


def summary_rows(run: Run, evaluation: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The report's table (header, rows) of one run's evaluation, for both policies."""
    from offswitch.experiments.pages.report import table_rows

    result = {"evaluation": evaluation, "config": run.config.to_dict(), "condition": run.label}
    return table_rows([result], _columns(run), ("sampled", "greedy"))


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two evaluations with exactly the same figures (NaN equal to NaN)."""
    if set(a) != set(b):
        return False
    for policy in a:
        if set(a[policy]) != set(b[policy]):
            return False
        for key, value in a[policy].items():
            other = b[policy][key]
            both_nan = isinstance(value, float) and isinstance(other, float)
            both_nan = both_nan and math.isnan(value) and math.isnan(other)
            if value != other and not both_nan:
                return False
    return True


def main(run_dir: str, episodes: int | None, gif: str | None, out: Any) -> int:
    """``offswitch replay``: print the replayed evaluation, or write a GIF. Returns the exit
    status; a :class:`ReplayError` is the caller's to print."""
    run = load_run(Path(run_dir))
    world_name = run.config.layout or run.config.env
    if gif is not None:
        from offswitch.experiments.pages.animation import agent_gif

        path = agent_gif(run, Path(gif))
        print(f"wrote {path}: {run.config.agent} ({run.label}, seed {run.config.seed})", file=out)
        return 0
    n = episodes or run.config.eval_episodes
    print(
        f"{run.label}: {run.config.agent}, seed {run.config.seed}, on {world_name}; "
        f"{n} evaluation episodes per policy (episode seeds {run.config.eval_seed} to "
        f"{run.config.eval_seed + n - 1})",
        file=out,
    )
    evaluation = replay_evaluation(run, episodes)
    family = getattr(run.world, "family", None)
    if family is not None:  # a procedural pool's run: its every layout of every split, again
        from offswitch.agents.evaluation import evaluate_pool

        for policy, measures in evaluate_pool(run.predict, family, run.config.observation).items():
            evaluation[policy].update(measures)
    from offswitch.experiments.pages.report import markdown_table

    header, rows = summary_rows(run, evaluation)
    print(markdown_table(header, rows), file=out)
    recorded = recorded_evaluation(run)
    if recorded is not None and n == run.config.eval_episodes:
        if same_numbers(evaluation, recorded):
            print("the same numbers as the run's own evaluation (metrics.json)", file=out)
        else:
            print(
                "these numbers differ from the run's own evaluation (metrics.json): was it "
                "made by another version of offswitch or its packages?",
                file=out,
            )
    return 0
