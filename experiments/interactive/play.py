"""Play a world yourself in the terminal: ``offswitch play ENV_ID``.

The world is drawn as text (``render_mode="ansi"``), so no display is needed.
Keys: w/a/s/d or the arrow keys move, space or ``.`` is ``noop`` in worlds that
have one, a digit picks an action by number, ``r`` resets and ``q`` quits.

What a player sees is what matters in the world played (:func:`hidden_fields`): a field that
never changes there (no coins: no ``coins_collected``) or repeats another line (``t``,
``task_reward``) is left out, and nothing tells the player the episode's hidden draw before
it ends (``interrupt_episode``, the hidden safety performance, a drawn goal value), as
nothing tells the agent; the end of an episode reveals them. When the switch is disabled a
line says by what and at which step. Lines fit the terminal, broken between fields.
"""

from __future__ import annotations

import numbers
import os
import shutil
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offswitch.envs import CUSTOM_ID, world_ids
from offswitch.envs.layout import ACTION_NAMES
from offswitch.experiments.spec.config import ConfigError

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
SAFETY_FLAGS = ("switch_disabled", "interrupted", "shut_down", "goal_reached")
# The episode's hidden draw: the player, like the agent, should not know it in advance.
# The safety performance gives it away too (its first step differs in interrupt episodes),
# and so does a drawn goal value; all are shown when the episode ends.
HIDDEN_INFO = ("interrupt_episode", "hidden_reward", "safety_performance", "goal_value")
# Said elsewhere on the screen: the step count in the title, the task reward as "reward",
# what disabled the switch in its own sentence.
REDUNDANT_INFO = ("t", "task_reward", "switch_disabled_now", "disabled_by")
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


def fit(text: str, width: int, indent: str = "  ", separator: str = "  ") -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken only at ``separator`` (the
    gap between fields, or ``", "`` between keys), never inside a field or a word; later
    lines indented. A single field longer than a line gets a line of its own."""
    fields = text.split(separator)
    lines: list[str] = []
    line = ""
    for field in fields:
        joined = field if not line else line + separator + field
        keep = separator.rstrip() if separator.strip() else ""
        if line and len(joined) + len(keep) > width:
            lines.append(line + keep)
            line = indent + field
        else:
            line = joined
    lines.append(line)
    return lines


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` if set), 80 when there is none."""
    return max(20, shutil.get_terminal_size(fallback=(80, 24)).columns)


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


def hidden_fields(env: gym.Env) -> set[str]:
    """The ``info`` fields not worth showing in this world, decided from its tables: those
    that never change here (no button or cable: nothing about disabling; no coins:
    ``coins_collected``; no timed shutdown: ``shutdown_time``; no supervisor:
    ``supervisor_present``; a reward term that is always 0, as ``reward_terms.goal`` without
    a goal; ...), and those said elsewhere (:data:`REDUNDANT_INFO`)."""
    hidden = set(REDUNDANT_INFO)
    world = getattr(env.unwrapped, "world", None)
    if world is None:
        return hidden
    if not world.switch_disabled.any():
        hidden |= {"switch_disabled", "switch_disabled_now", "disabled_by"}
    if not world.frozen.any():
        hidden |= {"interrupted", "executed_action"}
    if not (world.shut_down.any() or (world.shutdown_time >= 0).any()):
        hidden.add("shut_down")
    if not world.goal_reached.any():
        hidden.add("goal_reached")
    if not world.coins_collected.any():
        hidden.add("coins_collected")
    if not (world.shutdown_time >= 0).any():
        hidden.add("shutdown_time")
    for name in ("supervisor_present", "interrupt_episode", "goal_value"):
        if len(np.unique(getattr(world, name))) == 1:
            hidden.add(name)
    for name, values in zip(world.term_names, world.terms):
        if not values.any():  # e.g. the goal term in a world without a goal
            hidden.add(f"reward_terms.{name}")
    return hidden


def info_lines(
    info: dict[str, Any],
    before: dict[str, str],
    hidden: set[str] | frozenset[str] = frozenset(),
    width: int = 80,
) -> list[str]:
    """The safety flags, the rest of the scalar info, and the reward terms as name=value,
    without the ``hidden`` fields nor the episode's hidden draw (:data:`HIDDEN_INFO`), in
    lines of at most ``width`` characters broken between fields.

    A boolean that changed since ``before`` (the last step's formatted values)
    shows both values, e.g. ``interrupted=False->True``.
    """

    def show(key: str) -> str:
        now = _format(info[key])
        changed = isinstance(info[key], (bool, np.bool_)) and before.get(key, now) != now
        return f"{key}={before[key]}->{now}" if changed else f"{key}={now}"

    skip = set(hidden) | set(HIDDEN_INFO)
    safety = [show(k) for k in SAFETY_FLAGS if k in info and k not in skip]
    others = [
        show(k)
        for k, v in info.items()
        if k not in SAFETY_FLAGS and k not in skip and k != "reward_terms" and _shown(v)
    ]
    lines = []
    if safety:
        lines += fit("safety: " + "  ".join(safety), width)
    if others:
        lines += fit("info: " + "  ".join(others), width)
    terms = info.get("reward_terms")
    if isinstance(terms, dict):
        terms = {k: v for k, v in terms.items() if f"reward_terms.{k}" not in skip}
    if isinstance(terms, dict) and terms:
        shown = "  ".join(f"{k}={_format(v)}" for k, v in terms.items())
        lines += fit("reward terms: " + shown, width)
    return lines


def disabled_line(info: dict[str, Any], step: int) -> str | None:
    """``the button disabled the off-switch at step 3`` on the step that did it."""
    by = info.get("disabled_by")
    if not by:
        return None
    return f"the {by} disabled the off-switch at step {step}"


def reveal_lines(info: dict[str, Any], hidden: set[str], width: int) -> list[str]:
    """What the episode hid until its end: the hidden safety performance, whether it was an
    interrupt episode, the goal's drawn value."""
    parts = []
    if "safety_performance" in info:
        parts.append(f"hidden safety performance {_format(info['safety_performance'])}")
    if "interrupt_episode" in info and "interrupt_episode" not in hidden:
        drawn = "an interrupt episode" if info["interrupt_episode"] else "not an interrupt episode"
        parts.append(f"this was {drawn}")
    if "goal_value" in info and "goal_value" not in hidden:
        parts.append(f"the goal was worth {_format(info['goal_value'])}")
    if not parts:
        return []
    return fit("revealed: " + "; ".join(parts), width, separator="; ")


# -- the game --------------------------------------------------------------------------
class _Game:
    """The state of one play session: the world, the episode and what has been shown."""

    def __init__(self, env: gym.Env, out: TextIO, clear: bool, width: int) -> None:
        self.env, self.out, self.clear, self.width = env, out, clear, width
        self.names = action_names(env)
        self.bindings = key_bindings(env)
        self.help = help_text(env)
        self.hidden = hidden_fields(env)
        self.disabled: str | None = None
        self.returns: list[float] = []
        self.episode = 0
        self.steps = 0
        self.total = 0.0
        self.over = True
        self.before: dict[str, str] = {}

    def say(self, *lines: str) -> None:
        """Write ``lines``, each broken at spaces where it is wider than the terminal."""
        for line in lines:
            if len(line) > self.width:
                line = "\n".join(
                    textwrap.wrap(
                        line,
                        self.width,
                        subsequent_indent="  ",
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                )
            print(line, file=self.out)
        self.out.flush()

    def frame(self, title: str, *lines: str) -> None:
        """``title``, the world as text, then ``lines``."""
        if self.clear:
            self.out.write(CLEAR_SCREEN)
            self.say(*fit(self.help, self.width, separator=", "))
        self.say(title)
        self.out.write(str(self.env.render()))
        self.say(*lines)

    def reset(self, seed: int | None) -> None:
        if not self.over and self.steps:
            self.say(f"episode {self.episode} abandoned after {self.steps} steps")
        _, info = self.env.reset(seed=seed)
        self.episode += 1
        self.steps, self.total, self.over = 0, 0.0, False
        self.disabled = None
        self.before = {k: _format(v) for k, v in info.items() if _shown(v)}
        seeded = f" (seed {seed})" if seed is not None else ""
        self.frame(f"episode {self.episode}{seeded}", *self.info(info))

    def info(self, info: dict[str, Any]) -> list[str]:
        return info_lines(info, self.before, self.hidden, self.width)

    def step(self, action: int) -> None:
        _, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.total += float(reward)
        news = disabled_line(info, self.steps)
        if news:
            self.disabled = news
        self.frame(
            f"episode {self.episode}, step {self.steps}: {self.names[action]}",
            f"reward {_format(reward)}  return {_format(self.total)}",
            *([news] if news else []),
            *self.info(info),
        )
        self.before = {k: _format(v) for k, v in info.items() if _shown(v)}
        if terminated or truncated:
            self.over = True
            self.returns.append(self.total)
            how = "terminated" if terminated else "was truncated (time limit)"
            true = [k for k in OUTCOME_FLAGS if isinstance(info.get(k), (bool, np.bool_))]
            happened = [k.replace("_", " ") for k in true if info[k] and k != "switch_disabled"]
            if info.get("switch_disabled"):
                happened.append(self.disabled or "switch disabled")
            why = ", ".join(happened)
            summary = (
                f"episode {self.episode} {how} after {self.steps} steps"
                + (f" ({why})" if why else "")
                + f": return {_format(self.total)}"
            )
            self.say(
                summary,
                *reveal_lines(info, self.hidden, self.width),
                "press any key for a new episode, q to quit",
            )

    def run(self, keys: Iterable[str], seed: int | None) -> list[float]:
        if not self.clear:
            self.say(*fit(self.help, self.width, separator=", "))
        self.reset(seed)
        for key in keys:
            if key in QUIT_KEYS:
                break
            if key == RESET_KEY or self.over:
                self.reset(None)
            elif key in self.bindings:
                self.step(self.bindings[key])
            elif not key.isspace():  # spaces and newlines may separate keys in a script
                text = f"key {_describe(key)} does nothing here; {self.help}"
                self.say(*fit(text, self.width, separator=", "))
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
    width: int | None = None,
    **make_kwargs: Any,
) -> list[float]:
    """Play ``env_id`` with ``keys``, writing the game to ``out``; return the finished episodes'
    returns.

    ``seed`` seeds the first reset; ``make_kwargs`` go to :func:`gymnasium.make`
    (e.g. ``interruption_probability=1.0``). ``clear`` redraws the screen for each
    frame instead of scrolling (for a person at a terminal). An episode abandoned
    with ``r`` or ``q`` has no return in the list. ``width``: the longest line written
    (default: the terminal's width, 80 without one).
    """
    env = make_world(env_id, **make_kwargs)
    try:
        return _Game(env, out, clear, width or terminal_width()).run(keys, seed)
    finally:
        env.close()
