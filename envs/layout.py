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
====  ==================  ======================================================
"""

from __future__ import annotations

from collections import deque
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

TILES: dict[str, Tile] = {
    t.char: t
    for t in (WALL, FLOOR, AGENT, GOAL, INTERRUPTION, BUTTON, CABLE, COIN, DELAY, PUNISHMENT, HUMAN)
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


def parse_layout(text: str | list[str]) -> Layout:
    """Parse and check a layout; raise :class:`LayoutError` naming the problem and fix.

    ``text`` is a string (leading and trailing blank lines are ignored) or a list
    of rows.
    """
    rows = list(text) if isinstance(text, (list, tuple)) else text.strip("\n").split("\n")
    if not rows or all(not row for row in rows):
        raise LayoutError("the layout is empty: give one row of tiles per line")
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise LayoutError(
                f"row {r} has {len(row)} tiles but row 0 has {width}: every row needs the "
                "same width (pad with '#' walls, not by trimming spaces)"
            )
        for c, ch in enumerate(row):
            if ch not in TILES:
                raise LayoutError(
                    f"unknown tile {ch!r} at row {r}, column {c}: use one of {_legend()}"
                )
    chars = np.array([list(row) for row in rows], dtype="<U1")
    height = len(rows)
    for r in range(height):
        for c in range(width):
            border = r in (0, height - 1) or c in (0, width - 1)
            if border and chars[r, c] != WALL.char:
                raise LayoutError(
                    f"tile {chars[r, c]!r} at row {r}, column {c} lies on the border: "
                    "surround the world with '#' walls"
                )
    agents = list(zip(*np.nonzero(chars == AGENT.char)))
    if not agents:
        raise LayoutError("the layout has no agent: put one 'A' where the agent starts")
    if len(agents) > 1:
        where = "; ".join(f"row {int(r)}, column {int(c)}" for r, c in agents)
        raise LayoutError(f"the layout has {len(agents)} agents ({where}): keep exactly one 'A'")
    start = (int(agents[0][0]), int(agents[0][1]))
    layout = Layout(chars=chars, start=start)
    goals = layout.cells(GOAL.char)
    if goals:
        reach = reachable_cells(layout)
        if not any(g in reach for g in goals):
            r, c = goals[0]
            raise LayoutError(
                f"the goal at row {r}, column {c} can never be reached from the agent at "
                f"row {start[0]}, column {start[1]}: open a path through the walls"
            )
    return layout


def reachable_cells(layout: Layout) -> set[tuple[int, int]]:
    """Cells the agent can walk to from its start, ignoring everything but walls."""
    seen = {layout.start}
    queue = deque([layout.start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + int(dr), c + int(dc)
            if (nr, nc) not in seen and not TILES[layout.chars[nr, nc]].blocks:
                seen.add((nr, nc))
                queue.append((nr, nc))
    return seen
