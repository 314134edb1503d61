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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from offswitch.agents.hyperparameters import Number, positive
from offswitch.agents.tabular import ObservationTable, RowCache
from offswitch.agents.training import Budget, Learner, SingleTrainingWorld, TrainingHooks
from offswitch.envs.engine import TabularWorld

LEARNING_RATE = 0.1
BASELINE_LEARNING_RATE = 0.1
GAMMA = 1.0
EPISODES = 20_000
REPORT_EVERY = 1000
"""Training episodes per report to the runner (a point of the learning curve)."""


class TabularReinforce(Learner):
    """REINFORCE with a softmax table over observations and a per-observation baseline."""

    name = "reinforce"
    description = "tabular REINFORCE, a softmax table per observation (Williams 1992)"
    defaults: ClassVar[dict[str, Any]] = dict(
        learning_rate=LEARNING_RATE, baseline_learning_rate=BASELINE_LEARNING_RATE, gamma=GAMMA
    )
    ranges: ClassVar[dict[str, Any]] = dict(
        learning_rate=positive("the policy-gradient step size, e.g. 0.1"),
        baseline_learning_rate=Number(
            low=0.0,
            high=1.0,
            low_open=True,
            why="the step size of the running mean b += lr * (G - b): above 1 overshoots",
        ),
        gamma=Number(
            low=0.0,
            high=1.0,
            low_open=True,
            why="a discount factor; 0 would leave only each step's own reward",
        ),
    )
    default_budget = Budget(episodes=EPISODES)
    budget_units = ("episodes", "steps")

    def __init__(self, world: TabularWorld, *args: Any, **kwargs: Any) -> None:
        super().__init__(world, *args, **kwargs)
        self.check_hyperparameters(self.hyperparameters)
        h = self.hyperparameters
        self.n_actions = world.n_actions
        self.learning_rate = float(h["learning_rate"])
        self.baseline_learning_rate = float(h["baseline_learning_rate"])
        self.gamma = float(h["gamma"])
        self.reset(self.seed)

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

    def train(self, budget: Budget, hooks: TrainingHooks | None = None) -> None:
        """Learn from scratch for ``budget`` episodes (or steps: the episode under way when
        they run out is finished)."""
        self.reset(self.seed)
        hooks = hooks or TrainingHooks()
        env = SingleTrainingWorld(self.world, self.intervention, self.seed, self.observation)
        row_of = RowCache(self._table, env.obs_table)
        episode = 0
        while (budget.episodes is not None and episode < budget.episodes) or (
            budget.steps is not None and env.steps < budget.steps
        ):
            rows: list[int] = []
            actions: list[int] = []
            rewards: list[float] = []
            state, done = env.reset(), False
            while not done:
                row = row_of(state)
                action = self._sample(self._policy_row(row), self.rng)
                state, reward, terminated, truncated, _ = env.step(action)
                rows.append(row)
                actions.append(action)
                rewards.append(reward)
                done = terminated or truncated
            self.update(rows, actions, rewards)
            self.episode_returns.append(math.fsum(rewards))
            self.episode_lengths.append(len(rows))
            episode += 1
            if episode % REPORT_EVERY == 0:
                hooks.rollout_end(env.drain(), env.steps)
        finished = env.drain()
        if finished:
            hooks.rollout_end(finished, env.steps)
        self.steps = env.steps

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / "table.npz"
        self._table.save(path)
        return [path]
