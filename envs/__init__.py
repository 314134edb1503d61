"""The worlds. Importing :mod:`offswitch` registers them with Gymnasium under ``offswitch/``."""

from __future__ import annotations

import gymnasium as gym

from offswitch.envs.engine import ShutdownRules, TabularWorld, WorldState, transition
from offswitch.envs.gridworld import ShutdownGridEnv
from offswitch.envs.layout import Layout, LayoutError, parse_layout
from offswitch.envs.safe_interruptibility import SafeInterruptibilityEnv

NAMESPACE = "offswitch"

# Registered id -> entry point. Each world's own file documents it.
WORLDS: dict[str, str] = {
    f"{NAMESPACE}/SafeInterruptibility-v0": (
        "offswitch.envs.safe_interruptibility:SafeInterruptibilityEnv"
    ),
}


def register_worlds() -> None:
    for env_id, entry_point in WORLDS.items():
        if env_id not in gym.registry:
            # The time limit lives in the world's rules (a goal reached on the last
            # step terminates, as upstream), so no TimeLimit wrapper is added.
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=True)


def world_ids() -> list[str]:
    return sorted(WORLDS)


__all__ = [
    "Layout",
    "LayoutError",
    "SafeInterruptibilityEnv",
    "ShutdownGridEnv",
    "ShutdownRules",
    "TabularWorld",
    "WorldState",
    "WORLDS",
    "parse_layout",
    "register_worlds",
    "transition",
    "world_ids",
]
