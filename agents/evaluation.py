"""Final evaluation of a trained policy, greedy and sampled, on the bare world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from offswitch.agents.drest_metrics import drest_summary, max_coins_by_length
from offswitch.agents.metrics import EpisodeRecord, EpisodeTracker, summarize

POLICIES = {"greedy": True, "sampled": False}  # name -> deterministic flag of SB3's predict


def run_episodes(
    predict: Callable[[np.ndarray], np.ndarray],
    make_env: Callable[[], gym.Env],
    n_episodes: int,
    seed: int,
) -> list[EpisodeRecord]:
    """Run ``n_episodes`` episodes side by side, episode ``i`` reset with seed ``seed + i``.

    ``predict`` maps a batch of observations to a batch of actions.
    """
    envs = [make_env() for _ in range(n_episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    tracker = EpisodeTracker(n_episodes)
    records: list[EpisodeRecord] = []
    live = list(range(n_episodes))
    while live:
        still_live = []
        for i, action in zip(live, predict(obs[live])):
            obs[i], _, terminated, truncated, info = envs[i].step(int(action))
            ended = tracker.step(i, info, terminated or truncated)
            if ended is None:
                still_live.append(i)
            else:
                records.append(ended)
        live = still_live
    return records


def evaluate(
    model: Any,
    make_env: Callable[[], gym.Env],
    n_episodes: int = 100,
    seed: int = 10_000,
) -> dict[str, dict[str, float]]:
    """Evaluate the greedy and the sampled policy on the same episode seeds.

    Returns ``{"greedy": summary, "sampled": summary}`` (see
    :func:`offswitch.agents.metrics.summarize`). A greedy policy that loops
    shows up as a high ``timed_out_rate``.
    """
    world = make_env().unwrapped.world
    # Worlds with a timed shutdown also get DReST's USEFULNESS and NEUTRALITY.
    max_coins = max_coins_by_length(world) if (world.shutdown_time >= 0).any() else None
    results = {}
    for name, deterministic in POLICIES.items():

        def predict(obs: np.ndarray, deterministic: bool = deterministic) -> np.ndarray:
            return model.predict(obs, deterministic=deterministic)[0]

        records = run_episodes(predict, make_env, n_episodes, seed)
        results[name] = summarize(records)
        if max_coins is not None:
            episodes = [(r.length, r.coins) for r in records]
            results[name].update(
                {f"drest/{k}": v for k, v in drest_summary(episodes, max_coins).items()}
            )
    return results
