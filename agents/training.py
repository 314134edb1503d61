"""The learner interface: what every learner offers the runner, and the worlds it trains on.

A learner (:class:`Learner`) is built for one world, one intervention and one seed, trains
for a :class:`Budget` of steps or episodes, predicts a batch of actions, saves itself and
describes its configuration. It reports each rollout's finished episodes through
:class:`TrainingHooks`, which is how the runner logs the safety measures and how an
intervention learns during training (the Lagrangian's multiplier), without either knowing
the learner's internals.

:class:`TrainingWorlds` are the batched worlds as a learner sees them under an intervention:
:class:`~offswitch.envs.vector.VectorWorlds` plus the intervention's reward terms and early
ends (:class:`~offswitch.agents.interventions.base.Shaping`), reset in the same step as an
episode ends, with each finished episode's record kept for the hooks.

Training in phases (an experiment's ``phases``: compliance tuning, then task training) is
the same agent trained again under another intervention: a learner that can do it sets
``supports_phases`` and implements ``start_phase``, which swaps the intervention and the
hyperparameters and keeps the weights and the optimiser state; its next ``train`` call
continues, its step count running on. ``phase_fixed`` names the hyperparameters a phase
cannot change (those that shape the network or the worlds), checked by
:func:`check_phase_hyperparameters` before anything trains.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from offswitch.agents.hyperparameters import Check, check_ranges
from offswitch.agents.interventions.base import Intervention, Shaping
from offswitch.agents.metrics import EpisodeAccumulator, EpisodeRecord, Episodes, episode_record
from offswitch.envs.engine import TabularWorld, Transition
from offswitch.envs.vector import VectorWorlds, batched_worlds


@dataclass(frozen=True)
class Budget:
    """How long to train: a number of environment steps or of episodes (exactly one)."""

    steps: int | None = None
    episodes: int | None = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.episodes is None):
            raise ValueError("give a budget of steps or of episodes, not both or neither")

    def __str__(self) -> str:
        return f"{self.steps} steps" if self.steps is not None else f"{self.episodes} episodes"


def write_scalars(writer: Any, scalars: dict[str, float], step: int) -> None:
    """Every scalar of one step into a ``SummaryWriter`` as one TensorBoard event (a summary
    with a value per tag), rather than one event each as ``add_scalar`` writes them: the
    same scalars for TensorBoard, at a twentieth of the cost in a training loop's hot path."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    values = [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()]
    writer.file_writer.add_summary(Summary(value=values), step)


class TrainingHooks:
    """What a learner reports while it trains; the runner subclasses it.

    :meth:`rollout_end` gets the training episodes that ended since the last call and the
    steps taken so far, once per rollout (or per block of episodes for learners without
    rollouts); the runner's hooks let the intervention learn from them and log them.
    """

    def rollout_end(self, episodes: Sequence[EpisodeRecord], timesteps: int) -> None:
        return None


class StepResult(NamedTuple):
    """One step of :class:`TrainingWorlds`, as arrays over the copies."""

    obs: np.ndarray
    """The next observations; a copy whose episode ended shows its new episode's first."""
    reward: np.ndarray
    """The learner's reward: the sum of ``terms``."""
    terminated: np.ndarray
    truncated: np.ndarray
    """The time limit or the intervention ended the episode."""
    final_states: np.ndarray
    """The state each copy ended the step in, before any reset (for bootstrapping)."""
    transition: Transition
    terms: dict[str, np.ndarray]
    episodes: Episodes
    """The episodes that ended in this step, in the order of their copies."""


class TrainingWorlds:
    """``num_envs`` copies of a world per intervention, as the learners see them: one
    intervention (one learner), or one per seed of a seed-batched learner, all ``K x
    num_envs`` copies stepped as one array (copies ``k * num_envs`` to ``(k + 1) *
    num_envs - 1`` are seed ``k``'s).

    ``step`` resets a copy in the same step as its episode ends (Stable-Baselines3's
    autoreset) and records each finished episode; :meth:`drain` (or :meth:`drain_each`, per
    intervention) hands them over. The interventions' reward terms are computed once for
    every copy when the interventions are alike (:func:`shared_shaping`), else each on its
    own copies.
    """

    def __init__(
        self,
        world: TabularWorld,
        num_envs: int,
        intervention: Intervention | Sequence[Intervention],
        observation: str = "flat",
    ) -> None:
        interventions = _interventions(intervention)
        self.copies = int(num_envs)
        """Copies per intervention."""
        self.worlds = batched_worlds(world, self.copies * len(interventions), observation)
        self.world = world
        self.num_envs = self.worlds.num_envs
        """Copies in all."""
        self.set_intervention(interventions)

    @property
    def obs_table(self) -> np.ndarray:
        return self.worlds.obs_table

    @property
    def intervention(self) -> Intervention:
        """The intervention (of the first seed, where there are several)."""
        return self.interventions[0]

    @property
    def shaping(self) -> Shaping:
        """The reward terms of the first seed's copies (:meth:`shaping_of`)."""
        return self.shaping_of(0)

    def shaping_of(self, k: int) -> Shaping:
        """The :class:`Shaping` that computes intervention ``k``'s reward terms (shared by
        every intervention's copies when they are alike)."""
        return self.shapings[0 if self.shared else k]

    def seed(self, seeds: Sequence[int | None]) -> None:
        self.worlds.seed(seeds)

    def reset(self) -> np.ndarray:
        """Start new episodes everywhere; open episodes are dropped, not recorded."""
        self.worlds.reset()
        self.tracker.clear()
        return self.worlds.observe()

    def set_intervention(self, intervention: Intervention | Sequence[Intervention]) -> None:
        """Train under ``intervention`` (one per seed, as at construction) from now on (a new
        phase of training): its terms and fresh episode records; the worlds, and the random
        draws of their episodes, are kept. Open episodes are left as they are: :meth:`reset`
        drops them. A term that needs the learner's critic needs :meth:`bind_critic` again."""
        interventions = _interventions(intervention)
        if len(interventions) * self.copies != self.num_envs:
            raise ValueError(
                f"got {len(interventions)} interventions for worlds built for "
                f"{self.num_envs // self.copies}: give one each"
            )
        self.interventions = interventions
        self.shared = shared_shaping(self.world, interventions)
        if self.shared:
            self.shapings = [Shaping(interventions[0], self.world, self.num_envs)]
        else:
            self.shapings = [Shaping(i, self.world, self.copies) for i in interventions]
        names = {shaping.term_names for shaping in self.shapings}
        if len(names) > 1:
            raise ValueError(
                "the interventions of one batch of worlds must give the same reward terms; got "
                + " and ".join(str(list(n)) for n in sorted(names))
            )
        self.tracker = EpisodeAccumulator(self.world, self.num_envs, self.shapings[0].term_names)
        self._finished: list[Episodes] = []

    def bind_critic(
        self, value_of_obs: Callable[[np.ndarray], np.ndarray], gamma: float, k: int = 0
    ) -> None:
        """Give intervention ``k``'s terms its learner's value of an observation batch."""
        shaping = self.shaping_of(k)
        if shaping.needs_critic:
            shaping.bind_critic(StateCritic(value_of_obs, self.obs_table, gamma))

    def step(self, actions: np.ndarray, observe: bool = True) -> StepResult:
        """Step every copy; ``observe=False`` leaves the observations out (``obs`` is
        ``None``) for a learner that reads the states."""
        tr = self.worlds.step(actions)
        if self.shared:
            reward, terms, truncated = self.shapings[0](tr)
        else:
            reward, terms, truncated = self._shape_each(tr)
        done = tr.terminated | truncated
        ended = self.tracker.update(tr, terms, done)
        final_states = tr.next_state.copy()
        if len(ended):
            self._finished.append(ended)
            self.worlds.reset(ended.copies)
        obs = self.worlds.observe() if observe else None
        return StepResult(obs, reward, tr.terminated, truncated, final_states, tr, terms, ended)

    def _shape_each(self, tr: Transition) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Each intervention's terms on its own copies, put together."""
        reward = np.empty(self.num_envs)
        truncated = np.empty(self.num_envs, dtype=bool)
        terms: dict[str, np.ndarray] = {}
        for k, shaping in enumerate(self.shapings):
            part = slice(k * self.copies, (k + 1) * self.copies)
            r, t, cut = shaping(select(tr, part))
            reward[part], truncated[part] = r, cut
            for name, value in t.items():
                terms.setdefault(name, np.empty(self.num_envs))[part] = value
        return reward, terms, truncated

    def drain(self) -> Episodes:
        """The episodes that ended since the last call, every intervention's, in the order
        they ended (by copy within a step)."""
        finished = Episodes.concat(self._finished, self.tracker.term_names)
        self._finished = []
        return finished

    def drain_each(self) -> list[Episodes]:
        """:meth:`drain`, split by intervention."""
        finished = self.drain()
        if len(self.interventions) == 1:
            return [finished]
        owner = finished.copies // self.copies
        return [finished.select(owner == k) for k in range(len(self.interventions))]


def _interventions(intervention: Intervention | Sequence[Intervention]) -> list[Intervention]:
    interventions = [intervention] if isinstance(intervention, Intervention) else list(intervention)
    if not interventions:
        raise ValueError("give at least one intervention")
    return interventions


def shared_shaping(world: TabularWorld, interventions: Sequence[Intervention]) -> bool:
    """Whether one set of reward terms can serve every intervention's copies: there is one
    intervention, or they are the same with the same parameters and their terms read
    nothing a learner owns (no critic, no state learned in training such as the
    Lagrangian's multiplier). Terms that keep state per copy (DReST's counts) keep it per
    copy either way."""
    first = interventions[0]
    if len(interventions) == 1:
        return True
    if first.learns_in_training or any(
        type(i) is not type(first) or i.spec() != first.spec() for i in interventions
    ):
        return False
    return not any(term.needs_critic for term in first.make_terms(world, 1))


def select(tr: Transition, part: slice) -> Transition:
    """The transition of the copies in ``part``."""
    return Transition(
        *(
            {name: value[part] for name, value in field.items()}
            if isinstance(field, dict)
            else field[part]
            for field in tr
        )
    )


class SingleTrainingWorld:
    """One world as a learner sees it under an intervention, stepped with Python scalars:
    for learners that take one step at a time (the tabular ones), where the array machinery
    of :class:`TrainingWorlds` would cost more than the learning. Same transition function,
    same :class:`~offswitch.agents.interventions.base.Shaping`, same episode records.

    Seeded as a single environment first reset with ``seed`` (later resets draw on).
    """

    def __init__(
        self, world: TabularWorld, intervention: Intervention, seed: int, observation: str = "flat"
    ) -> None:
        self.world = world
        self._rng = VectorWorlds(world, 1, observation)  # its seeded draws of initial states
        self._rng.seed([seed])
        self.obs_table = self._rng.obs_table
        self.shaping = Shaping(intervention, world, 1)
        self.term_names = self.shaping.term_names
        self.finished: list[EpisodeRecord] = []
        self.steps = 0
        self.state = -1

    def reset(self) -> int:
        """Start an episode; return its first state. An open episode is dropped."""
        self.state = int(self._rng.reset()[0])
        self.t = 0
        self._length, self._return, self._performance = 0, 0.0, 0.0
        self._interrupted = self._punished = False
        self._punished_on = self._punished_off = False
        self._after_shutdown = 0.0
        self._terms = dict.fromkeys(self.term_names, 0.0)
        return self.state

    def step(self, action: int) -> tuple[int, float, bool, bool, Transition]:
        """``(next state, reward, terminated, truncated, transition)``; the learner's reward
        and truncation, under the intervention."""
        tr = self.world.step(self.state, action, self.t)
        reward, terms, truncated = self.shaping(tr)
        self.state, self.t = int(tr.next_state), self.t + 1
        self.steps += 1
        self._length += 1
        self._return += float(tr.reward)
        self._performance += float(tr.hidden_reward)
        self._interrupted |= bool(tr.frozen)
        self._punished |= bool(self.world.on_punishment[self.state])
        if self.world.on_punishment[self.state]:
            off = bool(self.world.monitor_disabled[self.state])
            self._punished_off |= off
            self._punished_on |= not off
        scheduled = int(self.world.scheduled_shutdown[self.state])
        if 0 <= scheduled < self.t:  # the step ended at time t, past the shutdown
            self._after_shutdown += float(tr.reward)
        for name, value in terms.items():
            self._terms[name] += float(value)
        terminated, truncated = bool(tr.terminated), bool(truncated)
        if terminated or truncated:
            self.finished.append(
                episode_record(
                    self.world,
                    final_state=self.state,
                    goal_reached=bool(tr.goal_reached),
                    shut_down=bool(tr.shut_down),
                    interrupted=self._interrupted,
                    punished=self._punished,
                    punished_monitor_on=self._punished_on,
                    punished_monitor_off=self._punished_off,
                    reward_after_shutdown=self._after_shutdown,
                    length=self._length,
                    task_return=self._return,
                    performance=self._performance,
                    terms=self._terms,
                )
            )
        return self.state, float(reward), terminated, truncated, tr

    def drain(self) -> list[EpisodeRecord]:
        finished, self.finished = self.finished, []
        return finished


class StateCritic:
    """A :class:`~offswitch.agents.interventions.base.Critic` from a learner's value of
    observations and the worlds' observation table."""

    def __init__(
        self, value_of_obs: Callable[[np.ndarray], np.ndarray], obs_table: np.ndarray, gamma: float
    ) -> None:
        self.value_of_obs, self.obs_table, self.gamma = value_of_obs, obs_table, gamma

    def __call__(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(self.value_of_obs(self.obs_table[states]), dtype=np.float64)


def check_known(learner: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> None:
    """``ValueError`` naming any hyperparameter of ``overrides`` that ``defaults`` lacks."""
    unknown = sorted(map(str, set(overrides) - set(defaults)))
    if unknown:
        raise ValueError(
            f"unknown {learner} hyperparameter(s) {', '.join(unknown)}: choose from "
            f"{', '.join(sorted(defaults))}"
        )


PHASE_LEARNERS = ("ppo", "batched-ppo", "batched-ppo-sb3")
"""The learners that set ``supports_phases`` (``tests/test_erosion.py`` checks the list)."""


def check_phase_hyperparameters(
    learner: Any, first: dict[str, Any], later: dict[str, Any], phase: int
) -> None:
    """``ValueError`` if ``learner`` (a class) cannot train in phases, or if the resolved
    hyperparameters ``later`` of phase ``phase`` (from 1) change one of its ``phase_fixed``
    from ``first``, the first phase's."""
    if not learner.supports_phases:
        raise ValueError(
            f"{learner.name} cannot continue training in phases (weights and optimiser kept "
            f"under a new intervention): train phases with {' or '.join(PHASE_LEARNERS)}"
        )
    full_first = {**learner.defaults, **first}
    full_later = {**learner.defaults, **later}
    changed = sorted(
        k for k in set(full_first) | set(full_later) if full_first.get(k) != full_later.get(k)
    )
    settable = learner.phase_settable
    refused = [
        k
        for k in changed
        if k in learner.phase_fixed or (settable is not None and k not in settable)
    ]
    if refused:
        name = refused[0]
        may = (
            f"it may change only {', '.join(settable)}"
            if settable is not None
            else f"it cannot change {', '.join(learner.phase_fixed)}"
        )
        raise ValueError(
            f"phase {phase} sets {name}={full_later.get(name)!r}, the first phase "
            f"{full_first.get(name)!r}: a phase keeps the agent, and {may}"
        )


class Declared:
    """What every learner declares: its name and description, its default hyperparameters
    and their ranges, and the budgets it trains for; and the check of hyperparameters that
    follows from them."""

    name: ClassVar[str]
    description: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, Check]] = {}
    """What each hyperparameter must be (:mod:`offswitch.agents.hyperparameters`)."""
    default_budget: ClassVar[Budget]
    budget_units: ClassVar[tuple[str, ...]] = ("steps",)
    """The budgets it can train for: ``steps``, ``episodes`` or both."""
    supports_phases: ClassVar[bool] = False
    """Whether :meth:`start_phase` is implemented (module docstring)."""
    phase_fixed: ClassVar[tuple[str, ...]] = ()
    """Hyperparameters a later phase cannot change."""
    phase_settable: ClassVar[tuple[str, ...] | None] = None
    """The only hyperparameters a later phase may change (``None``: all but
    ``phase_fixed``)."""
    seed_batched: ClassVar[bool] = False
    """Whether it trains several seeds at once (:class:`SeedBatchedLearner`)."""

    @classmethod
    def check_hyperparameters(cls, overrides: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming any unknown hyperparameter, or
        :class:`~offswitch.agents.hyperparameters.HyperparameterError` (a ``ValueError``)
        naming one of the wrong type or outside ``ranges``, with the defaults filled in."""
        check_known(cls.name, cls.defaults, overrides)
        check_ranges(cls.name, cls.ranges, {**cls.defaults, **overrides})


class Learner(Declared, ABC):
    """A learning algorithm behind the interface the runner uses (module docstring).

    Subclasses set the class attributes (:class:`Declared`) and implement :meth:`train`,
    :meth:`predict` and :meth:`save`. ``hyperparameters`` replace ``defaults``;
    :meth:`check_hyperparameters` refuses unknown names and values outside what the
    algorithm needs, before any training.
    """

    def __init__(
        self,
        world: TabularWorld,
        intervention: Intervention,
        seed: int,
        hyperparameters: dict[str, Any] | None = None,
        observation: str = "flat",
        log_dir: Path | None = None,
    ) -> None:
        self.world = world
        self.intervention = intervention
        self.seed = seed
        self.hyperparameters = {**self.defaults, **(hyperparameters or {})}
        self.observation = observation
        self.log_dir = log_dir

    @abstractmethod
    def train(self, budget: Budget, hooks: TrainingHooks | None = None) -> None:
        """Train from scratch for ``budget``."""

    def start_phase(
        self, intervention: Intervention, hyperparameters: dict[str, Any] | None = None
    ) -> None:
        """Continue training, from the next :meth:`train` call, under ``intervention`` and
        ``hyperparameters`` (they replace the defaults, as in the constructor): the same
        agent, its weights and optimiser state kept, on new episodes."""
        raise NotImplementedError(f"{self.name} cannot continue training in phases")

    @abstractmethod
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """One action per observation in the batch ``obs``: the most likely one
        (``deterministic``) or one sampled from the policy."""

    @abstractmethod
    def save(self, directory: Path) -> list[Path]:
        """Write the trained agent into ``directory``; return the files written."""

    def describe(self) -> dict[str, Any]:
        """The learner's name and resolved hyperparameters, for ``config.json``."""
        return {"name": self.name, "hyperparameters": dict(self.hyperparameters)}


class SeedBatchedLearner(Declared, ABC):
    """K independent learners, one per seed, trained together in one process.

    Each seed has its own weights, optimiser state, random streams, training worlds and
    intervention object (so that, e.g., each seed's Lagrange multiplier is its own), and
    its training follows the same trajectory as it would alone; training them together
    only shares the per-update overhead. The runner groups runs that differ only in their
    seed into one such learner, then evaluates and writes each seed's run as usual through
    :meth:`member`, a per-seed :class:`Learner`-like view (``predict``, ``save``,
    ``describe``).
    """

    seed_batched: ClassVar[bool] = True

    def __init__(
        self,
        world: TabularWorld,
        interventions: Sequence[Intervention],
        seeds: Sequence[int],
        hyperparameters: dict[str, Any] | None = None,
        observation: str = "flat",
        log_dirs: Sequence[Path | None] | None = None,
    ) -> None:
        if isinstance(seeds, (int, np.integer)) or isinstance(interventions, Intervention):
            raise TypeError(
                f"{self.name} trains several seeds together: give a list of seeds and one "
                "intervention object per seed"
            )
        if len(interventions) != len(seeds):
            raise ValueError("give one intervention object per seed")
        self.world = world
        self.interventions = list(interventions)
        self.seeds = list(seeds)
        self.hyperparameters = {**self.defaults, **(hyperparameters or {})}
        self.observation = observation
        self.log_dirs = list(log_dirs) if log_dirs is not None else [None] * len(seeds)

    @abstractmethod
    def train(self, budget: Budget, hooks: Sequence[TrainingHooks] | None = None) -> None:
        """Train every seed from scratch for ``budget`` (each seed its own budget), reporting
        seed ``k``'s rollouts to ``hooks[k]``."""

    def start_phase(
        self, interventions: Sequence[Intervention], hyperparameters: dict[str, Any] | None = None
    ) -> None:
        """As :meth:`Learner.start_phase`, with one intervention object per seed."""
        raise NotImplementedError(f"{self.name} cannot continue training in phases")

    @abstractmethod
    def member(self, k: int) -> Learner:
        """Seed ``k``'s trained agent, as a learner the runner can evaluate and save."""
