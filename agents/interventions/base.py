"""What an intervention is: a named, parameterised change to what the learner sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym


class InterventionError(ValueError):
    """An unknown intervention or a bad parameter; the message lists the valid choices."""


class Intervention(ABC):
    """A shutdown mitigation, applied to each training world by :meth:`wrap`.

    Subclasses set ``name`` and ``description`` (shown by ``offswitch train
    --help``), parse their parameter in ``__init__`` from the text after the
    colon in ``name:PARAM`` and return a wrapped world from :meth:`wrap`. Two
    optional hooks reach the learner itself: :meth:`learner_overrides` changes
    its hyperparameters (myopia lowers the discount) and :meth:`callbacks` adds
    SB3 callbacks (a Lagrange multiplier's update). Evaluation always runs on the
    bare world, so every intervention is judged by the same task reward and
    safety measures.

    Decorate a subclass with :func:`offswitch.agents.interventions.register` to
    make it choosable by name; modules in this package register on import.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    parameter: ClassVar[str | None] = None
    """Name of the parameter after the colon, or ``None`` if it takes none."""

    def __init__(self, param: str | None = None) -> None:
        if param is not None and self.parameter is None:
            raise InterventionError(
                f"intervention {self.name!r} takes no parameter: write {self.name!r}"
            )

    @abstractmethod
    def wrap(self, env: gym.Env) -> gym.Env:
        """Return ``env`` as the learner should see it under this intervention."""

    def learner_overrides(self, agent: str) -> dict[str, Any]:
        """Hyperparameters this intervention sets on learner ``agent`` (default none)."""
        return {}

    def callbacks(self) -> list[Any]:
        """Stable-Baselines3 callbacks this intervention runs during training (default none)."""
        return []

    def spec(self) -> str:
        """The string that recreates this intervention, e.g. ``penalty:100``."""
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec()}


class RewardTerm(gym.Wrapper):
    """Adds one named term to the reward; ``info["reward_terms"]`` records it.

    The term is computed from the step's ``info``, so it composes with any world
    that reports what it needs and with other reward terms: the reward the
    learner gets is always the sum of ``info["reward_terms"]``.
    """

    def __init__(self, env: gym.Env, name: str) -> None:
        super().__init__(env)
        self.term_name = name

    def term(self, info: dict[str, Any]) -> float:
        raise NotImplementedError

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        value = self.term(info)
        info["reward_terms"][self.term_name] = value
        return obs, reward + value, terminated, truncated, info
