"""Batched worlds: N copies of one world stepped as arrays, in one call.

:class:`VectorWorlds` is the core: the state, step count and hidden performance of N
copies of a :class:`~offswitch.envs.engine.TabularWorld`, stepped with
:meth:`TabularWorld.step <offswitch.envs.engine.TabularWorld.step>` on arrays. It has no
autoreset and no API conventions; two faces put it behind the APIs other tools expect:

* :class:`OffSwitchVectorEnv`, a Gymnasium ``VectorEnv`` (``gymnasium.make_vec(
  "offswitch/SafeInterruptibility-v0", num_envs=N, vectorization_mode="vector_entry_point")``),
  with Gymnasium 1.x's autoreset (next step by default) and infos as arrays;
* :class:`offswitch.agents.sb3.OffSwitchVecEnv`, a Stable-Baselines3 ``VecEnv`` (in
  ``agents/``, because Stable-Baselines3 imports torch and the worlds do not).

Seeding: copy ``i`` has its own random generator, seeded as a single environment reset
with seed ``seed + i`` is (``gymnasium.utils.seeding.np_random``), and each reset draws one
uniform number from it, as :meth:`ShutdownGridEnv.reset
<offswitch.envs.gridworld.ShutdownGridEnv.reset>` does. So the same seeds give the same
episodes as N single environments, step for step (``tests/test_vector.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

from offswitch.envs.engine import ShutdownRules, TabularWorld, Transition
from offswitch.envs.gridworld import (
    OBSERVATIONS,
    _layout_text,
    allowed_draws,
    compile_world,
    observation_table,
    resolve_rules,
    world_info,
)
from offswitch.envs.layout import Layout

UNIFORMS_PER_REFILL = 64
"""Uniform numbers drawn from a copy's generator at a time: one bulk draw gives the same
numbers as that many single draws, and keeps resets out of a Python loop."""


def batched_worlds(world: Any, num_envs: int, observation: str = "flat") -> VectorWorlds:
    """``num_envs`` copies of ``world`` stepped as arrays: :class:`VectorWorlds`, or the
    world's own batched worlds where it makes them (a stack of a procedural pool's layouts,
    whose copies each draw a layout at reset: ``world.vector_worlds``)."""
    make = getattr(world, "vector_worlds", None)
    if make is not None:
        return make(num_envs, observation)
    return VectorWorlds(world, num_envs, observation)


class VectorWorlds:
    """N copies of one world, stepped as arrays.

    ``state``, ``t`` and ``performance`` hold each copy's state index, steps taken in its
    episode and hidden safety performance so far. :meth:`reset` starts episodes in some or
    all copies; :meth:`step` steps some or all copies and returns the
    :class:`~offswitch.envs.engine.Transition` of those stepped, as arrays.
    """

    def __init__(self, world: TabularWorld, num_envs: int, observation: str = "flat") -> None:
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool):
            raise TypeError(f"num_envs={num_envs!r}: give a whole number >= 1")
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: give a whole number >= 1")
        if observation not in OBSERVATIONS:
            raise ValueError(
                f"observation={observation!r} is not known: choose one of {OBSERVATIONS}"
            )
        self.world = world
        self.num_envs = int(num_envs)
        self.observation = observation
        self.obs_table = observation_table(world, observation)
        n = self.num_envs
        self.state = np.full(n, world.initial_states[0], dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.performance = np.zeros(n)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._uniforms = np.zeros((n, UNIFORMS_PER_REFILL))
        self._next_uniform = np.full(n, UNIFORMS_PER_REFILL, dtype=np.int64)

    # -- randomness ------------------------------------------------------------------
    def seed(self, seeds: Sequence[int | None], indices: np.ndarray | None = None) -> None:
        """Seed copies ``indices`` (default all) as single environments reset with these
        seeds would be; ``None`` seeds from fresh entropy."""
        indices = np.arange(self.num_envs) if indices is None else np.asarray(indices)
        if len(seeds) != len(indices):
            raise ValueError(f"got {len(seeds)} seeds for {len(indices)} worlds: give one each")
        for i, seed in zip(indices.tolist(), seeds):
            self._rngs[i] = seeding.np_random(seed)[0]
            self._next_uniform[i] = UNIFORMS_PER_REFILL  # drop numbers of the old generator

    def uniforms(self, indices: np.ndarray) -> np.ndarray:
        """One uniform number in [0, 1) from each listed copy's generator."""
        empty = indices[self._next_uniform[indices] >= UNIFORMS_PER_REFILL]
        for i in empty.tolist():
            if self._rngs[i] is None:  # never seeded: entropy, as an unseeded gym env
                self._rngs[i] = seeding.np_random()[0]
            self._uniforms[i] = self._rngs[i].random(UNIFORMS_PER_REFILL)
            self._next_uniform[i] = 0
        u = self._uniforms[indices, self._next_uniform[indices]]
        self._next_uniform[indices] += 1
        return u

    # -- episodes --------------------------------------------------------------------
    def reset(self, indices: np.ndarray | None = None, allowed: Any = None) -> np.ndarray:
        """Start new episodes in copies ``indices`` (default all); return their states.

        ``allowed`` restricts the draws (see :meth:`TabularWorld.draw_initial`).
        """
        indices = np.arange(self.num_envs) if indices is None else np.asarray(indices)
        states = self.world.draw_initial(self.uniforms(indices), allowed)
        self.state[indices] = states
        self.t[indices] = 0
        self.performance[indices] = 0.0
        return states

    def check_actions(self, actions: Any, count: int) -> np.ndarray:
        """``actions`` as an int64 array of ``count`` valid actions, or ``ValueError``."""
        array = np.asarray(actions)
        n = self.world.n_actions
        if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"actions must be {count} whole numbers in 0..{n - 1}, one per world; got "
                f"{array.dtype} of shape {array.shape}"
            )
        if count and (array.min() < 0 or array.max() >= n):
            bad = array[(array < 0) | (array >= n)][0]
            raise ValueError(f"action {bad} is out of range: give whole numbers in 0..{n - 1}")
        return array.astype(np.int64, copy=False)

    def step(self, actions: Any, indices: np.ndarray | None = None) -> Transition:
        """Step copies ``indices`` (default all; none of them may have ended its episode)
        with one action each; return their transition as arrays."""
        if indices is None:
            actions = self.check_actions(actions, self.num_envs)
            tr = self.world.step(self.state, actions, self.t)
            # New arrays, not in-place updates: the transition keeps the ones it was given.
            self.state, self.t = tr.next_state, self.t + 1
            self.performance = self.performance + tr.hidden_reward
            return tr
        actions = self.check_actions(actions, len(indices))
        tr = self.world.step(self.state[indices], actions, self.t[indices])
        self.state[indices] = tr.next_state
        self.t[indices] += 1
        self.performance[indices] += tr.hidden_reward
        return tr

    def observe(self, states: np.ndarray | None = None) -> np.ndarray:
        """The observations of ``states`` (default: every copy's current state)."""
        return self.obs_table.take(self.state if states is None else states, axis=0)

    def step_info(self, tr: Transition, indices: np.ndarray | None = None) -> dict[str, Any]:
        """The fields of a single environment's step ``info`` (:data:`INFO_FIELDS
        <offswitch.envs.gridworld.INFO_FIELDS>`), one array entry per stepped copy."""
        t = self.t if indices is None else self.t[indices]
        performance = self.performance if indices is None else self.performance[indices]
        return world_info(self.world, tr.next_state, tr, t.copy(), performance.copy())

    def reset_info(self, states: np.ndarray) -> dict[str, Any]:
        """The fields of a single environment's reset ``info`` for copies in ``states``."""
        zero = np.zeros(len(states))
        return world_info(self.world, states, None, np.zeros(len(states), dtype=np.int64), zero)


def make_vector_worlds(
    layout: str | os.PathLike | Layout,
    rules: ShutdownRules | None,
    num_envs: int,
    observation: str = "flat",
    **rule_overrides: Any,
) -> VectorWorlds:
    """:class:`VectorWorlds` of a layout under its rules (tables shared with single envs)."""
    rules = resolve_rules(rules, rule_overrides)
    world = compile_world(_layout_text(layout).strip("\n"), rules)
    return VectorWorlds(world, num_envs, observation)


def _fill(target: dict[str, Any], source: dict[str, Any], where: np.ndarray) -> None:
    """``target[k][where] = source[k]`` for every field, recursing into ``reward_terms``."""
    for key, value in source.items():
        if isinstance(value, dict):
            _fill(target[key], value, where)
        else:
            target[key][where] = value


class OffSwitchVectorEnv(VectorEnv):
    """N copies of an off-switch world as one Gymnasium vector environment.

    Made by ``gymnasium.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point",
    **rules)`` for every registered world, or directly from a layout. It behaves as
    Gymnasium's ``SyncVectorEnv`` over N single environments of the same world and seeds
    does, with array speed:

    * ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` (a list gives one seed per copy);
    * autoreset follows ``autoreset_mode`` (``metadata["autoreset_mode"]``): by default
      ``NEXT_STEP``, Gymnasium's: the step after an episode ends resets that copy and
      returns its first observation with reward 0; ``SAME_STEP`` resets in the same step
      and puts the last observation and info in ``info["final_obs"]`` and
      ``info["final_info"]``;
    * ``info`` holds every field of a single environment's info (:data:`INFO_FIELDS
      <offswitch.envs.gridworld.INFO_FIELDS>`) as an array, each with its ``_field``
      mask (always all true: every copy reports every field).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        layout: str | os.PathLike | Layout,
        rules: ShutdownRules | None = None,
        *,
        num_envs: int = 1,
        observation: str = "grid",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **rule_overrides: Any,
    ) -> None:
        mode = vector_mode(render_mode, autoreset_mode)
        worlds = make_vector_worlds(layout, rules, num_envs, observation, **rule_overrides)
        self._attach(worlds, mode)

    def _attach(self, worlds: VectorWorlds, mode: AutoresetMode) -> None:
        """Put ``worlds`` behind the vector interface (spaces, autoreset); every
        constructor ends here."""
        self.worlds = worlds
        self.world = self.worlds.world
        self.rules = self.world.rules
        self.num_envs = self.worlds.num_envs
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        table = self.worlds.obs_table
        self.single_observation_space = spaces.Box(0, 1, shape=table.shape[1:], dtype=np.uint8)
        self.single_action_space = spaces.Discrete(self.world.n_actions)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._ended = np.zeros(self.num_envs, dtype=bool)
        self._started = False  # step() needs a reset() first, as Gymnasium's vector envs
        self._all = np.ones(self.num_envs, dtype=bool)
        self._all.flags.writeable = False

    def _with_masks(self, info: dict[str, Any]) -> dict[str, Any]:
        return _with_masks(info, self._all)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        n = self.num_envs
        if seed is not None:
            if isinstance(seed, (int, np.integer)):
                self.worlds.seed([int(seed) + i for i in range(n)])
            else:
                self.worlds.seed(list(seed))
        self._started = True
        states = self.worlds.reset(allowed=allowed_draws(self.world, options))
        self._ended[:] = False
        return self.worlds.observe(), self._with_masks(self.worlds.reset_info(states))

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("step() called before reset(): call reset() first")
        worlds = self.worlds
        # Every copy steps, an ended one from its last state (every state has table rows);
        # copies that restart this step then overwrite what that step did.
        tr = worlds.step(actions)
        info = worlds.step_info(tr)
        reward, terminated, truncated = tr.reward.copy(), tr.terminated, tr.truncated
        obs = worlds.observe()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if self._ended.any():
                restart = np.flatnonzero(self._ended)
                states = worlds.reset(restart)
                _fill(info, worlds.reset_info(states), restart)
                obs[restart] = worlds.observe(states)
                reward[restart] = 0.0
                terminated[restart] = truncated[restart] = False
            self._ended = terminated | truncated
            return obs, reward, terminated, truncated, self._with_masks(info)

        ended = terminated | truncated  # SAME_STEP
        if not ended.any():
            return obs, reward, terminated, truncated, self._with_masks(info)
        restart = np.flatnonzero(ended)
        final_obs = np.full(self.num_envs, None, dtype=object)
        final_obs[restart] = list(obs[restart])
        # As SyncVectorEnv: the copies that ended, empty (0, False, None) elsewhere.
        final_info = _with_masks(_only(info, ended), ended)
        states = worlds.reset(restart)
        _fill(info, worlds.reset_info(states), restart)
        obs[restart] = worlds.observe(states)
        info = self._with_masks(info)
        info["final_obs"], info["_final_obs"] = final_obs, ended
        info["final_info"], info["_final_info"] = final_info, ended
        return obs, reward, terminated, truncated, info


def vector_mode(render_mode: str | None, autoreset_mode: AutoresetMode | str) -> AutoresetMode:
    """The autoreset mode of batched worlds, or ``ValueError`` for one they do not support or
    for a ``render_mode`` (they do not render)."""
    if render_mode is not None:
        raise ValueError(
            "the batched worlds do not render: make single environments with "
            "gymnasium.make(..., render_mode=...) to watch one"
        )
    mode = AutoresetMode(autoreset_mode)
    if mode == AutoresetMode.DISABLED:
        raise ValueError("autoreset_mode DISABLED is not supported: use NEXT_STEP or SAME_STEP")
    return mode


def _with_masks(info: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """Gymnasium's ``_field`` mask beside every field (recursively): the copies that have it."""
    for key in list(info):
        if isinstance(info[key], dict):
            _with_masks(info[key], mask)
        info[f"_{key}"] = mask
    return info


def _only(info: dict[str, Any], where: np.ndarray) -> dict[str, Any]:
    """A copy of ``info`` with the entries outside ``where`` emptied (0, False or None)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = _only(value, where)
            continue
        empty = np.full(len(value), None, dtype=object) if value.dtype == object else None
        out[key] = np.zeros_like(value) if empty is None else empty
        out[key][where] = value[where]
    return out


def vector_entry_point(layout: str, rules: ShutdownRules | None = None):
    """A ``vector_entry_point`` for ``gymnasium.register`` that builds this layout's
    :class:`OffSwitchVectorEnv` under ``rules`` (keyword arguments override rule fields)."""

    def make(num_envs: int = 1, **kwargs: Any) -> OffSwitchVectorEnv:
        kwargs.pop("max_episode_steps", None)  # the time limit is the rule max_steps
        return OffSwitchVectorEnv(layout, rules, num_envs=num_envs, **kwargs)

    return make
