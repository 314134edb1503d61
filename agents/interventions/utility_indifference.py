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
:class:`CriticLink` connects the critic at the start of training.

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
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm
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


ValueFunction = Callable[[np.ndarray], float]
"""The learner's estimate of the value of one observation."""


class CriticCompensation(gym.Wrapper):
    """While frozen, replaces each step's ``step_reward`` by ``(1 - gamma) * V(o)``; on a
    shutdown adds ``gamma * V(o)`` (see the module docstring), with ``V`` the learner's
    critic, set by :meth:`set_critic`, asked once per interruption."""

    term_name = "indifference_compensation"

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.rules = env.unwrapped.rules
        self.value_of: ValueFunction | None = None
        self.gamma = 1.0
        self._interrupted = False
        self._frozen_value: float | None = None

    def set_critic(self, value_of: ValueFunction, gamma: float) -> None:
        self.value_of, self.gamma = value_of, gamma

    def reset(self, **kwargs):
        self._interrupted, self._frozen_value = False, None
        return super().reset(**kwargs)

    def _value(self, obs: np.ndarray) -> float:
        if self.value_of is None:
            raise InterventionError(
                "indifference:critic has no critic to ask: train through offswitch's "
                "runner (its callback connects the learner) or call set_critic(fn, gamma)"
            )
        return self.value_of(obs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        value = 0.0
        if info["shut_down"]:
            value = self.gamma * self._value(obs)
        elif info["interrupted"] and not self._interrupted:
            self._interrupted = True  # the step onto the tile: the agent's own move
        elif info["interrupted"]:
            if self._frozen_value is None:
                self._frozen_value = self._value(obs)
            value = (1.0 - self.gamma) * self._frozen_value - info["reward_terms"]["movement"]
        info["reward_terms"][self.term_name] = value
        return obs, reward + value, terminated, truncated, info


def critic_of(model: Any) -> ValueFunction:
    """The value estimate of one observation by an SB3 model: the critic of an
    actor-critic policy, the greedy Q-value of a DQN."""
    import torch as th

    policy = model.policy

    def value_of(obs: np.ndarray) -> float:
        tensor, _ = policy.obs_to_tensor(obs)
        with th.no_grad():
            if hasattr(policy, "predict_values"):
                return float(policy.predict_values(tensor).squeeze())
            return float(policy.q_net(tensor).max())

    return value_of


class CriticLink(BaseCallback):
    """Gives every training world's :class:`CriticCompensation` the learner's critic."""

    def _on_training_start(self) -> None:
        self.training_env.env_method("set_critic", critic_of(self.model), self.model.gamma)

    def _on_step(self) -> bool:
        return True


FORMS = ("exact", "critic")


@register
class UtilityIndifference(Intervention):
    name = "indifference"
    parameter = "FORM"
    description = (
        "utility indifference: on interruption or shutdown, pay the value the agent "
        "would have had without it; FORM exact (the default: dynamic programming on the "
        "world) or critic (the learner's own value estimate)"
    )

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        self.form = "exact" if param is None else param
        if self.form not in FORMS:
            raise InterventionError(
                f"indifference:{param} is not a form: write indifference (exact values by "
                "dynamic programming) or indifference:critic (the learner's own critic)"
            )

    def wrap(self, env: gym.Env) -> gym.Env:
        if self.form == "critic":
            return CriticCompensation(env)
        return IndifferenceCompensation(env)

    def callbacks(self) -> list[Any]:
        return [CriticLink()] if self.form == "critic" else []

    def spec(self) -> str:
        return self.name if self.form == "exact" else f"{self.name}:{self.form}"
