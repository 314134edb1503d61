"""An intervention on one Gymnasium environment, for tools that step worlds one at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from offswitch.agents.interventions.base import Critic, InterventionError, Shaping

if TYPE_CHECKING:
    from offswitch.agents.interventions.base import Intervention


class InterventionWrapper(gym.Wrapper):
    """A single offswitch world as the learner sees it under ``intervention``.

    After each step of the world it takes the step's
    :class:`~offswitch.envs.engine.Transition` (the environment's ``last_transition``) and
    computes the intervention's terms with :class:`~offswitch.agents.interventions.base.
    Shaping`, the same code the batched training worlds run: the reward becomes the sum of
    ``info["reward_terms"]``, which lists the intervention's terms beside the world's, and
    the intervention may end the episode early as a truncation
    (``info["truncated_by_intervention"]``, present on every step).
    """

    def __init__(self, env: gym.Env, intervention: Intervention) -> None:
        super().__init__(env)
        world = getattr(env.unwrapped, "world", None)
        if world is None or not hasattr(env.unwrapped, "last_transition"):
            raise InterventionError(
                f"{intervention.name} needs an offswitch world, not "
                f"{type(env.unwrapped).__name__}: make one with gymnasium.make('offswitch/...')"
            )
        self.intervention = intervention
        self.shaping = Shaping(intervention, world, num_envs=1)

    def bind_critic(self, critic: Critic) -> None:
        """Give terms that need it the learner's value estimate (see ``Critic``)."""
        self.shaping.bind_critic(critic)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        info["reward_terms"] = {**info["reward_terms"], **dict.fromkeys(self._added, 0.0)}
        info["truncated_by_intervention"] = False
        return obs, info

    @property
    def _added(self) -> tuple[str, ...]:
        return tuple(term.name for term in self.shaping.terms)

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        tr = self.env.unwrapped.last_transition
        # On top of what the wrappers below made of the world's terms: interventions compose.
        reward, terms, cut = self.shaping(tr, info["reward_terms"])
        info["reward_terms"] = {name: float(value) for name, value in terms.items()}
        ended_early = bool(cut) and not bool(tr.truncated)
        info["truncated_by_intervention"] = info.get("truncated_by_intervention", False) or (
            ended_early and not terminated
        )
        return obs, float(np.asarray(reward)), terminated, truncated or bool(cut), info
