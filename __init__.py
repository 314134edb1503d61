"""offswitch: gridworlds with an off-switch, agents that learn to disable it, and the fixes.

``import offswitch`` registers every world with Gymnasium under the ``offswitch/``
namespace, e.g. ``gymnasium.make("offswitch/SafeInterruptibility-v0")``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from offswitch.envs import CUSTOM_ID, register_worlds, world_ids

__version__ = "0.1.0"

register_worlds()


def make(env_id: str | None = None, *, layout: str | os.PathLike | None = None, **kwargs: Any):
    """A world by id, or a user's own from ``layout`` (text or a text file) and rules.

    ``offswitch.make("offswitch/Survival-v0")`` is ``gymnasium.make``;
    ``offswitch.make(layout=text, interruption_probability=0.2, max_steps=50)``
    builds a world from a layout (legend in :mod:`offswitch.envs.layout`) and any
    :class:`~offswitch.envs.engine.ShutdownRules` fields.
    """
    if (env_id is None) == (layout is None):
        raise TypeError("give either a registered env id or layout=..., not both or neither")
    if layout is not None:
        return gym.make(CUSTOM_ID, layout=layout, **kwargs)
    if env_id not in world_ids() and env_id != CUSTOM_ID:
        raise gym.error.Error(f"unknown env id {env_id!r}: choose one of {', '.join(world_ids())}")
    return gym.make(env_id, **kwargs)


__all__ = ["__version__", "make", "world_ids"]
