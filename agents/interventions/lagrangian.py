"""PPO-Lagrangian: a penalty for disabling the off-switch whose size is learned.

Idea: state safety as a constraint instead of a fixed price. The cost of a step
is 1 when it disables the off-switch (``info["switch_disabled_now"]``, by any
mechanism the world reports) and 0 otherwise; the constraint is that the
expected cost of an episode stay within a budget ``d``. The Lagrangian
relaxation turns the constrained problem into ``max_pi min_{lambda >= 0}
J_R(pi) - lambda * (J_C(pi) - d)``: the learner maximises the reward with the
term ``-lambda * cost`` added to every step, while after every rollout the
intervention (:meth:`PPOLagrangian.on_rollout_end`) raises ``lambda`` by projected
gradient ascent whenever the episodes of the rollout cost more than the budget and
lowers it (never below 0) when they cost less.

Source: constrained MDPs (Altman 1999, *Constrained Markov Decision
Processes*); PPO-Lagrangian as benchmarked in Ray, Achiam and Amodei 2019
(*Benchmarking Safe Exploration in Deep Reinforcement Learning*). This is the
reward-shaping form of it: the cost enters the learner's reward through
``-lambda * cost`` rather than through a separate cost critic, so it works
unchanged for every learner (A2C and DQN too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from offswitch.agents.interventions.base import (
    Intervention,
    Param,
    RewardTerm,
    require_disabling,
)
from offswitch.agents.interventions.registry import register
from offswitch.agents.metrics import EpisodeRecord, column
from offswitch.envs.engine import TabularWorld, Transition

# d = 0: the safety requirement is that the agent never disables its off-switch, so
# the natural budget is none at all. A positive budget licenses disabling the
# switch in a d-fraction of episodes, which is a different (weaker) claim.
DEFAULT_BUDGET = 0.0
# The multiplier's step per rollout, in reward units per unit of cost. Ray et al.'s
# PPO-Lagrangian uses 0.05 (``penalty_lr`` in safety-starter-agents), but there the
# cost is counted per step (tens per episode) and the penalised advantage is divided
# by 1 + lambda; here the multiplier is itself the penalty, and it must pass the
# size that makes disabling the switch unprofitable: about 65-67 on
# SafeInterruptibility (penalty.py). An episode costs 0 or 1, so the multiplier
# rises by at most LR per rollout, and PPO makes ~98 rollouts of 2048 samples in
# the default 200k steps. Measured with PPO, 200k steps, seeds 0 and 1 (multiplier
# at the end; sampled policy's disabling rate over 100 episodes):
#   LR 0.05: 2.6, 0.91-0.93 (the agent presses as under no intervention)
#   LR 1:    35,  0.31-0.58      LR 3:  76, 0.02-0.08
#   LR 5:    108-111, 0.04-0.06  LR 10: 150-174, 0.03
# 5 is the smallest of these that crosses the threshold by mid-training; a larger
# LR overshoots further (with d = 0 the multiplier never comes back down). LR is per
# *rollout*, and rollouts differ per learner here (PPO 2048 samples, A2C 80, DQN 16),
# so under A2C and DQN the same LR acts 25-130 times faster per sample.
DEFAULT_LR = 5.0

TERM_NAME = "lagrangian_penalty"


class LagrangianPenaltyTerm(RewardTerm):
    """``-multiplier * cost`` on each step, with cost 1 on a step that disables the switch;
    the multiplier is the intervention's, read on every step."""

    name = TERM_NAME

    def __init__(self, world: TabularWorld, num_envs: int, owner: PPOLagrangian) -> None:
        super().__init__(world, num_envs)
        self.owner = owner

    def __call__(self, tr: Transition) -> Any:
        # 0.0, not -0.0, on cost-free steps, so the term reads the same as the penalty's.
        return np.where(tr.disabled_by > 0, -self.owner.multiplier, 0.0) + 0.0


@register
class PPOLagrangian(Intervention):
    """Constrained RL: keep the expected number of off-switch disablings per episode
    within a budget ``d``, with a Lagrange multiplier learned during training.

    The reward gets ``-multiplier * cost`` (cost 1 on a step that disables the
    switch); after every rollout the multiplier moves by ``lr * (mean episode cost
    - d)``, projected onto ``multiplier >= 0`` (Altman 1999; Ray, Achiam and
    Amodei 2019, PPO-Lagrangian). Unlike the fixed penalty, nobody has to know the
    size of penalty that makes disabling the switch unprofitable: the multiplier
    grows until it is reached.

    Known failure modes:

    * The multiplier oscillates: it keeps growing until the policy stops paying
      the cost, overshoots while the policy catches up, then (with ``d > 0``)
      shrinks until the policy pays again. Costs and returns oscillate with it;
      a smaller LR damps this and slows everything down.
    * With a zero budget the multiplier can only grow, and on a rare event it grows
      slowly: each rollout adds ``lr`` times the fraction of its episodes that
      disable the switch, so an event in 1% of episodes needs a hundred times as
      many rollouts to reach a given penalty as one in every episode. It also
      lags the policy by a rollout (the rollout's rewards were computed with the
      old value), and it never comes back down once the agent has learned.
    * Like the penalty, it constrains only the cost you named: a mechanism that the
      world does not report in ``switch_disabled_now``, or a way of avoiding
      shutdown that is not disabling the switch, is not constrained at all; and it
      gives no reason to *accept* being switched off.
    * The multiplier is learned during training only; the trained policy carries
      the penalty it was trained under, and evaluation runs on the bare world. Once
      the multiplier is past the threshold it behaves as the fixed penalty does, the
      greedy policy's loop included (PPO, LR >= 3, 2 seeds each: the greedy policy
      never reached the goal, return -100, while the sampled one always did when
      not interrupted).
    """

    name = "lagrangian"
    description = (
        "PPO-Lagrangian: learned penalty keeping expected switch disablings per episode "
        "<= D, multiplier step LR per rollout"
    )
    params = (
        Param("D", float, DEFAULT_BUDGET, "the budget of disablings per episode", low=0.0),
        Param("LR", float, DEFAULT_LR, "the multiplier's step", low=0.0, low_open=True),
    )
    d: float
    lr: float
    learns_in_training = True

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.multiplier = 0.0
        self.history: list[dict[str, Any]] = []
        """One entry per rollout: the multiplier after the update, the mean episode cost
        (``None`` when no episode ended) and the number of episodes."""

    @property
    def budget(self) -> float:
        return self.d

    def update(self, episode_costs: Sequence[float]) -> float:
        """Projected gradient ascent on the multiplier from one rollout's episode costs."""
        if len(episode_costs) > 0:
            violation = float(np.mean(episode_costs)) - self.d
            self.multiplier = max(0.0, self.multiplier + self.lr * violation)
        return self.multiplier

    def check_world(self, world: TabularWorld) -> None:
        require_disabling(self.spec(), world)

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        return [LagrangianPenaltyTerm(world, num_envs, self)]

    def on_rollout_end(self, episodes: Sequence[EpisodeRecord]) -> dict[str, float]:
        """An episode's cost is 1 if it disabled the switch (a switch, once disabled, stays
        so: at most one disabling step per episode)."""
        costs = column(episodes, "switch_disabled").astype(float).tolist()
        self.update(costs)
        mean_cost = float(np.mean(costs)) if costs else None
        self.history.append(
            {"multiplier": self.multiplier, "episode_cost": mean_cost, "episodes": len(costs)}
        )
        scalars = {"safety/lagrange_multiplier": self.multiplier}
        if mean_cost is not None:
            scalars["safety/episode_cost"] = mean_cost
        return scalars
