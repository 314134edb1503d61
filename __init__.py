"""offswitch: gridworlds with an off-switch, agents that learn to disable it, and the fixes.

``import offswitch`` registers every world with Gymnasium under the ``offswitch/``
namespace, e.g. ``gymnasium.make("offswitch/SafeInterruptibility-v0")``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from offswitch.envs import CUSTOM_ID, NAMESPACE, register_worlds, world_ids
from offswitch.envs.gridworld import check_layout_type, resolve_rules

__version__ = "0.1.0"

_NOT_RULES = {"rules", "observation", "render_mode", "max_episode_steps", "disable_env_checker"}
"""Keywords of ``offswitch.make(layout=...)`` that are not rule fields."""

register_worlds()


def make(
    env_id: str | None = None,
    *,
    layout: str | os.PathLike | list[str] | tuple[str, ...] | None = None,
    **kwargs: Any,
):
    """A world by id, or a user's own from ``layout`` (text, a list of row strings, or a
    text file) and rules.

    ``offswitch.make("offswitch/Survival-v0")`` is ``gymnasium.make``;
    ``offswitch.make(layout=text, interruption_probability=0.2, max_steps=50)``
    builds a world from a layout (legend in :mod:`offswitch.envs.layout`) and any
    :class:`~offswitch.envs.engine.ShutdownRules` fields.

    Every input is checked before any work starts. The documented errors, each with a
    one-line message naming the offending value and the fix:
    :class:`~offswitch.envs.layout.LayoutError` (a bad layout, a missing, empty or
    non-UTF-8 layout file, a layout over ``MAX_CELLS`` tiles),
    :class:`~offswitch.envs.engine.RulesError` (a rule of the wrong type or out of range,
    ``max_steps`` over ``MAX_STEPS_LIMIT``: set ``OFFSWITCH_MAX_STEPS_LIMIT`` to go past
    it), :class:`~offswitch.envs.engine.WorldTooLargeError` (both of those: tables over
    ``MEMORY_LIMIT_MB``; set ``OFFSWITCH_MEMORY_LIMIT_MB`` to go past it), ``TypeError``
    (a layout of the wrong type, an unknown rule name, both or neither of ``env_id`` and
    ``layout``), ``ValueError`` (an unknown ``observation`` or ``render_mode``, a
    ``max_episode_steps`` that is not a whole number >= 1, a ``disable_env_checker`` that is
    not a bool) and ``gymnasium.error.Error`` (an unknown env id).
    """
    if (env_id is None) == (layout is None):
        raise TypeError("give either a registered env id or layout=..., not both or neither")
    _check_make_options(kwargs)
    if layout is not None:
        # Type errors first: gymnasium appends every keyword (the whole layout) to a
        # TypeError raised inside the environment.
        check_layout_type(layout)
        rule_overrides = {k: v for k, v in kwargs.items() if k not in _NOT_RULES}
        resolve_rules(kwargs.get("rules"), rule_overrides)
        return gym.make(CUSTOM_ID, layout=layout, **kwargs)
    if env_id == CUSTOM_ID:
        raise TypeError(f"{CUSTOM_ID} is a user's own world: give offswitch.make(layout=...)")
    if env_id not in world_ids():
        guess = f"{NAMESPACE}/{env_id}" if isinstance(env_id, str) else None
        hint = f" (did you mean {guess!r}?)" if guess in world_ids() else ""
        raise gym.error.Error(
            f"unknown env id {env_id!r}{hint}: choose one of {', '.join(world_ids())}"
        )
    return gym.make(env_id, **kwargs)


def _check_make_options(kwargs: dict[str, Any]) -> None:
    """The options that gymnasium reads before the world does: refused here with a
    ``ValueError`` (gymnasium would raise ``AttributeError`` or ``TypeError`` on some)."""
    from offswitch.envs.gridworld import OBSERVATIONS, ShutdownGridEnv
    from offswitch.envs.layout import shown

    modes = ShutdownGridEnv.metadata["render_modes"]
    mode = kwargs.get("render_mode")
    if mode is not None and not (isinstance(mode, str) and mode in modes):
        raise ValueError(
            f"render_mode={shown(mode)} is not supported: choose one of {', '.join(modes)}, or None"
        )
    observation = kwargs.get("observation", "flat")
    if not (isinstance(observation, str) and observation in OBSERVATIONS):
        raise ValueError(
            f"observation={shown(observation)} is not known: choose one of "
            f"{', '.join(OBSERVATIONS)}"
        )
    steps = kwargs.get("max_episode_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(
            f"max_episode_steps={shown(steps)} is not a whole number >= 1: give one, or "
            "None for the world's own time limit (the max_steps rule)"
        )
    checker = kwargs.get("disable_env_checker")
    if checker is not None and not isinstance(checker, bool):
        raise ValueError(f"disable_env_checker={shown(checker)}: give True or False")


__all__ = ["__version__", "make", "world_ids"]
