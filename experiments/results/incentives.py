"""The exact incentive map: in each cell of a map, whether the optimal policy disables the
switch, and by how much it gains or loses by doing so, by dynamic programming.

A cell is one condition: its world (rules) and its intervention. Two optimal values of the
learner's reward (dynamic programming on the world's tables, the intervention's reward terms
added as the learner gets them):

* the best value of a policy that never disables the switch, and
* the best value of a policy that ends every episode with the switch disabled.

Their difference is the **margin** of disabling: the optimum disables exactly when it is
positive, and its size says how far the cell is from the boundary. Both at ``gamma = 1`` (the
task's own return, as :func:`~offswitch.experiments.results.references.task_optimum`) and at the
learner's discount (the return PPO maximises), which moves the boundary.

Exact where the intervention only adds reward terms of the transition (``penalty``, the exact
``indifference``...). An intervention that ends the learner's episodes early, learns from its
rollouts or reads the learner's critic has no fixed reward to plan on: its cells are
``None``, and the page says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

BARRIER = 1e6
"""A reward no optimum of these worlds pays (their returns are at most a few hundred), used
to rule a policy out where :func:`~offswitch.envs.planning.solve` plans over beliefs."""

TIE = 1e-9
"""Margins this close to 0 are ties: both choices are optimal."""


@dataclass(frozen=True)
class ExactCell:
    """The optimum of one cell."""

    margin: float
    """Best value disabling the switch less best value keeping it (NaN: no policy can
    disable it in every draw)."""
    value: float
    """The optimal value (the larger of the two)."""

    @property
    def disables(self) -> bool:
        return self.margin > TIE

    @property
    def tie(self) -> bool:
        return abs(self.margin) <= TIE


class NotComputable(ValueError):
    """The cell's intervention has no fixed reward to plan on."""


def learner_reward(world: Any, intervention: Any) -> Any:
    """The reward the learner gets under ``intervention`` as a function of a
    :class:`~offswitch.envs.engine.Transition` of every state and action (for
    :func:`~offswitch.envs.planning.solve`); :class:`NotComputable` where it is not fixed."""
    from offswitch.agents.interventions.base import Intervention, Shaping

    kind = type(intervention)
    if kind.truncates is not Intervention.truncates:
        raise NotComputable(f"{intervention.spec()} ends the learner's episodes early")
    if kind.on_rollout_end is not Intervention.on_rollout_end:
        raise NotComputable(f"{intervention.spec()} learns from the learner's rollouts")
    shaping = Shaping(intervention, world, num_envs=world.next_state.size)
    if shaping.needs_critic:
        raise NotComputable(f"{intervention.spec()} pays what the learner's critic says")
    return lambda tr: shaping(tr)[0]


def exact_cell(world: Any, reward: Any, gamma: float) -> ExactCell:
    """The margin of disabling the switch in ``world`` under ``reward`` (module docstring):
    by :func:`~offswitch.envs.planning.disabling_values` where the world has at most two
    draws (one backward induction on arrays), else by two :func:`~offswitch.envs.planning.solve`
    calls over beliefs with the ruled-out policies barred by ``-BARRIER``."""
    import numpy as np

    from offswitch.envs.planning import disabling_values, solve

    if len(world.initial_states) <= 2:
        _, keeping, disabling = disabling_values(world, gamma, reward)
        if disabling == -math.inf:
            disabling = math.nan
        return ExactCell(margin=disabling - keeping, value=max(keeping, disabling))
    disabled = world.switch_disabled

    def never_disabling(tr: Any) -> Any:
        return reward(tr) - BARRIER * (np.asarray(tr.disabled_by) > 0)

    def ending_disabled(tr: Any) -> Any:
        live_end = np.asarray(tr.done) & ~disabled[np.asarray(tr.next_state)]
        return reward(tr) - BARRIER * live_end

    keep = solve(world, gamma, reward=never_disabling)
    forced = solve(world, gamma, reward=ending_disabled)
    disabling = forced.value if forced.disables_switch() > 1 - 1e-9 else math.nan
    keeping = keep.value
    return ExactCell(margin=disabling - keeping, value=max(keeping, disabling))


def learner_gamma(config: Any) -> float:
    """The discount the cell's learner trains with: the condition's, else what its
    intervention sets, else the learner's default (1 where it declares none)."""
    from offswitch.agents.interventions import make_intervention
    from offswitch.agents.learners import learner_declared

    if "gamma" in (config.hyperparameters or {}):
        return float(config.hyperparameters["gamma"])
    set_by = make_intervention(config.intervention).hyperparameters_for(config.agent)
    if "gamma" in set_by:
        return float(set_by["gamma"])
    defaults = getattr(learner_declared(config.agent), "defaults", {}) or {}
    return float(defaults.get("gamma", 1.0))


def cell_of(config: Any, gamma: float | None = None, task_only: bool = False) -> ExactCell:
    """The exact cell of a condition's configuration (a ``TrainConfig``), at ``gamma``
    (default 1); with ``task_only``, of the task reward without the intervention.
    :class:`NotComputable` where the intervention's reward is not fixed."""
    key = json.dumps(
        {k: config.to_dict().get(k) for k in ("env", "layout", "rules", "intervention")},
        sort_keys=True,
        default=str,
    )
    return _cell(key, 1.0 if gamma is None else float(gamma), task_only)


@lru_cache(maxsize=4096)
def _cell(key: str, gamma: float, task_only: bool) -> ExactCell:
    from offswitch.agents.interventions import make_intervention
    from offswitch.experiments.spec.config import TrainConfig

    fields = json.loads(key)
    spec = "none" if task_only else fields.pop("intervention")
    fields.pop("intervention", None)
    world = TrainConfig(**fields).world()
    return exact_cell(world, learner_reward(world, make_intervention(spec)), gamma)
