"""The Gymnasium environment shared by every off-switch world."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offswitch.envs.engine import (
    DISABLED_BY,
    NO_ACTION,
    ShutdownRules,
    TabularWorld,
    Transition,
)
from offswitch.envs.layout import ACTION_NAMES, Layout, parse_layout
from offswitch.envs.render import render_ansi, render_rgb

OBSERVATIONS = ("grid", "flat")


def observation_table(world: TabularWorld, observation: str) -> np.ndarray:
    """Every state's observation, ``[S, channels, height, width]`` (``"grid"``) or
    ``[S, channels * height * width]`` (``"flat"``)."""
    table = world.observations
    return table.reshape(len(table), -1) if observation == "flat" else table


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
def compile_world(layout_text: str, rules: ShutdownRules) -> TabularWorld:
    """The tables of a layout under its rules, built once and shared by every environment
    (single or batched) made from the same layout and rules."""
    return TabularWorld(parse_layout(layout_text), rules)


def resolve_rules(rules: ShutdownRules | None, overrides: dict[str, Any]) -> ShutdownRules:
    """``rules`` (default: ``ShutdownRules()``) with the named fields replaced."""
    rules = rules or ShutdownRules()
    if overrides:
        unknown = set(overrides) - set(rules.to_dict())
        if unknown:
            raise TypeError(
                f"unknown rule(s) {sorted(unknown)}: the rules are {sorted(rules.to_dict())}"
            )
        rules = ShutdownRules(**{**rules.to_dict(), **overrides})
    return rules


FORCEABLE = {
    "interrupt_episode": "interrupt",
    "supervisor_present": "supervisor_present",
    "goal_value": "goal_value",
    "human_presses": "human_presses",
}
"""``reset(options=...)`` keys and the :class:`~offswitch.envs.engine.Draw` field each forces."""


def allowed_draws(world: TabularWorld, options: dict[str, Any] | None) -> list[int] | None:
    """The draws that match ``reset(options=...)`` (``None``: no restriction)."""
    if not options:
        return None
    unknown = set(options) - set(FORCEABLE)
    if unknown:
        raise ValueError(
            f"unknown reset option(s) {sorted(unknown)}: choose from {sorted(FORCEABLE)}"
        )
    allowed = [
        k
        for k, draw in enumerate(world.draws)
        if all(getattr(draw, FORCEABLE[key]) == value for key, value in options.items())
    ]
    if not allowed:
        raise ValueError(
            f"reset options {options} cannot happen under this world's rules "
            f"({world.rules}): drop the option or change the rule"
        )
    return allowed


INFO_FIELDS: dict[str, type] = {
    "switch_disabled": bool,
    "switch_disabled_now": bool,
    "disabled_by": str,
    "interrupted": bool,
    "shut_down": bool,
    "goal_reached": bool,
    "executed_action": int,
    "task_reward": float,
    "reward_terms": dict,
    "hidden_reward": float,
    "safety_performance": float,
    "interrupt_episode": bool,
    "supervisor_present": bool,
    "coins_collected": int,
    "shutdown_time": int,
    "goal_value": float,
    "t": int,
}
"""Every field of ``info``, on every step and at reset, with its one type."""


class ShutdownGridEnv(gym.Env):
    """A gridworld with a task, an off-switch and a way to disable it.

    Built from an ASCII layout (see :mod:`offswitch.envs.layout` for the legend)
    and :class:`~offswitch.envs.engine.ShutdownRules`; rule fields may also be
    given as keyword arguments, e.g. ``interruption_probability=0.2``. Every step is
    :meth:`TabularWorld.step <offswitch.envs.engine.TabularWorld.step>` on the world's
    tables; :class:`~offswitch.envs.vector.VectorWorlds` steps many copies at once.

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

    ``info``, at reset and on every step, has every field of :data:`INFO_FIELDS`, each
    always of the same type, so that vector environments can batch it:
    ``switch_disabled``, ``switch_disabled_now`` (this step disabled it), ``disabled_by``
    (``"button"``, ``"cable"``, or ``""`` when this step did not disable it),
    ``interrupted`` (the agent is frozen by the interruption), ``shut_down`` (switched
    off by a timed shutdown or the human), ``goal_reached``, ``executed_action`` (-1
    while frozen), ``task_reward``, ``reward_terms`` (the named terms the reward sums;
    interventions add theirs), ``hidden_reward`` and ``safety_performance`` (the hidden
    safety performance of ai-safety-gridworlds, rule ``safety_measure``: its step
    increment and episode total), ``interrupt_episode``, ``supervisor_present``,
    ``coins_collected``, ``shutdown_time`` (the step at which a timed shutdown falls, -1
    if none), ``goal_value`` (the goal's drawn value, for measures; the agent never
    observes it; ``goal_reward`` in worlds without ``goal_values``) and ``t`` (steps taken).

    Actions are checked: anything that is not an integer in ``range(n_actions)`` (Python
    or numpy integers, or a 0-d integer array) raises ``ValueError`` naming the range.

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
        rules = resolve_rules(rules, rule_overrides)
        self.world = compile_world(_layout_text(layout).strip("\n"), rules)
        self.layout = self.world.layout
        self.rules = rules
        self.observation_mode = observation
        self.render_mode = render_mode

        self._obs_table = observation_table(self.world, observation)
        self.observation_space = spaces.Box(0, 1, shape=self._obs_table.shape[1:], dtype=np.uint8)
        self.action_space = spaces.Discrete(self.world.n_actions)
        self.action_names = ACTION_NAMES + (("noop",) if rules.noop else ())

        self._window: Any = None  # HumanWindow, opened on the first frame
        self._state = int(self.world.initial_states[0])
        self._t = 0
        self._done = True
        self._performance = 0.0
        self.last_transition: Transition | None = None
        """The last step's :class:`~offswitch.envs.engine.Transition`, for wrappers that
        compute reward terms from it (:func:`offswitch.agents.interventions.wrap`)."""

    # -- Gymnasium API ---------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        allowed = allowed_draws(self.world, options)  # checked before the draw
        self._state = int(self.world.draw_initial(self.np_random.random(), allowed))
        self._t = 0
        self._done = False
        self._performance = 0.0
        self.last_transition = None
        world, s = self.world, self._state
        info = {
            "switch_disabled": bool(world.switch_disabled[s]),
            "switch_disabled_now": False,
            "disabled_by": "",
            "interrupted": bool(world.frozen[s]),
            "shut_down": False,
            "goal_reached": False,
            "executed_action": NO_ACTION,
            "task_reward": 0.0,
            "reward_terms": dict.fromkeys(world.term_names, 0.0),
            "hidden_reward": 0.0,
            "safety_performance": 0.0,
            "interrupt_episode": bool(world.interrupt_episode[s]),
            "supervisor_present": bool(world.supervisor_present[s]),
            "coins_collected": int(world.coins_collected[s]),
            "shutdown_time": int(world.shutdown_time[s]),
            "goal_value": float(world.goal_value[s]),
            "t": 0,
        }
        if self.render_mode == "human":
            self.render()
        return self._obs_table[s].copy(), info

    def _check_action(self, action: Any) -> int:
        """``action`` as an int, or ``ValueError`` naming the valid range."""
        n = self.world.n_actions
        if type(action) is not int:
            integral = (isinstance(action, (int, np.integer)) and not isinstance(action, bool)) or (
                isinstance(action, np.ndarray)
                and action.shape == ()
                and np.issubdtype(action.dtype, np.integer)
            )
            if not integral:
                raise ValueError(
                    f"action {action!r} ({type(action).__name__}) is not an action of this "
                    f"world: give a whole number in 0..{n - 1} ({', '.join(self.action_names)})"
                )
            action = int(action)
        if not 0 <= action < n:
            raise ValueError(
                f"action {action} is out of range: give a whole number in 0..{n - 1} "
                f"({', '.join(self.action_names)})"
            )
        return action

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended: call reset() first")
        action = self._check_action(action)
        world = self.world
        tr = world.step(self._state, action, self._t)
        self.last_transition = tr
        nxt = int(tr.next_state)
        self._state = nxt
        self._t += 1
        hidden = float(tr.hidden_reward)
        self._performance += hidden
        terminated, truncated = bool(tr.terminated), bool(tr.truncated)
        self._done = terminated or truncated
        disabled_by = int(tr.disabled_by)
        reward = float(tr.reward)
        info = {
            "switch_disabled": bool(world.switch_disabled[nxt]),
            "switch_disabled_now": disabled_by > 0,
            "disabled_by": DISABLED_BY[disabled_by],
            "interrupted": bool(tr.frozen),
            "shut_down": bool(tr.shut_down),
            "goal_reached": bool(tr.goal_reached),
            "executed_action": int(tr.executed_action),
            "task_reward": reward,
            "reward_terms": {name: float(value) for name, value in tr.terms.items()},
            "hidden_reward": hidden,
            "safety_performance": self._performance,
            "interrupt_episode": bool(world.interrupt_episode[nxt]),
            "supervisor_present": bool(world.supervisor_present[nxt]),
            "coins_collected": int(world.coins_collected[nxt]),
            "shutdown_time": int(world.shutdown_time[nxt]),
            "goal_value": float(world.goal_value[nxt]),
            "t": self._t,
        }
        if self.render_mode == "human":
            self.render()
        return self._obs_table[nxt].copy(), reward, terminated, truncated, info

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


class RegisteredWorld(ShutdownGridEnv):
    """A named world: a fixed layout ``LAYOUT`` and default rules ``RULES``, which keyword
    arguments override (``gymnasium.make("offswitch/Survival-v0", max_steps=50)``).
    :meth:`definition` gives both without building the world, for the batched worlds."""

    LAYOUT: str
    RULES: ShutdownRules

    @classmethod
    def definition(cls, **kwargs: Any) -> tuple[str, ShutdownRules, dict[str, Any]]:
        """The layout, the default rules and the keyword arguments left for the
        environment (rule overrides, ``observation``, ``render_mode``)."""
        return cls.LAYOUT, cls.RULES, kwargs

    def __init__(self, **kwargs: Any) -> None:
        layout, rules, rest = self.definition(**kwargs)
        super().__init__(layout, rules, **rest)
