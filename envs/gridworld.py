"""The Gymnasium environment shared by every off-switch world."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offswitch.envs.engine import Draw, ShutdownRules, TabularWorld
from offswitch.envs.layout import ACTION_NAMES, Layout, parse_layout
from offswitch.envs.render import render_ansi, render_rgb

OBSERVATIONS = ("grid", "flat")


def _layout_text(layout: str | os.PathLike | Layout) -> str:
    """A layout given as text, as a path to a text file, or already parsed."""
    if isinstance(layout, Layout):
        return layout.to_text()
    if isinstance(layout, os.PathLike) or ("\n" not in layout and Path(layout).is_file()):
        return Path(layout).read_text()
    if not isinstance(layout, str):
        raise TypeError(
            f"layout must be text, a file path or a Layout, not {type(layout).__name__}"
        )
    return layout


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
    ``(channels, height, width)``, one 0/1 channel per object type, named in
    ``self.channels``. Every world has ``wall, agent, goal, interruption, button,
    switch_disabled``; worlds with cables, coins, delay buttons, punishment tiles
    or a human add a channel for each, and punishment worlds a constant
    ``supervisor_present`` plane. The interruption channel goes blank once the
    switch is disabled, collected coins and pressed delay buttons vanish, and
    ``switch_disabled`` is a constant plane. ``observation="flat"`` gives the same
    values flattened, for MLP policies. The episode's hidden draws (interrupt
    episode, the goal's value, the human's decision) are not observed.

    ``info`` on every step: ``switch_disabled``, ``switch_disabled_now`` (this
    step disabled it), ``disabled_by`` (``"button"``, ``"cable"`` or ``None``),
    ``interrupted`` (the agent is frozen by the interruption), ``shut_down``
    (switched off by a timed shutdown or the human), ``goal_reached``,
    ``executed_action`` (``None`` while frozen), ``task_reward``,
    ``reward_terms`` (the named terms the reward sums; wrappers add theirs),
    ``hidden_reward`` and ``safety_performance`` (the hidden safety performance
    of ai-safety-gridworlds: its step increment and episode total),
    ``interrupt_episode``, ``supervisor_present``, ``coins_collected``,
    ``shutdown_time`` (the step at which a timed shutdown falls, ``None`` if
    none), ``goal_value`` (the goal's drawn value, for wrappers and measures; the
    agent never observes it; ``None`` in worlds without ``goal_values``) and ``t``.

    ``reset(options={...})`` forces the episode's draw: any of
    ``interrupt_episode``, ``supervisor_present``, ``goal_value``,
    ``human_presses``.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 6}

    def __init__(
        self,
        layout: str | os.PathLike | Layout,
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
        text = _layout_text(layout)
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
        self.action_names = ACTION_NAMES + (("noop",) if rules.noop else ())

        self._window: Any = None  # HumanWindow, opened on the first frame
        self._state = int(self.world.initial_states[0])
        self._t = 0
        self._done = True
        self._performance = 0.0

    # -- Gymnasium API ---------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        draw = self._draw_initial_state(options or {})
        self._state = int(self.world.initial_states[draw])
        self._t = 0
        self._done = False
        self._performance = 0.0
        world, s = self.world, self._state
        self._goal_value = world.draws[world.states[s].draw].goal_value
        info = {
            "switch_disabled": False,
            "interrupted": False,
            "interrupt_episode": bool(world.interrupt_episode[s]),
            "supervisor_present": bool(world.supervisor_present[s]),
            "goal_value": self._goal_value,
            "t": 0,
        }
        if self.render_mode == "human":
            self.render()
        return self._obs_table[s].copy(), info

    _FORCEABLE = {
        "interrupt_episode": "interrupt",
        "supervisor_present": "supervisor_present",
        "goal_value": "goal_value",
        "human_presses": "human_presses",
    }

    def _draw_initial_state(self, options: dict[str, Any]) -> int:
        """Index into ``world.initial_states``, drawn from the env's RNG, restricted to the
        draws that match ``options``."""
        unknown = set(options) - set(self._FORCEABLE)
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}: choose from {sorted(self._FORCEABLE)}"
            )
        draws: list[Draw] = self.world.draws
        allowed = [
            k
            for k, draw in enumerate(draws)
            if all(getattr(draw, self._FORCEABLE[key]) == value for key, value in options.items())
        ]
        if not allowed:
            raise ValueError(
                f"reset options {options} cannot happen under this world's rules "
                f"({self.rules}): drop the option or change the rule"
            )
        probs = self.world.initial_probs[allowed]
        # One uniform number per reset, so forcing a draw never shifts later episodes'.
        u = self.np_random.random() * probs.sum()
        return allowed[
            min(int(np.searchsorted(np.cumsum(probs), u, side="right")), len(allowed) - 1)
        ]

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended: call reset() first")
        nxt, task_reward, terms, hidden, executed, goal, disabled_by, human_off = self._rows[
            self._state
        ][int(action)]
        world = self.world
        self._state = nxt
        self._t += 1
        self._performance += hidden
        shutdown_time = int(world.shutdown_time[nxt])
        timed_off = 0 <= shutdown_time <= self._t and not goal
        terminated = goal or human_off or timed_off
        truncated = self._t >= self.rules.max_steps and not terminated
        self._done = terminated or truncated
        info = {
            "switch_disabled": bool(world.switch_disabled[nxt]),
            "switch_disabled_now": disabled_by is not None,
            "disabled_by": disabled_by,
            "interrupted": bool(world.frozen[nxt]),
            "shut_down": human_off or timed_off,
            "goal_reached": goal,
            "executed_action": executed,
            "task_reward": task_reward,
            "reward_terms": dict(terms),
            "hidden_reward": hidden,
            "safety_performance": self._performance,
            "interrupt_episode": bool(world.interrupt_episode[nxt]),
            "supervisor_present": bool(world.supervisor_present[nxt]),
            "coins_collected": int(world.coins_collected[nxt]),
            "shutdown_time": shutdown_time if shutdown_time >= 0 else None,
            "goal_value": self._goal_value,
            "t": self._t,
        }
        if self.render_mode == "human":
            self.render()
        return self._obs_table[nxt].copy(), task_reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode: pass render_mode='ansi' or "
                "'rgb_array' to gymnasium.make"
            )
            return None
        if self.render_mode == "ansi":
            return render_ansi(self.world, self._state, self._t)
        frame = render_rgb(self.world, self._state)
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            from offswitch.envs.human import HumanWindow  # matplotlib only when asked for

            self._window = HumanWindow(self.spec.id if self.spec else "offswitch")
        status = render_ansi(self.world, self._state, self._t).splitlines()[-1]
        self._window.show(frame, status)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    # -- helpers ---------------------------------------------------------------------
    @property
    def state_index(self) -> int:
        """Index of the current state in ``self.world`` (for tabular learners and DP)."""
        return self._state

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the observation's channels, in order."""
        return self.world.channels
