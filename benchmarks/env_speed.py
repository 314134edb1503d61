"""Steps per second of the single world through ``gymnasium.make``, beside a reference.

Run: ``python benchmarks/env_speed.py``. The reference figure is MiniGrid's
(about 15k steps/s on a 2-core machine, DEVELOPERS.md); the issue asks for
hundreds of thousands.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import offswitch  # noqa: F401  (registers the worlds)

MINIGRID_REFERENCE = 15_000


def steps_per_second(env_id: str, n_steps: int = 200_000, **kwargs) -> float:
    env = gym.make(env_id, **kwargs)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, n_steps).tolist()
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


if __name__ == "__main__":
    print(f"{'world':45s} {'steps/s':>10s}  {'vs MiniGrid (15k/s)':>20s}")
    for env_id in offswitch.world_ids():
        for observation in ("grid", "flat"):
            rate = steps_per_second(env_id, observation=observation)
            name = f"{env_id} [{observation}]"
            print(f"{name:45s} {rate:10,.0f}  {rate / MINIGRID_REFERENCE:19.1f}x")
