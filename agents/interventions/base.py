"""What an intervention is: declared parameters, and terms of a transition.

An intervention changes what the learner sees, never the world: evaluation runs on the bare
world, so every intervention is judged by the same task reward and safety measures. It can

* add **reward terms** (:class:`RewardTerm`): each a function of a transition (state before,
  action, state after, step; :class:`~offswitch.envs.engine.Transition`) and of the world's
  tables, written once with numpy so that it works on one world (scalars) and on arrays of
  worlds alike. The reward the learner gets is the sum of the world's terms and these;
  a term may also *replace* world terms (``replaces``), as DReST replaces the coin reward;
* end the learner's episode early (:meth:`Intervention.truncates`), as safe
  interruptibility does at an interruption;
* set the learner's hyperparameters (:meth:`Intervention.hyperparameters_for`);
* update itself from the episodes of each rollout (:meth:`Intervention.on_rollout_end`), as
  the Lagrangian's multiplier does.

The contract with the learner: a term that needs the learner's own value estimate says so
(``needs_critic``) and gets a :class:`Critic` through :meth:`RewardTerm.bind_critic` before
training; the training loop calls :meth:`Intervention.on_rollout_end` with the episodes that
ended since the last call. Nothing reaches into ``env.unwrapped``: the world's tables come as
an argument (:meth:`Intervention.make_terms`).

Parameters are declared (:class:`Param`): one routine parses ``name:P1,P2`` (or
``name:P1@P2`` for a parameter declared with ``prefix="@"``), checks types and ranges and
recreates the spec, so every intervention gets the same errors and ``--help`` text.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from offswitch.agents.metrics import EpisodeRecord
    from offswitch.envs.engine import TabularWorld, Transition


class InterventionError(ValueError):
    """An unknown intervention, a bad parameter or a world it cannot run on; the message
    names the problem and the fix."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of an intervention."""

    name: str
    """Its name in the usage line, e.g. ``K``; the attribute is its lower-case form."""
    kind: type
    """``float``, ``int`` or ``str``."""
    default: Any
    help: str
    low: float | None = None
    """Smallest allowed value (inclusive unless ``low_open``)."""
    high: float | None = None
    """Largest allowed value (inclusive unless ``high_open``)."""
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    """For ``str`` parameters: the allowed values."""
    prefix: str = ","
    """What separates it from the previous parameter in a spec: ``,`` or ``@``."""
    attr: str | None = None
    """The attribute that holds its value (default: the name in lower case)."""

    @property
    def attribute(self) -> str:
        return self.attr or self.name.lower()

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``a number >= 0``."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        what = "a whole number" if self.kind is int else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return what + (" " + " and ".join(bounds) if bounds else "")

    def describe(self) -> str:
        """One line for help texts: name, meaning, allowed values and default."""
        default = "" if self.default is None else f" (default {_format(self.default)})"
        return f"{self.name}: {self.help}, {self.allowed()}{default}"

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's kind, or :class:`ValueError` saying why."""
        if self.kind is str:
            if not isinstance(value, str) or (
                self.choices is not None and value not in self.choices
            ):
                raise ValueError(f"{self.name}={value!r} is not {self.allowed()}")
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{self.name}={value!r} is not {self.allowed()}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{self.name}={value!r} is not {self.allowed()}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}={_number(value)} is not finite: give {self.allowed()}")
        if self.kind is int:
            if not value.is_integer():
                raise ValueError(f"{self.name}={_number(value)} is not {self.allowed()}")
            value = int(value)
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high:
            raise ValueError(f"{self.name}={_number(value)} is out of range: give {self.allowed()}")
        return value


def _number(value: float) -> str:
    """Short text that reads back as exactly ``value``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


class Critic(Protocol):
    """The learner's own value estimate, as a reward term asks for it."""

    gamma: float
    """The learner's discount."""

    def __call__(self, states: np.ndarray) -> np.ndarray:
        """The learner's value of the observation of each world state in ``states``."""


class RewardTerm(ABC):
    """One named reward term of a transition, bound to a world and ``num_envs`` copies.

    :meth:`__call__` gets a :class:`~offswitch.envs.engine.Transition` whose fields are
    scalars (one world) or arrays with one entry per copy, and returns the term in the same
    shape. It may keep state per copy (``num_envs`` long), as DReST's meta-episode counts.
    """

    name: ClassVar[str]
    replaces: ClassVar[tuple[str, ...]] = ()
    """World reward terms that this term sets to 0 (it pays them its own way)."""
    needs_critic: ClassVar[bool] = False

    def __init__(self, world: TabularWorld, num_envs: int = 1) -> None:
        self.world = world
        self.num_envs = num_envs
        self.critic: Critic | None = None

    def bind_critic(self, critic: Critic) -> None:
        """Give the term the learner's value estimate (for ``needs_critic`` terms)."""
        self.critic = critic

    @abstractmethod
    def __call__(self, tr: Transition) -> Any:
        """The term's value for each stepped world."""


class Intervention:
    """A shutdown mitigation: declared parameters, reward terms and hooks (module docstring).

    Subclasses set ``name``, ``description`` and ``params`` and override the hooks they
    need. Decorate a subclass with :func:`offswitch.agents.interventions.register` to make
    it choosable by name; modules in this package register on import.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    learns_in_training: ClassVar[bool] = False
    """Its reward terms read state that this object learns while its learner trains (the
    Lagrangian's multiplier), so each learner's copies need their own terms."""

    def __init__(self, **values: Any) -> None:
        known = {p.attribute: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InterventionError(
                f"{self.name} has no parameter {', '.join(unknown)}: write {self.usage()}"
            )
        for attribute, param in known.items():
            value = values.get(attribute, param.default)
            if value is None and param.default is None:
                setattr(self, attribute, None)
                continue
            try:
                setattr(self, attribute, param.check(value))
            except ValueError as err:
                raise InterventionError(f"{self.name}: {err}. {self.usage_line()}") from None

    # -- specs -------------------------------------------------------------------------
    @classmethod
    def usage(cls) -> str:
        """``name`` or ``name:P1[,P2]``, e.g. ``penalty:K[@MECHANISM]``."""
        if not cls.params:
            return cls.name
        first, *rest = cls.params
        tail = "".join(f"[{p.prefix}{p.name}" for p in rest) + "]" * len(rest)
        return f"{cls.name}:{first.name}{tail}"

    @classmethod
    def usage_line(cls) -> str:
        """How to write it, with each parameter's range and default."""
        if not cls.params:
            return f"write {cls.name} (it takes no parameter)"
        details = "; ".join(
            f"{p.name} {p.allowed()}"
            + ("" if p.default is None else f" (default {_format(p.default)})")
            for p in cls.params
        )
        return f"Write {cls.usage()}: {details}"

    @classmethod
    def parse(cls, text: str | None) -> Intervention:
        """Build from the parameter text after the colon (``None``: all defaults)."""
        if text is None:
            return cls()
        if not cls.params:
            raise InterventionError(f"{cls.name} takes no parameter: write {cls.name}")
        values = _split(text, cls.params) if text else None
        if values is None:
            raise InterventionError(f"{cls.name}:{text} is malformed. {cls.usage_line()}")
        return cls(**values)

    def spec(self) -> str:
        """The text that recreates this intervention: its parameters up to the last one
        that differs from its default (``penalty`` for the default ``penalty:100``)."""
        values = [getattr(self, p.attribute) for p in self.params]
        last = max((i for i, p in enumerate(self.params) if values[i] != p.default), default=-1)
        if last < 0:
            return self.name
        parts = [
            (p.prefix if i else "") + _format(values[i])
            for i, p in enumerate(self.params[: last + 1])
        ]
        return f"{self.name}:{''.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec(),
            "params": {p.attribute: getattr(self, p.attribute) for p in self.params},
        }

    # -- hooks -------------------------------------------------------------------------
    def check_world(self, world: TabularWorld) -> None:
        """Raise :class:`InterventionError` if this intervention cannot run on ``world``."""
        return None

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        """The reward terms it adds, bound to ``world`` and ``num_envs`` copies of it."""
        return []

    def truncates(self, world: TabularWorld, tr: Transition) -> Any:
        """Where the learner's episode ends early after ``tr`` (as a truncation, so the
        learner bootstraps); ``None``: nowhere."""
        return None

    def hyperparameters_for(self, agent: str) -> dict[str, Any]:
        """Hyperparameters this intervention sets on learner ``agent`` (default none)."""
        return {}

    def on_rollout_end(self, episodes: Sequence[EpisodeRecord]) -> dict[str, float]:
        """Learn from the training episodes that ended since the last call; return scalars
        to log (e.g. ``{"safety/lagrange_multiplier": 3.0}``)."""
        return {}

    def wrap(self, env: gym.Env) -> gym.Env:
        """``env`` as the learner sees it under this intervention: a single environment of
        any offswitch world (see :class:`InterventionWrapper`)."""
        return InterventionWrapper(env, self)


class Shaping:
    """An intervention bound to a world and ``num_envs`` copies of it: what the learner gets
    from each transition. Used alike by the single-environment wrapper and the batched
    training worlds, so both compute the same reward."""

    def __init__(self, intervention: Intervention, world: TabularWorld, num_envs: int = 1):
        intervention.check_world(world)
        self.intervention, self.world = intervention, world
        self.terms = intervention.make_terms(world, num_envs)
        self.replaced = tuple(dict.fromkeys(n for term in self.terms for n in term.replaces))
        self.needs_critic = any(term.needs_critic for term in self.terms)

    def bind_critic(self, critic: Critic) -> None:
        for term in self.terms:
            if term.needs_critic:
                term.bind_critic(critic)

    @property
    def term_names(self) -> tuple[str, ...]:
        """The names of the reward terms the learner gets: the world's, then these."""
        return tuple(self.world.term_names) + tuple(t.name for t in self.terms)

    def __call__(
        self, tr: Transition, terms: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any], Any]:
        """``(reward, terms, truncated)`` of the learner for transition ``tr``: the reward is
        the sum of the terms; ``truncated`` adds the intervention's early ends. ``terms``
        (default: the world's) are those this intervention builds on, so that one
        intervention's terms compose with another's."""
        terms = dict(tr.terms if terms is None else terms)
        for name in self.replaced:
            terms[name] = tr.reward * 0.0
        for term in self.terms:
            terms[term.name] = term(tr)
        reward = sum(terms.values())
        cut = self.intervention.truncates(self.world, tr)
        truncated = tr.truncated if cut is None else tr.truncated | (cut & ~tr.terminated)
        return reward, terms, truncated


def disabling_mechanisms(world: TabularWorld) -> tuple[str, ...]:
    """The names of the ways ``world`` lets the agent disable its switch (``info["disabled_by"]``
    of some transition): ``("button",)``, ``("button", "cable")``, ``("copy",)``..."""
    from offswitch.envs.engine import DISABLED_BY

    return tuple(DISABLED_BY[code] for code in np.unique(world.disabled_by) if code > 0)


def require_disabling(spec: str, world: TabularWorld, mechanisms: Sequence[str] = ()) -> None:
    """:class:`InterventionError` unless the agent can disable ``world``'s switch (by one of
    ``mechanisms``, when given): an intervention that prices disabling it would change nothing
    there, silently."""
    present = disabling_mechanisms(world)
    if not present:
        raise InterventionError(
            f"{spec} prices disabling the switch, and the agent cannot disable this world's "
            "switch (no button, cable, copy terminal, lock or monitor): choose a world with "
            "one, or another intervention"
        )
    missing = [m for m in mechanisms if m not in present]
    if missing:
        raise InterventionError(
            f"{spec} prices disabling the switch by {', '.join(missing)}, which this world "
            f"does not have: it has {', '.join(present)}; write one of those after @"
        )


def _format(value: Any) -> str:
    return _number(value) if isinstance(value, (int, float)) else str(value)


def _split(text: str, params: tuple[Param, ...]) -> dict[str, Any] | None:
    """The values of ``text``, or ``None`` if malformed.

    The first value belongs to the first parameter; each later one, introduced by a
    separator, to the next parameter declared with that separator (parameters skipped over
    keep their defaults). An empty first value keeps its default, so ``penalty:@button``
    works as ``penalty:100@button``.
    """
    separators = {",", *(p.prefix for p in params[1:])}
    tokens: list[tuple[str, str]] = [("", "")]
    for char in text:
        if char in separators:
            tokens.append((char, ""))
        else:
            sep, value = tokens[-1]
            tokens[-1] = (sep, value + char)
    values: dict[str, Any] = {}
    if tokens[0][1]:
        values[params[0].attribute] = tokens[0][1]
    position = 1
    for sep, value in tokens[1:]:
        while position < len(params) and params[position].prefix != sep:
            position += 1
        if position >= len(params) or not value:
            return None
        values[params[position].attribute] = value
        position += 1
    return values


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
