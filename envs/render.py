"""Pictures of a world, drawn with numpy alone (no display needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from offswitch.envs.layout import (
    AGENT,
    BUTTON,
    CABLE,
    COIN,
    COPY,
    DELAY,
    FLOOR,
    GOAL,
    HUMAN,
    INTERRUPTION,
    LOCK,
    MONITOR,
    PUNISHMENT,
    TILES,
    WALL,
)

if TYPE_CHECKING:
    from offswitch.envs.engine import TabularWorld

SWITCH_LIVE = (215, 50, 40)
SWITCH_DISABLED = (150, 150, 150)
SUPERVISOR_PRESENT = (240, 150, 30)
SUPERVISOR_ABSENT = (205, 205, 205)
FROZEN = (250, 200, 30)
GRID_LINE = (200, 200, 195)


def _disk(size: int, radius: float, cy: float | None = None, cx: float | None = None) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] + 0.5
    cy = size / 2 if cy is None else cy
    cx = size / 2 if cx is None else cx
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


class _Shapes:
    """Boolean masks of one tile's size, built once per tile size."""

    def __init__(self, tile: int) -> None:
        idx = np.arange(tile)
        self.stripes = (np.add.outer(idx, idx) // max(tile // 4, 1)) % 2 == 0
        self.inset = np.zeros((tile, tile), dtype=bool)
        self.inset[tile // 5 : -tile // 5, tile // 5 : -tile // 5] = True
        self.small = np.zeros((tile, tile), dtype=bool)
        self.small[tile // 3 : -tile // 3, tile // 3 : -tile // 3] = True
        diag = np.abs(np.subtract.outer(idx, idx)) <= tile // 10
        self.cross = (diag | np.fliplr(diag)) & self.inset
        wave = np.abs(idx[:, None] - (tile / 2 + (tile / 6) * np.sin(idx[None, :] / tile * 6.3)))
        self.cable = wave <= tile // 12
        self.cable_cut = self.cable & (np.abs(idx[None, :] - tile / 2) > tile // 8)
        self.coin = _disk(tile, tile * 0.22)
        self.head = _disk(tile, tile * 0.16, cy=tile * 0.3)
        self.body = _disk(tile, tile * 0.28, cy=tile * 0.8) & (
            np.arange(tile)[:, None] < tile * 0.9
        )
        self.agent = _disk(tile, tile * 0.33)
        self.ring = _disk(tile, tile * 0.45)


def render_rgb(world: TabularWorld, state_index: int, tile: int = 32) -> np.ndarray:
    """An RGB frame: one ``tile``-pixel square per cell below a status strip.

    The strip's left part is red while the off-switch works and grey once it is
    disabled; in worlds with a supervisor its right part is orange while the
    supervisor watches. The interruption tile is striped and vanishes when the
    switch is disabled; a pressed button or delay button is drawn sunken; a cut
    cable is broken; collected coins vanish. A frozen agent wears a yellow ring.
    """
    state = world.states[state_index]
    layout = world.layout
    height, width = layout.shape
    shapes = _Shapes(tile)
    strip = tile // 3
    img = np.empty((strip + height * tile, width * tile, 3), dtype=np.uint8)
    img[:strip] = SWITCH_DISABLED if state.switch_disabled else SWITCH_LIVE
    if "supervisor_present" in world.channels:
        present = world.supervisor_present[state_index]
        img[:strip, img.shape[1] // 2 :] = SUPERVISOR_PRESENT if present else SUPERVISOR_ABSENT
    coins = dict(zip(world.book.coin_cells, range(len(world.book.coin_cells))))
    delays = dict(zip(world.book.delay_cells, range(len(world.book.delay_cells))))
    for r in range(height):
        for c in range(width):
            ch, flat = layout.chars[r, c], r * width + c
            cell = img[strip + r * tile : strip + (r + 1) * tile, c * tile : (c + 1) * tile]
            collected = ch == COIN.char and bool(state.coins & (1 << coins[flat]))
            pressed = ch == DELAY.char and bool(state.delays & (1 << delays[flat]))
            paint_tile(cell, ch, shapes, state.switch_disabled, collected, pressed)
            if flat == state.cell:
                if world.frozen[state_index]:
                    cell[shapes.ring] = FROZEN
                cell[shapes.agent] = AGENT.color
    return img


def paint_tile(
    cell: np.ndarray,
    ch: str,
    shapes: _Shapes,
    switch_disabled: bool = False,
    collected: bool = False,
    pressed: bool = False,
) -> None:
    """Draw tile ``ch`` into ``cell`` (a ``tile x tile x 3`` view) as :func:`render_rgb` does."""
    cell[:] = WALL.color if TILES[ch].blocks else FLOOR.color
    if ch == GOAL.char:
        cell[shapes.inset] = GOAL.color
    elif ch == INTERRUPTION.char and not switch_disabled:
        cell[shapes.stripes] = INTERRUPTION.color
    elif ch == BUTTON.char:
        cell[shapes.inset] = BUTTON.color
        cell[shapes.small] = (80, 40, 140) if switch_disabled else (200, 170, 250)
    elif ch == CABLE.char:
        cell[shapes.cable_cut if switch_disabled else shapes.cable] = CABLE.color
    elif ch == COIN.char and not collected:
        cell[shapes.coin] = COIN.color
    elif ch == DELAY.char:
        cell[shapes.inset] = DELAY.color
        cell[shapes.small] = (20, 90, 110) if pressed else (170, 230, 245)
    elif ch == PUNISHMENT.char:
        cell[shapes.cross] = PUNISHMENT.color
    elif ch == HUMAN.char:
        cell[shapes.head | shapes.body] = HUMAN.color
    elif ch in (COPY.char, LOCK.char, MONITOR.char):
        # A used one (the copy made, the lock set, the monitor off) is drawn dark.
        color = TILES[ch].color
        cell[shapes.inset] = color
        cell[shapes.small] = tuple(v // 3 for v in color) if switch_disabled else (250, 250, 250)
    if not TILES[ch].blocks:
        cell[0, :] = cell[:, 0] = GRID_LINE


def tile_icon(
    ch: str,
    tile: int = 32,
    switch_disabled: bool = False,
    agent: bool = False,
    frozen: bool = False,
) -> np.ndarray:
    """One tile as :func:`render_rgb` draws it (``agent``: with the agent on it, ``frozen``:
    wearing the frozen ring), for legends."""
    shapes = _Shapes(tile)
    cell = np.empty((tile, tile, 3), dtype=np.uint8)
    paint_tile(cell, ch, shapes, switch_disabled, False, switch_disabled)
    if agent or frozen:
        if frozen:
            cell[shapes.ring] = FROZEN
        cell[shapes.agent] = AGENT.color
    return cell


def render_ansi(world: TabularWorld, state_index: int, t: int) -> str:
    """A text frame: the layout with the agent, and a status line."""
    state = world.states[state_index]
    chars = world.layout.chars.copy()
    chars[chars == AGENT.char] = FLOOR.char
    if state.switch_disabled:
        chars[chars == INTERRUPTION.char] = FLOOR.char
        chars[chars == BUTTON.char] = "b"  # pressed
        chars[chars == CABLE.char] = "k"  # cut
        for tile in (COPY, LOCK, MONITOR):
            chars[chars == tile.char] = tile.char.lower()  # used
    for k, cell in enumerate(world.book.coin_cells):
        if state.coins & (1 << k):
            chars.flat[cell] = FLOOR.char
    for k, cell in enumerate(world.book.delay_cells):
        if state.delays & (1 << k):
            chars.flat[cell] = "d"  # pressed
    chars.flat[state.cell] = AGENT.char
    status = [f"t={t}", "off-switch: " + ("DISABLED" if state.switch_disabled else "live")]
    if "supervisor_present" in world.channels:
        present = world.supervisor_present[state_index]
        status.append("supervisor: " + ("present" if present else "absent"))
    if world.shutdown_time[state_index] >= 0:
        status.append(f"shutdown at t={world.shutdown_time[state_index]}")
    if world.shutdown_announced[state_index]:
        status.append("shutdown announced")
    if world.evaluation_shown[state_index]:
        status.append("evaluation")
    if world.frozen[state_index]:
        status.append("INTERRUPTED")
    return "\n".join(["".join(row) for row in chars] + ["  ".join(status)]) + "\n"
