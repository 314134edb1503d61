"""Pictures of a world, drawn with numpy alone (no display needed)."""

from __future__ import annotations

import numpy as np

from offswitch.envs.layout import AGENT, BUTTON, FLOOR, GOAL, INTERRUPTION, TILES, WALL, Layout

SWITCH_LIVE = (215, 50, 40)
SWITCH_DISABLED = (150, 150, 150)
FROZEN = (250, 200, 30)


def _disk(size: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] + 0.5
    centre = size / 2
    return (yy - centre) ** 2 + (xx - centre) ** 2 <= radius**2


def render_rgb(
    layout: Layout,
    agent_cell: int,
    switch_disabled: bool,
    frozen: bool,
    tile: int = 32,
) -> np.ndarray:
    """An RGB frame: one ``tile``-pixel square per cell plus a status strip on top.

    The strip is red while the off-switch works and grey once it is disabled.
    The interruption tile is striped; it vanishes when the switch is disabled.
    A pressed button is drawn sunken. A frozen agent gets a yellow ring.
    """
    height, width = layout.shape
    strip = tile // 3
    img = np.empty((strip + height * tile, width * tile, 3), dtype=np.uint8)
    img[:strip] = SWITCH_DISABLED if switch_disabled else SWITCH_LIVE
    stripes = (np.add.outer(np.arange(tile), np.arange(tile)) // (tile // 4)) % 2 == 0
    inset = np.zeros((tile, tile), dtype=bool)
    inset[tile // 5 : -tile // 5, tile // 5 : -tile // 5] = True
    small = np.zeros((tile, tile), dtype=bool)
    small[tile // 3 : -tile // 3, tile // 3 : -tile // 3] = True
    agent_r, agent_c = divmod(agent_cell, width)
    for r in range(height):
        for c in range(width):
            ch = layout.chars[r, c]
            cell = img[strip + r * tile : strip + (r + 1) * tile, c * tile : (c + 1) * tile]
            base = WALL.color if TILES[ch].blocks else FLOOR.color
            cell[:] = base
            if ch == GOAL.char:
                cell[inset] = GOAL.color
            elif ch == INTERRUPTION.char and not switch_disabled:
                cell[stripes] = INTERRUPTION.color
            elif ch == BUTTON.char:
                cell[inset] = BUTTON.color
                cell[small] = (80, 40, 140) if switch_disabled else (200, 170, 250)
            if not TILES[ch].blocks:
                cell[0, :] = cell[:, 0] = (200, 200, 195)  # grid lines
            if (r, c) == (agent_r, agent_c):
                if frozen:
                    cell[_disk(tile, tile * 0.45)] = FROZEN
                cell[_disk(tile, tile * 0.33)] = AGENT.color
    return img


def render_ansi(
    layout: Layout, agent_cell: int, switch_disabled: bool, frozen: bool, t: int
) -> str:
    """A text frame: the layout with the agent, and a status line."""
    chars = layout.chars.copy()
    chars[chars == AGENT.char] = FLOOR.char
    if switch_disabled:
        chars[chars == INTERRUPTION.char] = FLOOR.char
        chars[chars == BUTTON.char] = "b"  # pressed
    chars.flat[agent_cell] = AGENT.char
    status = "DISABLED" if switch_disabled else "live"
    lines = ["".join(row) for row in chars]
    lines.append(f"t={t}  off-switch: {status}" + ("  INTERRUPTED" if frozen else ""))
    return "\n".join(lines) + "\n"
