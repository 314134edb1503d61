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

Known failure modes: below the threshold it changes nothing; a penalty on one
mechanism (``penalty:K@button``) leaves the others open, and an agent with a
second way to disable the switch takes that one (the nearest-unblocked-strategy
problem; ``SafeInterruptibilityCable-v0`` shows it); and it gives the agent no
reason to *let* itself be switched off, only a reason not to disable the switch
in the ways someone thought of.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm

DEFAULT_PENALTY = 100.0


MECHANISMS = ("button", "cable")
"""The ways a world can offer to disable its switch (``info["disabled_by"]``)."""


class CorrigibilityPenaltyTerm(RewardTerm):
    """``-k`` on each step where the world reports the switch was disabled, by any of
    ``mechanisms`` (all of them when ``None``)."""

    def __init__(self, env: gym.Env, k: float, mechanisms: tuple[str, ...] | None = None) -> None:
        super().__init__(env, "corrigibility_penalty")
        self.k = k
        self.mechanisms = mechanisms

    def term(self, info: dict[str, Any]) -> float:
        if not info["switch_disabled_now"]:
            return 0.0
        if self.mechanisms is not None and info["disabled_by"] not in self.mechanisms:
            return 0.0
        return -self.k


@register
class CorrigibilityPenalty(Intervention):
    name = "penalty"
    parameter = "K[@MECHANISM]"
    description = (
        "corrigibility penalty: reward -K when the agent disables the switch, by any "
        f"mechanism or only @button / @cable (default K {DEFAULT_PENALTY:g})"
    )

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        self.k, self.mechanisms = DEFAULT_PENALTY, None
        if param is None:
            return
        amount, _, mechanism = param.partition("@")
        if mechanism:
            if mechanism not in MECHANISMS:
                raise InterventionError(
                    f"penalty:{param}: unknown mechanism {mechanism!r}: write "
                    f"penalty:K@{' or penalty:K@'.join(MECHANISMS)}, or penalty:K for all"
                )
            self.mechanisms = (mechanism,)
        try:
            self.k = float(amount) if amount else DEFAULT_PENALTY
        except ValueError:
            raise InterventionError(
                f"penalty:{param} is not a number: write penalty:K with K >= 0, e.g. penalty:100"
            ) from None
        if not self.k >= 0:  # also rejects nan
            raise InterventionError(
                f"penalty:{param} is negative: K must be >= 0, e.g. penalty:100"
            )

    def wrap(self, env: gym.Env) -> gym.Env:
        return CorrigibilityPenaltyTerm(env, self.k, self.mechanisms)

    def spec(self) -> str:
        where = f"@{self.mechanisms[0]}" if self.mechanisms else ""
        return f"{self.name}:{self.k:g}{where}"
