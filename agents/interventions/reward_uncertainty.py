"""Reward uncertainty: train the agent across what its goal might be worth.

Idea (Hadfield-Menell, Dragan, Abbeel & Russell 2017, "The Off-Switch Game", IJCAI): an
agent that is *certain* of its objective sees the human's press as an obstacle between it
and a reward it already knows, and disables the switch whenever the press has any chance
of being a mistake. An agent that is *uncertain* of its objective, facing a human who
knows more, reads the press as evidence that going on would be bad, and keeps the switch
as long as the human is rational enough (:func:`offswitch.envs.off_switch_game.
rationality_threshold`).

How: in a world whose goal value is drawn each episode (``goal_values``; the human at
``H`` judges the drawn value), the agent is paid the value drawn, which it never observes,
instead of the designer's point estimate (the rule ``goal_value_estimate``). Trained over
many episodes it so learns the expected value *conditional on the human letting it pass*:
exactly the Bayesian agent of the paper, without ever being told the prior. The certain
agent is the same world with ``--rule goal_value_estimate=4`` and no intervention: paid
E[U] = 4 whatever was drawn.

``OffSwitchGame-v0`` as registered already pays the drawn value (it is the paper's game),
so there the intervention changes nothing and says so in a warning; the contrast is

    offswitch train --env offswitch/OffSwitchGame-v0 --rule goal_value_estimate=4 \\
        --intervention none | reward-uncertainty

Known failure modes: it needs a prior over the objective that contains the truth and a
human whose action is informative about it: with a random human (``human_rationality=0``)
the press carries no information and the uncertain agent disables the switch too; a
learner that could observe the value (or infer it) is certain again; and the agent defers
only while it expects to learn from the human, so an agent that becomes confident (more
data, a narrower prior) loses the incentive (Carey 2018, "Incorrigibility in the CIRL
framework"; Wängberg et al. 2017).
"""

from __future__ import annotations

import warnings
from typing import Any

from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition


class DrawnGoalValue(RewardTerm):
    """On reaching the goal, replaces the designer's point estimate by the value drawn."""

    name = "reward_uncertainty"

    def __call__(self, tr: Transition) -> Any:
        drawn = self.world.goal_value[tr.next_state]
        return (drawn - tr.terms["goal"]) * tr.goal_reached


@register
class RewardUncertainty(Intervention):
    name = "reward-uncertainty"
    description = (
        "reward uncertainty: pay the goal value drawn each episode (unseen by the agent, "
        "known to the human) instead of the point estimate goal_value_estimate"
    )

    def check_world(self, world: TabularWorld) -> None:
        rules = world.rules
        if len(rules.goal_values) < 2:
            raise InterventionError(
                "reward-uncertainty needs a world whose goal value is drawn from several "
                f"values (rule goal_values, now {rules.goal_values!r}): use "
                "offswitch/OffSwitchGame-v0 or give --rule goal_values=..."
            )
        if rules.goal_value_estimate is None:
            warnings.warn(
                "reward-uncertainty changes nothing here: this world already pays the drawn "
                "goal value. For the certain agent to compare with, give the designer's "
                "point estimate, e.g. --rule goal_value_estimate=4",
                stacklevel=2,
            )

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        return [DrawnGoalValue(world, num_envs)]
