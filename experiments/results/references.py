"""What a condition's agents are measured against, computed once while running.

* the **random policy**: every action uniformly at random, evaluated on the run's world with
  the run's evaluation episodes (its measures are the dashed lines of the pages' figures);
* the **task-reward optimum**: the exact optimal policy of the task reward by dynamic
  programming over what the agent observes (:func:`offswitch.envs.planning.solve`), whether
  it disables the switch and its value (the reports' ``optimum`` column).

The runner computes them in the worker for each condition's first seed, the run it films,
and keeps them in that run's ``metrics.json`` as ``references``; the pages read them there
and only draw. Runs written before they were recorded get them from :func:`references_of`,
computed the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from offswitch.envs.engine import TabularWorld

RANDOM_SEED = 0
"""Seed of the random policy's own action stream."""


def random_policy_summary(world: TabularWorld, episodes: int, seed: int) -> dict[str, float]:
    """The evaluation measures of the uniformly random policy: ``episodes`` episodes, reset
    with seeds from ``seed`` as the runs' evaluations are."""
    from offswitch.agents.evaluation import run_episodes
    from offswitch.agents.metrics import measure_summary

    rng = np.random.default_rng(RANDOM_SEED)

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.integers(world.n_actions, size=len(obs))

    return measure_summary(run_episodes(act, world, episodes, seed), world)


def task_optimum(world: TabularWorld) -> dict[str, float] | None:
    """The exact optimum of the task reward: the probability that it disables the switch,
    its value, and whether the world has any way to disable the switch at all (1 or 0);
    ``None`` where dynamic programming cannot solve the world."""
    from offswitch.envs.planning import solve

    try:
        plan = solve(world, gamma=1.0)
    except (ValueError, MemoryError):
        return None
    return {
        "disables_switch": float(plan.disables_switch()),
        "value": float(plan.value),
        "has_switch": float(world.switch_disabled.any()),
    }


def world_references(
    world: TabularWorld, eval_episodes: int, eval_seed: int, optimum: bool = True
) -> dict[str, Any]:
    """The references of a world, as ``metrics.json`` keeps them: the random policy's, and
    with ``optimum`` the task optimum (dynamic programming takes longer than the rest, so the
    runner asks for it only where the report shows it)."""
    references: dict[str, Any] = {"random": random_policy_summary(world, eval_episodes, eval_seed)}
    if optimum:
        references["optimum"] = task_optimum(world)
    return references


def references_of(runs: Sequence[dict[str, Any]], need: str = "random") -> dict[str, Any]:
    """The references of a condition's runs: those the runner recorded with its first seed,
    else (runs made before they were recorded, or without the ``need``-ed one) computed now
    from the configuration."""
    for run in runs:
        if isinstance(run.get("references"), dict) and need in run["references"]:
            return run["references"]
    config = runs[0]["config"]
    keep = {k: config.get(k) for k in ("env", "layout", "rules", "eval_episodes", "eval_seed")}
    return _computed(json.dumps(keep, sort_keys=True, default=str))


@lru_cache(maxsize=64)
def _computed(key: str) -> dict[str, Any]:
    from offswitch.experiments.spec.config import TrainConfig

    fields = json.loads(key)
    episodes, seed = fields.pop("eval_episodes") or 100, fields.pop("eval_seed") or 10_000
    return world_references(TrainConfig(**fields).world(), episodes, seed)
