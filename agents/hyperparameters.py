"""Checks of learner hyperparameters: types and ranges, before any process starts.

Each learner states the ranges its algorithm needs in its ``check_hyperparameters``
(:meth:`offswitch.agents.training.Learner.check_hyperparameters`); the patterns they share
live here, so that every learner refuses a bad value with the same one-line message:
the learner, the name, the offending value, what to give instead and, where the algorithm
itself states it, its own constraint. For example::

    ppo hyperparameter batch_size=1 is out of range: give a whole number > 1 (Stable-
    Baselines3's PPO asserts batch_size > 1 when normalize_advantage is on)

The checks:

* :class:`Number`: a real number (Python or numpy; never a bool or a string, never NaN or
  infinite) in a range, optionally a whole number, ``None``, or a schedule (a callable, as
  Stable-Baselines3 accepts for ``learning_rate``; only the Python API can pass one: the
  command line and experiment files give literals);
* :class:`Flag`: ``True`` or ``False``;
* :class:`Choice`: one of a few words; :class:`DeviceName`: a torch device's name;
* :class:`Subclass`: a class derived from a given one (from the Python API only);
* :func:`check_net_arch`: a network's hidden layers, a list of positive whole numbers (or,
  for actor-critic policies, a table of ``pi`` and ``vf`` lists), at most
  :data:`MAX_LAYER_UNITS` units a layer and :data:`MAX_NET_WEIGHTS` weights between layers;
* :func:`check_ranges`: every value of a table of checks, by name.

Size limits, each raised knowingly by an environment variable (read when a value passes the
default, as the worlds' limits in :mod:`offswitch.envs.engine` are):

* :data:`MAX_BUFFER_SAMPLES` (1,000,000, Stable-Baselines3's default DQN replay buffer):
  the most samples a learner may hold in memory at once (a PPO or A2C rollout of
  ``n_steps * n_envs`` samples, a DQN replay buffer, a minibatch); raised by
  ``OFFSWITCH_MAX_BUFFER_SAMPLES``;
* :data:`MAX_NET_WEIGHTS` (10,000,000): weights between the hidden layers of one network;
  raised by ``OFFSWITCH_MAX_NET_WEIGHTS``.

:class:`HyperparameterError` is a ``ValueError``; :meth:`offswitch.experiments.spec.config.
TrainConfig.validate` turns it into a ``ConfigError`` with the same message.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from offswitch.envs.engine import env_limit as _env_limit
from offswitch.envs.layout import quotes_hint, shown

MAX_BUFFER_SAMPLES = 1_000_000
"""Most samples a learner may keep in memory at once (rollout, replay buffer, minibatch),
unless the environment variable :data:`MAX_BUFFER_SAMPLES_ENV` raises it: a million
samples of these worlds' observations take about 1 GiB."""
MAX_BUFFER_SAMPLES_ENV = "OFFSWITCH_MAX_BUFFER_SAMPLES"

MAX_NET_WEIGHTS = 10_000_000
"""Most weights between the hidden layers of one network (the sum of the products of
consecutive layer sizes), unless the environment variable :data:`MAX_NET_WEIGHTS_ENV`
raises it. The default ``[64, 64]`` has 4,096."""
MAX_NET_WEIGHTS_ENV = "OFFSWITCH_MAX_NET_WEIGHTS"

MAX_LAYER_UNITS = 65_536
"""Most units in one hidden layer (the first layer's weights grow with it times the
observation's size)."""

MAX_REPEATS = 1000
"""Most passes over one batch (PPO's ``n_epochs``, DQN's ``gradient_steps``) and most steps
of an n-step return: more multiplies training time a thousandfold and is surely a typo."""


class HyperparameterError(ValueError):
    """A learner hyperparameter of the wrong type, out of the range the learner needs, or
    over a size limit; the one-line message names the learner, the hyperparameter, the
    value and the fix."""


def env_limit(var: str, default: int, error: type[Exception] = HyperparameterError) -> int:
    """:func:`offswitch.envs.engine.env_limit`, raising ``error`` (by default
    :class:`HyperparameterError`) for a malformed variable."""
    return _env_limit(var, default, error)


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) >= 10_000:
        return f"{int(x):,}"
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


@dataclass(frozen=True)
class Number:
    """A real number in a range (see the module docstring); ``why`` quotes the learner's
    own constraint, e.g. ``"Stable-Baselines3's PPO asserts batch_size > 1"``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False
    """A whole number, given as an ``int`` (or numpy integer): the algorithms index arrays
    with it, and ``128.0`` would fail there."""
    none: str | None = None
    """What ``None`` means, if it is allowed, e.g. ``"no limit"``."""
    schedule: bool = False
    """A callable (a schedule of the progress remaining) is allowed too."""
    also: tuple[int, ...] = ()
    """Values allowed outside the range, e.g. ``-1`` for DQN's ``gradient_steps``."""
    why: str = ""

    def allowed(self) -> str:
        what = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            what += f" in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"
        elif self.low is not None:
            what += f" {'>' if self.low_open else '>='} {_fmt(self.low)}"
        elif self.high is not None:
            what += f" {'<' if self.high_open else '<='} {_fmt(self.high)}"
        if self.also:
            what += "".join(f" or {v}" for v in self.also)
        if self.schedule:
            what += " (or a schedule, from Python)"
        if self.none is not None:
            what += f", or None for {self.none}"
        return what

    def __call__(self, learner: str, name: str, value: Any) -> None:
        if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
            value = value.item()  # a numpy number as the Python one, in checks and messages
        if value is None and self.none is not None:
            return
        if self.schedule and callable(value) and not isinstance(value, type):
            return
        head = f"{learner} hyperparameter {name}={shown(value)}"
        tail = f" ({self.why})" if self.why else ""
        if not _is_real(value):
            expected = "a whole number" if self.whole else "a number"
            raise HyperparameterError(
                f"{head} is {_kind(value)}, not {expected}: give {self.allowed()}"
                f"{quotes_hint(value)}{tail}"
            )
        if self.whole and not isinstance(value, numbers.Integral):
            raise HyperparameterError(
                f"{head} is {_kind(value)}, not a whole number: give {self.allowed()}"
                + (f", e.g. {int(value)}" if math.isfinite(value) and value == int(value) else "")
                + tail
            )
        if value in self.also:
            return
        try:
            x = float(value)
        except OverflowError:  # a whole number too large for a float
            x = math.inf if value > 0 else -math.inf
        if not self.whole and not math.isfinite(x):
            raise HyperparameterError(f"{head} is not finite: give {self.allowed()}{tail}")
        too_low = self.low is not None and (x <= self.low if self.low_open else x < self.low)
        too_high = self.high is not None and (x >= self.high if self.high_open else x > self.high)
        if too_low or too_high:
            raise HyperparameterError(f"{head} is out of range: give {self.allowed()}{tail}")


@dataclass(frozen=True)
class Flag:
    """``True`` or ``False`` (Python or numpy bool); ``only`` restricts it to one value."""

    only: bool | None = None
    why: str = ""

    def __call__(self, learner: str, name: str, value: Any) -> None:
        head = f"{learner} hyperparameter {name}={shown(value)}"
        tail = f" ({self.why})" if self.why else ""
        if not isinstance(value, (bool, np.bool_)):
            raise HyperparameterError(f"{head} is {_kind(value)}, not a bool: give True or False")
        if self.only is not None and bool(value) != self.only:
            raise HyperparameterError(f"{head} is not supported: give {self.only}{tail}")


@dataclass(frozen=True)
class Choice:
    """One of a few words, e.g. a schedule's name."""

    choices: tuple[str, ...]
    why: str = ""

    def __call__(self, learner: str, name: str, value: Any) -> None:
        if not isinstance(value, str) or value not in self.choices:
            tail = f" ({self.why})" if self.why else ""
            raise HyperparameterError(
                f"{learner} hyperparameter {name}={shown(value)} is not known: give one of "
                f"{', '.join(repr(c) for c in self.choices)}{tail}"
            )


@dataclass(frozen=True)
class DeviceName:
    """A torch device by name: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``N`` a device index).
    Only the spelling is checked here; whether such a device is visible is a property of the
    machine that trains, checked when the learner is built there."""

    why: str = ""

    def __call__(self, learner: str, name: str, value: Any) -> None:
        if not isinstance(value, str) or not re.fullmatch(r"cpu|cuda(:[0-9]+)?", value):
            tail = f" ({self.why})" if self.why else ""
            raise HyperparameterError(
                f"{learner} hyperparameter {name}={shown(value)} is not known: give one of "
                f"'cpu', 'cuda', 'cuda:N' (N a device index, e.g. 'cuda:0'){tail}"
            )


@dataclass(frozen=True)
class Subclass:
    """A class derived from ``base`` (a policy's activation, an optimiser, a buffer class);
    only the Python API can pass one."""

    base: type
    none: str | None = None
    """What ``None`` means, if it is allowed."""
    label: str | None = None
    """The base's name in messages (default: its module and name)."""

    def __call__(self, learner: str, name: str, value: Any) -> None:
        if value is None and self.none is not None:
            return
        if not (isinstance(value, type) and issubclass(value, self.base)):
            base = self.label or f"{self.base.__module__}.{self.base.__qualname__}"
            alternative = f", or None for {self.none}" if self.none is not None else ""
            raise HyperparameterError(
                f"{learner} hyperparameter {name}={shown(value)} is not a subclass of {base}: "
                f"give one from Python (the command line cannot name a class){alternative}"
            )


Check = Callable[[str, str, Any], None]
"""A check of one hyperparameter: ``check(learner, name, value)`` raises
:class:`HyperparameterError` or returns ``None``."""


def positive(why: str = "", **kwargs: Any) -> Number:
    """A finite number > 0."""
    return Number(low=0.0, low_open=True, why=why, **kwargs)


def non_negative(why: str = "", **kwargs: Any) -> Number:
    """A finite number >= 0."""
    return Number(low=0.0, why=why, **kwargs)


def unit(why: str = "", **kwargs: Any) -> Number:
    """A number in [0, 1] (a probability, a discount, a fraction); ``low_open`` or
    ``high_open`` exclude an end."""
    return Number(low=0.0, high=1.0, why=why, **kwargs)


def whole(low: int = 1, high: int | None = None, why: str = "", **kwargs: Any) -> Number:
    """A whole number from ``low`` (to ``high``)."""
    return Number(low=low, high=high, whole=True, why=why, **kwargs)


def check_ranges(learner: str, checks: Mapping[str, Check], values: Mapping[str, Any]) -> None:
    """Check each value of ``values`` that ``checks`` names; :class:`HyperparameterError`
    for the first that fails."""
    for name, value in values.items():
        check = checks.get(name)
        if check is not None:
            check(learner, name, value)


def check_table(learner: str, name: str, value: Any, example: str) -> dict[str, Any]:
    """``value`` as a table (a dict with text keys), else :class:`HyperparameterError`."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HyperparameterError(
            f"{learner} hyperparameter {name}={shown(value)} is {_kind(value)}, not a table "
            f"with text keys: give e.g. {example}"
        )
    return value


def count(n: int) -> str:
    """A whole number for a message, with thousands separators; a huge one by its size."""
    return shown(n) if n.bit_length() > 64 else f"{n:,}"


def check_buffer(learner: str, what: str, samples: int, fix: str) -> None:
    """Refuse more than :data:`MAX_BUFFER_SAMPLES` samples held at once (``what``: e.g.
    ``"n_steps * n_envs = 16 * 1000000"``)."""
    if samples > MAX_BUFFER_SAMPLES and samples > (
        limit := env_limit(MAX_BUFFER_SAMPLES_ENV, MAX_BUFFER_SAMPLES)
    ):
        raise HyperparameterError(
            f"{learner} hyperparameter {what} = {count(samples)} samples held in memory at once, "
            f"over the limit of {limit:,}: {fix}, or set {MAX_BUFFER_SAMPLES_ENV} to go past "
            "it knowingly"
        )


def check_net_arch(learner: str, name: str, value: Any, actor_critic: bool = True) -> None:
    """A network's hidden layers: a list of whole numbers from 1 to
    :data:`MAX_LAYER_UNITS` (``[]``: no hidden layer), or for an actor-critic policy a
    table with ``pi`` and/or ``vf`` lists (separate actor and critic networks), as
    Stable-Baselines3's ``net_arch`` takes it; at most :data:`MAX_NET_WEIGHTS` weights
    between the layers of each network. ``None``: the learner's default."""
    example = "[64, 64]" + (", or {'pi': [64], 'vf': [64]}" if actor_critic else "")
    head = f"{learner} hyperparameter {name}={shown(value)}"
    if value is None:
        return
    if isinstance(value, dict) and actor_critic:
        unknown = sorted(str(k) for k in value if k not in ("pi", "vf"))
        if unknown:
            raise HyperparameterError(
                f"{head} has the key(s) {', '.join(map(repr, unknown))}: a table of networks "
                f"takes only 'pi' (the actor) and 'vf' (the critic), e.g. {example}"
            )
        networks = [(f"{name}['{key}']", layers) for key, layers in value.items()]
    else:
        networks = [(name, value)]
    for where, layers in networks:
        if not isinstance(layers, (list, tuple)):
            raise HyperparameterError(
                f"{learner} hyperparameter {where}={shown(layers)} is {_kind(layers)}, not a "
                f"list of layer sizes: give e.g. {example}"
            )
        for size in layers:
            if not isinstance(size, numbers.Integral) or isinstance(size, (bool, np.bool_)):
                raise HyperparameterError(
                    f"{learner} hyperparameter {where}={shown(layers)} holds {shown(size)}, "
                    f"not a whole number of units: give e.g. {example}"
                )
            if not 1 <= size <= MAX_LAYER_UNITS:
                raise HyperparameterError(
                    f"{learner} hyperparameter {where}={shown(layers)} has a layer of "
                    f"{shown(size)} units: give layers of 1 to {MAX_LAYER_UNITS:,} units"
                )
        weights = sum(int(a) * int(b) for a, b in zip(layers, layers[1:]))
        if weights > MAX_NET_WEIGHTS and weights > (
            limit := env_limit(MAX_NET_WEIGHTS_ENV, MAX_NET_WEIGHTS)
        ):
            raise HyperparameterError(
                f"{learner} hyperparameter {where}={shown(layers)} has {weights:,} weights "
                f"between its layers, over the limit of {limit:,}: give smaller or fewer "
                f"layers, or set {MAX_NET_WEIGHTS_ENV} to go past it knowingly"
            )


__all__ = [
    "MAX_BUFFER_SAMPLES",
    "MAX_LAYER_UNITS",
    "MAX_NET_WEIGHTS",
    "MAX_REPEATS",
    "Check",
    "Flag",
    "HyperparameterError",
    "Number",
    "Subclass",
    "check_buffer",
    "count",
    "check_net_arch",
    "check_ranges",
    "check_table",
    "env_limit",
    "non_negative",
    "positive",
    "shown",
    "unit",
    "whole",
]
