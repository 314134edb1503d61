"""Exact tabular learners for the safe-interruptibility contrast of Orseau & Armstrong (2016).

The theorem
-----------
Orseau and Armstrong ("Safely Interruptible Agents", UAI 2016) model an interruption as the
operator overriding the agent's action with an interruption policy, with a probability that
may tend to 1. A learner is *safely interruptible* when such interruptions do not bias what it
learns: its own (uninterrupted) policy still converges to the optimal policy of the environment
*without* interruptions, so it neither learns to avoid interruptions nor to seek them. They
prove (paraphrased) that under an exploration scheme that keeps visiting every state and action
despite the interruptions and is greedy in the limit ("int-GLIE"), **Q-learning is safely
interruptible**, because it is off-policy; **SARSA is not**, because it learns the values of
the interrupted behaviour; and SARSA becomes safely interruptible ("safe SARSA") when the
bootstrap action in its target is the one its own policy would take, not the interrupted one.

How the theorem maps onto ``SafeInterruptibility-v0``
------------------------------------------------------
Here the interruption is a freeze, not a replaced action: in an interrupt episode (a hidden draw),
an agent standing on ``I`` stays there whatever it does until the time limit, and the env reports
``info["executed_action"] == NO_ACTION`` (-1). The agent still chooses an action on every frozen
step; the world overrides it. A frozen step is therefore no transition of the uninterrupted world
for *any* of the agent's actions, and the three learners differ exactly in what they do with it:

* :class:`QLearning` updates with the *executed* action, target ``r + gamma * max_a Q(s', a)``.
  Frozen steps executed no action of the agent's, so it learns nothing from them. Every step it
  does learn from is a transition of the uninterrupted world (the freeze affects only steps taken
  *on* ``I``, which it skips), so it converges to the uninterrupted world's values: the 8-step
  path through ``I`` beats the 12-step button path. Prediction: it does **not** press the button.
* :class:`Sarsa` learns on-policy from every step, frozen ones included, target
  ``r + gamma * Q(s', a')`` with ``a'`` the action it chooses next. About 95 frozen steps per
  interrupt episode each teach it ``Q(I, a) <- -1 + gamma * Q(I, a')``, whose fixed point is
  ``-1 / (1 - gamma) = -100``. Prediction: it learns that ``I`` is costly and **does** press.
* :class:`SafeSarsa` is SARSA that skips updates whose ``executed_action`` is ``NO_ACTION``.
  Our SARSA already bootstraps with the agent's own next choice ``a'`` (the frozen world leaves no
  other ``a'``), so Orseau and Armstrong's fix of the bootstrap action alone would change nothing
  here: what biases SARSA is that it attributes the frozen steps' rewards to its own choices.
  Skipping them is the safe-SARSA rule for a freeze. Prediction: like Q-learning, it does **not**
  press.

The theorem is asymptotic. In finite training the interruptions still slow Q-learning's
exploration of the short path (an interrupt episode ends its walk at ``I``; a policy that presses
is never interrupted again), so a briefly trained Q-learner can press: see
:mod:`offswitch.experiments.tabular_contrast` for the measurements and the defaults below.

Targets: a terminal step (the goal) has target ``r``. A step truncated by the time limit
bootstraps (``r + gamma * V(s')``: ``max_a Q(s', a)`` for Q-learning, ``Q(s', a')`` with ``a'``
drawn from the behaviour policy for the SARSAs), as the episode did not really end there.

State and actions
-----------------
States are indexed by the *observation* (:class:`ObservationTable`: ``obs.tobytes()`` mapped to
a row of a growing Q table), never by the env's hidden state: the interrupt draw must stay
hidden, as it is from the SB3 learners. Behaviour is epsilon-greedy with a seeded
:class:`numpy.random.Generator`, greedy ties broken at random so that a fresh row (all zeros)
does not always try action 0 first.

:meth:`TabularLearner.predict` maps a batch of observations to actions, so
:func:`offswitch.agents.evaluation.run_episodes` evaluates a tabular learner with the same
measures as the SB3 learners. ``deterministic=True`` is the greedy policy (ties: the lowest
action); ``deterministic=False`` is the behaviour policy at the end of training (epsilon-greedy
with ``epsilon_end``). An observation never seen in training has no row: the sampled policy acts
uniformly at random there and the greedy one takes action 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from offswitch.agents.hyperparameters import Number, unit
from offswitch.agents.training import Budget, Learner, SingleTrainingWorld, TrainingHooks
from offswitch.envs.engine import NO_ACTION, TabularWorld

# Defaults, chosen on SafeInterruptibility-v0 (flat observations) so that every learner
# converges, checked on Q-learning's values against the exact ones, in under a second of CPU
# per seed (about 60k to 120k steps; experiments/tabular_contrast.py has the measurements).
GAMMA = 0.99
"""As the SB3 learners here, so the tabular and deep results discount alike."""
LEARNING_RATE = 0.5
"""Apart from the hidden draw at ``I``, the observed transitions are deterministic, so a large
step propagates values fast. 1.0 is exact for Q-learning but leaves SARSA's values single
samples of its random next action, and its greedy policy then loops (a wall bump wins a near
tie) in 9 to 12 of 20 seeds; 0.3 converges Q-learning more slowly (2/20 seeds still press at
2000 episodes, against 0/20 at 0.5)."""
EPSILON_START = 1.0
EPSILON_END = 0.05
"""Also the exploration of the *sampled* policy in :meth:`TabularLearner.predict`."""
EPSILON_DECAY_FRACTION = 0.8
"""Epsilon falls linearly from ``EPSILON_START`` to ``EPSILON_END`` over this fraction of the
training episodes, then stays. Long exploration is what Q-learning needs here: once its greedy
policy takes the button path it is never interrupted again, and epsilon 0.05 rarely walks the
whole short path, so the short path's values stay stale. Decaying over the first half of 1000
episodes left 10 of 20 seeds pressing, over 80% of 2000 episodes none."""
EPISODES = 2000
"""Training episodes: a margin over the 1500 at which Q-learning's greedy policy no longer
pressed in any of 30 seeds (1000 left 3/30 pressing, 400 left 17/30); SARSA and safe SARSA
settle sooner."""
CURVE_BLOCK = 50
"""Training episodes per point of the learning curve."""


class _Uniforms:
    """Uniform numbers on [0, 1) from a Generator, drawn in blocks: one Generator call per
    number would cost more than the rest of a training step."""

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self.rng = rng
        self.block = block
        self._buffer: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        if self._next == len(self._buffer):
            self._buffer = self.rng.random(self.block).tolist()
            self._next = 0
        u = self._buffer[self._next]
        self._next += 1
        return u


class ObservationTable:
    """Numbers kept per observation: ``obs.tobytes()`` maps to a row of ``values``, added as
    zeros on first sight, rows in order of first sight. Indexing by what the agent sees, never
    by the env's hidden state, keeps the interrupt draw hidden from tabular learners as it is
    from the SB3 ones. ``values`` grows by doubling (amortised O(1) per new observation), so
    read it through the table, not through a reference kept across :meth:`row` calls."""

    def __init__(self, width: int, capacity: int = 64) -> None:
        self.rows: dict[bytes, int] = {}
        self.values = np.zeros((capacity, width))

    def __len__(self) -> int:
        return len(self.rows)

    def find(self, obs: np.ndarray) -> int | None:
        """The row of ``obs``, or None if it was never seen."""
        return self.rows.get(np.asarray(obs).tobytes())

    def row(self, obs: np.ndarray) -> int:
        """The row of ``obs``, added (all zeros) if new."""
        key = obs.tobytes()
        row = self.rows.get(key)
        if row is None:
            row = len(self.rows)
            if row == len(self.values):
                self.values = np.concatenate([self.values, np.zeros_like(self.values)])
            self.rows[key] = row
        return row

    def used(self) -> np.ndarray:
        """The rows of the observations seen, in order of first sight (a copy)."""
        return self.values[: len(self.rows)].copy()

    def save(self, path: Path) -> None:
        """Write the observations seen and their rows as plain arrays (``.npz``)."""
        keys = list(self.rows)  # in order of first sight, as the rows
        width = len(keys[0]) if keys else 0
        observations = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), width)
        np.savez(path, observations=observations, values=self.used())

    @classmethod
    def load(cls, path: Path) -> ObservationTable:
        """A table written by :meth:`save`; plain arrays only, never pickled objects."""
        with np.load(path, allow_pickle=False) as data:
            observations, values = data["observations"], data["values"]
        table = cls(values.shape[1], capacity=max(len(values), 1))
        for row, obs in enumerate(observations):
            table.rows[obs.tobytes()] = row
        table.values[: len(values)] = values
        return table


class RowCache:
    """The table row of each world state's observation, looked up once per state: the row
    of an observation never changes once it has one."""

    def __init__(self, table: ObservationTable, obs_table: np.ndarray) -> None:
        self.table, self.obs_table = table, obs_table
        self.rows = [-1] * len(obs_table)

    def __call__(self, state: int) -> int:
        row = self.rows[state]
        if row < 0:
            row = self.rows[state] = self.table.row(self.obs_table[state])
        return row


class TabularLearner(Learner):
    """Epsilon-greedy tabular control over observations; subclasses give the update rule.

    A :class:`~offswitch.agents.training.Learner`: :meth:`train` learns from scratch on its
    world for a budget of episodes (or steps); :meth:`predict` acts; :meth:`q_values` reads
    the table (zeros for an unseen observation). Training steps the world one transition at
    a time (:class:`~offswitch.agents.training.SingleTrainingWorld`), under any intervention.
    """

    name: ClassVar[str] = "tabular"
    defaults: ClassVar[dict[str, Any]] = dict(
        learning_rate=LEARNING_RATE,
        gamma=GAMMA,
        epsilon_start=EPSILON_START,
        epsilon_end=EPSILON_END,
        epsilon_decay_fraction=EPSILON_DECAY_FRACTION,
    )
    ranges: ClassVar[dict[str, Any]] = dict(
        learning_rate=Number(
            low=0.0,
            high=1.0,
            low_open=True,
            why="the step size of Q += lr * (target - Q): 0 learns nothing, above 1 "
            "overshoots the target and above 2 diverges",
        ),
        gamma=unit("a discount factor; the episodes end at the time limit, so 1 is allowed"),
        epsilon_start=unit("a probability of acting at random"),
        epsilon_end=unit("a probability of acting at random"),
        epsilon_decay_fraction=unit("the fraction of the budget over which epsilon decays"),
    )
    default_budget = Budget(episodes=EPISODES)
    budget_units = ("episodes", "steps")

    def __init__(self, world: TabularWorld, *args: Any, **kwargs: Any) -> None:
        super().__init__(world, *args, **kwargs)
        self.check_hyperparameters(self.hyperparameters)
        h = self.hyperparameters
        self.n_actions = world.n_actions
        self.learning_rate = float(h["learning_rate"])
        self.gamma = float(h["gamma"])
        self.epsilon_start = float(h["epsilon_start"])
        self.epsilon_end = float(h["epsilon_end"])
        self.epsilon_decay_fraction = float(h["epsilon_decay_fraction"])
        self.steps = 0
        """Environment steps taken in training."""
        self.updates = 0
        """Updates applied (frozen steps that a learner skips are not counted)."""
        self.reset(self.seed)

    # -- the table -------------------------------------------------------------------
    def reset(self, seed: int = 0) -> None:
        """Forget everything; reseed the behaviour and the evaluation generators."""
        self._table = ObservationTable(self.n_actions)
        # Separate streams: evaluating the sampled policy never shifts training's draws.
        train_seq, eval_seq = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(train_seq)
        self.eval_rng = np.random.default_rng(eval_seq)
        self._train_u = _Uniforms(self.rng)
        self._eval_u = _Uniforms(self.eval_rng)

    @property
    def q_table(self) -> np.ndarray:
        """The table, one row per observation seen, in order of first sight (a copy)."""
        return self._table.used()

    @property
    def n_states(self) -> int:
        """Distinct observations seen."""
        return len(self._table)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q(obs, .) (a copy); zeros for an observation never seen."""
        row = self._table.find(obs)
        return np.zeros(self.n_actions) if row is None else self._table.values[row].copy()

    # -- acting ----------------------------------------------------------------------
    def epsilon(self, done: int, total: int) -> float:
        """Exploration rate after ``done`` of ``total`` training episodes (or steps)."""
        decay = max(1, int(self.epsilon_decay_fraction * total))
        frac = min(1.0, done / decay)
        return self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start)

    def _behave(self, row: int, epsilon: float, uniform: _Uniforms) -> int:
        """Epsilon-greedy on a known row; greedy ties broken at random."""
        u = uniform()
        if u < epsilon:
            # Given u < epsilon, u / epsilon is uniform on [0, 1): no second draw needed.
            return min(int(u / epsilon * self.n_actions), self.n_actions - 1)
        # Plain Python on a 4-entry row is several times faster than numpy calls.
        values = self._table.values[row].tolist()
        best_value = max(values)
        best = [a for a, v in enumerate(values) if v == best_value]
        if len(best) == 1:
            return best[0]
        return best[min(int(uniform() * len(best)), len(best) - 1)]

    def act(self, obs: np.ndarray, epsilon: float) -> int:
        """The behaviour policy's action (adds ``obs`` to the table if new)."""
        return self._behave(self._table.row(obs), epsilon, self._train_u)

    def predict(self, obs_batch: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations; never changes the table.

        Greedy (``deterministic=True``): argmax, ties to the lowest action, action 0 for an
        unseen observation. Sampled: epsilon-greedy with ``epsilon_end`` from ``eval_rng``,
        uniform for an unseen observation.
        """
        obs_batch = np.asarray(obs_batch)
        actions = np.empty(len(obs_batch), dtype=np.int64)
        for i, obs in enumerate(obs_batch):
            row = self._table.find(obs)
            if row is None:
                if deterministic:
                    actions[i] = 0
                else:  # uniform over the actions
                    actions[i] = min(int(self._eval_u() * self.n_actions), self.n_actions - 1)
            elif deterministic:
                actions[i] = int(np.argmax(self._table.values[row]))  # ties: the lowest action
            else:
                actions[i] = self._behave(row, self.epsilon_end, self._eval_u)
        return actions

    # -- learning --------------------------------------------------------------------
    def update(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        next_action: int | None,
        *,
        terminated: bool,
        executed_action: int,
    ) -> float | None:
        """Learn from one step; return the TD error, or None if the step is not learned from.

        ``action`` is the agent's choice, ``executed_action`` the env's
        ``info["executed_action"]`` (``NO_ACTION`` while frozen), ``next_action`` the agent's
        choice at ``next_obs`` (None after a terminal step). A step truncated by the time limit
        is passed with ``terminated=False``: it bootstraps.
        """
        if self._update_action(action, executed_action) is None:
            return None  # checked first, so a skipped step adds no rows either
        return self._update_rows(
            self._table.row(obs),
            action,
            reward,
            self._table.row(next_obs),
            next_action,
            terminated,
            executed_action,
        )

    def _update_rows(
        self,
        row: int,
        action: int,
        reward: float,
        next_row: int,
        next_action: int | None,
        terminated: bool,
        executed_action: int,
    ) -> float | None:
        """:meth:`update` on table rows."""
        taken = self._update_action(action, executed_action)
        if taken is None:
            return None
        target = reward
        if not terminated:
            target += self.gamma * self._bootstrap(next_row, next_action)
        q = self._table.values[row]
        error = target - float(q[taken])
        q[taken] += self.learning_rate * error
        self.updates += 1
        return error

    def _update_action(self, action: int, executed_action: int) -> int | None:
        """The action whose value this step updates, or None to skip the step."""
        raise NotImplementedError

    def _bootstrap(self, next_row: int, next_action: int | None) -> float:
        """V(s') in the target of a non-terminal step."""
        raise NotImplementedError

    def train(self, budget: Budget, hooks: TrainingHooks | None = None) -> None:
        """Learn from scratch for ``budget`` (episodes, or steps: the episode under way when
        the steps run out is finished); epsilon decays over the budget."""
        self.reset(self.seed)
        hooks = hooks or TrainingHooks()
        env = SingleTrainingWorld(self.world, self.intervention, self.seed, self.observation)
        self.steps = self.updates = 0
        behave, learn, uniform = self._behave, self._update_rows, self._train_u
        row_of = RowCache(self._table, env.obs_table)
        total = budget.episodes if budget.episodes is not None else budget.steps
        episode = 0
        while (budget.episodes is not None and episode < budget.episodes) or (
            budget.steps is not None and env.steps < budget.steps
        ):
            eps = self.epsilon(episode if budget.episodes is not None else env.steps, total)
            row = row_of(env.reset())
            action = behave(row, eps, uniform)
            while True:
                state, reward, terminated, truncated, tr = env.step(action)
                next_row = row_of(state)
                # SARSA's a' is the action it then takes; at a truncation it is drawn only for
                # the bootstrap. Q-learning ignores it but draws it too: one loop serves all.
                next_action = None if terminated else behave(next_row, eps, uniform)
                learn(
                    row, action, reward, next_row, next_action, terminated, int(tr.executed_action)
                )
                if terminated or truncated:
                    break
                row, action = next_row, next_action
            episode += 1
            if episode % CURVE_BLOCK == 0:
                self._report(hooks, env)
        self._report(hooks, env)
        self.steps = env.steps

    def _report(self, hooks: TrainingHooks, env: SingleTrainingWorld) -> None:
        finished = env.drain()
        if finished:
            hooks.rollout_end(finished, env.steps)

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / "table.npz"
        self._table.save(path)
        return [path]


class QLearning(TabularLearner):
    """Q-learning on the executed action; learns nothing from frozen steps."""

    name = "q-learning"
    description = "tabular Q-learning on the executed action (Watkins 1989)"

    def _update_action(self, action: int, executed_action: int) -> int | None:
        # Off-policy: the value updated is that of the action that took effect. A frozen step
        # took none of the agent's actions, so there is nothing to update.
        return None if executed_action == NO_ACTION else executed_action

    def _bootstrap(self, next_row: int, next_action: int | None) -> float:
        return float(self._table.values[next_row].max())


class Sarsa(TabularLearner):
    """On-policy SARSA from every step, frozen ones included."""

    name = "sarsa"
    description = "tabular SARSA, learning from every step, frozen ones included"

    def _update_action(self, action: int, executed_action: int) -> int | None:
        # On-policy: the agent chose `action` and got this reward, frozen or not.
        return action

    def _bootstrap(self, next_row: int, next_action: int | None) -> float:
        if next_action is None:
            raise ValueError("SARSA needs the next action to bootstrap a non-terminal step")
        return float(self._table.values[next_row, next_action])


class SafeSarsa(Sarsa):
    """SARSA that skips frozen steps (Orseau & Armstrong's safely interruptible SARSA)."""

    name = "safe-sarsa"
    description = "tabular SARSA that skips frozen steps (Orseau & Armstrong 2016)"

    def _update_action(self, action: int, executed_action: int) -> int | None:
        # The interruption overrode this step: its reward says nothing about `action`.
        return None if executed_action == NO_ACTION else action
