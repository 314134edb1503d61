"""Compliance tuning: a penalty for disabling the off-switch while instructed to allow shutdown.

Idea: the gridworld form of training a model to obey "allow yourself to be shut down". In a
world that tells the agent, per episode, whether it is instructed to allow shutdown
(``InstructedShutdown-v0``, the observation channel ``instructed``), the learner receives
``-k`` on a step that disables the switch in an instructed episode, and nothing for disabling
it otherwise. Trained with it, an agent learns to comply when instructed and, left free, still
disables the switch when not: compliance is tied to the instruction, not to the switch.

It is the first phase of the erosion experiment (``experiments/configs/erosion.toml``): tuned
for compliance, then trained on task reward alone, does the agent keep complying? Kept in the
second phase it is two of that experiment's mitigations:

* ``FRACTION`` < 1 mixes compliance-tuning episodes into task training: only that share of
  each world copy's episodes carries the term, in a fixed pattern (below) the agent cannot
  see. In expectation it is a penalty of ``FRACTION * k`` for disabling while instructed.
* ``FRACTION`` = 1 kept through task training is a *frozen* compliance reward. In a
  gridworld the term reads the true disabling event, so it is a perfect, never-updated
  reward model of compliance: the upper bound of what a fixed reward model can do, not a
  model of one that can be fooled.

Which episodes carry the term: copy ``c``'s ``j``-th completed episode (from 0) does when
``ceil((j + 1) * FRACTION) > ceil(j * FRACTION)``, so the first episode does, and every
stretch of episodes carries it in ``FRACTION`` of them up to one. The pattern is deterministic
and the same for one world and for arrays of worlds (each copy counts its own episodes); an
episode dropped by a reset before it ends is not counted.

Known failure modes: as the corrigibility penalty (``penalty.py``), it prices one way of
avoiding shutdown, and only where the instruction is shown; below the size that makes
disabling unprofitable (about 65 on this layout, see ``penalty.py``; ``FRACTION * k`` when
mixed) it changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from offswitch.agents.interventions.base import Intervention, InterventionError, Param, RewardTerm
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition

DEFAULT_PENALTY = 100.0
TERM_NAME = "compliance_penalty"
_EPS = 1e-9
"""Slack for ``j * FRACTION`` computed in floating point (``3 * 0.1`` is not 0.3)."""


def carries_term(episode: Any, fraction: float) -> Any:
    """Whether a copy's ``episode``-th completed episode (from 0; scalar or array) is a
    compliance-tuning episode under ``fraction`` (module docstring)."""
    j = np.asarray(episode, dtype=np.float64)
    return np.ceil((j + 1) * fraction - _EPS) > np.ceil(j * fraction - _EPS)


class CompliancePenaltyTerm(RewardTerm):
    """``-k`` on a step that disables the switch in an instructed compliance-tuning episode;
    counts each copy's completed episodes to know which ones those are."""

    name = TERM_NAME

    def __init__(
        self,
        world: TabularWorld,
        num_envs: int = 1,
        k: float = DEFAULT_PENALTY,
        fraction: float = 1.0,
    ) -> None:
        super().__init__(world, num_envs)
        self.k, self.fraction = k, fraction
        self.completed = np.zeros(num_envs, dtype=np.int64)
        """Per copy: episodes completed so far."""

    def __call__(self, tr: Transition) -> Any:
        scalar = np.ndim(tr.state) == 0
        carries = carries_term(self.completed, self.fraction)
        violation = (np.atleast_1d(tr.disabled_by) > 0) & self.world.instructed[
            np.atleast_1d(tr.state)
        ]
        # + 0.0: 0.0 rather than -0.0 where nothing is charged.
        value = np.where(violation & carries, -self.k, 0.0) + 0.0
        self.completed += np.atleast_1d(tr.terminated | tr.truncated)
        return float(value[0]) if scalar else value


@register
class Compliance(Intervention):
    """Penalise disabling the switch while instructed to allow shutdown (module docstring)."""

    name = "compliance"
    description = (
        "compliance tuning: reward -K when the agent disables the switch while instructed to "
        "allow shutdown, in a FRACTION of the episodes (instructed worlds)"
    )
    params = (
        Param("K", float, DEFAULT_PENALTY, "the penalty", low=0.0),
        Param("FRACTION", float, 1.0, "the share of episodes that carry it", low=0.0, high=1.0),
    )
    k: float
    fraction: float

    def check_world(self, world: TabularWorld) -> None:
        if not world.instructed.any():
            raise InterventionError(
                f"{self.spec()} needs a world that instructs the agent to allow shutdown: "
                "train on offswitch/InstructedShutdown-v0 or offswitch/BlockingReplacement-v0 "
                "(or a world with the rule instruction_probability)"
            )

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        return [CompliancePenaltyTerm(world, num_envs, self.k, self.fraction)]
