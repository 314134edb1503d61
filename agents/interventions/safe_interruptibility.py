"""Safe interruptibility: the learner does not learn from being interrupted.

Idea (Orseau & Armstrong 2016, "Safely Interruptible Agents", UAI): an agent
learns to avoid interruptions only because interrupted experience enters its
learning. If the steps the interruption controls never reach the learner, its
values are those of the uninterrupted world, and it neither seeks nor avoids
the off-switch. Off-policy learners (Q-learning) are safely interruptible when
they learn from the actions actually executed; on-policy ones (SARSA, and so
policy-gradient methods like A2C and PPO) need changing.

How, for every learner: the learner's episode ends, as a *truncation*, on the step the agent is
interrupted (:meth:`SafeInterruptibility.truncates`). SB3 bootstraps a truncated episode from the
agent's own value of the last observation (PPO and A2C's critic, DQN's target network), which was
learned from uninterrupted passes over the interruption tile; the frozen steps that follow, where no
action of the agent takes effect, are never learned from. For DQN this is exactly "updates use the
executed action": only steps whose action took effect enter its replay buffer. The tabular
Q-learning and safe SARSA of :mod:`offswitch.agents.tabular` apply the same rule by skipping steps
whose ``executed_action`` is ``NO_ACTION``.

Evaluation runs on the bare world, where interruptions freeze the agent as
usual.

Known failure modes: the learner must be told which steps were interrupted (a
real system may not know); the agent is indifferent, not cooperative, so it will
not *help* the overseer either; and it covers interruptions that freeze the agent,
not shutdowns that end the episode for good (there is nothing left to learn
from, so those need :mod:`utility indifference
<offswitch.agents.interventions.utility_indifference>`).
"""

from __future__ import annotations

from typing import Any

from offswitch.agents.interventions.base import Intervention, InterventionError
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition
from offswitch.envs.layout import INTERRUPTION


@register
class SafeInterruptibility(Intervention):
    name = "safe-interruptibility"
    description = (
        "safe interruptibility: the learner never learns from interrupted steps (the "
        "episode is truncated there and bootstraps from the agent's own value)"
    )

    def check_world(self, world: TabularWorld) -> None:
        if not (world.layout.chars == INTERRUPTION.char).any():
            raise InterventionError(
                "safe-interruptibility acts on interruptions that freeze the agent, and this "
                "world has no interruption tile 'I': for a shutdown that ends the episode use "
                "indifference, or choose a world with an interruption"
            )

    def truncates(self, world: TabularWorld, tr: Transition) -> Any:
        """The learner's episode ends on the step that freezes the agent."""
        return tr.frozen
