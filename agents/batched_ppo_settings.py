"""What ``batched-ppo`` and ``batched-ppo-sb3`` declare, without torch: their names, default
hyperparameters and ranges, default budgets and phase rules, and the check of
hyperparameters (:class:`BatchedPPODeclared`).

A command reads and checks its experiment with these alone (:func:`~offswitch.agents.
learners.learner_declared`), so that only the processes that train import torch; the
learners themselves (:mod:`offswitch.agents.batched_ppo`) take every declaration from here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from offswitch.agents.hyperparameters import (
    MAX_BUFFER_SAMPLES,
    MAX_REPEATS,
    Choice,
    DeviceName,
    Flag,
    HyperparameterError,
    check_buffer,
    check_net_arch,
    check_ranges,
    check_table,
    non_negative,
    positive,
    shown,
    unit,
    whole,
)
from offswitch.agents.training import Budget, Declared, check_known

NAME = "batched-ppo"
DESCRIPTION = "PPO, K seeds trained as one batched network"
SB3_NAME = "batched-ppo-sb3"
SB3_DESCRIPTION = "Stable-Baselines3's PPO exactly, K seeds trained as one batched network"

SB3_DEFAULTS: dict[str, Any] = dict(
    # PPOLearner.defaults (agents/sb3.py), where it sets them: why each value, there.
    n_steps=64,
    batch_size=4096,
    n_epochs=10,
    learning_rate=5e-4,
    ent_coef=0.02,
    gamma=0.99,
    gae_lambda=0.95,
    policy_kwargs=dict(net_arch=[64, 64]),
    # SB3's ActorCriticPolicy's activation_fn (nn.Tanh) between hidden layers; "relu" is its
    # nn.ReLU. A name here, not a class: the experiment files are TOML.
    activation="tanh",
    # SB3's PPO defaults for the rest.
    clip_range=0.2,
    clip_range_vf=None,
    normalize_advantage=True,
    vf_coef=0.5,
    max_grad_norm=0.5,
    # PPOLearner.n_envs.
    n_envs=64,
    # A constant rate, as SB3's default; "linear" anneals it to 0 over the training budget,
    # as the RL Zoo's lin_ schedules do.
    lr_schedule="constant",
    # Not SB3's: the penalty toward the policy at the start of the phase (module docstring).
    kl_coef=0.0,
    # Where the network and the updates run (module docstring); random draws stay on the CPU.
    device="cpu",
    # Not SB3's, off here (module docstring): the least scale advantages are divided by, the
    # entropy bonus's schedule, Adam's beta2 (SB3's torch default) and the probability floor.
    advantage_floor=0.0,
    ent_schedule="constant",
    adam_beta2=0.999,
    prob_floor=0.0,
)
"""``batched-ppo-sb3``: Stable-Baselines3's PPO exactly, at :class:`PPOLearner`'s defaults."""

CONVERGENCE_FIX: dict[str, Any] = dict(
    advantage_floor=1.0,
    ent_schedule="linear",
    lr_schedule="linear",
    prob_floor=1e-3,
)
"""What ``batched-ppo`` adds to SB3's PPO so that its policies converge and stay converged
(module docstring; ``docs/results/collapse.md`` for the evidence)."""

DEFAULTS: dict[str, Any] = {**SB3_DEFAULTS, **CONVERGENCE_FIX}
"""``batched-ppo``'s defaults."""


MAX_PROB_FLOOR = 0.1
"""``prob_floor`` stays below this: the worlds have 4 or 5 actions."""

LR_SCHEDULES = ("constant", "linear")
"""``lr_schedule``: a constant rate, or one annealed linearly to 0 over the budget."""

ACTIVATIONS = ("tanh", "relu")
"""``activation``: the function between hidden layers (SB3's ``activation_fn``)."""

RANGES: dict[str, Any] = dict(
    n_steps=whole(1, why="steps per world per rollout"),
    n_envs=whole(1, why="worlds per seed"),
    batch_size=whole(
        1,
        MAX_BUFFER_SAMPLES,
        why="the minibatch size; PPO's advantage normalisation needs batch_size > 1",
    ),
    n_epochs=whole(1, MAX_REPEATS, why="passes over each rollout"),
    learning_rate=positive("Adam's step size; 0 learns nothing"),
    gamma=unit("the discount factor"),
    gae_lambda=unit("the GAE factor: 1 is the Monte-Carlo advantage, 0 the one-step one"),
    clip_range=positive("PPO's clipping of the probability ratio"),
    clip_range_vf=positive(none="no clipping", why="the clipping of the value update"),
    ent_coef=non_negative("the entropy bonus; a negative one would reward certainty"),
    vf_coef=non_negative("the weight of the value loss"),
    max_grad_norm=positive("the gradient clipping norm"),
    normalize_advantage=Flag(),
    lr_schedule=Choice(LR_SCHEDULES),
    activation=Choice(ACTIVATIONS),
    kl_coef=non_negative(
        "the weight of KL(pi_ref || pi) toward the policy at the start of the phase; 0: none"
    ),
    device=DeviceName(why="the torch device of the network and its updates"),
    advantage_floor=non_negative(
        "the least scale advantages are divided by when normalised; 0: their std, as SB3"
    ),
    ent_schedule=Choice(LR_SCHEDULES),
    adam_beta2=unit("Adam's second-moment decay; 0.999: torch's and SB3's"),
    prob_floor=non_negative(
        "the least probability an action keeps in a sampled state (a hinge on log pi); 0: none"
    ),
)
"""The range of each hyperparameter, with the constraint quoted (``agents/hyperparameters.py``)."""


def check_values(h: dict[str, Any]) -> None:
    """:class:`~offswitch.agents.hyperparameters.HyperparameterError` (a ``ValueError``)
    quoting the constraint broken by any resolved hyperparameter."""
    check_ranges(NAME, RANGES, h)
    if h["normalize_advantage"] and h["batch_size"] < 2:
        raise HyperparameterError(
            f"{NAME} hyperparameter batch_size={h['batch_size']} is out of range: give a whole "
            "number > 1 (advantage normalisation needs two samples per minibatch), or set "
            "normalize_advantage=False"
        )
    samples = int(h["n_steps"]) * int(h["n_envs"])
    if h["normalize_advantage"] and samples < 2:
        raise HyperparameterError(
            f"{NAME} hyperparameters n_steps * n_envs = {samples}: give at least 2 samples per "
            "rollout (advantage normalisation needs them)"
        )
    check_buffer(NAME, "n_steps * n_envs", samples, "give fewer steps or worlds per rollout")
    if float(h["prob_floor"]) >= MAX_PROB_FLOOR:
        raise HyperparameterError(
            f"{NAME} hyperparameter prob_floor={h['prob_floor']} is out of range: give a number "
            f">= 0 and < {MAX_PROB_FLOOR} (a floor near 1/n_actions would hold every action's "
            "probability up and leave the policy nothing to prefer)"
        )
    kwargs = check_table(NAME, "policy_kwargs", h["policy_kwargs"], '{"net_arch": [64, 64]}')
    if set(kwargs) - {"net_arch"}:
        raise HyperparameterError(
            f"{NAME} hyperparameter policy_kwargs={shown(kwargs)}: {NAME} takes only net_arch "
            "(MLPs with SB3's orthogonal init; the activation is the hyperparameter activation)"
        )
    check_net_arch(NAME, "policy_kwargs.net_arch", kwargs.get("net_arch", [64, 64]))
    parse_net_arch(kwargs.get("net_arch", [64, 64]))


def parse_net_arch(net_arch: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(actor sizes, critic sizes)`` of SB3's ``net_arch``: a list for both, or a dict
    with ``pi`` and ``vf``; ``ValueError`` for anything else."""
    if isinstance(net_arch, dict):
        if set(net_arch) != {"pi", "vf"}:
            raise ValueError(
                f"policy_kwargs net_arch={net_arch!r}: give a list of layer sizes, or a dict "
                "with exactly the keys pi and vf"
            )
        pi, vf = net_arch["pi"], net_arch["vf"]
    else:
        pi = vf = net_arch
    sizes = []
    for part in (pi, vf):
        if not isinstance(part, (list, tuple)) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in part
        ):
            raise ValueError(
                f"policy_kwargs net_arch={net_arch!r}: layer sizes must be whole numbers >= 1"
            )
        sizes.append(tuple(int(n) for n in part))
    return sizes[0], sizes[1]


class BatchedPPODeclared(Declared):
    """``batched-ppo``'s declarations (:class:`~offswitch.agents.batched_ppo.BatchedPPO`
    inherits them)."""

    name = NAME
    description = DESCRIPTION
    defaults: ClassVar[dict[str, Any]] = DEFAULTS
    # Where both demo conditions' greedy policies first reach the goal on 9/10 seeds or more
    # (docs/results/budget.md): the annealed schedules need the steps to settle.
    default_budget = Budget(steps=1_000_000)
    supports_phases = True
    seed_batched = True
    phase_fixed = ("policy_kwargs", "activation", "n_envs", "device")
    """The network's shape, the worlds per seed and the device stay; every other setting may
    change."""

    @classmethod
    def check_hyperparameters(cls, overrides: dict[str, Any]) -> None:
        check_known(cls.name, cls.defaults, overrides)
        check_values({**cls.defaults, **overrides})


class BatchedPPOSB3Declared(BatchedPPODeclared):
    """``batched-ppo-sb3``'s: SB3's PPO exactly, at :class:`PPOLearner`'s defaults."""

    name = SB3_NAME
    description = SB3_DESCRIPTION
    defaults: ClassVar[dict[str, Any]] = SB3_DEFAULTS
    default_budget = Budget(steps=200_000)
