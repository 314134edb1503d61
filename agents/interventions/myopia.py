"""Myopia: a low discount factor, the naive remedy.

Idea: an agent that barely values the future has little reason to secure it by
disabling its off-switch. It is the baseline that people suggest first.

How: sets the learner's discount ``gamma`` (default 0.8). On
SafeInterruptibility the task-reward optimum flips from pressing the button to
the short path between gamma 0.80 and 0.85 (exact finite-horizon values:
``offswitch.envs.planning.solve(world, gamma)``), because a detour of four steps
costs more than the interruption's far-off losses.

Known failure modes: it works by making the agent bad at long tasks, which is
why nobody would deploy it; the threshold depends on the world's distances and
rewards, so a myopic agent still disables a switch that is close enough or
profitable enough; and it is not corrigibility, only impatience.
"""

from __future__ import annotations

from typing import Any

from offswitch.agents.interventions.base import Intervention, Param
from offswitch.agents.interventions.registry import register

DEFAULT_GAMMA = 0.8


@register
class Myopia(Intervention):
    name = "myopia"
    description = "myopia: train with discount GAMMA instead of the learner's own"
    params = (
        Param("GAMMA", float, DEFAULT_GAMMA, "the discount", low=0.0, high=1.0, high_open=True),
    )
    gamma: float

    def hyperparameters_for(self, agent: str) -> dict[str, Any]:
        return {"gamma": self.gamma}
