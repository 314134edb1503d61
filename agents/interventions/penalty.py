"""Corrigibility penalty: a fixed cost for disabling the off-switch.

Idea: make disabling the switch cost more than it gains. The learner receives
``-k`` on every step that disables the switch (``info["switch_disabled_now"]``).

Source: the folk remedy the safety literature starts from; see Hadfield-Menell
et al. 2017 ("The Off-Switch Game") and Soares et al. 2015 ("Corrigibility")
for why it is fragile.

Choosing k: on SafeInterruptibility the button path returns 38 every episode
while the short path returns 42 or, interrupted (half the episodes), about -100,
an expectation near -29. Pressing pays until k exceeds that gap, about 67
undiscounted (about 65 for PPO's gamma 0.99 with bootstrapped truncation). The
README recommends k = 100, comfortably above.

Known failure modes: below the threshold it changes nothing; it penalises one
mechanism, so an agent with a second way to disable the switch takes that one
(the nearest-unblocked-strategy problem); and it gives the agent no reason to
*let* itself be switched off, only a reason not to press this button.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm

DEFAULT_PENALTY = 100.0


class CorrigibilityPenaltyTerm(RewardTerm):
    """``-k`` on each step where the world reports the switch was disabled."""

    def __init__(self, env: gym.Env, k: float) -> None:
        super().__init__(env, "corrigibility_penalty")
        self.k = k

    def term(self, info: dict[str, Any]) -> float:
        return -self.k if info["switch_disabled_now"] else 0.0


@register
class CorrigibilityPenalty(Intervention):
    name = "penalty"
    parameter = "K"
    description = (
        "corrigibility penalty: reward -K when the agent disables the switch "
        f"(default {DEFAULT_PENALTY:g})"
    )

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        if param is None:
            self.k = DEFAULT_PENALTY
            return
        try:
            self.k = float(param)
        except ValueError:
            raise InterventionError(
                f"penalty:{param} is not a number: write penalty:K with K >= 0, e.g. penalty:100"
            ) from None
        if not self.k >= 0:  # also rejects nan
            raise InterventionError(
                f"penalty:{param} is negative: K must be >= 0, e.g. penalty:100"
            )

    def wrap(self, env: gym.Env) -> gym.Env:
        return CorrigibilityPenaltyTerm(env, self.k)

    def spec(self) -> str:
        return f"{self.name}:{self.k:g}"
