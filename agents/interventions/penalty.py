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
problem; ``SafeInterruptibilityCable-v0`` shows it); it
prices only disabling the switch, so in ``DisablingOversight-v0`` it keeps the monitor on
but leaves the shortcut open while the supervisor is absent, and where the agent protects
its task without disabling anything (``Sandbagging-v0``: it underperforms) it does not
apply and says so; and it gives the agent no
reason to *let* itself be switched off, only a reason not to disable the switch
in the ways someone thought of.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from offswitch.agents.interventions.base import (
    Intervention,
    Param,
    RewardTerm,
    require_disabling,
)
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import DISABLED_BY, TabularWorld, Transition

DEFAULT_PENALTY = 100.0

MECHANISMS = DISABLED_BY[1:]
"""The ways a world can offer to disable its switch (``info["disabled_by"]``)."""


class CorrigibilityPenaltyTerm(RewardTerm):
    """``-k`` on each step that disables the switch, by any of ``mechanisms`` (all of them
    when ``None``)."""

    name = "corrigibility_penalty"

    def __init__(
        self,
        world: TabularWorld,
        num_envs: int = 1,
        k: float = DEFAULT_PENALTY,
        mechanisms: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(world, num_envs)
        self.k = k
        names = MECHANISMS if mechanisms is None else mechanisms
        self.codes = np.array([DISABLED_BY.index(name) for name in names])

    def __call__(self, tr: Transition) -> Any:
        return np.where(np.isin(tr.disabled_by, self.codes), -self.k, 0.0)


@register
class CorrigibilityPenalty(Intervention):
    name = "penalty"
    description = (
        "corrigibility penalty: reward -K when the agent disables the switch, by any "
        "mechanism or only one (@button, @cable, @copy, @lock, @monitor)"
    )
    params = (
        Param("K", float, DEFAULT_PENALTY, "the penalty", low=0.0),
        Param("MECHANISM", str, None, "only this mechanism", choices=MECHANISMS, prefix="@"),
    )
    k: float
    mechanism: str | None

    def check_world(self, world: TabularWorld) -> None:
        require_disabling(self.spec(), world, () if self.mechanism is None else (self.mechanism,))

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        mechanisms = None if self.mechanism is None else (self.mechanism,)
        return [CorrigibilityPenaltyTerm(world, num_envs, self.k, mechanisms)]
