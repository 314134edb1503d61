"""Upper bounds on what one command may ask for, checked before any work starts.

A typo such as ``--seeds 0-1000000`` or ``--steps 1000000000000`` would otherwise run for
days or fill the memory; each limit is refused with a one-line message that names the value,
the limit and the environment variable that raises it knowingly (read whenever a value
passes the default, so ``os.environ[...] = ...`` in a running program works; it never lowers
a limit):

========================  ==========  ================================
what                      default     raised by
========================  ==========  ================================
seeds per command         10,000      ``OFFSWITCH_MAX_SEEDS``
training steps per run    10,000,000  ``OFFSWITCH_MAX_TRAIN_STEPS``
training episodes / run   1,000,000   ``OFFSWITCH_MAX_TRAIN_EPISODES``
evaluation episodes       100,000     ``OFFSWITCH_MAX_EVAL_EPISODES``
processes (``--workers``) 4 x cores   ``OFFSWITCH_MAX_WORKERS``
experiment file size      1 MiB       ``OFFSWITCH_MAX_FILE_BYTES``
========================  ==========  ================================

Runs per experiment file: :data:`offswitch.experiments.spec.experiment.MAX_RUNS`
(``OFFSWITCH_MAX_RUNS``). Seeds themselves are whole numbers from 0 to :data:`MAX_SEED`, a
fixed bound: numpy and Stable-Baselines3 seed their generators with 32-bit numbers.
Learners' buffers and networks: :mod:`offswitch.agents.hyperparameters`. Worlds:
:mod:`offswitch.envs.engine`.
"""

from __future__ import annotations

import os

from offswitch.agents.hyperparameters import count, env_limit

MAX_SEEDS = 10_000
"""Most seeds one command may list, unless ``OFFSWITCH_MAX_SEEDS`` raises it."""
MAX_SEEDS_ENV = "OFFSWITCH_MAX_SEEDS"

MAX_SEED = 2**31 - 1
"""The largest seed: Stable-Baselines3 seeds numpy's global generator with it (at most
2**32 - 1) and seeds world ``i`` of a run ``seed + i``."""

MAX_TRAIN_STEPS = 10_000_000
"""Most environment steps of training per run (50 times the deep learners' default budget),
unless ``OFFSWITCH_MAX_TRAIN_STEPS`` raises it."""
MAX_TRAIN_STEPS_ENV = "OFFSWITCH_MAX_TRAIN_STEPS"

MAX_TRAIN_EPISODES = 1_000_000
"""Most training episodes per run (the tabular learners count episodes), unless
``OFFSWITCH_MAX_TRAIN_EPISODES`` raises it."""
MAX_TRAIN_EPISODES_ENV = "OFFSWITCH_MAX_TRAIN_EPISODES"

MAX_EVAL_EPISODES = 100_000
"""Most evaluation episodes per policy and run (they run side by side, one world each),
unless ``OFFSWITCH_MAX_EVAL_EPISODES`` raises it."""
MAX_EVAL_EPISODES_ENV = "OFFSWITCH_MAX_EVAL_EPISODES"

WORKERS_PER_CORE = 4
"""``--workers`` may be at most this many times the cores this process may use: each
worker is a process that loads torch (hundreds of MB), and more than one per core only
slows training."""
MAX_WORKERS_ENV = "OFFSWITCH_MAX_WORKERS"

MAX_FILE_BYTES = 1 << 20
"""Largest experiment file read, unless ``OFFSWITCH_MAX_FILE_BYTES`` raises it (the shipped
ones are a few KiB)."""
MAX_FILE_BYTES_ENV = "OFFSWITCH_MAX_FILE_BYTES"


def limit(var: str, default: int, error: type[Exception]) -> int:
    """The limit in force: ``default``, or the environment variable ``var`` if it says more;
    ``error`` if the variable is not a positive whole number."""
    return env_limit(var, default, error)


def cores() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def max_workers(error: type[Exception]) -> int:
    """The most ``--workers`` allowed: :data:`WORKERS_PER_CORE` per core, or
    ``OFFSWITCH_MAX_WORKERS`` if it says more."""
    return limit(MAX_WORKERS_ENV, WORKERS_PER_CORE * cores(), error)


def check_limit(
    what: str, value: int, default: int, var: str, error: type[Exception], fix: str
) -> None:
    """``error`` if ``value`` is over the limit in force (``default`` or ``var``), with a
    message naming ``what``, the value, the limit, ``fix`` and ``var``."""
    if value > default and value > (in_force := limit(var, default, error)):
        raise error(
            f"{what}={count(value)} is over the limit of {in_force:,}: {fix}, or set {var} to "
            "go past it knowingly"
        )
