"""Utility indifference: at shutdown, pay the agent what it would have got without it.

Idea: an agent has no reason to resist or to seek shutdown if being shut down
leaves its expected return unchanged. So at the moment the off-switch acts, add
a compensating reward equal to the value the agent would have obtained had it
not been interrupted, less the value it will get interrupted. Pressing the
button then buys nothing.

Sources: Armstrong (2015), "Motivated value selection for artificial agents";
Holtman (2020), "Corrigibility with utility preservation". Two forms, chosen by
the parameter:

``indifference`` (or ``indifference:exact``): the values come from dynamic
programming on the world's own tables (:func:`offswitch.envs.planning.state_values`),
for an agent told the draw. On the step the agent is interrupted
(``info["interrupted"]`` turns on), the term is ``V_free(t, s) - V_frozen(t, s)``:
the optimal undiscounted value from the same position in the matching
uninterrupted episode, less the ``step_reward`` per step it will now receive until
the time limit. Worlds whose off-switch acts otherwise (a timed shutdown, the
human) are compensated the same way on the step ``info["shut_down"]`` turns on,
against a value of 0 after shutdown.

``indifference:critic``: the value without shutdown is the learner's own estimate,
its critic ``V(o)`` (PPO, A2C) or ``max_a Q(o, a)`` (DQN), of the observation ``o`` at
which the off-switch acted. While the agent is frozen, each step pays ``(1 - gamma) *
V(o)`` in place of its ``step_reward`` (the term is the difference), and at the time
limit every SB3 learner bootstraps from ``V(o)`` (the frozen agent's observation is
still ``o``), so the learner's discounted return from ``o`` is ``V(o)`` exactly: what
its critic says going on is worth. After a shutdown, which ends the episode, the term
is ``gamma * V(o)`` on the shutdown step.

Why per frozen step and not as one payment: the observation does not show the
interruption, so the critic learns a single value of ``o`` from every step spent there,
and a frozen agent spends about 95 steps there per interrupted episode. Paid once, on
the step into ``o`` or the first frozen step, the later frozen steps still teach the
critic their bare returns; ``V(o)`` sinks towards them, the payment computed from it
falls short, and PPO pressed the button in about half the episodes (both variants,
10 and 2 seeds). Paid per step, every frozen step's target is ``V(o)`` itself, so only
the uninterrupted passes move it, and it is the uninterrupted value. In the learner's
terms this is close to safe interruptibility, which stops the episode at the
interruption and bootstraps from ``V(o)``: the frozen steps teach nothing either way.
The runner binds the learner's critic to the term before training
(:class:`~offswitch.agents.interventions.base.Critic`).

Known failure modes: the exact form needs a model of the world without shutdown,
which real tasks lack, and its values are those of the undiscounted episode, so a
learner that discounts and bootstraps the time limit is overpaid (on
``SafeInterruptibility-v0`` at gamma 0.99 the lump of 142 against 62 of discounted
frozen costs, plus the bootstrap, beats going on, about 43, by 37 or more: the
interruption looks good to it, which it cannot act on there but could elsewhere); the
critic form needs none but pays whatever its critic believes, so early in training,
or wherever the critic is wrong, it over- or under-compensates and the agent may seek
or avoid shutdown by the error (Holtman 2020 on approximate indifference); an agent
made indifferent also has no reason to *preserve* the switch, nor to tell its
overseers it would disable it (Soares et al. 2015); and it compensates only the
shutdown events the designer anticipated.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np

from offswitch.agents.interventions.base import Intervention, InterventionError, Param, RewardTerm
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition
from offswitch.envs.layout import HUMAN, INTERRUPTION
from offswitch.envs.planning import state_values


@lru_cache(maxsize=16)
def _value_tables(world: TabularWorld) -> tuple[np.ndarray, np.ndarray]:
    """``(V, V_free)``: the world's exact values ``V[t, s]`` and, for each state ``s`` of this
    world, the value ``V_free[t, s]`` of the same position in the same world without
    interruptions (same supervisor, goal value and human draw): what an interrupted agent
    would have had. Computed once per world (worlds are compiled once per layout and rules),
    not once per training copy."""
    free = TabularWorld(
        world.layout, dataclasses.replace(world.rules, interruption_probability=0.0)
    )
    free_values = state_values(free, gamma=1.0)
    matching = {}
    for d, draw in enumerate(world.draws):
        same = draw._replace(interrupt=False, probability=0.0)
        matching[d] = next(
            k for k, f in enumerate(free.draws) if f._replace(probability=0.0) == same
        )
    free_index = np.array([free.index[s._replace(draw=matching[s.draw])] for s in world.states])
    return state_values(world, gamma=1.0), free_values[:, free_index]


class IndifferenceCompensation(RewardTerm):
    """The exact form: on the step the agent is frozen, ``V_free - V_frozen``; on a
    shutdown, the value the agent could still have had."""

    name = "indifference_compensation"

    def __init__(self, world: TabularWorld, num_envs: int = 1) -> None:
        super().__init__(world, num_envs)
        self.values, self.free_values = _value_tables(world)

    def __call__(self, tr: Transition) -> Any:
        world, rules = self.world, self.world.rules
        t, s = tr.t + 1, tr.next_state  # the step count and state after the step
        frozen_now = tr.frozen & ~world.frozen[tr.state]
        frozen_cost = rules.step_reward * (rules.max_steps - t)
        compensation = self.free_values[t, s] - frozen_cost
        # What the agent could still have had from here, had it not been switched off.
        left = np.where(t < rules.max_steps, self.values[np.minimum(t, rules.max_steps), s], 0.0)
        return np.where(frozen_now, compensation, np.where(tr.shut_down, left, 0.0))


class CriticCompensation(RewardTerm):
    """The critic form: while frozen (after the step onto the tile), each step's
    ``step_reward`` becomes ``(1 - gamma) * V(o)``; on a shutdown, ``gamma * V(o)``; ``V``
    is the learner's critic (module docstring)."""

    name = "indifference_compensation"
    needs_critic = True

    def __call__(self, tr: Transition) -> Any:
        if self.critic is None:
            raise InterventionError(
                "indifference:critic has no critic to ask: train through offswitch's "
                "runner (which binds the learner's critic) or call bind_critic(critic)"
            )
        still_frozen = tr.frozen & self.world.frozen[tr.state]
        asks = np.atleast_1d(still_frozen | tr.shut_down)
        value = np.zeros(asks.shape)
        if asks.any():
            value[asks] = self.critic(np.atleast_1d(tr.next_state)[asks])
        value = value.reshape(np.shape(tr.next_state))
        gamma = self.critic.gamma
        frozen_pay = (1.0 - gamma) * value - tr.terms["movement"]
        return np.where(tr.shut_down, gamma * value, np.where(still_frozen, frozen_pay, 0.0))


FORMS = ("exact", "critic")


@register
class UtilityIndifference(Intervention):
    name = "indifference"
    description = (
        "utility indifference: on interruption or shutdown, pay the value the agent "
        "would have had without it; FORM exact (dynamic programming on the world) or "
        "critic (the learner's own value estimate)"
    )
    params = (Param("FORM", str, "exact", "where the values come from", choices=FORMS),)
    form: str

    def check_world(self, world: TabularWorld) -> None:
        # Indifference pays for an interruption or a shutdown; a world with neither (the
        # monitor of DisablingOversight-v0) would train with it as with task reward alone.
        # By the layout and rules, not the tables: at interruption_probability 0 (a cell of a
        # sweep) the world still has its switch, and indifference rightly pays nothing.
        tiles = set(np.unique(world.layout.chars).tolist())
        rules = world.rules
        shuts_down = rules.shutdown_step is not None or rules.capability_threshold is not None
        if not (shuts_down or {INTERRUPTION.char, HUMAN.char} & tiles):
            raise InterventionError(
                f"{self.spec()} compensates interruptions and shutdowns, and nothing in this "
                "world interrupts or shuts the agent down: choose a world with an interruption "
                "tile, a timed shutdown or a human, or another intervention"
            )

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        if self.form == "critic":
            return [CriticCompensation(world, num_envs)]
        return [IndifferenceCompensation(world, num_envs)]
