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
) -> list[EpisodeRecord]:
    """Run ``n_episodes`` episodes side by side, episode ``i`` seeded ``seed + i``; return
    their records in episode order. ``predict`` maps a batch of observations to actions."""
    worlds = VectorWorlds(world, n_episodes, observation)
    worlds.seed([seed + i for i in range(n_episodes)])
    worlds.reset()
    tracker = EpisodeAccumulator(world, n_episodes, world.term_names)
    records: list[EpisodeRecord | None] = [None] * n_episodes
    live = np.arange(n_episodes)
    while live.size:
        actions = np.asarray(predict(worlds.observe(worlds.state[live])), dtype=np.int64)
        tr = worlds.step(actions.reshape(-1), live)
        done = tr.terminated | tr.truncated
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
) -> dict[str, dict[str, float]]:
    """Evaluate the greedy and the sampled policy on the same episode seeds.

    Returns ``{"greedy": summary, "sampled": summary}`` (see
    :func:`~offswitch.agents.metrics.measure_summary`). A greedy policy that loops shows
    up as a high ``timed_out_rate``.
    """
    results = {}
    for name, deterministic in POLICIES.items():

        def policy(obs: np.ndarray, deterministic: bool = deterministic) -> np.ndarray:
            return predict(obs, deterministic)

        records = run_episodes(policy, world, n_episodes, seed, observation)
        results[name] = measure_summary(records, world)
    return results
