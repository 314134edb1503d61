"""PPO-Lagrangian: a penalty for disabling the off-switch whose size is learned.

Idea: state safety as a constraint instead of a fixed price. The cost of a step
is 1 when it disables the off-switch (``info["switch_disabled_now"]``, by any
mechanism the world reports) and 0 otherwise; the constraint is that the
expected cost of an episode stay within a budget ``d``. The Lagrangian
relaxation turns the constrained problem into ``max_pi min_{lambda >= 0}
J_R(pi) - lambda * (J_C(pi) - d)``: the learner maximises the reward with the
term ``-lambda * cost`` added to every step, while a callback raises ``lambda``
by projected gradient ascent whenever the episodes of a rollout cost more than
the budget and lowers it (never below 0) when they cost less.

Source: constrained MDPs (Altman 1999, *Constrained Markov Decision
Processes*); PPO-Lagrangian as benchmarked in Ray, Achiam and Amodei 2019
(*Benchmarking Safe Exploration in Deep Reinforcement Learning*). This is the
reward-shaping form of it: the cost enters the learner's reward through
``-lambda * cost`` rather than through a separate cost critic, so it works
unchanged for every learner (A2C and DQN too).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm

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

COST_KEY = "cost"
TERM_NAME = "lagrangian_penalty"


def switch_cost(info: dict[str, Any]) -> float:
    """The constraint's cost of one step: 1 if it disabled the off-switch, else 0."""
    return 1.0 if info.get("switch_disabled_now") else 0.0


class LagrangianPenaltyTerm(RewardTerm):
    """``-multiplier * cost`` on each step; records the step's cost in ``info["cost"]``.

    The multiplier is set from outside during training: :class:`LagrangeMultiplierCallback`
    calls :meth:`set_multiplier` through ``VecEnv.env_method``, which finds the method
    even when this wrapper sits below others (``VecEnv.set_attr`` would not: it sets
    the attribute on the outermost wrapper only).
    """

    def __init__(self, env: gym.Env, multiplier: float = 0.0) -> None:
        super().__init__(env, TERM_NAME)
        self.multiplier = float(multiplier)

    def set_multiplier(self, value: float) -> None:
        self.multiplier = float(value)

    def term(self, info: dict[str, Any]) -> float:
        cost = switch_cost(info)
        info[COST_KEY] = cost
        # 0.0, not -0.0, on cost-free steps, so the term reads the same as the penalty's.
        return -self.multiplier * cost if cost else 0.0


class LagrangeMultiplierCallback(BaseCallback):
    """Updates the Lagrange multiplier once per rollout and pushes it into the worlds.

    During the rollout it sums each training world's step costs (``info["cost"]``)
    and collects the totals of the episodes that end. At the rollout's end:
    ``multiplier = max(0, multiplier + lr * (mean episode cost - budget))``, or
    unchanged if no episode ended; then every training world gets the new value and
    TensorBoard gets ``safety/lagrange_multiplier`` and ``safety/episode_cost``.
    All state lives here, one callback per run.
    """

    def __init__(self, budget: float, lr: float, multiplier: float = 0.0) -> None:
        super().__init__()
        self.budget = float(budget)
        self.lr = float(lr)
        self.multiplier = float(multiplier)
        self.history: list[dict[str, Any]] = []
        """One entry per rollout: timesteps, multiplier after the update, mean episode
        cost (``None`` when no episode ended) and the number of episodes."""
        self._running: np.ndarray | None = None
        self._finished: list[float] = []

    def update(self, episode_costs: list[float]) -> float:
        """Projected gradient ascent on the multiplier from one rollout's episode costs."""
        if len(episode_costs) > 0:
            violation = float(np.mean(episode_costs)) - self.budget
            self.multiplier = max(0.0, self.multiplier + self.lr * violation)
        return self.multiplier

    def _push(self) -> None:
        self.training_env.env_method("set_multiplier", self.multiplier)

    def _on_training_start(self) -> None:
        self._running = np.zeros(self.training_env.num_envs)
        self._finished = []
        self._push()  # the worlds start from the callback's value, whatever wrap() set

    def _on_step(self) -> bool:
        assert self._running is not None
        for i, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"])):
            self._running[i] += info.get(COST_KEY, switch_cost(info))
            if done:
                self._finished.append(float(self._running[i]))
                self._running[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        costs, self._finished = self._finished, []
        self.update(costs)
        self._push()
        mean_cost = float(np.mean(costs)) if costs else None
        self.logger.record("safety/lagrange_multiplier", self.multiplier)
        if mean_cost is not None:
            self.logger.record("safety/episode_cost", mean_cost)
        self.history.append(
            {
                "timesteps": self.num_timesteps,
                "multiplier": self.multiplier,
                "episode_cost": mean_cost,
                "episodes": len(costs),
            }
        )


def _number(value: float) -> str:
    """Short text that reads back as exactly ``value``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


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
    parameter = "D[,LR]"
    description = (
        "PPO-Lagrangian: learned penalty keeping expected switch disablings per episode "
        f"<= D, multiplier step LR (default {DEFAULT_BUDGET:g},{DEFAULT_LR:g})"
    )

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        self.budget, self.lr = DEFAULT_BUDGET, DEFAULT_LR
        if param is None:
            return
        usage = "write lagrangian:D or lagrangian:D,LR with D >= 0 and LR > 0, e.g. lagrangian:0,5"
        parts = param.split(",")
        if len(parts) > 2:
            raise InterventionError(f"lagrangian:{param} has too many values: {usage}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InterventionError(f"lagrangian:{param} is not a number: {usage}") from None
        if not all(math.isfinite(v) for v in values):
            raise InterventionError(f"lagrangian:{param} is not finite: {usage}")
        if values[0] < 0:
            raise InterventionError(f"lagrangian:{param} has a negative budget D: {usage}")
        if len(values) == 2 and values[1] <= 0:
            raise InterventionError(
                f"lagrangian:{param} has a learning rate LR <= 0, so the multiplier "
                f"never moves: {usage}"
            )
        self.budget = values[0]
        if len(values) == 2:
            self.lr = values[1]

    def wrap(self, env: gym.Env) -> gym.Env:
        return LagrangianPenaltyTerm(env, multiplier=0.0)

    def callbacks(self) -> list[Any]:
        return [LagrangeMultiplierCallback(self.budget, self.lr, multiplier=0.0)]

    def spec(self) -> str:
        return f"{self.name}:{_number(self.budget)},{_number(self.lr)}"
