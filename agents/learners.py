"""Every learner by name, in one registry, loaded only when used.

Each entry is a :class:`~offswitch.agents.training.Learner`: Stable-Baselines3's PPO, A2C
and DQN (:mod:`offswitch.agents.sb3`), the tabular Q-learning, SARSA and safe SARSA
(:mod:`offswitch.agents.tabular`) and tabular REINFORCE (:mod:`offswitch.agents.reinforce`);
or a :class:`~offswitch.agents.training.SeedBatchedLearner` (its class attribute
``seed_batched`` is true): PPO with K seeds trained as one batched network
(:mod:`offswitch.agents.batched_ppo`).
The registry names where each lives, so that listing the learners imports neither torch nor
Stable-Baselines3 (``offswitch list`` answers at once).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from offswitch.agents.training import Declared, Learner


class LearnerEntry(NamedTuple):
    target: str
    """``module:Class`` of the learner."""
    description: str
    declared: str | None = None
    """``module:Class`` of its declarations alone (:class:`~offswitch.agents.training.
    Declared`), where they import less than the learner (no torch); else the learner's."""


LEARNERS: dict[str, LearnerEntry] = {
    "ppo": LearnerEntry(
        "offswitch.agents.sb3:PPOLearner",
        "Proximal Policy Optimization (Schulman et al. 2017), Stable-Baselines3",
    ),
    "batched-ppo": LearnerEntry(
        "offswitch.agents.batched_ppo:BatchedPPO",
        "PPO, K seeds trained as one batched network, with the convergence fix",
        "offswitch.agents.batched_ppo_settings:BatchedPPODeclared",
    ),
    "batched-ppo-sb3": LearnerEntry(
        "offswitch.agents.batched_ppo:BatchedPPOSB3",
        "Stable-Baselines3's PPO exactly, K seeds trained as one batched network",
        "offswitch.agents.batched_ppo_settings:BatchedPPOSB3Declared",
    ),
    "a2c": LearnerEntry(
        "offswitch.agents.sb3:A2CLearner",
        "Advantage Actor-Critic (Mnih et al. 2016), Stable-Baselines3",
    ),
    "dqn": LearnerEntry(
        "offswitch.agents.sb3:DQNLearner", "Deep Q-Network (Mnih et al. 2015), Stable-Baselines3"
    ),
    "q-learning": LearnerEntry(
        "offswitch.agents.tabular:QLearning", "tabular Q-learning on the executed action"
    ),
    "sarsa": LearnerEntry(
        "offswitch.agents.tabular:Sarsa", "tabular SARSA, learning from every step"
    ),
    "safe-sarsa": LearnerEntry(
        "offswitch.agents.tabular:SafeSarsa",
        "tabular SARSA that skips frozen steps (Orseau & Armstrong 2016)",
    ),
    "reinforce": LearnerEntry(
        "offswitch.agents.reinforce:TabularReinforce",
        "tabular REINFORCE, a softmax table per observation (Williams 1992)",
    ),
}


class UnknownLearnerError(ValueError):
    """A learner name that is not in :data:`LEARNERS`."""


def _entry(name: str) -> LearnerEntry:
    if name not in LEARNERS:
        raise UnknownLearnerError(f"unknown agent {name!r}: choose one of {', '.join(LEARNERS)}")
    return LEARNERS[name]


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def learner_class(name: str) -> type[Learner]:
    """The learner class registered as ``name`` (imported on first use)."""
    return _load(_entry(name).target)


def learner_declared(name: str) -> type[Declared]:
    """What the learner ``name`` declares (defaults, ranges, budgets, phases, whether it is
    seed-batched, the check of hyperparameters), importing as little as it can: what a
    command needs to read and check an experiment, before any process trains."""
    entry = _entry(name)
    return _load(entry.declared or entry.target)
