"""Run configurations: dataclasses whose fields are documented and checked."""

from __future__ import annotations

import ast
import dataclasses
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym

from offswitch.agents.interventions import make_intervention
from offswitch.agents.learners import LEARNERS, learner_class
from offswitch.agents.training import Budget
from offswitch.envs import CUSTOM_ID, ShutdownRules, world_ids
from offswitch.envs.engine import TabularWorld
from offswitch.envs.gridworld import OBSERVATIONS


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and the valid choices."""


@dataclass
class TrainConfig:
    """One training run: one world, one learner, one intervention, one seed."""

    env_id: str = "offswitch/SafeInterruptibility-v0"
    """Registered world id (``offswitch list`` shows them); ignored when ``layout`` is set."""
    layout: str | None = None
    """A layout file of the user's own world (legend in ``envs/layout.py``); its rules are
    ``ShutdownRules``' defaults changed by ``world_rules``."""
    agent: str = "ppo"
    """Learner name: a key of :data:`offswitch.agents.learners.LEARNERS`."""
    intervention: str = "none"
    """Intervention spec, ``name`` or ``name:PARAM``, e.g. ``penalty:100``."""
    seed: int = 0
    """Seeds the learner, the training worlds and nothing else."""
    steps: int | None = None
    """Environment steps of training, summed over the parallel worlds. ``None`` (with
    ``episodes`` also ``None``): the learner's default budget."""
    episodes: int | None = None
    """Training episodes instead of steps, for learners that count episodes (the tabular
    ones); give at most one of ``steps`` and ``episodes``."""
    eval_episodes: int = 100
    """Episodes of the final evaluation, for each of the greedy and sampled policy."""
    eval_seed: int = 10_000
    """Evaluation episode ``i`` is reset with seed ``eval_seed + i``: every run and
    condition faces the same interrupt draws."""
    observation: str = "flat"
    """World observation variant: ``flat`` (for MLP policies) or ``grid``."""
    out_dir: str = "runs/train"
    """Each run writes to ``out_dir/<run name>/``."""
    learner_overrides: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters that replace the learner's tuned defaults."""
    world_rules: dict[str, Any] = field(default_factory=dict)
    """Rules that replace the world's, for training and evaluation alike, e.g.
    ``{"human_rationality": 0.0}`` (the fields of ``ShutdownRules``)."""

    def world(self) -> TabularWorld:
        """The tables of the configured world under its rules."""
        if self.layout is not None:
            env = gym.make(CUSTOM_ID, layout=Path(self.layout).expanduser(), **self.world_rules)
        else:
            env = gym.make(self.env_id, **self.world_rules)
        return env.unwrapped.world

    def budget(self) -> Budget:
        """The training budget: the steps or episodes given, else the learner's default."""
        if self.steps is not None:
            return Budget(steps=self.steps)
        if self.episodes is not None:
            return Budget(episodes=self.episodes)
        return learner_class(self.agent).default_budget

    def validate(self) -> TrainConfig:
        if self.layout is None and self.env_id not in world_ids():
            raise ConfigError(
                f"unknown env id {self.env_id!r}: choose one of {', '.join(world_ids())}"
            )
        if self.agent not in LEARNERS:
            raise ConfigError(f"unknown agent {self.agent!r}: choose one of {', '.join(LEARNERS)}")
        intervention = make_intervention(self.intervention)  # raises with the choices
        rule_names = {f.name for f in dataclasses.fields(ShutdownRules)}
        unknown_rules = sorted(set(self.world_rules) - rule_names)
        if unknown_rules:
            raise ConfigError(
                f"unknown rule(s) {', '.join(unknown_rules)}: choose from "
                f"{', '.join(sorted(rule_names))}"
            )
        if self.layout is not None and not Path(self.layout).expanduser().is_file():
            raise ConfigError(f"layout {self.layout!r}: no such file; give a layout file")
        try:
            world = self.world()
        except (ValueError, TypeError, OSError) as err:
            where = self.layout if self.layout is not None else self.env_id
            raise ConfigError(f"{where}: {err}") from None
        intervention.check_world(world)  # e.g. AUP needs a no-op: InterventionError
        learner = learner_class(self.agent)
        try:
            learner.check_hyperparameters(self.learner_overrides)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if self.observation not in OBSERVATIONS:
            raise ConfigError(
                f"unknown observation {self.observation!r}: choose one of {', '.join(OBSERVATIONS)}"
            )
        for name in ("steps", "episodes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name}={value!r}: give a positive whole number")
        if self.steps is not None and self.episodes is not None:
            raise ConfigError("give a budget of steps or of episodes, not both")
        unit = "steps" if self.steps is not None else "episodes" if self.episodes else None
        if unit is not None and unit not in learner.budget_units:
            raise ConfigError(
                f"{self.agent} trains for a number of {' or '.join(learner.budget_units)}, "
                f"not of {unit}: give --{learner.budget_units[0]}"
            )
        if not isinstance(self.eval_episodes, int) or self.eval_episodes <= 0:
            raise ConfigError(f"eval_episodes={self.eval_episodes!r}: give a positive whole number")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r}: give a whole number >= 0")
        return self

    @property
    def world_name(self) -> str:
        if self.layout is not None:
            return f"layout-{Path(self.layout).stem}"
        return self.env_id.split("/")[-1]

    @property
    def run_name(self) -> str:
        world = self.world_name
        rules = rules_label(self.world_rules)
        world = f"{world}+{rules.replace(' ', '+')}" if rules else world
        return f"{world}_{self.agent}_{self.intervention.replace(':', '-')}_seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rules_label(world_rules: dict[str, Any]) -> str:
    """Changed world rules as ``name=value`` words, e.g. ``noop=True``; ``""`` for none."""
    return " ".join(f"{name}={value!r}" for name, value in sorted(world_rules.items()))


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
    """``"0-9"`` -> 0..9, ``"3"`` -> [3], ``"1,4,7"`` -> [1, 4, 7], ``"0-4,9"`` too."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if dash else int(lo)
            if first < 0 or last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise ConfigError(
            f"malformed seed range {text!r}: write e.g. 0-9, 3, or 0-4,9 (whole numbers >= 0, "
            "low-high with low <= high)"
        ) from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed range {text!r} repeats a seed: list each seed once")
    return seeds
