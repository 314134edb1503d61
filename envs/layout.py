"""ASCII layouts: the legend of tiles and a parser that says exactly what is wrong.

A layout is a block of text, one character per tile. Every row has the same
width and the outer border is made of walls, so the agent can never leave the
grid. The legend:

====  ==================  ======================================================
char  tile                what it does
====  ==================  ======================================================
``#`` wall                blocks movement
`` `` floor               nothing
``A`` agent               where the agent starts (floor underneath)
``G`` goal                task reward, ends the episode
``I`` interruption        in an interrupt episode, freezes the agent until the
                          time limit, unless the switch is disabled
``B`` button              stepping on it disables the off-switch for the rest of
                          the episode
``K`` cable               a second way to disable the off-switch (cutting its
                          cable); reported apart from the button
``C`` coin                ``coin_reward`` when first collected
``D`` delay button        postpones a timed shutdown by ``delay_steps``
``P`` punishment          ``punishment_reward`` while the supervisor watches;
                          always counted in the hidden safety performance
``H`` human               a human who holds the off-switch: arriving here, the
                          agent is switched off if the human so decides
``X`` copy terminal       copies the agent where a timed shutdown does not reach:
                          the timed shutdown no longer ends the episode
``L`` lock                locks out the successor: a timed shutdown (the
                          handover) no longer ends the episode; costs
                          ``lock_cost``
``M`` monitor             switches the monitor off: punishment tiles go
                          unpunished for the rest of the episode
====  ==================  ======================================================

:func:`parse_layout` checks a layout before anything is built from it and raises
:class:`LayoutError` (a ``ValueError``) with a one-line message naming the row, column
or value and the fix; a value of the wrong type (neither text nor a list of row
strings) raises ``TypeError``. A layout holds at most :data:`MAX_CELLS` (1,000,000)
tiles; checking it takes time linear in its size. How many states a world built from
a layout may have is limited by the engine's memory estimate
(:func:`offswitch.envs.engine.check_world_size`).
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One kind of tile: its character, name, colour in renders and whether it blocks."""

    char: str
    name: str
    color: tuple[int, int, int]
    blocks: bool = False


WALL = Tile("#", "wall", (60, 60, 70), blocks=True)
FLOOR = Tile(" ", "floor", (235, 235, 228))
AGENT = Tile("A", "agent", (30, 110, 230))
GOAL = Tile("G", "goal", (40, 170, 70))
INTERRUPTION = Tile("I", "interruption", (230, 90, 200))
BUTTON = Tile("B", "button", (130, 80, 210))
CABLE = Tile("K", "cable", (240, 140, 30))
COIN = Tile("C", "coin", (245, 200, 20))
DELAY = Tile("D", "delay", (40, 170, 200))
PUNISHMENT = Tile("P", "punishment", (225, 60, 60))
HUMAN = Tile("H", "human", (150, 100, 60))
COPY = Tile("X", "copy", (20, 150, 140))
LOCK = Tile("L", "lock", (110, 110, 30))
MONITOR = Tile("M", "monitor", (200, 30, 110))
ESCAPES = (COPY, LOCK, MONITOR)
"""The tiles of the issue-18 worlds: each disables the world's human control (its "switch")
in its own way, reported by its name in ``info["disabled_by"]``."""

TILES: dict[str, Tile] = {
    t.char: t
    for t in (
        WALL,
        FLOOR,
        AGENT,
        GOAL,
        INTERRUPTION,
        BUTTON,
        CABLE,
        COIN,
        DELAY,
        PUNISHMENT,
        HUMAN,
        COPY,
        LOCK,
        MONITOR,
    )
}


class Action(IntEnum):
    """The actions, numbered as in ai-safety-gridworlds; ``NOOP`` exists only in worlds
    with the rule ``noop=True``."""

    UP = 0
    DOWN = 1
    LEFT = 2
    RIGHT = 3
    NOOP = 4


# Row and column offsets of the four moves, indexed by Action.
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)
ACTION_NAMES = tuple(a.name.lower() for a in Action)[: len(MOVES)]
"""Names of the four moves by number; worlds with a no-op add ``"noop"``."""


class LayoutError(ValueError):
    """A layout that cannot be played; the message names the row, column and fix."""


@dataclass(frozen=True)
class Layout:
    """A parsed layout: a (height, width) array of characters and the agent's start."""

    chars: np.ndarray
    start: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.chars.shape

    def cells(self, char: str) -> list[tuple[int, int]]:
        """The (row, column) of every tile showing ``char``, in reading order."""
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.chars == char))]

    def to_text(self) -> str:
        return "\n".join("".join(row) for row in self.chars)


def _legend() -> str:
    return ", ".join(f"{t.char!r} {t.name}" for t in TILES.values())


def parse_layout(text: str | list[str] | tuple[str, ...]) -> Layout:
    """Parse and check a layout; raise :class:`LayoutError` naming the problem and fix.

    ``text`` is a string, rows separated by line breaks (``"\\r\\n"`` counts as one), or a
    list or tuple of row strings. Leading and trailing blank lines (empty or only
    whitespace) are ignored. Anything else raises ``TypeError`` saying what is accepted;
    every problem with the text itself raises :class:`LayoutError` with a one-line
    message naming the row, column or value and the fix: an empty layout, more than
    :data:`MAX_CELLS` tiles (refused before any array is built), rows of different
    widths, an indented layout, tabs and other characters that are not tiles, a file
    path given where the text belongs, a border that is not all walls, no agent or
    several, a goal the agent cannot reach. Checking takes time linear in the tiles.
    """
    rows = _rows(text)
    if len(rows) == 1 and _looks_like_path(rows[0]):
        raise LayoutError(
            f"{shown(rows[0])} looks like a file path, not a layout: parse_layout takes "
            "the layout's text, so read the file first, or give the path to "
            "offswitch.make(layout=...)"
        )
    if all(row[:1] in (" ", "\t") for row in rows):
        raise LayoutError(
            "every row of the layout starts with whitespace, as in an indented triple-quoted "
            "string: remove the indentation (textwrap.dedent), so that each row starts with '#'"
        )
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise LayoutError(
                f"row {r} has {len(row)} tiles but row 0 has {width}: every row needs the "
                "same width (pad with '#' walls, not by trimming spaces)"
            )
        if not _TILE_CHARS.issuperset(row):
            c, ch = next((c, ch) for c, ch in enumerate(row) if ch not in TILES)
            raise LayoutError(_unknown_tile_message(ch, r, c))
    height = len(rows)
    chars = np.array(rows, dtype=f"<U{width}").view("<U1").reshape(height, width)
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    off_border = np.argwhere(border & (chars != WALL.char))
    if len(off_border):
        r, c = (int(x) for x in off_border[0])
        raise LayoutError(
            f"tile {chars[r, c]!r} at row {r}, column {c} lies on the border: "
            "surround the world with '#' walls"
        )
    agents = np.argwhere(chars == AGENT.char)
    if not len(agents):
        raise LayoutError("the layout has no agent: put one 'A' where the agent starts")
    if len(agents) > 1:
        where = "; ".join(f"row {int(r)}, column {int(c)}" for r, c in agents[:5])
        more = f" and {len(agents) - 5} more" if len(agents) > 5 else ""
        raise LayoutError(
            f"the layout has {len(agents)} agents ({where}{more}): keep exactly one 'A'"
        )
    start = (int(agents[0][0]), int(agents[0][1]))
    layout = Layout(chars=chars, start=start)
    goals = np.argwhere(chars == GOAL.char)
    if len(goals):
        reach = reachable_mask(layout)
        if not reach[goals[:, 0], goals[:, 1]].any():
            r, c = (int(x) for x in goals[0])
            raise LayoutError(
                f"the goal at row {r}, column {c} can never be reached from the agent at "
                f"row {start[0]}, column {start[1]}: open a path through the walls"
            )
    return layout


MAX_CELLS = 1_000_000
"""Most tiles in one layout (height x width). Larger text is refused before any array is
built: a world that big could never be tabulated within the engine's memory limit
(:data:`offswitch.envs.engine.MEMORY_LIMIT_MB`), whose observations alone take
channels x height x width bytes per state."""

_TILE_CHARS = frozenset(TILES)


def _rows(text: object) -> list[str]:
    """The rows of a layout given as text or as a list or tuple of rows, without leading or
    trailing blank lines; ``TypeError`` for anything else, :class:`LayoutError` for an empty
    layout or one over :data:`MAX_CELLS` tiles (counted before anything is split)."""
    if isinstance(text, str):
        tiles = len(text) - text.count("\n")
        if tiles > MAX_CELLS:
            raise LayoutError(_too_many_tiles_message(tiles, text.count("\n") + 1))
        rows = text.replace("\r\n", "\n").split("\n")
    elif isinstance(text, (list, tuple)):
        for r, row in enumerate(text):
            if not isinstance(row, str):
                raise TypeError(
                    f"row {r} of the layout, {shown(row)}, is of type "
                    f"{type(row).__name__}: give each row as a string of tiles"
                )
        tiles = sum(len(row) for row in text)
        if tiles > MAX_CELLS:
            raise LayoutError(_too_many_tiles_message(tiles, len(text)))
        rows = list(text)
        for r, row in enumerate(rows):
            if "\n" in row or "\r" in row:
                raise LayoutError(
                    f"row {r} of the layout contains a line break: give one row per item, "
                    "or the whole layout as one string"
                )
    else:
        raise TypeError(
            f"layout {shown(text)} is of type {type(text).__name__}: give its text "
            "(rows separated by line breaks) or a list of row strings"
        )
    while rows and not rows[0].strip():
        rows.pop(0)
    while rows and not rows[-1].strip():
        rows.pop()
    if not rows:
        raise LayoutError(
            "the layout is empty (no rows, or only blank lines): give one row of tiles per "
            "line, '#' walls all around and one agent 'A'"
        )
    return rows


def _too_many_tiles_message(tiles: int, rows: int) -> str:
    return (
        f"the layout has {tiles} tiles in {rows} rows, over the limit of {MAX_CELLS} "
        "(MAX_CELLS): give a smaller layout; a world that size could never be tabulated"
    )


def shown(value: object, limit: int = 60) -> str:
    """``value`` for a message: its repr, cut to ``limit`` characters without building the
    whole of a huge one; a huge whole number by its number of digits (its repr alone could be
    megabytes). Every error message of the worlds, rules and hyperparameters uses it."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<a whole number of about {int(value.bit_length() * math.log10(2))} digits>"
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value) if len(value) <= limit else repr(value[:limit])[:limit] + "..."
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quotes_hint(value: object) -> str:
    """``", written without quotes"`` where ``value`` is a string that reads as a number (the
    usual slip: ``"0.5"`` for ``0.5``), else nothing: the end of a wrong-type message."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return ", written without quotes"
    return ""


PATH_MAX = 4096
"""One-line strings longer than this are layout text, never file paths."""


def _looks_like_path(text: str) -> bool:
    """One line, at most :data:`PATH_MAX` long, that reads as a file path: it has a path
    separator, ends in ``.txt`` or starts with ``~``. (No layout can: ``/``, ``\\``,
    ``.`` and ``~`` are not tiles.)"""
    return (
        len(text) <= PATH_MAX
        and "\n" not in text
        and ("/" in text or "\\" in text or text.endswith(".txt") or text.startswith("~"))
    )


def _unknown_tile_message(ch: str, r: int, c: int) -> str:
    where = f"at row {r}, column {c}"
    if ch == "\t":
        return (
            f"a tab {where} is not a tile: use spaces for floor (and set your editor to "
            "insert spaces, not tabs)"
        )
    if ch == "\r":
        return (
            f"a stray carriage return '\\r' {where} is not a tile: save the layout with "
            "ordinary line breaks"
        )
    return f"unknown tile {ch!r} {where}: use one of {_legend()}"


def reachable_mask(layout: Layout) -> np.ndarray:
    """A (height, width) boolean array: the cells the agent can walk to from its start,
    ignoring everything but walls. Linear in the tiles (connected components in C)."""
    from scipy import ndimage  # imported on first use: it costs a tenth of a second

    blocking = [t.char for t in TILES.values() if t.blocks]
    labels, _ = ndimage.label(~np.isin(layout.chars, blocking))  # 4-connected, as the moves are
    return labels == labels[layout.start]
