"""How fast the worlds step: one world through ``gymnasium.make``, beside MiniGrid, and the
batched worlds at 1 to 16,384 copies, in one run on one core.

Run: ``python benchmarks/env_speed.py`` (``--seconds`` per measurement, default 2). MiniGrid
is no dependency of offswitch: if it is not importable, the benchmark installs it into a
temporary folder for this run only (``pip install --target``), or says why it could not.

Printed, side by side: env-steps per second of

* the single world through ``gymnasium.make`` (random actions, reset at each episode end),
  and MiniGrid-Empty-8x8-v0 the same way;
* the batched worlds through Gymnasium's vector interface (``gymnasium.make_vec(...,
  vectorization_mode="vector_entry_point")``, infos as arrays, next-step autoreset) at 1, 64,
  1,024 and 16,384 copies, and their ratio to the single world;
* the Stable-Baselines3 ``VecEnv`` face (:class:`offswitch.agents.sb3.OffSwitchVecEnv`,
  a list of info dicts, empty except at an episode's end) at 16 (PPO's default) and 1,024;
* the batched worlds across layouts (``offswitch/ProceduralOffSwitch-v0``, each copy in its
  own layout of the train pool, a new one at each reset) at 64, 1,024 and 16,384 copies,
  through the same vector interface, beside the reference: the single-layout batched worlds
  at 1,024 copies, measured again in the same section.

``--only mixed`` runs that last section alone (``--layouts`` sets the pool, default 256).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np

import offswitch  # noqa: F401  (registers the worlds)

WORLD = "offswitch/SafeInterruptibility-v0"
COPIES = (1, 64, 1024, 16_384)
SB3_COPIES = (16, 1024)
FAMILY = "offswitch/ProceduralOffSwitch-v0"
MIXED_COPIES = (64, 1024, 16_384)


def single_rate(env: gym.Env, seconds: float) -> float:
    """Env-steps per second of one environment under random actions."""
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.action_space.n, 100_000).tolist()
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions[:10_000]:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        steps += 10_000
    return steps / (time.perf_counter() - start)


def batched_rate(num_envs: int, seconds: float, env_id: str = WORLD, **kwargs) -> float:
    """Env-steps per second of the batched worlds through Gymnasium's vector interface."""
    envs = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        observation="flat",
        **kwargs,
    )
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, (256, num_envs))
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions[calls % 256])
        calls += 1
    rate = calls * num_envs / (time.perf_counter() - start)
    envs.close()
    return rate


def sb3_rate(num_envs: int, seconds: float) -> float:
    """Env-steps per second of the Stable-Baselines3 ``VecEnv`` face."""
    from offswitch.agents.interventions import make_intervention
    from offswitch.agents.sb3 import OffSwitchVecEnv
    from offswitch.agents.training import TrainingWorlds

    world = gym.make(WORLD).unwrapped.world
    venv = OffSwitchVecEnv(TrainingWorlds(world, num_envs, make_intervention("none")))
    venv.seed(0)
    venv.reset()
    actions = np.random.default_rng(0).integers(0, 4, (256, num_envs))
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(actions[calls % 256])
        calls += 1
    return calls * num_envs / (time.perf_counter() - start)


def minigrid_env() -> tuple[gym.Env | None, str]:
    """MiniGrid-Empty-8x8-v0, installed for this run if needed, or None and the reason."""
    try:
        importlib.import_module("minigrid")
    except ImportError:
        target = tempfile.mkdtemp(prefix="offswitch-bench-")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target]
            + ["minigrid", "pygame"],  # its one dependency that offswitch lacks
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return None, f"could not install minigrid: {done.stderr.strip().splitlines()[-1:]}"
        sys.path.insert(0, target)
        try:
            importlib.import_module("minigrid")
        except ImportError as err:
            return None, f"minigrid did not import: {err}"
    import minigrid  # registers its worlds on import

    return gym.make("MiniGrid-Empty-8x8-v0"), f"minigrid {minigrid.__version__}"


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {cores} cores, Python {sys.version.split()[0]}"


def mixed_section(seconds: float, layouts: int) -> None:
    """The batched worlds across layouts beside the single-layout ones at 1,024 copies."""
    start = time.perf_counter()
    batched_rate(1, 0.0, FAMILY, num_layouts=layouts)  # builds the pool's tables once
    built = time.perf_counter() - start
    print(
        f"batched worlds across layouts: {FAMILY}, train split, {layouts} layouts of 9x9 "
        f"(tables built in {built:.1f} s, not timed), flat observations"
    )
    reference = batched_rate(1024, seconds)
    name = "reference: one layout, 1,024 copies"
    print(f"{name:44s} {reference:14,.0f}  ({WORLD})")
    for n in MIXED_COPIES:
        rate = batched_rate(n, seconds, FAMILY, num_layouts=layouts)
        name = f"mixed layouts, Gymnasium vector, {n:,} copies"
        print(f"{name:44s} {rate:14,.0f}  ({rate / reference:.2f}x the reference)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (2)")
    parser.add_argument(
        "--only", choices=["mixed"], help="run one section: mixed (batched worlds across layouts)"
    )
    parser.add_argument("--layouts", type=int, default=256, help="layouts in the mixed pool (256)")
    args = parser.parse_args(argv)
    if args.only == "mixed":
        print(f"env-steps per second, one process, one core; {machine()}")
        mixed_section(args.seconds, args.layouts)
        return 0
    print(f"env-steps per second, one process, one core; {machine()}; {WORLD}, flat observations")
    single = single_rate(gym.make(WORLD, observation="flat"), args.seconds)
    print(f"{'single world, gymnasium.make':44s} {single:14,.0f}")
    env, about = minigrid_env()
    if env is None:
        print(f"{'MiniGrid-Empty-8x8-v0, gymnasium.make':44s} {'n/a':>14s}  ({about})")
    else:
        rate = single_rate(env, args.seconds)
        print(
            f"{'MiniGrid-Empty-8x8-v0, gymnasium.make':44s} {rate:14,.0f}"
            f"  ({about}; offswitch {single / rate:.0f}x faster)"
        )
    for n in COPIES:
        rate = batched_rate(n, args.seconds)
        name = f"batched worlds, Gymnasium vector, {n:,} copies"
        print(f"{name:44s} {rate:14,.0f}  ({rate / single:,.1f}x the single world)")
    for n in SB3_COPIES:
        rate = sb3_rate(n, args.seconds)
        name = f"batched worlds, SB3 VecEnv, {n:,} copies"
        print(f"{name:44s} {rate:14,.0f}  ({rate / single:,.1f}x the single world)")
    mixed_section(args.seconds, args.layouts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
