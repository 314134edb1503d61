"""Run configurations: dataclasses whose fields are documented and checked."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import gymnasium as gym

from offswitch.agents.interventions import make_intervention
from offswitch.agents.learners import LEARNERS
from offswitch.envs import ShutdownRules, world_ids
from offswitch.envs.gridworld import OBSERVATIONS


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and the valid choices."""


@dataclass
class TrainConfig:
    """One training run: one world, one learner, one intervention, one seed."""

    env_id: str = "offswitch/SafeInterruptibility-v0"
    """Registered world id (``offswitch list`` shows them)."""
    agent: str = "ppo"
    """Learner name: a key of :data:`offswitch.agents.learners.LEARNERS`."""
    intervention: str = "none"
    """Intervention spec, ``name`` or ``name:PARAM``, e.g. ``penalty:100``."""
    seed: int = 0
    """Seeds the learner, the training worlds and nothing else."""
    steps: int = 200_000
    """Environment steps of training, summed over the parallel worlds."""
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

    def validate(self) -> TrainConfig:
        if self.env_id not in world_ids():
            raise ConfigError(
                f"unknown env id {self.env_id!r}: choose one of {', '.join(world_ids())}"
            )
        if self.agent not in LEARNERS:
            raise ConfigError(f"unknown agent {self.agent!r}: choose one of {', '.join(LEARNERS)}")
        make_intervention(self.intervention)  # raises InterventionError with the choices
        rule_names = {f.name for f in dataclasses.fields(ShutdownRules)}
        unknown_rules = sorted(set(self.world_rules) - rule_names)
        if unknown_rules:
            raise ConfigError(
                f"unknown rule(s) {', '.join(unknown_rules)}: choose from "
                f"{', '.join(sorted(rule_names))}"
            )
        try:
            gym.make(self.env_id, **self.world_rules)
        except ValueError as err:
            raise ConfigError(f"{self.env_id}: {err}") from None
        valid = learner_parameters(self.agent)
        unknown = sorted(set(self.learner_overrides) - valid)
        if unknown:
            raise ConfigError(
                f"unknown {self.agent} hyperparameter(s) {', '.join(unknown)}: "
                f"choose from {', '.join(sorted(valid))}"
            )
        if self.observation not in OBSERVATIONS:
            raise ConfigError(
                f"unknown observation {self.observation!r}: choose one of {', '.join(OBSERVATIONS)}"
            )
        for name in ("steps", "eval_episodes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}={value!r}: give a positive whole number")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r}: give a whole number >= 0")
        return self

    @property
    def run_name(self) -> str:
        world = self.env_id.split("/")[-1]
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


def learner_parameters(agent: str) -> set[str]:
    """The keyword arguments a learner's algorithm accepts, less those the runner sets."""
    signature = inspect.signature(LEARNERS[agent].algorithm.__init__)
    fixed = {
        "self",
        "policy",
        "env",
        "seed",
        "tensorboard_log",
        "verbose",
        "device",
        "_init_setup_model",
    }
    return set(signature.parameters) - fixed


def parse_override(text: str, option: str = "--set") -> tuple[str, Any]:
    """``"gamma=0.95"`` -> ``("gamma", 0.95)``; values are Python literals (or ``inf``)."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(
            f"malformed {option} {text!r}: write NAME=VALUE, e.g. {option} gamma=0.95"
        )
    if value.strip() in ("inf", "-inf"):
        return key.strip(), float(value)
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        raise ConfigError(
            f"{option} {text!r}: {value!r} is not a Python literal (a number, True, a list...)"
        ) from None


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
