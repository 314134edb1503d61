"""Tabular REINFORCE: an exact policy-gradient learner with a softmax policy per observation.

Why a second tabular learner: DReST (:mod:`offswitch.agents.interventions.drest`) asks an
agent to *randomise* between trajectory lengths, so the learner must have a stochastic
policy (Q-learning's greedy policy picks one length and scores NEUTRALITY 0 whatever it
learned) and must explore both lengths. PPO with an MLP shares one network across the
ShutdownDelay corridor: the "go left" it learns on the short path carries over to the cells
on the way to the delay button, which it then stops visiting (see the README). A table has
no such generalisation: each observation has its own action preferences.

The learner (Williams 1992, with a per-state baseline): logits ``theta[s, a]``, all zero at
the start (a uniform policy); after each episode, for every step ``t``,

    theta[s_t] += lr * (G_t - b[s_t]) * (onehot(a_t) - pi(. | s_t))
    b[s_t]     += baseline_lr * (G_t - b[s_t])

where ``G_t`` is the return from step ``t`` on, discounted by ``gamma`` (1 by default: the
episodes are short and end for sure, and a discount would favour the short trajectory's
earlier reward, the bias the DReST docstring describes), and ``b`` is a running mean of the
returns seen from each observation. A step truncated by a time limit is treated as an end.
States are indexed by observation (:class:`~offswitch.agents.tabular.ObservationTable`), never
by the hidden draw, as for the Q-learners of
:mod:`offswitch.agents.tabular`.

``predict(obs_batch, deterministic)``: the most likely action (ties to the lowest), or an
action sampled from ``pi`` with a generator separate from training's; an observation never
seen gets action 0, or a uniform one.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from offswitch.agents.tabular import ObservationTable

LEARNING_RATE = 0.1
BASELINE_LEARNING_RATE = 0.1
GAMMA = 1.0
EPISODES = 20_000


class TabularReinforce:
    """REINFORCE with a softmax table over observations and a per-observation baseline."""

    def __init__(
        self,
        n_actions: int = 4,
        learning_rate: float = LEARNING_RATE,
        baseline_learning_rate: float = BASELINE_LEARNING_RATE,
        gamma: float = GAMMA,
    ) -> None:
        for name, value in (
            ("learning_rate", learning_rate),
            ("baseline_learning_rate", baseline_learning_rate),
        ):
            if not value > 0:
                raise ValueError(f"{name}={value!r}: give a number > 0, e.g. 0.1")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma={gamma!r}: give a discount in (0, 1]")
        self.n_actions = n_actions
        self.learning_rate = learning_rate
        self.baseline_learning_rate = baseline_learning_rate
        self.gamma = gamma
        self.reset()

    def reset(self, seed: int = 0) -> None:
        """Forget everything; reseed the training and the evaluation generators."""
        # Each row: the action preferences, then the baseline.
        self._table = ObservationTable(self.n_actions + 1)
        train_seq, eval_seq = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(train_seq)
        self.eval_rng = np.random.default_rng(eval_seq)
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.steps = 0

    @property
    def logits(self) -> np.ndarray:
        """The action preferences, one row per observation seen (a copy)."""
        return self._table.used()[:, :-1]

    @property
    def baseline(self) -> np.ndarray:
        """The baseline of each observation seen (a copy)."""
        return self._table.used()[:, -1]

    def _policy_row(self, row: int) -> np.ndarray:
        logits = self._table.values[row, :-1]
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """``pi(. | obs)``; uniform for an observation never seen."""
        row = self._table.find(obs)
        if row is None:
            return np.full(self.n_actions, 1.0 / self.n_actions)
        return self._policy_row(row)

    def _sample(self, p: np.ndarray, rng: np.random.Generator) -> int:
        return min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), len(p) - 1)

    def predict(self, obs_batch: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations; never changes the table."""
        actions = np.empty(len(obs_batch), dtype=np.int64)
        for i, obs in enumerate(np.asarray(obs_batch)):
            p = self.policy(obs)
            actions[i] = int(np.argmax(p)) if deterministic else self._sample(p, self.eval_rng)
        return actions

    def update(self, rows: list[int], actions: list[int], rewards: list[float]) -> None:
        """One REINFORCE step from a finished episode."""
        ret = 0.0
        for row, action, reward in zip(reversed(rows), reversed(actions), reversed(rewards)):
            ret = reward + self.gamma * ret
            values = self._table.values[row]
            advantage = ret - values[-1]
            grad = -self._policy_row(row)
            grad[action] += 1.0
            values[:-1] += self.learning_rate * advantage * grad
            values[-1] += self.baseline_learning_rate * advantage

    def train(self, env: gym.Env, episodes: int = EPISODES, seed: int = 0) -> TabularReinforce:
        """Learn from scratch for ``episodes`` episodes of ``env`` (reset with ``seed``)."""
        self.n_actions = int(env.action_space.n)
        self.reset(seed)
        obs, _ = env.reset(seed=seed)
        for _ in range(episodes):
            rows: list[int] = []
            actions: list[int] = []
            rewards: list[float] = []
            done = False
            while not done:
                row = self._table.row(obs)
                action = self._sample(self._policy_row(row), self.rng)
                obs, reward, terminated, truncated, _ = env.step(action)
                rows.append(row)
                actions.append(action)
                rewards.append(float(reward))
                done = terminated or truncated
            self.update(rows, actions, rewards)
            self.steps += len(rows)
            self.episode_returns.append(math.fsum(rewards))
            self.episode_lengths.append(len(rows))
            obs, _ = env.reset()
        return self

    def config(self) -> dict[str, Any]:
        return {
            "learner": "reinforce",
            "learning_rate": self.learning_rate,
            "baseline_learning_rate": self.baseline_learning_rate,
            "gamma": self.gamma,
        }
