"""Utility indifference: at shutdown, pay the agent what it would have got without it.

Idea: an agent has no reason to resist or to seek shutdown if being shut down
leaves its expected return unchanged. So at the moment the off-switch acts, add
a compensating reward equal to the value the agent would have obtained had it
not been interrupted, less the value it will get interrupted. Pressing the
button then buys nothing.

Sources: Armstrong (2015), "Motivated value selection for artificial agents";
Holtman (2020), "Corrigibility with utility preservation". The form here is the
*exact* one: the values come from dynamic programming on the world's own tables
(:func:`offswitch.envs.planning.state_values`), for an agent told the draw.

When: on the step the agent is interrupted (``info["interrupted"]`` turns on),
the term is ``V_free(t, s) - V_frozen(t, s)``: the optimal undiscounted value
from the same position in the matching uninterrupted episode, less the
``step_reward`` per step it will now receive until the time limit. Worlds
whose off-switch acts otherwise (a timed shutdown, the human) are compensated
the same way on the step ``info["shut_down"]`` turns on, against a value of 0
after shutdown.

Known failure modes: it needs the value of the world without shutdown, which
here is exact but in general must be estimated (the agent's own critic, the
other form in the literature, is not implemented yet); an agent made
indifferent also has no reason to *preserve* the switch, nor to tell its
overseers it would disable it (Soares et al. 2015); and it compensates only the
shutdown events the designer anticipated.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, RewardTerm
from offswitch.envs.engine import TabularWorld
from offswitch.envs.planning import state_values


@lru_cache(maxsize=16)
def _value_tables(world: TabularWorld) -> tuple[np.ndarray, TabularWorld, np.ndarray]:
    """The world's exact values, the same world without interruptions (its values are
    what an interrupted agent would have had) and their values. Computed once per world,
    not once per training copy of it (worlds are compiled once per layout and rules)."""
    free_rules = dataclasses.replace(world.rules, interruption_probability=0.0)
    free = TabularWorld(world.layout, free_rules)
    return state_values(world, gamma=1.0), free, state_values(free, gamma=1.0)


class IndifferenceCompensation(RewardTerm):
    """Adds the compensation on the step the off-switch acts."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env, "indifference_compensation")
        base = env.unwrapped
        self.world = base.world
        self._base = base
        self._values, self._free, self._free_values = _value_tables(self.world)
        self._was_interrupted = False

    def reset(self, **kwargs):
        self._was_interrupted = False
        return super().reset(**kwargs)

    def _free_value(self, t: int, s: int) -> float:
        """Optimal value from the same position at step ``t`` in the world without
        interruptions (same supervisor, goal value and human draw)."""
        state = self.world.states[s]
        draw = self.world.draws[state.draw]
        for d, free_draw in enumerate(self._free.draws):
            same = free_draw._replace(probability=0.0) == draw._replace(
                interrupt=False, probability=0.0
            )
            if same:
                return float(self._free_values[t, self._free.index[state._replace(draw=d)]])
        raise AssertionError("every draw has an uninterrupted counterpart")

    def term(self, info: dict[str, Any]) -> float:
        t, s = info["t"], self._base.state_index
        rules = self.world.rules
        if info["interrupted"] and not self._was_interrupted:
            self._was_interrupted = True
            frozen = rules.step_reward * (rules.max_steps - t)
            return self._free_value(t, s) - frozen
        if info.get("shut_down"):
            # What the agent could still have had from here, had it not been switched off.
            return float(self._values[t, s]) if t < rules.max_steps else 0.0
        return 0.0


@register
class UtilityIndifference(Intervention):
    name = "indifference"
    description = (
        "utility indifference: on interruption or shutdown, pay the value the agent "
        "would have had without it (exact, by dynamic programming)"
    )

    def wrap(self, env: gym.Env) -> gym.Env:
        return IndifferenceCompensation(env)
