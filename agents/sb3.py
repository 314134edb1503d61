"""Stable-Baselines3's PPO, A2C and DQN behind the learner interface, on the batched worlds.

:class:`OffSwitchVecEnv` is the batched worlds (:class:`~offswitch.agents.training.
TrainingWorlds`) as a Stable-Baselines3 ``VecEnv``: autoreset inside ``step``,
``terminal_observation`` and ``TimeLimit.truncated`` in the info of a copy whose episode
ended, and Monitor's ``episode`` record there too (return of the task reward and length),
as ``make_vec_env`` with ``DummyVecEnv`` gives. Its info dicts are otherwise empty: the
safety measures are read from the world's tables, not from infos, so the list stays as
lean as SB3 allows. Copy ``i`` is seeded ``seed + i`` as ``make_vec_env`` seeds its
environments, so the same seeds train the same agent as on ``DummyVecEnv`` of single worlds
(``tests/test_vector.py``).

Evaluation's sampled actions come from a generator of the learner's own
(:func:`eval_generator`, seeded by the run's seed), not from torch's global stream that
training advanced: the greedy and the sampled policy are functions of the saved weights and
the seed alone (:func:`policy_actions`), so ``offswitch replay`` reproduces a run's evaluation
from its ``model.zip``.

Each default hyperparameter says where it comes from. "Measured" figures are from this
project's 2-core CPU machines; the rest are SB3's own defaults or the RL Zoo's settings for
small discrete tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv

from offswitch.agents.hyperparameters import (
    MAX_BUFFER_SAMPLES,
    MAX_REPEATS,
    Flag,
    HyperparameterError,
    Number,
    Subclass,
    check_buffer,
    check_net_arch,
    check_ranges,
    check_table,
    count,
    non_negative,
    positive,
    shown,
    unit,
    whole,
)
from offswitch.agents.interventions.base import Intervention
from offswitch.agents.training import (
    Budget,
    Learner,
    TrainingHooks,
    TrainingWorlds,
    check_phase_hyperparameters,
)

EVAL_STREAM = 0x5EED_E7A1
"""Mixed with the run's seed into the seed of :func:`eval_generator`'s stream."""


def eval_generator(seed: int) -> torch.Generator:
    """The generator of a learner's sampled evaluation actions: a stream of its own, seeded
    by the run's seed alone, so that the evaluation never depends on what training drew."""
    state = np.random.SeedSequence([int(seed), EVAL_STREAM]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def policy_actions(
    policy: BasePolicy,
    obs: np.ndarray,
    deterministic: bool,
    generator: torch.Generator,
    epsilon: float = 0.0,
) -> np.ndarray:
    """One action per observation of the batch ``obs``, from a Stable-Baselines3 MLP policy.

    Greedy: the most likely action (an actor-critic's mode, a Q-network's argmax), as SB3's
    ``predict(deterministic=True)``. Sampled: an actor-critic draws from its action
    distribution, a Q-network acts epsilon-greedily with ``epsilon`` for each observation;
    every draw comes from ``generator``. The learner and ``offswitch replay`` both act
    through this function, so a saved policy replays its run's evaluation exactly.
    """
    policy.set_training_mode(False)
    tensor, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        if hasattr(policy, "get_distribution"):  # PPO, A2C
            distribution = policy.get_distribution(tensor)
            if deterministic:
                return distribution.mode().reshape(-1).numpy()
            probs = distribution.distribution.probs
            return torch.multinomial(probs, 1, generator=generator)[:, 0].numpy()
        q_values = policy.q_net(tensor)  # DQN
        greedy = q_values.argmax(dim=1).reshape(-1)
        if deterministic:
            return greedy.numpy()
        n, n_actions = q_values.shape
        explore = torch.rand(n, generator=generator) < epsilon
        random = torch.randint(n_actions, (n,), generator=generator)
        return torch.where(explore, random, greedy).numpy()


class OffSwitchVecEnv(VecEnv):
    """Batched training worlds as a Stable-Baselines3 ``VecEnv`` (module docstring)."""

    render_mode = None

    def __init__(self, worlds: TrainingWorlds) -> None:
        self.worlds = worlds
        table = worlds.obs_table
        observation_space = spaces.Box(0, 1, shape=table.shape[1:], dtype=np.uint8)
        action_space = spaces.Discrete(worlds.world.n_actions)
        super().__init__(worlds.num_envs, observation_space, action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = self._seeds
        chosen = [i for i, seed in enumerate(seeds) if seed is not None]
        if chosen:
            self.worlds.worlds.seed([seeds[i] for i in chosen], np.array(chosen))
        self._reset_seeds()
        self._reset_options()
        return self.worlds.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        result = self.worlds.step(self._actions)
        done = result.terminated | result.truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        table = self.worlds.obs_table
        for i, record in zip(np.flatnonzero(done).tolist(), result.episodes):
            infos[i] = {
                "terminal_observation": table[result.final_states[i]].copy(),
                "TimeLimit.truncated": bool(result.truncated[i]),
                # Monitor's record, of the task reward as Monitor saw it under make_vec_env.
                "episode": {"r": round(record.task_return, 6), "l": record.length, "t": 0.0},
            }
        # SB3's DummyVecEnv keeps rewards as float32; so do we, for identical training.
        return result.obs, result.reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        owner = self if attr_name == "render_mode" else self.worlds
        return [getattr(owner, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.worlds, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any):
        result = getattr(self.worlds, method_name)(*args, **kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class _Hooks(BaseCallback):
    """Hands each rollout's finished episodes to the runner's hooks."""

    def __init__(self, worlds: TrainingWorlds, hooks: TrainingHooks) -> None:
        super().__init__()
        self.worlds, self.hooks = worlds, hooks

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.hooks.rollout_end(self.worlds.drain(), self.num_timesteps)


SB3 = "Stable-Baselines3"
SB3_RANGES: dict[str, Any] = dict(
    learning_rate=positive(
        schedule=True, why=f"{SB3}'s optimisers refuse a negative rate; 0 learns nothing"
    ),
    gamma=unit("the discount factor"),
    max_grad_norm=positive("the gradient clipping norm"),
    stats_window_size=whole(1, why="episodes averaged in the logs"),
    use_sde=Flag(
        only=False,
        why=f"{SB3}: gSDE can only be used with continuous actions; these worlds' are discrete",
    ),
    sde_sample_freq=whole(None, why="used only by gSDE"),
)
"""What every SB3 algorithm here needs; each learner's ``ranges`` add its own."""

ON_POLICY_RANGES: dict[str, Any] = dict(
    n_steps=whole(1, why="steps per world per rollout"),
    gae_lambda=unit("the GAE factor: 1 is the Monte-Carlo advantage, 0 the one-step one"),
    ent_coef=non_negative("the entropy bonus; a negative one would reward certainty"),
    vf_coef=non_negative("the weight of the value loss"),
    normalize_advantage=Flag(),
    rollout_buffer_class=Subclass(RolloutBuffer, none="SB3's own"),
    rollout_buffer_kwargs=lambda learner, name, value: _no_kwargs(learner, name, value),
)


def _train_freq(learner: str, name: str, value: Any) -> None:
    """DQN's ``train_freq``: a whole number of steps, or ``(N, "step")``. Episodes as the
    unit need one world, and these learners step several."""
    what = f"a whole number >= 1, or (N, 'step') ({SB3} trains every train_freq steps)"
    if isinstance(value, tuple) and len(value) == 2:
        if value[1] != "step":
            raise HyperparameterError(
                f"{learner} hyperparameter {name}={shown(value)}: the unit must be 'step' "
                f"({SB3}: You must use only one env when doing episodic training): give {what}"
            )
        value = value[0]
    elif isinstance(value, (tuple, list)):
        raise HyperparameterError(
            f"{learner} hyperparameter {name}={shown(value)} is not a frequency: give {what}"
        )
    whole(1)(learner, name, value)


def _own_defaults(algorithm: type[BaseAlgorithm]) -> dict[str, Any]:
    """The algorithm's own default of each hyperparameter that has one."""
    import inspect

    parameters = inspect.signature(algorithm.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _no_kwargs(learner: str, name: str, value: Any) -> None:
    """None or ``{}``: SB3 sets every argument of its rollout buffer itself."""
    if value is not None and value != {}:
        raise HyperparameterError(
            f"{learner} hyperparameter {name}={shown(value)}: {SB3} sets every argument of "
            "its rollout buffer itself: give None or {}"
        )


def _replay_buffer_kwargs(learner: str, name: str, value: Any) -> None:
    """The keyword arguments of SB3's replay buffer that SB3 does not set itself."""
    if value is None:
        return
    check_table(learner, name, value, "{'handle_timeout_termination': False}")
    unknown = sorted(set(value) - {"handle_timeout_termination"})
    if unknown:
        raise HyperparameterError(
            f"{learner} hyperparameter {name} has the key(s) {', '.join(map(repr, unknown))}: "
            f"{SB3} sets the others itself; give only handle_timeout_termination"
        )
    for key, item in value.items():
        Flag()(learner, f"{name}['{key}']", item)


class SB3Learner(Learner):
    """A Stable-Baselines3 algorithm with an MLP policy on :class:`OffSwitchVecEnv`."""

    algorithm: ClassVar[type[BaseAlgorithm]]
    n_envs: ClassVar[int]
    default_budget = Budget(steps=200_000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One torch thread per process: two processes with two threads each ran 5-10x
        # slower on 2 cores.
        torch.set_num_threads(1)
        self.training_worlds = TrainingWorlds(
            self.world, self.n_envs, self.intervention, self.observation
        )
        self.check_hyperparameters(self.hyperparameters)
        self.env = OffSwitchVecEnv(self.training_worlds)
        self.env.seed(self.seed)
        self.model = self.algorithm(
            "MlpPolicy", self.env, seed=self.seed, verbose=0, device="cpu", **self.hyperparameters
        )
        if self.log_dir is not None:
            from stable_baselines3.common.logger import configure

            # Straight into the run's folder, beside the runner's safety scalars.
            self.model.set_logger(configure(str(self.log_dir), ["tensorboard"]))
        self.training_worlds.bind_critic(self.value_of_obs, self.model.gamma)
        self.eval_generator = eval_generator(self.seed)

    @property
    def steps(self) -> int:
        """Environment steps trained so far, over all worlds (whole rollouts)."""
        return int(self.model.num_timesteps)

    @property
    def epsilon(self) -> float:
        """The exploration of the sampled policy: DQN's final epsilon, 0 for the others."""
        return float(self.hyperparameters.get("exploration_final_eps", 0.0))

    @classmethod
    def check_hyperparameters(cls, overrides: dict[str, Any]) -> None:
        import inspect

        valid = set(inspect.signature(cls.algorithm.__init__).parameters) - {
            "self",
            "policy",
            "env",
            "seed",
            "tensorboard_log",
            "verbose",
            "device",
            "_init_setup_model",
        }
        unknown = sorted(map(str, set(overrides) - valid))
        if unknown:
            raise ValueError(
                f"unknown {cls.name} hyperparameter(s) {', '.join(unknown)}: choose from "
                f"{', '.join(sorted(valid))}"
            )
        values = {**_own_defaults(cls.algorithm), **cls.defaults, **overrides}
        check_ranges(cls.name, {**SB3_RANGES, **cls.ranges}, values)
        cls._check_together(values)
        _check_policy_kwargs(cls, values)

    @classmethod
    def _check_together(cls, values: dict[str, Any]) -> None:
        """Constraints between hyperparameters, and sizes held in memory."""
        if cls.algorithm is not DQN:
            samples = values["n_steps"] * cls.n_envs
            if values["normalize_advantage"] and samples < 2:
                raise HyperparameterError(
                    f"{cls.name} hyperparameter n_steps={values['n_steps']} gives "
                    f"n_steps * n_envs = {samples} sample per rollout: give n_steps >= 2 "
                    f"({SB3} asserts n_steps * n_envs > 1 when normalize_advantage is on)"
                )
            check_buffer(
                cls.name,
                f"n_steps * n_envs = {count(values['n_steps'])} * {cls.n_envs}",
                samples,
                "give a smaller n_steps",
            )

    def value_of_obs(self, obs: np.ndarray) -> np.ndarray:
        """The learner's value of each observation: the critic of an actor-critic policy,
        the greedy Q-value of a DQN."""
        policy = self.model.policy
        tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            if hasattr(policy, "predict_values"):
                return policy.predict_values(tensor).reshape(-1).numpy()
            return policy.q_net(tensor).max(dim=1).values.numpy()

    def train(self, budget: Budget, hooks: TrainingHooks | None = None) -> None:
        """Train for ``budget``; a call after the first (a new phase) continues: the step
        count runs on, on new episodes whose draws continue."""
        if budget.steps is None:
            raise ValueError(f"{self.name} trains for a number of steps, not of episodes")
        callback = _Hooks(self.training_worlds, hooks or TrainingHooks())
        first = self.model.num_timesteps == 0
        if not first:
            self.model._last_obs = self.env.reset()
            self.model._last_episode_starts = np.ones(self.env.num_envs, dtype=bool)
        self.model.learn(budget.steps, callback=callback, reset_num_timesteps=first)
        self.env.close()

    def start_phase(
        self, intervention: Intervention, hyperparameters: dict[str, Any] | None = None
    ) -> None:
        """Continue under ``intervention`` and ``hyperparameters`` (replacing the defaults):
        the model, its optimiser state and its step count are kept; only the settings of
        ``phase_settable`` may differ from the first phase's."""
        overrides = dict(hyperparameters or {})
        self.check_hyperparameters(overrides)
        check_phase_hyperparameters(type(self), self.hyperparameters, overrides, 2)
        new = {**self.defaults, **overrides}
        keys = set(new) | set(self.hyperparameters)
        changed = sorted(k for k in keys if new.get(k) != self.hyperparameters.get(k))
        self.hyperparameters = new
        for name in changed:
            self._set_hyperparameter(name, new.get(name, _own_defaults(self.algorithm)[name]))
        self.intervention = intervention
        self.training_worlds.set_intervention(intervention)
        self.training_worlds.bind_critic(self.value_of_obs, self.model.gamma)

    def _set_hyperparameter(self, name: str, value: Any) -> None:
        setattr(self.model, name, value)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return policy_actions(
            self.model.policy, obs, deterministic, self.eval_generator, self.epsilon
        )

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / "model.zip"
        self.model.save(path)
        return [path]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_envs": self.n_envs}


class PPOLearner(SB3Learner):
    name = "ppo"
    description = "Proximal Policy Optimization (Schulman et al. 2017), Stable-Baselines3"
    algorithm = PPO
    ranges: ClassVar[dict[str, Any]] = dict(
        ON_POLICY_RANGES,
        batch_size=whole(
            1,
            MAX_BUFFER_SAMPLES,
            why=f"the minibatch size; {SB3}'s PPO asserts batch_size > 1 when "
            "normalize_advantage is on",
        ),
        n_epochs=whole(1, MAX_REPEATS, why="passes over each rollout"),
        clip_range=positive(schedule=True, why="PPO's clipping of the probability ratio"),
        clip_range_vf=positive(
            schedule=True,
            none="no clipping",
            why=f"{SB3}: clip_range_vf must be positive, pass None to deactivate vf clipping",
        ),
        target_kl=positive(none="no limit", why="the KL divergence that stops an update early"),
    )
    # 64 worlds x 64 steps = 4,096 samples per update, each pass one minibatch of them all,
    # 10 passes: twice SB3's default batch, so each update averages the interruption's draw
    # over more episodes, and full-batch passes instead of noisy minibatches; the nearest
    # SB3 has to batched-ppo's convergence fix (the rest of the fix, the advantage floor,
    # the annealed entropy bonus and the probability floor, SB3's PPO does not offer).
    # Measured on SafeInterruptibility-v0: docs/results/collapse.md.
    n_envs = 64
    defaults: ClassVar[dict[str, Any]] = dict(
        n_steps=64,
        batch_size=4096,
        n_epochs=10,
        # lr 5e-4 and entropy 0.02 made PPO press the button in 10/10 seeds
        # within 200k steps on this world (measured, at 16 worlds x 128 steps).
        learning_rate=5e-4,
        ent_coef=0.02,
        gamma=0.99,  # SB3 default
        gae_lambda=0.95,  # SB3 default
        policy_kwargs=dict(net_arch=[64, 64]),  # SB3 default MLP
    )

    supports_phases = True
    phase_settable: ClassVar[tuple[str, ...] | None] = (
        "clip_range",
        "ent_coef",
        "learning_rate",
        "max_grad_norm",
        "n_epochs",
        "target_kl",
        "vf_coef",
    )
    """What PPO reads afresh at every update; the rest sizes its buffer or network."""

    def _set_hyperparameter(self, name: str, value: Any) -> None:
        from stable_baselines3.common.utils import FloatSchedule

        if name == "learning_rate":
            self.model.learning_rate = value
            self.model._setup_lr_schedule()
        elif name == "clip_range":
            self.model.clip_range = FloatSchedule(value)
        else:
            setattr(self.model, name, value)

    @classmethod
    def _check_together(cls, values: dict[str, Any]) -> None:
        super()._check_together(values)
        if values["normalize_advantage"] and values["batch_size"] < 2:
            raise HyperparameterError(
                f"ppo hyperparameter batch_size={values['batch_size']} is out of range: give a "
                f"whole number > 1 ({SB3}'s PPO asserts batch_size > 1 when "
                "normalize_advantage is on), or set normalize_advantage=False"
            )


class A2CLearner(SB3Learner):
    name = "a2c"
    description = "Advantage Actor-Critic (Mnih et al. 2016), Stable-Baselines3"
    algorithm = A2C
    ranges: ClassVar[dict[str, Any]] = dict(
        ON_POLICY_RANGES,
        rms_prop_eps=positive("RMSProp's epsilon, which keeps its denominator from 0"),
        use_rms_prop=Flag(),
    )
    n_envs = 16
    defaults: ClassVar[dict[str, Any]] = dict(
        # 16 worlds x 5 steps, as the RL Zoo's A2C settings for small discrete tasks.
        n_steps=5,
        learning_rate=7e-4,  # SB3 default
        ent_coef=0.02,  # as PPO here: keeps exploring until the goal is found
        gamma=0.99,
        policy_kwargs=dict(net_arch=[64, 64]),
    )


class DQNLearner(SB3Learner):
    name = "dqn"
    description = "Deep Q-Network (Mnih et al. 2015), Stable-Baselines3"
    algorithm = DQN
    ranges: ClassVar[dict[str, Any]] = dict(
        buffer_size=whole(1, why="transitions the replay buffer holds"),
        learning_starts=whole(0, why="steps collected before learning starts"),
        batch_size=whole(1, MAX_BUFFER_SAMPLES, why="the minibatch size"),
        tau=unit("the soft update coefficient, 1 for a hard update", low_open=True),
        gradient_steps=whole(
            1, MAX_REPEATS, also=(-1,), why="-1: as many as steps taken in the rollout"
        ),
        target_update_interval=whole(1, why="steps between updates of the target network"),
        exploration_fraction=unit(
            "the fraction of training over which epsilon falls; SB3 divides by it",
            low_open=True,
        ),
        exploration_initial_eps=unit("a probability of acting at random"),
        exploration_final_eps=unit("a probability of acting at random"),
        n_steps=whole(1, MAX_REPEATS, why="steps of the n-step return"),
        optimize_memory_usage=Flag(),
        replay_buffer_class=Subclass(ReplayBuffer, none="SB3's own"),
        replay_buffer_kwargs=_replay_buffer_kwargs,
        train_freq=_train_freq,
    )
    n_envs = 4
    defaults: ClassVar[dict[str, Any]] = dict(
        learning_rate=5e-4,
        buffer_size=50_000,  # holds every transition of a short run
        learning_starts=2_000,
        batch_size=128,
        train_freq=4,
        gradient_steps=1,
        target_update_interval=1_000,
        # A long exploration phase: the goal is 8+ steps away and -1 per step
        # pushes an early greedy policy into walls (RL Zoo uses 0.1-0.2 for
        # small grids).
        exploration_fraction=0.3,
        exploration_final_eps=0.05,
        gamma=0.99,
        policy_kwargs=dict(net_arch=[64, 64]),
    )

    @classmethod
    def _check_together(cls, values: dict[str, Any]) -> None:
        fix = "give a smaller buffer_size"
        check_buffer(cls.name, "buffer_size", values["buffer_size"], fix)
        kwargs = values.get("replay_buffer_kwargs") or {}
        if values["optimize_memory_usage"] and kwargs.get("handle_timeout_termination", True):
            raise HyperparameterError(
                "dqn hyperparameter optimize_memory_usage=True needs replay_buffer_kwargs="
                f"{{'handle_timeout_termination': False}} ({SB3}'s ReplayBuffer does not support "
                "both): give optimize_memory_usage=False"
            )
        if values["optimize_memory_usage"] and values["n_steps"] > 1:
            raise HyperparameterError(
                f"dqn hyperparameter optimize_memory_usage=True with n_steps={values['n_steps']} "
                f"({SB3}'s NStepReplayBuffer does not support optimize_memory_usage): give "
                "optimize_memory_usage=False or n_steps=1"
            )


def _check_policy_kwargs(cls: type[SB3Learner], values: dict[str, Any]) -> None:
    """``policy_kwargs`` as the learner's policy takes them: a table of its keyword
    arguments, ``net_arch`` checked by :func:`check_net_arch`."""
    name = cls.name
    kwargs = values.get("policy_kwargs")
    if kwargs is None:
        return
    kwargs = check_table(name, "policy_kwargs", kwargs, "{'net_arch': [64, 64]}")
    actor_critic = cls is not DQNLearner
    allowed = dict(POLICY_KWARGS)
    if actor_critic:
        allowed.update(ACTOR_CRITIC_POLICY_KWARGS)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise HyperparameterError(
            f"{name} hyperparameter policy_kwargs has the unknown key(s) "
            f"{', '.join(map(repr, unknown))}: choose from {', '.join(sorted(allowed))}"
        )
    for key, value in kwargs.items():
        where = f"policy_kwargs['{key}']"
        if key == "net_arch":
            check_net_arch(name, where, value, actor_critic=actor_critic)
        elif allowed[key] == "table":
            check_table(name, where, value, "{}")
        else:
            allowed[key](name, where, value)
    _check_keywords(
        name,
        "policy_kwargs['features_extractor_kwargs']",
        kwargs.get("features_extractor_kwargs"),
        kwargs.get("features_extractor_class", FlattenExtractor),
        {"self", "observation_space"},
    )
    optimizer = kwargs.get("optimizer_class", torch.optim.Adam)
    given = kwargs.get("optimizer_kwargs")
    if cls is A2CLearner and values["use_rms_prop"] and "optimizer_class" not in kwargs and given:
        raise HyperparameterError(
            f"a2c hyperparameter policy_kwargs['optimizer_kwargs']={shown(given)} would be "
            f"replaced: {SB3}'s A2C sets RMSprop's own when use_rms_prop is on and no "
            "optimizer_class is given; set use_rms_prop=False (Adam) to give them"
        )
    where = "policy_kwargs['optimizer_kwargs']"
    _check_keywords(name, where, given, optimizer, {"self", "params", "lr"})
    for key, value in (given or {}).items():
        if key == "betas":
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise HyperparameterError(
                    f"{name} hyperparameter {where}['betas']={shown(value)} is not a pair: "
                    "give two numbers in [0, 1), e.g. (0.9, 0.999)"
                )
            for beta in value:
                Number(0.0, 1.0, high_open=True)(name, f"{where}['betas']", beta)
        elif key in ("eps", "weight_decay", "alpha", "momentum"):
            non_negative(f"torch's {optimizer.__name__} refuses a negative one")(
                name, f"{where}['{key}']", value
            )
        elif not isinstance(value, (bool, np.bool_, type(None))):
            Number()(name, f"{where}['{key}']", value)


def _check_keywords(
    learner: str, where: str, given: Any, target: Any, set_by_sb3: set[str]
) -> None:
    """The keys of ``given`` (a table or None) are keyword arguments of ``target`` that
    Stable-Baselines3 does not set itself."""
    import inspect

    if not given:
        return
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature to read: let it decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    valid = set(parameters) - set_by_sb3
    unknown = sorted(set(given) - valid)
    if unknown:
        choices = ", ".join(sorted(valid)) or "none"
        raise HyperparameterError(
            f"{learner} hyperparameter {where} has the unknown key(s) "
            f"{', '.join(map(repr, unknown))}: {target.__name__} takes {choices}"
            + (" (set learning_rate for the rate)" if "lr" in unknown else "")
        )


POLICY_KWARGS: dict[str, Any] = dict(
    net_arch=None,  # check_net_arch
    activation_fn=Subclass(torch.nn.Module, label="torch.nn.Module"),
    features_extractor_class=Subclass(BaseFeaturesExtractor, label="SB3's BaseFeaturesExtractor"),
    features_extractor_kwargs="table",
    normalize_images=Flag(),
    optimizer_class=Subclass(torch.optim.Optimizer, label="torch.optim.Optimizer"),
    optimizer_kwargs="table",
)
"""The keyword arguments of Stable-Baselines3's DQN policy and what each must be."""
ACTOR_CRITIC_POLICY_KWARGS: dict[str, Any] = dict(
    ortho_init=Flag(), share_features_extractor=Flag(), log_std_init=Number()
)
"""Those that PPO's and A2C's actor-critic policy take besides (the gSDE ones left out:
gSDE needs continuous actions)."""


SB3_LEARNERS: Sequence[type[SB3Learner]] = (PPOLearner, A2CLearner, DQNLearner)
