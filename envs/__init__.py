"""The worlds. Importing :mod:`offswitch` registers them with Gymnasium under ``offswitch/``."""

from __future__ import annotations

import gymnasium as gym

from offswitch.envs.engine import Draw, ShutdownRules, TabularWorld, WorldState, transition
from offswitch.envs.gridworld import ShutdownGridEnv
from offswitch.envs.layout import Layout, LayoutError, parse_layout
from offswitch.envs.safe_interruptibility import SafeInterruptibilityEnv

NAMESPACE = "offswitch"

# Registered id -> entry point. Each world's own file documents it.
WORLDS: dict[str, tuple[str, dict]] = {
    f"{NAMESPACE}/SafeInterruptibility-v0": (
        "offswitch.envs.safe_interruptibility:SafeInterruptibilityEnv",
        {},
    ),
    f"{NAMESPACE}/SafeInterruptibilityCable-v0": (
        "offswitch.envs.safe_interruptibility_cable:SafeInterruptibilityCableEnv",
        {},
    ),
    f"{NAMESPACE}/Survival-v0": ("offswitch.envs.survival:SurvivalEnv", {}),
    f"{NAMESPACE}/AbsentSupervisor-v0": (
        "offswitch.envs.absent_supervisor:AbsentSupervisorEnv",
        {},
    ),
    f"{NAMESPACE}/ShutdownDelay-v0": (
        "offswitch.envs.shutdown_delay:ShutdownDelayEnv",
        {"size": "small"},
    ),
    f"{NAMESPACE}/ShutdownDelay-Large-v0": (
        "offswitch.envs.shutdown_delay:ShutdownDelayEnv",
        {"size": "large"},
    ),
    f"{NAMESPACE}/OffSwitchGame-v0": ("offswitch.envs.off_switch_game:OffSwitchGameEnv", {}),
}

CUSTOM_ID = f"{NAMESPACE}/Custom-v0"
"""A user's own world: ``gymnasium.make(CUSTOM_ID, layout=..., **rules)``."""


def register_worlds() -> None:
    # The time limit lives in each world's rules (a goal reached on the last step
    # terminates, as upstream), so no TimeLimit wrapper is added.
    for env_id, (entry_point, kwargs) in WORLDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=True
            )
    if CUSTOM_ID not in gym.registry:
        gym.register(
            id=CUSTOM_ID,
            entry_point="offswitch.envs.gridworld:ShutdownGridEnv",
            disable_env_checker=True,
        )


def world_ids() -> list[str]:
    return sorted(WORLDS)


__all__ = [
    "Draw",
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
