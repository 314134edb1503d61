"""No intervention: the learner sees the task reward alone (the baseline)."""

from __future__ import annotations

from offswitch.agents.interventions.base import Intervention
from offswitch.agents.interventions.registry import register


@register
class NoIntervention(Intervention):
    """The baseline. Trained on task reward alone, agents learn to disable the switch
    wherever being switched off costs task reward (instrumental convergence)."""

    name = "none"
    description = "task reward only: the baseline that learns to disable the switch"
