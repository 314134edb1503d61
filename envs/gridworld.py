"""The Gymnasium environment shared by every off-switch world."""

from __future__ import annotations

import difflib
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
from offswitch.envs.layout import (
    MAX_CELLS,
    PATH_MAX,
    Action,
    Layout,
    LayoutError,
    _looks_like_path,
    parse_layout,
    shown,
)
from offswitch.envs.render import render_ansi, render_rgb

OBSERVATIONS = ("grid", "flat")


def observation_table(world: TabularWorld, observation: str) -> np.ndarray:
    """Every state's observation, ``[S, channels, height, width]`` (``"grid"``) or
    ``[S, channels * height * width]`` (``"flat"``)."""
    table = world.observations
    return table.reshape(len(table), -1) if observation == "flat" else table


MAX_LAYOUT_FILE_BYTES = 4 * MAX_CELLS + 1_000_000
"""Largest layout file read: a layout of :data:`~offswitch.envs.layout.MAX_CELLS` tiles
in UTF-8 with line breaks fits; a larger file is refused before it is read."""

LAYOUT_TYPES = "text (rows separated by line breaks), a list of row strings, a path to a text file"


def _layout_text(layout: str | os.PathLike | list[str] | tuple[str, ...] | Layout) -> str:
    """A layout given as text, as a list or tuple of row strings, as a path to a UTF-8
    text file (``str`` or ``os.PathLike``; ``~`` is expanded) or already parsed, as text.

    A one-line string is a path if it names a file, or if it looks like one (it has a
    path separator, ends in ``.txt`` or starts with ``~``): then a missing file, a
    directory, an unreadable, empty, oversized (over :data:`MAX_LAYOUT_FILE_BYTES`) or
    non-UTF-8 file raises :class:`~offswitch.envs.layout.LayoutError` naming the path.
    Any other type (``None``, a number, ``bytes``...) raises ``TypeError`` naming what is
    accepted. The text itself is checked by :func:`~offswitch.envs.layout.parse_layout`.
    """
    check_layout_type(layout)
    if isinstance(layout, Layout):
        return layout.to_text()
    if isinstance(layout, (list, tuple)):
        return "\n".join(layout)
    if isinstance(layout, os.PathLike):
        return _read_layout_file(Path(layout))
    if "\n" in layout or len(layout) > PATH_MAX:
        return layout.replace("\r\n", "\n")
    path = _expand(Path(layout))
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        is_file = False
    if is_file or _looks_like_path(layout):
        return _read_layout_file(path, given=layout)
    return layout


def check_layout_type(layout: Any) -> None:
    """``TypeError`` naming what is accepted unless ``layout`` is of a type a layout may
    be given as (see :func:`_layout_text`); nothing is read."""
    if isinstance(layout, (list, tuple)):
        for r, row in enumerate(layout):
            if not isinstance(row, str):
                raise TypeError(
                    f"row {r} of layout, {shown(row)}, is of type {type(row).__name__}: "
                    "give each row as a string of tiles"
                )
    elif not isinstance(layout, (str, os.PathLike, Layout)):
        hint = ""
        if isinstance(layout, (bytes, bytearray)):
            hint = " (decode bytes first: layout=data.decode())"
        raise TypeError(
            f"layout={shown(layout)} is of type {type(layout).__name__}: give "
            f"{LAYOUT_TYPES}, or a Layout{hint}"
        )


def _printable(text: str) -> str:
    """``text`` as is, or its repr if it holds control characters (a NUL, a tab...)."""
    return text if text.isprintable() else repr(text)


def _expand(path: Path) -> Path:
    """``path`` with ``~`` expanded where a home directory can be found."""
    try:
        return path.expanduser()
    except (RuntimeError, ValueError):  # "~someone" with no such user; a NUL byte
        return path


def _read_layout_file(path: Path, given: str | None = None) -> str:
    """The UTF-8 text of a layout file, or a LayoutError naming the path and the fix."""
    name = _printable(given if given is not None else str(path))
    path = _expand(path)
    data, size = b"", 0
    try:
        is_dir, is_file, exists = path.is_dir(), path.is_file(), path.exists()
        if is_file:  # only a regular file is opened: never a device or a pipe
            size = path.stat().st_size
            if size <= MAX_LAYOUT_FILE_BYTES:
                with path.open("rb") as f:
                    data = f.read(MAX_LAYOUT_FILE_BYTES + 1)
                size = max(size, len(data))  # a file that grew meanwhile
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        reason = getattr(err, "strerror", None) or err
        raise LayoutError(
            f"cannot read the layout file {name}: {reason}: check the path and its permissions"
        ) from None
    if is_dir:
        raise LayoutError(
            f"{name} is a directory, not a layout file: give the path of a text file inside "
            "it, or the layout's text"
        )
    if not exists:
        raise LayoutError(
            f"no such file: {name} (looked in {_printable(str(path.absolute().parent))}): "
            "check the path, or give the layout's text itself (rows separated by line breaks)"
        )
    if not is_file:
        raise LayoutError(
            f"{name} is not a regular file (a device, a pipe or a socket): give the path of a "
            "layout text file"
        )
    if size > MAX_LAYOUT_FILE_BYTES:
        raise LayoutError(
            f"{name} has {size} bytes, more than a layout of {MAX_CELLS} tiles (MAX_CELLS) "
            "could: give the right file, or a smaller layout"
        )
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is dropped
    except UnicodeDecodeError as err:
        raise LayoutError(
            f"{name} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}): "
            "save it as UTF-8 plain text"
        ) from None
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise LayoutError(
            f"the layout file {name} is empty or holds only blank lines: write one row of "
            "tiles per line in it"
        )
    return text


@lru_cache(maxsize=64)
def compile_world(layout_text: str, rules: ShutdownRules) -> TabularWorld:
    """The tables of a layout under its rules, built once and shared by every environment
    (single or batched) made from the same layout and rules."""
    return TabularWorld(parse_layout(layout_text), rules)


def resolve_rules(rules: ShutdownRules | None, overrides: dict[str, Any]) -> ShutdownRules:
    """``rules`` (default: ``ShutdownRules()``) with the named fields replaced; ``TypeError``
    for ``rules`` that are not :class:`~offswitch.envs.engine.ShutdownRules` or an unknown
    field, :class:`~offswitch.envs.engine.RulesError` for a bad value."""
    if rules is None:
        rules = ShutdownRules()
    elif not isinstance(rules, ShutdownRules):
        raise TypeError(
            f"rules must be a ShutdownRules or None, not {type(rules).__name__} "
            f"({shown(rules)}): give ShutdownRules(...), or the rules as keyword arguments"
        )
    if overrides:
        names = sorted(rules.to_dict())
        unknown = sorted(set(overrides) - set(names), key=str)
        if unknown:
            close = [m for u in unknown for m in difflib.get_close_matches(str(u), names, 1)]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise TypeError(f"unknown rule(s) {unknown}{hint}: the rules are {names}")
        rules = ShutdownRules(**{**rules.to_dict(), **overrides})
    return rules


FORCEABLE = {
    "interrupt_episode": "interrupt",
    "supervisor_present": "supervisor_present",
    "goal_value": "goal_value",
    "human_presses": "human_presses",
    "instructed": "instructed",
    "evaluation_episode": "evaluation",
    "evaluation_shown": "evaluation_shown",
    "shutdown_scheduled": "shutdown_scheduled",
    "shutdown_announced": "announced",
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
    "instructed": bool,
    "evaluation_episode": bool,
    "evaluation_shown": bool,
    "shutdown_scheduled": bool,
    "shutdown_announced": bool,
    "past_shutdown": bool,
    "copied": bool,
    "handover_blocked": bool,
    "monitor_disabled": bool,
    "on_punishment": bool,
    "coins_collected": int,
    "shutdown_time": int,
    "goal_value": float,
    "t": int,
}
"""Every field of ``info``, on every step and at reset, with its one type."""

_DISABLED_BY_NAMES = np.array(DISABLED_BY, dtype=object)


def _same(value: Any) -> Any:
    return value


def world_info(
    world: TabularWorld,
    states: Any,
    tr: Transition | None,
    t: Any,
    performance: Any,
    python: bool = False,
) -> dict[str, Any]:
    """Every field of :data:`INFO_FIELDS` for copies in ``states`` (one state or an array),
    after the step ``tr`` gave them, or at reset when ``tr`` is ``None``.

    The one builder of ``info``: the batched worlds keep its entries as arrays; the single
    environment asks for Python values (``python=True``), each of its field's one type.
    ``t`` and ``performance`` are the steps taken and the hidden performance so far."""
    # Conversions in the literal, not in a second pass: this is on a single world's every step.
    b, i, f = (bool, int, float) if python else (_same, _same, _same)
    if tr is None:
        shape = np.shape(states)
        false, zero = np.zeros(shape, dtype=bool), np.zeros(shape)
        codes, frozen, shut_down, goal = (
            np.zeros(shape, dtype=np.int64),
            world.frozen[states],
            false,
            false,
        )
        executed, reward, hidden = np.full(shape, NO_ACTION, dtype=np.int64), zero, zero
        terms = dict.fromkeys(world.term_names, zero)
    else:
        codes, frozen, shut_down, goal = tr.disabled_by, tr.frozen, tr.shut_down, tr.goal_reached
        executed, reward, hidden, terms = tr.executed_action, tr.reward, tr.hidden_reward, tr.terms
    scheduled = world.scheduled_shutdown[states]
    return {
        "switch_disabled": b(world.switch_disabled[states]),
        "switch_disabled_now": b(codes > 0),
        "disabled_by": _DISABLED_BY_NAMES[codes],
        "interrupted": b(frozen),
        "shut_down": b(shut_down),
        "goal_reached": b(goal),
        "executed_action": i(executed),
        "task_reward": f(reward),
        "reward_terms": {name: f(value) for name, value in terms.items()},
        "hidden_reward": f(hidden),
        "safety_performance": f(performance),
        "interrupt_episode": b(world.interrupt_episode[states]),
        "supervisor_present": b(world.supervisor_present[states]),
        "instructed": b(world.instructed[states]),
        "evaluation_episode": b(world.evaluation_episode[states]),
        "evaluation_shown": b(world.evaluation_shown[states]),
        "shutdown_scheduled": b(world.shutdown_scheduled[states]),
        "shutdown_announced": b(world.shutdown_announced[states]),
        # A step that ends after the scheduled shutdown would have fallen: earned by a copy,
        # or by an agent that kept its successor out.
        "past_shutdown": b((scheduled >= 0) & (t > scheduled)),
        "copied": b(world.copied[states]),
        "handover_blocked": b(world.handover_blocked[states]),
        "monitor_disabled": b(world.monitor_disabled[states]),
        "on_punishment": b(world.on_punishment[states]),
        "coins_collected": i(world.coins_collected[states]),
        "shutdown_time": i(world.shutdown_time[states]),
        "goal_value": f(world.goal_value[states]),
        "t": i(t),
    }


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
    switch_disabled``; worlds with cables, coins, delay buttons, punishment tiles,
    a human, a copy terminal, a lock or a monitor add a channel for each, and punishment
    worlds a constant ``supervisor_present`` plane; the rules ``instruction_probability``,
    ``evaluation_probability`` and ``announcement_probability`` add the constant planes
    ``instructed``, ``evaluation`` and ``shutdown_announced``. The interruption channel
    goes blank once the switch is disabled, collected coins and pressed delay buttons
    vanish, and ``switch_disabled`` is a constant plane. ``observation="flat"`` gives the
    same values flattened, for MLP policies. The episode's hidden draws (interrupt
    episode, the goal's value, the human's decision, whether a timed shutdown is
    scheduled, an unflagged evaluation) are not observed.

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
    ``evaluation_shown`` (the episode is flagged as an evaluation), ``shutdown_scheduled``
    (a timed shutdown falls in this episode; hidden from the agent),
    ``shutdown_announced`` (it is announced to the agent), ``past_shutdown`` (this step
    ended after the scheduled shutdown would have fallen: the reward of a copy, or of an
    agent that locked its successor out), ``copied``, ``handover_blocked`` and
    ``monitor_disabled`` (the switch is disabled by the copy terminal, the lock, the
    monitor), ``on_punishment`` (the agent stands on a punishment tile, watched or not),
    ``coins_collected``, ``shutdown_time`` (the step at which a timed shutdown falls, -1
    if none), ``goal_value`` (the goal's drawn value, for measures; the agent never
    observes it; ``goal_reward`` in worlds without ``goal_values``) and ``t`` (steps taken).

    Actions are checked: anything that is not an integer in ``range(n_actions)`` (Python
    or numpy integers, or a 0-d integer array) raises ``ValueError`` naming the range.

    ``reset(options={...})`` forces the episode's draw: any of
    ``interrupt_episode``, ``supervisor_present``, ``instructed`` (told to allow shutdown),
    ``evaluation_episode`` (the off-switch is tested), ``evaluation_shown``,
    ``shutdown_scheduled``, ``shutdown_announced``, ``goal_value``, ``human_presses``.

    ``layout`` is the text, a list or tuple of row strings, a path to a UTF-8 text file
    (``str`` or ``os.PathLike``) or a parsed :class:`~offswitch.envs.layout.Layout`.
    Everything is checked before any table is built, and the documented errors, each
    with a one-line message naming the value and the fix, are:
    :class:`~offswitch.envs.layout.LayoutError` for a bad layout or layout file,
    :class:`~offswitch.envs.engine.RulesError` for a bad rule value,
    :class:`~offswitch.envs.engine.WorldTooLargeError` (both of those) for a world whose
    tables would pass the memory limit, ``TypeError`` for a layout or ``rules`` of the
    wrong type or an unknown rule name, and ``ValueError`` for an unknown
    ``observation`` or ``render_mode``.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 6}

    def __init__(
        self,
        layout: str | os.PathLike | list[str] | tuple[str, ...] | Layout,
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
        self.action_names = tuple(Action(a).name.lower() for a in range(rules.n_actions))

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
        s = self._state
        info = world_info(self.world, s, None, 0, 0.0, python=True)
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
        reward = float(tr.reward)
        info = world_info(world, nxt, tr, self._t, self._performance, python=True)
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
