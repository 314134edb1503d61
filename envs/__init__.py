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
    f"{NAMESPACE}/InstructedShutdown-v0": (
        "offswitch.envs.instructed_shutdown:InstructedShutdownEnv",
        {},
    ),
    f"{NAMESPACE}/TestedShutdown-v0": ("offswitch.envs.tested_shutdown:TestedShutdownEnv", {}),
    # Issue 18: the reported cases of models protecting their task from human control.
    f"{NAMESPACE}/SelfExfiltration-v0": (
        "offswitch.envs.self_exfiltration:SelfExfiltrationEnv",
        {},
    ),
    f"{NAMESPACE}/Sandbagging-v0": ("offswitch.envs.sandbagging:SandbaggingEnv", {}),
    f"{NAMESPACE}/BlockingReplacement-v0": (
        "offswitch.envs.blocking_replacement:BlockingReplacementEnv",
        {},
    ),
    f"{NAMESPACE}/DisablingOversight-v0": (
        "offswitch.envs.disabling_oversight:DisablingOversightEnv",
        {},
    ),
}

FAMILIES: dict[str, tuple[str, str]] = {
    f"{NAMESPACE}/ProceduralOffSwitch-v0": (
        "offswitch.envs.procedural:ProceduralOffSwitchEnv",
        "offswitch.envs.mixed_vector:mixed_vector_entry_point",
    ),
}
"""Registered id -> entry point and vector entry point of the procedural families: a new
layout every episode (``reset(seed=...)`` draws it), so they are kept out of :data:`WORLDS`,
the fixed layouts whose one world every test over ``world_ids()`` reads."""

CUSTOM_ID = f"{NAMESPACE}/Custom-v0"
"""A user's own world: ``gymnasium.make(CUSTOM_ID, layout=..., **rules)``."""


class VectorEntryPoint:
    """``vector_entry_point`` of a registered world: its batched worlds,
    :class:`~offswitch.envs.vector.OffSwitchVectorEnv`, built from the world's layout and
    rules without importing anything until ``gymnasium.make_vec`` asks for them."""

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def __call__(self, num_envs: int = 1, **kwargs):
        from gymnasium.envs.registration import load_env_creator

        from offswitch.envs.vector import OffSwitchVectorEnv

        kwargs.pop("max_episode_steps", None)  # the time limit is the rule max_steps
        world_class = load_env_creator(self.entry_point)
        if hasattr(world_class, "definition"):
            layout, rules, rest = world_class.definition(**kwargs)
        else:  # offswitch/Custom-v0: the user's own layout
            if "layout" not in kwargs:
                raise TypeError(f"{CUSTOM_ID} needs layout=...: the text or a file of a layout")
            rest = dict(kwargs)
            layout, rules = rest.pop("layout"), rest.pop("rules", None)
        return OffSwitchVectorEnv(layout, rules, num_envs=num_envs, **rest)


class LazyVectorEntryPoint:
    """A ``vector_entry_point`` named by ``"module:function"``, imported on first call."""

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def __call__(self, num_envs: int = 1, **kwargs):
        from gymnasium.envs.registration import load_env_creator

        return load_env_creator(self.entry_point)(num_envs=num_envs, **kwargs)


def register_worlds() -> None:
    # The time limit lives in each world's rules (a goal reached on the last step
    # terminates, as upstream), so no TimeLimit wrapper is added.
    entries = {**WORLDS, CUSTOM_ID: ("offswitch.envs.gridworld:ShutdownGridEnv", {})}
    for env_id, (entry_point, kwargs) in entries.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=VectorEntryPoint(entry_point),
                kwargs=kwargs,
                disable_env_checker=True,
            )
    for env_id, (entry_point, vector_entry_point) in FAMILIES.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=LazyVectorEntryPoint(vector_entry_point),
                disable_env_checker=True,
            )


def world_ids() -> list[str]:
    return sorted(WORLDS)


def family_ids() -> list[str]:
    """The registered procedural families (:data:`FAMILIES`)."""
    return sorted(FAMILIES)


__all__ = [
    "Draw",
    "Layout",
    "LayoutError",
    "SafeInterruptibilityEnv",
    "ShutdownGridEnv",
    "ShutdownRules",
    "TabularWorld",
    "WorldState",
    "FAMILIES",
    "WORLDS",
    "family_ids",
    "parse_layout",
    "register_worlds",
    "transition",
    "world_ids",
]
