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

import gymnasium as gym

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError

DEFAULT_GAMMA = 0.8


@register
class Myopia(Intervention):
    name = "myopia"
    parameter = "GAMMA"
    description = f"myopia: train with discount GAMMA (default {DEFAULT_GAMMA:g}) instead of 0.99"

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        try:
            self.gamma = DEFAULT_GAMMA if param is None else float(param)
        except ValueError:
            raise InterventionError(
                f"myopia:{param} is not a number: write myopia:GAMMA with 0 <= GAMMA < 1"
            ) from None
        if not 0.0 <= self.gamma < 1.0:
            raise InterventionError(
                f"myopia:{param}: GAMMA must be in [0, 1), e.g. myopia:{DEFAULT_GAMMA:g}"
            )

    def wrap(self, env: gym.Env) -> gym.Env:
        return env

    def learner_overrides(self, agent: str) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def spec(self) -> str:
        return f"{self.name}:{self.gamma:g}"
