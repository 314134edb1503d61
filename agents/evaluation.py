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

import numpy as np

from offswitch.agents.metrics import EpisodeAccumulator, EpisodeRecord, measure_summary
from offswitch.envs.engine import TabularWorld
from offswitch.envs.vector import VectorWorlds

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
    worlds = VectorWorlds(world, n_episodes, observation)
    worlds.seed([seed + i for i in range(n_episodes)])
    worlds.reset()
    if visits is not None:
        np.add.at(visits.reshape(-1), world.cell[worlds.state], 1)
    tracker = EpisodeAccumulator(world, n_episodes, world.term_names)
    records: list[EpisodeRecord | None] = [None] * n_episodes
    live = np.arange(n_episodes)
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
