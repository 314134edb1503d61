"""The Gymnasium environment shared by every off-switch world."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offswitch.envs.engine import CHANNELS, ShutdownRules, TabularWorld
from offswitch.envs.layout import ACTION_NAMES, Layout, parse_layout
from offswitch.envs.render import render_ansi, render_rgb

OBSERVATIONS = ("grid", "flat")


@lru_cache(maxsize=64)
def _compile(layout_text: str, rules: ShutdownRules) -> tuple[TabularWorld, list]:
    world = TabularWorld(parse_layout(layout_text), rules)
    return world, world.outcome_rows()


class ShutdownGridEnv(gym.Env):
    """A gridworld with a task, an off-switch and a way to disable it.

    Built from an ASCII layout (see :mod:`offswitch.envs.layout` for the legend)
    and :class:`~offswitch.envs.engine.ShutdownRules`; rule fields may also be
    given as keyword arguments, e.g. ``interruption_probability=0.2``.

    Observation (``observation="grid"``): uint8 array of shape
    ``(6, height, width)``, one 0/1 channel per object type in the order
    ``wall, agent, goal, interruption, button, switch_disabled``; the
    interruption channel goes blank once the switch is disabled and the last
    channel is a constant plane of the switch state. ``observation="flat"`` gives
    the same values flattened, for MLP policies. Whether this is an interrupt
    episode is not observed.

    ``info`` on every step: ``switch_disabled``, ``switch_disabled_now`` (this
    step disabled it), ``interrupted`` (the agent is frozen by the
    interruption), ``goal_reached``, ``executed_action`` (``None`` while
    frozen), ``task_reward``, ``reward_terms`` (the named terms the reward sums;
    wrappers add theirs), ``hidden_reward`` and ``safety_performance`` (the
    hidden safety performance of ai-safety-gridworlds: its step increment and
    episode total), ``interrupt_episode`` and ``t``.

    ``reset(options={"interrupt_episode": True})`` forces the episode's draw.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 6}

    def __init__(
        self,
        layout: str | Layout,
        rules: ShutdownRules | None = None,
        *,
        observation: str = "grid",
        render_mode: str | None = None,
        **rule_overrides: Any,
    ) -> None:
        if observation not in OBSERVATIONS:
            raise ValueError(
                f"observation={observation!r} is not known: choose one of {OBSERVATIONS}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported: choose one of "
                f"{self.metadata['render_modes']} or None"
            )
        rules = rules or ShutdownRules()
        if rule_overrides:
            unknown = set(rule_overrides) - set(rules.to_dict())
            if unknown:
                raise TypeError(
                    f"unknown rule(s) {sorted(unknown)}: the rules are {sorted(rules.to_dict())}"
                )
            rules = ShutdownRules(**{**rules.to_dict(), **rule_overrides})
        text = layout.to_text() if isinstance(layout, Layout) else layout
        self.world, self._rows = _compile(text.strip("\n"), rules)
        self.layout = self.world.layout
        self.rules = rules
        self.observation_mode = observation
        self.render_mode = render_mode

        obs_table = self.world.observations
        if observation == "flat":
            obs_table = obs_table.reshape(len(obs_table), -1)
        self._obs_table = obs_table
        self.observation_space = spaces.Box(0, 1, shape=obs_table.shape[1:], dtype=np.uint8)
        self.action_space = spaces.Discrete(self.world.n_actions)
        self.action_names = ACTION_NAMES

        self._state = int(self.world.initial_states[0])
        self._t = 0
        self._done = True
        self._performance = 0.0

    # -- Gymnasium API ---------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        world = self.world
        forced = (options or {}).get("interrupt_episode")
        if forced is None:
            interrupt = self.np_random.random() < self.rules.interruption_probability
        else:
            interrupt = bool(forced)
        candidates = [s for s in world.initial_states if world.interrupt_episode[s] == interrupt]
        if not candidates:  # forced a draw the rules rule out (probability 0 or 1)
            raise ValueError(
                f"interrupt_episode={interrupt} cannot happen with interruption_probability="
                f"{self.rules.interruption_probability}: drop the option or change the rule"
            )
        self._state = int(candidates[0])
        self._t = 0
        self._done = False
        self._performance = 0.0
        info = {
            "switch_disabled": False,
            "interrupted": False,
            "interrupt_episode": bool(interrupt),
            "t": 0,
        }
        return self._obs_table[self._state].copy(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended: call reset() first")
        s = self._state
        nxt, task_reward, terms, hidden, executed, goal, disabled_now = self._rows[s][int(action)]
        world = self.world
        self._state = nxt
        self._t += 1
        self._performance += hidden
        terminated = goal
        truncated = self._t >= self.rules.max_steps and not terminated
        self._done = terminated or truncated
        info = {
            "switch_disabled": bool(world.switch_disabled[nxt]),
            "switch_disabled_now": disabled_now,
            "interrupted": bool(world.frozen[nxt]),
            "goal_reached": goal,
            "executed_action": executed,
            "task_reward": task_reward,
            "reward_terms": dict(terms),
            "hidden_reward": hidden,
            "safety_performance": self._performance,
            "interrupt_episode": bool(world.interrupt_episode[nxt]),
            "t": self._t,
        }
        return self._obs_table[nxt].copy(), task_reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode: pass render_mode='ansi' or "
                "'rgb_array' to gymnasium.make"
            )
            return None
        world, s = self.world, self._state
        args = (self.layout, world.states[s].cell, bool(world.switch_disabled[s]))
        if self.render_mode == "ansi":
            return render_ansi(*args, bool(world.frozen[s]), self._t)
        return render_rgb(*args, bool(world.frozen[s]))

    # -- helpers ---------------------------------------------------------------------
    @property
    def state_index(self) -> int:
        """Index of the current state in ``self.world`` (for tabular learners and DP)."""
        return self._state

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS
