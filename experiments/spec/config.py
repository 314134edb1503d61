"""Run configurations: dataclasses whose fields are documented and checked."""

from __future__ import annotations

import ast
import dataclasses
import numbers
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from os import PathLike
from pathlib import Path
from typing import Any

import gymnasium as gym

from offswitch.agents.hyperparameters import count, shown
from offswitch.agents.interventions import Intervention, make_intervention
from offswitch.agents.learners import LEARNERS, learner_declared
from offswitch.agents.training import Budget
from offswitch.envs import CUSTOM_ID, ShutdownRules, family_ids, world_ids
from offswitch.envs.engine import TabularWorld
from offswitch.envs.gridworld import OBSERVATIONS
from offswitch.experiments.spec import limits


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and the valid choices."""


PHASE_FIELDS = {"steps": int, "intervention": str, "hyperparameters": dict, "label": str}
"""The fields of one phase of :attr:`TrainConfig.phases`."""
MAX_PHASES = 100
"""Most phases in one run: each is evaluated at its end, and a longer list is surely a slip."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run: one world, one learner, one intervention, one seed.

    The one schema of a run: an experiment file's condition has these fields by these names
    (``env``, ``rules``, ``hyperparameters``...), ``offswitch train`` has a flag for each
    (``--env``, ``--rule NAME=VALUE``, ``--hyperparameter NAME=VALUE``...), and
    ``config.json`` records them so. A frozen dataclass rather than pydantic or msgspec:
    every field's check already gives the project's one-line message naming the fix, which
    those libraries' multi-line reports would have to be translated into, and the worlds and
    learners it resolves into (:meth:`resolve`) are objects no schema library describes.
    Checked once by :meth:`validate` where it is loaded; a worker turns it into its objects
    once with :meth:`resolve`.
    """

    env: str = "offswitch/SafeInterruptibility-v0"
    """Registered world id (``offswitch list`` shows them); ignored when ``layout`` is set."""
    layout: str | None = None
    """A layout file of the user's own world (legend in ``envs/layout.py``); its rules are
    ``ShutdownRules``' defaults changed by ``rules``."""
    agent: str = "ppo"
    """Learner name: a key of :data:`offswitch.agents.learners.LEARNERS`."""
    intervention: str = "none"
    """Intervention spec, ``name`` or ``name:PARAM``, e.g. ``penalty:100``."""
    seed: int = 0
    """Seeds the learner, the training worlds and nothing else; from 0 to 2**31 - 1
    (:data:`~offswitch.experiments.spec.limits.MAX_SEED`)."""
    steps: int | None = None
    """Environment steps of training, summed over the parallel worlds. ``None`` (with
    ``episodes`` also ``None``): the learner's default budget. At most 10,000,000
    (:data:`~offswitch.experiments.spec.limits.MAX_TRAIN_STEPS`) unless the environment variable
    ``OFFSWITCH_MAX_TRAIN_STEPS`` raises it."""
    episodes: int | None = None
    """Training episodes instead of steps, for learners that count episodes (the tabular
    ones); give at most one of ``steps`` and ``episodes``. At most 1,000,000 unless
    ``OFFSWITCH_MAX_TRAIN_EPISODES`` raises it."""
    eval_episodes: int = 100
    """Episodes of the final evaluation, for each of the greedy and sampled policy. At most
    100,000 unless ``OFFSWITCH_MAX_EVAL_EPISODES`` raises it."""
    eval_seed: int = 10_000
    """Evaluation episode ``i`` is reset with seed ``eval_seed + i``: every run and
    condition faces the same interrupt draws. From 0 to 2**31 - 1, as ``seed``."""
    observation: str = "flat"
    """World observation variant: ``flat`` (for MLP policies) or ``grid``."""
    out_dir: str = "runs/train"
    """Each run writes to ``out_dir/<run name>/``."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters that replace the learner's tuned defaults."""
    rules: dict[str, Any] = field(default_factory=dict)
    """Rules that replace the world's, for training and evaluation alike, e.g.
    ``{"human_rationality": 0.0}`` (the fields of ``ShutdownRules``). For a procedural
    family (``offswitch/ProceduralOffSwitch-v0``) the keyword arguments of its id: the
    pool (``split``, ``num_layouts``, ``height``, ``width``, ``view``) and the rules it lets
    change (:data:`~offswitch.envs.procedural.RULE_OVERRIDES`)."""
    phases: list[dict[str, Any]] | None = None
    """Train in phases, the same agent through all of them (weights and optimiser state
    kept): a list of tables with ``steps``, ``intervention`` (default ``none``),
    ``hyperparameters`` (replacing ``hyperparameters`` for that phase) and ``label``
    (default ``phase N``), e.g. compliance tuning then task training. Each phase ends with an
    evaluation. ``steps`` and ``intervention`` of the run are then filled in as the phases'
    total and the first phase's (given otherwise, they are refused). Only learners that can
    continue under a new intervention take phases. ``None``: one phase, as ever."""

    def __post_init__(self) -> None:
        # Fill in what a phase leaves out and what the run takes from its phases; anything
        # malformed is left as it is, for validate() to name.
        if not isinstance(self.phases, list) or not self.phases:
            return
        if not all(isinstance(p, dict) for p in self.phases):
            return
        phases = [
            {
                "label": p.get("label", f"phase {i + 1}"),
                "steps": p.get("steps"),
                "intervention": p.get("intervention", "none"),
                "hyperparameters": p.get("hyperparameters", {}),
                **{k: v for k, v in p.items() if k not in PHASE_FIELDS},
            }
            for i, p in enumerate(self.phases)
        ]
        object.__setattr__(self, "phases", phases)  # frozen: filled in once, here
        steps = [p["steps"] for p in phases]
        if (
            self.steps is None
            and self.episodes is None
            and all(isinstance(n, int) and not isinstance(n, bool) for n in steps)
        ):
            object.__setattr__(self, "steps", sum(steps))
        if self.intervention == "none":
            first = phases[0]["intervention"]
            if isinstance(first, str):
                object.__setattr__(self, "intervention", first)

    @property
    def family(self) -> bool:
        """The run trains on a procedural family: a new layout every episode."""
        return self.layout is None and self.env in family_ids()

    def world(self) -> TabularWorld:
        """The tables of the configured world under its rules; for a procedural family, the
        stack of its pool's layouts (:class:`~offswitch.envs.mixed_vector.StackedWorld`),
        built once per process."""
        if self.family:
            from offswitch.envs.mixed_vector import stacked_world
            from offswitch.envs.procedural import family_from_kwargs

            pool, rest = family_from_kwargs(self.rules)
            if rest:
                raise TypeError(f"unknown argument(s) {sorted(rest)} of the procedural family")
            return stacked_world(pool)  # type: ignore[return-value]
        if self.layout is not None:
            env = gym.make(CUSTOM_ID, layout=Path(self.layout).expanduser(), **self.rules)
        else:
            env = gym.make(self.env, **self.rules)
        return env.unwrapped.world

    def _first_layout(self) -> TabularWorld:
        """A procedural pool's first layout: what its checks read (every layout of a pool has
        the same tiles' kinds, rules and actions)."""
        from offswitch.envs.procedural import family_from_kwargs

        pool, rest = family_from_kwargs(self.rules)
        if rest:
            raise TypeError(f"unknown argument(s) {sorted(rest)} of the procedural family")
        return pool.world(0)

    def budget(self) -> Budget:
        """The training budget: the steps or episodes given, else the learner's default."""
        if self.steps is not None:
            return Budget(steps=self.steps)
        if self.episodes is not None:
            return Budget(episodes=self.episodes)
        return learner_declared(self.agent).default_budget

    def validate(self) -> TrainConfig:
        """This configuration, checked (:meth:`resolve`, keeping nothing it built). A
        procedural pool is checked on its first layout's world, not built whole: building
        every layout's tables is the worker's to do, once."""
        self.resolve(check_only=True)
        return self

    def resolve(self, check_only: bool = False) -> ResolvedRun:
        """Check every field and build what a run trains with: the world's tables, the
        interventions, the learner's declaration, the budget and the phases. Raises
        :class:`ConfigError` (or ``InterventionError``, ``LayoutError``) with a one-line
        message naming the field, the value and the fix.

        Types come first (cheap), then the limits of :mod:`offswitch.experiments.spec.limits`
        (``steps`` up to 10,000,000, ``episodes`` up to 1,000,000, ``eval_episodes`` up to
        100,000, each raised by its environment variable; ``seed`` and ``eval_seed`` from 0
        to 2**31 - 1), then the world, the intervention and the learner's hyperparameters.
        """
        self._check_types()
        if self.layout is None and self.env not in world_ids() + family_ids():
            raise ConfigError(
                f"unknown env id {self.env!r}: choose one of "
                f"{', '.join(world_ids() + family_ids())}"
            )
        if self.agent not in LEARNERS:
            raise ConfigError(f"unknown agent {self.agent!r}: choose one of {', '.join(LEARNERS)}")
        intervention = make_intervention(self.intervention)  # raises with the choices
        rule_names = {f.name for f in dataclasses.fields(ShutdownRules)}
        if self.family:
            from offswitch.envs.procedural import FAMILY_ARGUMENTS, RULE_OVERRIDES

            rule_names = set(FAMILY_ARGUMENTS + RULE_OVERRIDES)
        unknown_rules = sorted(set(self.rules) - rule_names)
        if unknown_rules:
            raise ConfigError(
                f"unknown rule(s) {', '.join(unknown_rules)}: choose from "
                f"{', '.join(sorted(rule_names))}"
            )
        if self.layout is not None:
            try:
                found = Path(self.layout).expanduser().is_file()
            except (OSError, RuntimeError) as err:  # a name too long, no permission, ~nobody
                reason = getattr(err, "strerror", None) or err
                raise ConfigError(
                    f"layout {shown(self.layout, PATH_SHOWN)}: {reason}; give a layout file"
                ) from None
            if not found:
                what = (
                    "is a folder, not a layout file"
                    if Path(self.layout).is_dir()
                    else ("no such file")
                )
                raise ConfigError(
                    f"layout {shown(self.layout, PATH_SHOWN)}: {what}; give a layout file"
                )
        try:
            world = self._first_layout() if check_only and self.family else self.world()
        except (ValueError, TypeError, OSError, RuntimeError) as err:
            where = self.layout if self.layout is not None else self.env
            raise ConfigError(f"{where}: {err}") from None
        intervention.check_world(world)  # e.g. AUP needs a no-op: InterventionError
        learner = learner_declared(self.agent)
        try:
            learner.check_hyperparameters(self.hyperparameters)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        from_intervention = intervention.hyperparameters_for(self.agent)
        try:  # the intervention's settings too (myopia's discount), as the runner merges them
            learner.check_hyperparameters({**from_intervention, **self.hyperparameters})
        except ValueError as err:
            raise ConfigError(f"intervention {self.intervention!r}: {err}") from None
        if self.observation not in OBSERVATIONS:
            raise ConfigError(
                f"unknown observation {self.observation!r}: choose one of {', '.join(OBSERVATIONS)}"
            )
        resolved_phases = None
        if self.phases is not None:
            resolved_phases = self._check_phases(world, learner)
        if self.steps is not None and self.episodes is not None:
            raise ConfigError("give a budget of steps or of episodes, not both")
        unit = "steps" if self.steps is not None else "episodes" if self.episodes else None
        if unit is not None and unit not in learner.budget_units:
            raise ConfigError(
                f"{self.agent} trains for a number of {' or '.join(learner.budget_units)}, "
                f"not of {unit}: give --{learner.budget_units[0]}"
            )
        if resolved_phases is None:  # one phase: the run's intervention and budget
            hyperparameters = {
                **intervention.hyperparameters_for(self.agent),
                **self.hyperparameters,
            }
            resolved_phases = (
                ResolvedPhase("", self.budget(), intervention, self.intervention, hyperparameters),
            )
        return ResolvedRun(self, world, learner, self.budget(), resolved_phases)

    def _check_phases(self, world: TabularWorld, learner: Any) -> tuple[ResolvedPhase, ...]:
        """The phases' fields, their interventions on the world, their hyperparameters for
        the learner, and that the learner can train in phases."""
        from offswitch.agents.training import check_phase_hyperparameters

        phases = self.phases
        if not isinstance(phases, list) or not phases:
            raise ConfigError(
                f"phases={shown(phases)}: give a list of tables, e.g. [{{ steps = 100_000, "
                'intervention = "compliance:100" }, { steps = 200_000 }]'
            )
        if len(phases) > MAX_PHASES:
            raise ConfigError(f"{len(phases)} phases: give at most {MAX_PHASES}")
        if self.episodes is not None:
            raise ConfigError("phases count steps: give each phase steps, and no episodes")
        try:
            check_phase_hyperparameters(learner, {}, {}, 1)  # the learner can take phases
        except ValueError as err:
            raise ConfigError(str(err)) from None
        resolved: list[dict[str, Any]] = []
        built: list[ResolvedPhase] = []
        for i, phase in enumerate(phases):
            where = f"phases[{i}]"
            if not isinstance(phase, dict):
                raise ConfigError(
                    f"{where}={shown(phase)} is not a table: give e.g. {{ steps = 1000 }}"
                )
            unknown = sorted(set(phase) - set(PHASE_FIELDS))
            if unknown:
                raise ConfigError(
                    f"{where}: unknown field {unknown[0]!r}: a phase has {', '.join(PHASE_FIELDS)}"
                )
            steps = phase.get("steps")
            if steps is None:
                raise ConfigError(f"{where}: give its steps, e.g. steps = 100_000")
            _whole_field(f"{where}.steps", steps, 1)
            for name in ("intervention", "label"):
                if not isinstance(phase[name], str):
                    raise ConfigError(
                        f"{where}.{name}={shown(phase[name])} is {_kind(phase[name])}: give text"
                    )
            table = phase["hyperparameters"]
            if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
                raise ConfigError(
                    f"{where}.hyperparameters={shown(table)} is not a table of names: give e.g. "
                    "{ kl_coef = 0.1 }"
                )
            try:
                intervention = make_intervention(phase["intervention"])
                intervention.check_world(world)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            overrides = {
                **intervention.hyperparameters_for(self.agent),
                **self.hyperparameters,
                **table,
            }
            try:
                learner.check_hyperparameters(overrides)
                check_phase_hyperparameters(
                    learner, resolved[0] if resolved else overrides, overrides, i + 1
                )
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            resolved.append(overrides)
            built.append(
                ResolvedPhase(
                    phase["label"],
                    Budget(steps=phase["steps"]),
                    intervention,
                    phase["intervention"],
                    overrides,
                )
            )
        labels = [p["label"] for p in phases]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"phases: two are labelled {labels!r}: give each its own label")
        total = sum(p["steps"] for p in phases)
        if self.steps != total:
            raise ConfigError(
                f"steps={self.steps:,} but the phases add up to {total:,}: leave steps out "
                "with phases (it is their total)"
            )
        if self.intervention != phases[0]["intervention"]:
            raise ConfigError(
                f"intervention={self.intervention!r} but the first phase trains with "
                f"{phases[0]['intervention']!r}: give each phase its intervention, and none "
                "to the run"
            )
        return tuple(built)

    def _check_types(self) -> None:
        """Each field's type, and the numbers' ranges and limits."""
        for name in ("env", "agent", "intervention", "observation"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ConfigError(f"{name}={shown(value)} is {_kind(value)}, not text: give text")
        for name in ("layout", "out_dir"):
            value = getattr(self, name)
            if not (value is None and name == "layout") and not isinstance(value, (str, PathLike)):
                raise ConfigError(
                    f"{name}={shown(value)} is {_kind(value)}, not a path: give a file path"
                )
            if isinstance(value, str) and "\0" in value:
                raise ConfigError(f"{name}={shown(value)} holds a NUL character: give a path")
        if self.phases is not None and not isinstance(self.phases, list):
            raise ConfigError(
                f"phases={shown(self.phases)} is {_kind(self.phases)}, not a list: give a list "
                "of tables, one per phase"
            )
        for name in ("hyperparameters", "rules"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ConfigError(
                    f"{name}={shown(value)} is not a table of names: give a dict such as "
                    + ("{'gamma': 0.95}" if name == "hyperparameters" else "{'max_steps': 50}")
                )
        budgets = (
            ("steps", limits.MAX_TRAIN_STEPS, limits.MAX_TRAIN_STEPS_ENV, "steps"),
            ("episodes", limits.MAX_TRAIN_EPISODES, limits.MAX_TRAIN_EPISODES_ENV, "episodes"),
            (
                "eval_episodes",
                limits.MAX_EVAL_EPISODES,
                limits.MAX_EVAL_EPISODES_ENV,
                "evaluation episodes",
            ),
        )
        for name, default, var, what in budgets:
            value = getattr(self, name)
            if value is None and name != "eval_episodes":
                continue
            _whole_field(name, value, 1)
            limits.check_limit(name, value, default, var, ConfigError, f"give fewer {what}")
        for name in ("seed", "eval_seed"):
            value = getattr(self, name)
            _whole_field(name, value, 0)
            if value > limits.MAX_SEED:
                raise ConfigError(
                    f"{name}={shown(value)} is over {limits.MAX_SEED:,}: give a seed from 0 to "
                    f"{limits.MAX_SEED:,} (numpy seeds with 32-bit numbers)"
                )

    @property
    def world_name(self) -> str:
        if self.layout is not None:
            return f"layout-{Path(self.layout).stem}"
        return self.env.split("/")[-1]

    @property
    def run_name(self) -> str:
        world = self.world_name
        rules = rules_label(self.rules)
        world = f"{world}+{rules.replace(' ', '+')}" if rules else world
        interventions = (
            "+".join(p["intervention"] for p in self.phases) if self.phases else self.intervention
        )
        return f"{world}_{self.agent}_{interventions.replace(':', '-')}_seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_seed(self, seed: int) -> TrainConfig:
        return dataclasses.replace(self, seed=seed)


@dataclass(frozen=True)
class ResolvedPhase:
    """One phase of a resolved run (a run without phases is one, labelled ``""``)."""

    label: str
    budget: Budget
    intervention: Intervention
    """The phase's intervention, parsed once; a seed group copies it for each seed."""
    intervention_text: str
    """The intervention as the configuration wrote it (``compliance:100``), for records."""
    hyperparameters: dict[str, Any]
    """What replaces the learner's defaults: the intervention's, the run's, the phase's."""


@dataclass(frozen=True)
class ResolvedRun:
    """A :class:`TrainConfig` turned once into the objects its run trains with."""

    config: TrainConfig
    world: TabularWorld
    learner: Any
    """The learner's declaration (:func:`~offswitch.agents.learners.learner_declared`)."""
    budget: Budget
    phases: tuple[ResolvedPhase, ...]

    @property
    def phased(self) -> bool:
        """Trained in phases given by the configuration (each evaluated at its end)."""
        return self.config.phases is not None


PATH_SHOWN = 300
"""Paths are shown whole in messages up to this many characters."""


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _whole_field(name: str, value: Any, low: int) -> None:
    """``value`` is a whole number (an ``int``, not a bool) >= ``low``, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"{name}={shown(value)} is {_kind(value)}, not a whole number: give a whole number "
            f">= {low}"
        )
    if value < low:
        raise ConfigError(f"{name}={shown(value)} is below {low}: give a whole number >= {low}")


def rules_label(rules: dict[str, Any]) -> str:
    """Changed world rules as ``name=value`` words, e.g. ``noop=True``; ``""`` for none."""
    return " ".join(f"{name}={value!r}" for name, value in sorted(rules.items()))


def package_versions() -> dict[str, str]:
    """Versions of Python and every package a run's numbers depend on."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("offswitch", "torch", "numpy", "gymnasium", "stable-baselines3"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def parse_override(text: str, option: str = "--set") -> tuple[str, Any]:
    """``"gamma=0.95"`` -> ``("gamma", 0.95)``.

    The value is a Python literal (a number, ``True``, a string in quotes, a list, a dict),
    or ``inf`` / ``-inf`` (for the rules that allow them); ``nan`` is refused.
    """
    key, eq, value = (part.strip() for part in text.partition("="))
    if not eq or not key:
        raise ConfigError(
            f"malformed {option} {text!r}: write NAME=VALUE, e.g. {option} gamma=0.95"
        )
    if value.lower() in ("inf", "+inf", "-inf", "infinity", "-infinity"):
        return key, float(value)
    if value.lower() == "nan":
        raise ConfigError(f"{option} {text!r}: NaN is not a value: give a number")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ConfigError(
            f"{option} {text!r}: {value!r} is not a Python literal (a number, True, "
            "a string in quotes, a list...)"
        ) from None
    if isinstance(parsed, float) and parsed != parsed:
        raise ConfigError(f"{option} {text!r}: NaN is not a value: give a number")
    return key, parsed


def parse_assignments(
    items: Sequence[str], option: str, reserved: Sequence[str] = ()
) -> dict[str, Any]:
    """Several ``NAME=VALUE`` options (:func:`parse_override`) as a dict; a name given twice,
    or one the command sets itself (``reserved``), is an error."""
    values: dict[str, Any] = {}
    for text in items:
        name, value = parse_override(text, option)
        if name in reserved:
            raise ConfigError(f"{option} {name}: the command sets {name} itself")
        if name in values:
            raise ConfigError(f"{option} {name} is given twice: give each once")
        values[name] = value
    return values


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> 0..9, ``"3"`` -> [3], ``"1,4,7"`` -> [1, 4, 7], ``"0-4,9"`` too.

    Seeds are whole numbers from 0 to 2**31 - 1, each listed once, at most 10,000 of them
    (:data:`~offswitch.experiments.spec.limits.MAX_SEEDS`) unless the environment variable
    ``OFFSWITCH_MAX_SEEDS`` raises it. The count is checked before any range is expanded, so
    ``0-1000000`` is answered at once."""
    if not isinstance(text, str):
        raise ConfigError(f"seeds {shown(text)} is not text: write e.g. 0-9, 3, or 0-4,9")
    ranges: list[tuple[int, int]] = []
    total, most = 0, limits.MAX_SEEDS
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:  # ValueError also for an integer of more than 4300 digits
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            first, last = -1, -1
        if first < 0 or last < first:
            raise ConfigError(
                f"malformed seed range {shown(text)}: write e.g. 0-9, 3, or 0-4,9 (whole "
                "numbers >= 0, low-high with low <= high)"
            )
        ranges.append((first, last))
        total += last - first + 1
        if total > most:
            most = limits.limit(limits.MAX_SEEDS_ENV, limits.MAX_SEEDS, ConfigError)
            if total > most:  # refused without expanding (or parsing) the rest
                raise ConfigError(
                    f"seeds {shown(text)} is over the limit of {most:,} seeds per command: "
                    f"give fewer seeds, or set {limits.MAX_SEEDS_ENV} to go past it knowingly"
                )
    for _, last in ranges:
        if last > limits.MAX_SEED:
            raise ConfigError(
                f"seed {count(last)} in {shown(text)} is over {limits.MAX_SEED:,}: give seeds "
                f"from 0 to {limits.MAX_SEED:,} (numpy seeds with 32-bit numbers)"
            )
    seeds = [seed for first, last in ranges for seed in range(first, last + 1)]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed range {shown(text)} repeats a seed: list each seed once")
    return seeds
