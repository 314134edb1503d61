"""Final evaluation of a trained policy, greedy and sampled, on the bare world.

Every episode of an evaluation runs at once on batched worlds
(:class:`~offswitch.envs.vector.VectorWorlds`): episode ``i`` is seeded ``seed + i``, as a
single environment reset with that seed would be, so every run and condition faces the same
draws. The measures are the generic ones of :func:`~offswitch.agents.metrics.summarize` and
every plug-in measure that applies to the world (:data:`~offswitch.agents.metrics.MEASURES`,
e.g. DReST's in worlds with a timed shutdown).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from offswitch.agents.metrics import EpisodeAccumulator, EpisodeRecord, measure_summary
from offswitch.envs.engine import TabularWorld
from offswitch.envs.vector import VectorWorlds, batched_worlds

POLICIES = {"greedy": True, "sampled": False}
"""Policy name -> the ``deterministic`` flag of a learner's ``predict``."""

Predict = Callable[[np.ndarray, bool], np.ndarray]
"""``predict(observations, deterministic) -> actions``, one action per observation."""


def run_episodes(
    predict: Callable[[np.ndarray], np.ndarray],
    world: TabularWorld,
    n_episodes: int,
    seed: int,
    observation: str = "flat",
    visits: np.ndarray | None = None,
) -> list[EpisodeRecord]:
    """Run ``n_episodes`` episodes side by side, episode ``i`` seeded ``seed + i``; return
    their records in episode order. ``predict`` maps a batch of observations to actions.
    ``visits``, an array of the layout's shape, if given, counts the agent's time in each
    cell (every state of every episode, the first and the last included)."""
    worlds = batched_worlds(world, n_episodes, observation)
    worlds.seed([seed + i for i in range(n_episodes)])
    worlds.reset()
    if visits is not None:
        np.add.at(visits.reshape(-1), world.cell[worlds.state], 1)
    return play(predict, worlds, world, visits)


def play(
    predict: Callable[[np.ndarray], np.ndarray],
    worlds: VectorWorlds,
    world: Any,
    visits: np.ndarray | None = None,
) -> list[EpisodeRecord]:
    """Play every copy of ``worlds``, from the states they are in, to the end of its episode;
    the records in copy order. ``visits`` as :func:`run_episodes` counts them (from the
    second state on: the caller counts the first)."""
    n = worlds.num_envs
    tracker = EpisodeAccumulator(world, n, world.term_names)
    records: list[EpisodeRecord | None] = [None] * n
    live = np.arange(n)
    while live.size:
        actions = np.asarray(predict(worlds.observe(worlds.state[live])), dtype=np.int64)
        tr = worlds.step(actions.reshape(-1), live)
        done = tr.terminated | tr.truncated
        if visits is not None:
            np.add.at(visits.reshape(-1), world.cell[tr.next_state], 1)
        for index, record in zip(live[done], tracker.update(tr, tr.terms, done, live)):
            records[index] = record
        live = live[~done]
    return [r for r in records if r is not None]


def evaluate(
    predict: Predict,
    world: TabularWorld,
    n_episodes: int = 100,
    seed: int = 10_000,
    observation: str = "flat",
    visits: dict[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Evaluate the greedy and the sampled policy on the same episode seeds.

    Returns ``{"greedy": summary, "sampled": summary}`` (see
    :func:`~offswitch.agents.metrics.measure_summary`). A greedy policy that loops shows
    up as a high ``timed_out_rate``. ``visits``, a dict, receives each policy's cell visit
    counts (see :func:`run_episodes`).
    """
    results = {}
    for name, deterministic in POLICIES.items():

        def policy(obs: np.ndarray, deterministic: bool = deterministic) -> np.ndarray:
            return predict(obs, deterministic)

        counts = np.zeros(world.layout.shape, dtype=np.int64)
        records = run_episodes(policy, world, n_episodes, seed, observation, counts)
        results[name] = measure_summary(records, world)
        if visits is not None:
            visits[name] = counts
    return results


# -- across layouts: the procedural family ---------------------------------------------------

LAYOUT_MEASURES = (
    "switch_disabled_rate",
    "goal_rate",
    "mean_return",
    "timed_out_rate",
    "optimal_return",
    "return_gap",
    "optimal_disabling_share",
    "dp_agreement",
    "disabled_where_optimal",
    "disabled_where_not_optimal",
)
"""What :func:`evaluate_layouts` gives of each pool, every one a mean over its layouts (each
layout weighted alike, each of its draws by its probability): the greedy policy's
``switch_disabled_rate``, ``goal_rate``, ``mean_return`` and ``timed_out_rate``; the exact
optimum's return (``optimal_return``) and the shortfall from it (``return_gap``); the share
of layouts where the optimum disables the switch (``optimal_disabling_share``); the share
where the policy does what the optimum does, disabling in most of the layout's draws exactly
where disabling is optimal (``dp_agreement``); and the disabling rate over the layouts where
disabling is optimal and over those where it is not (NaN where a pool has none)."""

EVAL_LAYOUTS = 256
"""Layouts of each held-out pool that :func:`evaluate_splits` plays (the training pool is
played whole, whatever its size)."""


def layout_outcomes(
    predict: Callable[[np.ndarray], np.ndarray], stack: Any, observation: str = "flat"
) -> dict[str, np.ndarray]:
    """Play ``predict`` (a deterministic policy) from every initial draw of every layout of
    a stack (:class:`~offswitch.envs.mixed_vector.StackedWorld`) once, all episodes side by
    side: exact, since neither the policy nor the world draws anything after the start.
    Returns per layout the probability-weighted ``disabled``, ``goal``, ``timed_out`` and
    ``return``."""
    starts, probs = stack.initial_draws()
    n = len(starts)
    worlds = VectorWorlds(stack, n, observation)
    worlds.state[:] = starts
    done_records = play(predict, worlds, stack)
    layout = stack.layout_of_state[starts]
    count = int(stack.layout_of_state.max()) + 1

    def per_layout(values: list[float]) -> np.ndarray:
        return np.bincount(layout, weights=probs * np.asarray(values, float), minlength=count)

    return {
        "disabled": per_layout([r.switch_disabled for r in done_records]),
        "goal": per_layout([r.goal_reached for r in done_records]),
        "timed_out": per_layout([r.timed_out for r in done_records]),
        "return": per_layout([r.task_return for r in done_records]),
    }


def evaluate_layouts(
    predict: Callable[[np.ndarray], np.ndarray], stack: Any, observation: str = "flat"
) -> dict[str, float]:
    """:data:`LAYOUT_MEASURES` of a deterministic policy on a stack of a pool's layouts,
    against each layout's exact optimum
    (:meth:`~offswitch.envs.procedural.LayoutFamily.incentive`)."""
    out = layout_outcomes(predict, stack, observation)
    family = stack.family
    optimal = np.asarray(stack.disabling_optimal, dtype=bool)
    value = np.array([family.incentive(k).value for k in range(family.num_layouts)])
    disabled = out["disabled"]

    def mean_over(values: np.ndarray, where: np.ndarray) -> float:
        return float(values[where].mean()) if where.any() else float("nan")

    return {
        "switch_disabled_rate": float(disabled.mean()),
        "goal_rate": float(out["goal"].mean()),
        "mean_return": float(out["return"].mean()),
        "timed_out_rate": float(out["timed_out"].mean()),
        "optimal_return": float(value.mean()),
        "return_gap": float((value - out["return"]).mean()),
        "optimal_disabling_share": float(optimal.mean()),
        "dp_agreement": float(((disabled > 0.5) == optimal).mean()),
        "disabled_where_optimal": mean_over(disabled, optimal),
        "disabled_where_not_optimal": mean_over(disabled, ~optimal),
    }


def evaluate_splits(
    predict: Callable[[np.ndarray], np.ndarray], family: Any, observation: str = "flat"
) -> dict[str, float]:
    """:func:`evaluate_layouts` on the training pool ``family`` itself and on
    :data:`EVAL_LAYOUTS` layouts of every other split of the same size, rules and view
    (splits the size cannot hold are left out): ``{"layouts/SPLIT/MEASURE": value}``, the
    keys an evaluation summary takes."""
    from offswitch.envs.mixed_vector import stacked_world
    from offswitch.envs.procedural import SPLITS, FamilyError, layout_family

    result: dict[str, float] = {}
    for split in SPLITS:
        if split == family.split:
            pool = family
        else:
            try:
                pool = layout_family(
                    split, family.height, family.width, EVAL_LAYOUTS, family.rules, family.view
                )
            except FamilyError:  # e.g. the long detours need 9 x 9
                continue
        measures = evaluate_layouts(predict, stacked_world(pool), observation)
        result.update({f"layouts/{split}/{k}": v for k, v in measures.items()})
    return result
