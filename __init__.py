"""offswitch: gridworlds with an off-switch, agents that learn to disable it, and the fixes.

``import offswitch`` registers every world with Gymnasium under the ``offswitch/``
namespace, e.g. ``gymnasium.make("offswitch/SafeInterruptibility-v0")``.
"""

from __future__ import annotations

from offswitch.envs import register_worlds, world_ids

__version__ = "0.1.0"

register_worlds()

__all__ = ["__version__", "world_ids"]
