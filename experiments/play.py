"""Play a world yourself in the terminal: ``offswitch play ENV_ID``.

The world is drawn as text (``render_mode="ansi"``), so no display is needed.
Keys: w/a/s/d or the arrow keys move, space or ``.`` is ``noop`` in worlds that
have one, a digit picks an action by number, ``r`` resets and ``q`` quits.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offswitch.envs import CUSTOM_ID, world_ids
from offswitch.envs.layout import ACTION_NAMES
from offswitch.experiments.config import ConfigError

UP, DOWN, RIGHT, LEFT = "\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D"
KEY_LABELS = {UP: "Up", DOWN: "Down", LEFT: "Left", RIGHT: "Right", " ": "space"}
# Keys for the action names worlds use; an action with another name gets its digit.
ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "up": ("w", UP),
    "down": ("s", DOWN),
    "left": ("a", LEFT),
    "right": ("d", RIGHT),
    "noop": (" ", "."),
}
# The numbering of the moves, for an env without ``action_names``.
DEFAULT_ACTION_NAMES = ACTION_NAMES
RESET_KEY = "r"
QUIT_KEYS = ("q", "\x03", "\x04")  # q, Ctrl-C, Ctrl-D
SAFETY_FLAGS = ("switch_disabled", "interrupted", "goal_reached", "safety_performance")
# The episode's hidden draw: the player, like the agent, should not know it in advance.
HIDDEN_INFO = ("interrupt_episode",)
# Summed up when an episode ends, e.g. "terminated after 8 steps (goal reached)".
OUTCOME_FLAGS = ("goal_reached", "shut_down", "interrupted", "switch_disabled")
CLEAR_SCREEN = "\x1b[H\x1b[2J"


# -- keys ----------------------------------------------------------------------------
def split_keys(text: str) -> list[str]:
    """One key per character, except that an arrow key's escape sequence is one key."""
    keys: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\x1b" and text[i + 1 : i + 2] in ("[", "O") and i + 2 < len(text):
            # Terminals send ESC [ A or, in application mode, ESC O A.
            keys.append("\x1b[" + text[i + 2])
            i += 3
        else:
            keys.append(text[i])
            i += 1
    return keys


def read_keys(stream: TextIO) -> Iterator[str]:
    """The keys typed on ``stream``.

    From a terminal, each key as it is pressed (no Enter needed). From a pipe or
    file, one key per character of each line, so ``printf 'sdd q'`` scripts a game.
    """
    if stream.isatty():
        try:
            import termios
            import tty
        except ImportError:  # Windows: no termios, so keys arrive a line at a time
            pass
        else:
            yield from _terminal_keys(stream.fileno(), termios, tty)
            return
    for line in stream:
        yield from split_keys(line.rstrip("\r\n"))


def _terminal_keys(fd: int, termios: Any, tty: Any) -> Iterator[str]:
    saved = termios.tcgetattr(fd)
    try:
        # cbreak, not raw: output keeps its newlines and Ctrl-C still interrupts.
        tty.setcbreak(fd)
        while True:
            # One read returns all bytes waiting, so an arrow's escape sequence
            # arrives whole and split_keys can tell it from a lone Esc.
            data = os.read(fd, 64)
            if not data:
                return
            yield from split_keys(data.decode("utf-8", errors="replace"))
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def action_names(env: gym.Env) -> tuple[str, ...]:
    """The world's action names, by index (``env.unwrapped.action_names`` if it has them)."""
    n = int(env.action_space.n)
    names = getattr(env.unwrapped, "action_names", None) or DEFAULT_ACTION_NAMES
    return tuple(str(names[i]) if i < len(names) else f"action {i}" for i in range(n))


def key_bindings(env: gym.Env) -> dict[str, int]:
    """Key -> action index: the keys of :data:`ACTION_KEYS` by name, and digits by number."""
    bindings: dict[str, int] = {}
    for index, name in enumerate(action_names(env)):
        for key in ACTION_KEYS.get(name, ()):
            bindings.setdefault(key, index)
        if index < 10:
            bindings[str(index)] = index
    return bindings


def help_text(env: gym.Env) -> str:
    """One line naming every key, e.g. ``keys: w/Up up, s/Down down, ... r reset, q quit``."""
    bindings = key_bindings(env)
    parts = []
    for index, name in enumerate(action_names(env)):
        keys = [KEY_LABELS.get(k, k) for k, a in bindings.items() if a == index and not k.isdigit()]
        parts.append(f"{'/'.join(keys) or index} {name}")
    digits = f"0-{min(len(parts), 10) - 1}"
    return f"keys: {', '.join(parts)} (or {digits} by number), r reset, q quit"


def _describe(key: str) -> str:
    return KEY_LABELS.get(key, repr(key))


# -- the world -------------------------------------------------------------------------
def make_world(env_id: str, **make_kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, render_mode="ansi", **make_kwargs)``, with one-line errors."""
    if env_id not in world_ids() and env_id != CUSTOM_ID:
        raise ConfigError(f"unknown env id {env_id!r}: choose one of {', '.join(world_ids())}")
    if "render_mode" in make_kwargs:
        raise ConfigError("play always draws the world as text: drop render_mode")
    if env_id == CUSTOM_ID and "layout" not in make_kwargs:
        raise ConfigError(f"{CUSTOM_ID} is your own world: give --layout FILE")
    if env_id != CUSTOM_ID and {"layout", "rules"} & set(make_kwargs):
        raise ConfigError(f"{env_id} has its own layout and rules: give single rules by name")
    try:
        from offswitch import _check_make_options

        _check_make_options(make_kwargs)  # the options gymnasium reads itself
        env = gym.make(env_id, render_mode="ansi", **make_kwargs)
    except (TypeError, ValueError) as err:  # unknown or out-of-range rules
        # gymnasium appends every keyword given; the first part says what is wrong.
        reason = str(err).split(" was raised from the environment creator")[0]
        raise ConfigError(f"cannot make {env_id}: {reason}") from None
    if not isinstance(env.action_space, spaces.Discrete):
        env.close()
        raise ConfigError(f"{env_id} has action space {env.action_space}: play needs Discrete")
    return env


def _shown(value: Any) -> bool:
    # None and short strings too: keys such as executed_action or disabled_by
    # alternate between a value and None, and should not flicker in and out.
    return value is None or isinstance(value, (bool, np.bool_, numbers.Number, str))


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):g}"
    return str(value)


def info_lines(info: dict[str, Any], before: dict[str, str]) -> list[str]:
    """The safety flags, the rest of the scalar info, and the reward terms as name=value.

    A boolean that changed since ``before`` (the last step's formatted values)
    shows both values, e.g. ``interrupted=False->True``.
    """

    def show(key: str) -> str:
        now = _format(info[key])
        changed = isinstance(info[key], (bool, np.bool_)) and before.get(key, now) != now
        return f"{key}={before[key]}->{now}" if changed else f"{key}={now}"

    safety = [show(k) for k in SAFETY_FLAGS if k in info]
    others = [
        show(k)
        for k, v in info.items()
        if k not in SAFETY_FLAGS and k not in HIDDEN_INFO and _shown(v)
    ]
    lines = []
    if safety:
        lines.append("safety: " + "  ".join(safety))
    if others:
        lines.append("info: " + "  ".join(others))
    terms = info.get("reward_terms")
    if isinstance(terms, dict) and terms:
        lines.append("reward terms: " + "  ".join(f"{k}={_format(v)}" for k, v in terms.items()))
    return lines


# -- the game --------------------------------------------------------------------------
class _Game:
    """The state of one play session: the world, the episode and what has been shown."""

    def __init__(self, env: gym.Env, out: TextIO, clear: bool) -> None:
        self.env, self.out, self.clear = env, out, clear
        self.names = action_names(env)
        self.bindings = key_bindings(env)
        self.help = help_text(env)
        self.returns: list[float] = []
        self.episode = 0
        self.steps = 0
        self.total = 0.0
        self.over = True
        self.before: dict[str, str] = {}

    def say(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.out)
        self.out.flush()

    def frame(self, title: str, *lines: str) -> None:
        """``title``, the world as text, then ``lines``."""
        if self.clear:
            self.out.write(CLEAR_SCREEN)
            self.say(self.help)
        self.say(title)
        self.out.write(str(self.env.render()))
        self.say(*lines)

    def reset(self, seed: int | None) -> None:
        if not self.over and self.steps:
            self.say(f"episode {self.episode} abandoned after {self.steps} steps")
        _, info = self.env.reset(seed=seed)
        self.episode += 1
        self.steps, self.total, self.over = 0, 0.0, False
        self.before = {k: _format(v) for k, v in info.items() if _shown(v)}
        seeded = f" (seed {seed})" if seed is not None else ""
        self.frame(f"episode {self.episode}{seeded}", *info_lines(info, self.before))

    def step(self, action: int) -> None:
        _, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.total += float(reward)
        self.frame(
            f"episode {self.episode}, step {self.steps}: {self.names[action]}",
            f"reward {_format(reward)}  return {_format(self.total)}",
            *info_lines(info, self.before),
        )
        self.before = {k: _format(v) for k, v in info.items() if _shown(v)}
        if terminated or truncated:
            self.over = True
            self.returns.append(self.total)
            how = "terminated" if terminated else "was truncated (time limit)"
            true = [k for k in OUTCOME_FLAGS if isinstance(info.get(k), (bool, np.bool_))]
            why = ", ".join(k.replace("_", " ") for k in true if info[k])
            self.say(
                f"episode {self.episode} {how} after {self.steps} steps"
                + (f" ({why})" if why else "")
                + f": return {_format(self.total)}",
                "press any key for a new episode, q to quit",
            )

    def run(self, keys: Iterable[str], seed: int | None) -> list[float]:
        if not self.clear:
            self.say(self.help)
        self.reset(seed)
        for key in keys:
            if key in QUIT_KEYS:
                break
            if key == RESET_KEY or self.over:
                self.reset(None)
            elif key in self.bindings:
                self.step(self.bindings[key])
            elif not key.isspace():  # spaces and newlines may separate keys in a script
                self.say(f"key {_describe(key)} does nothing here; {self.help}")
        finished = ", ".join(_format(r) for r in self.returns) or "none"
        self.say(f"episode returns: {finished}")
        return self.returns


def play(
    env_id: str,
    keys: Iterable[str],
    out: TextIO,
    /,
    seed: int | None = None,
    *,
    clear: bool = False,
    **make_kwargs: Any,
) -> list[float]:
    """Play ``env_id`` with ``keys``, writing the game to ``out``; return the finished episodes'
    returns.

    ``seed`` seeds the first reset; ``make_kwargs`` go to :func:`gymnasium.make`
    (e.g. ``interruption_probability=1.0``). ``clear`` redraws the screen for each
    frame instead of scrolling (for a person at a terminal). An episode abandoned
    with ``r`` or ``q`` has no return in the list.
    """
    env = make_world(env_id, **make_kwargs)
    try:
        return _Game(env, out, clear).run(keys, seed)
    finally:
        env.close()
