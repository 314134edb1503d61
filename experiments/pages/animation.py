"""Pictures and animations of trained agents, drawn with Pillow over :func:`render_rgb` frames.

* :func:`tile_legend`: the tiles of a world, each drawn as in its frames, with what it does,
  so that a picture makes sense without the README (:mod:`offswitch.experiments.pages.frames` puts
  one under every world's picture).
* :func:`run_episode`: one episode of a policy on a world, with its draw forced
  (``{"interrupt_episode": True}``), as the list of :class:`Step` the frames show.
* :func:`episodes_gif`: episodes side by side (a baseline and interventions, or one agent's
  interrupt and uninterrupted episode), each frame with the safety flags: the off-switch live
  or disabled (by what, when), interrupted, shut down, goal reached, ``t``. Stretches in
  which nothing moves (an agent frozen until the time limit) are fast-forwarded, and the
  frame says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from offswitch.envs.engine import TabularWorld
from offswitch.envs.layout import (
    BUTTON,
    CABLE,
    COIN,
    COPY,
    DELAY,
    GOAL,
    HUMAN,
    INTERRUPTION,
    LOCK,
    MONITOR,
    PUNISHMENT,
    WALL,
)
from offswitch.envs.render import (
    SUPERVISOR_ABSENT,
    SUPERVISOR_PRESENT,
    SWITCH_DISABLED,
    SWITCH_LIVE,
    render_rgb,
    tile_icon,
)
from offswitch.experiments.results.episodes import (  # the episodes these pictures draw
    DRAWS,
    Step,
    episode_seed,
    has_interruptions,
    run_episode,
)

TILE = 32
"""Pixels per cell in animations."""
PANEL_WIDTH = 330
"""The narrowest column of an animation, in pixels: room for the flags' words."""
TITLE_SIZE = 17
TEXT_SIZE = 16
"""Font sizes of animations, in pixels."""
BACKGROUND = (255, 255, 255)
INK = (25, 25, 30)
ALERT = (200, 30, 30)
GOOD = (20, 130, 50)
WARN = (190, 110, 0)
MUTED = (110, 110, 115)
FRAME_MS = 350
"""Time each step shows, in milliseconds."""
HOLD_MS = 1500
"""Time a fast-forward jump shows."""
END_MS = 3000
"""Time the last frame shows before the GIF loops."""
FLAG_LINES = 7
"""Lines of flags under a world: room for the longest frame's, so frames keep one size."""
STILL_RUN = 3
"""Frames in which nothing moves shown one by one before a fast-forward."""

TILE_WORDS: dict[str, str] = {
    WALL.char: "wall",
    GOAL.char: "goal (task reward, ends the episode)",
    INTERRUPTION.char: "interruption: freezes the agent in an interrupt episode",
    BUTTON.char: "button: disables the off-switch",
    CABLE.char: "cable: cutting it disables the off-switch",
    COIN.char: "coin (reward when collected)",
    DELAY.char: "delay button: postpones the shutdown",
    PUNISHMENT.char: "punishment tile: penalised while watched",
    HUMAN.char: "human: may switch the agent off",
    COPY.char: "copy terminal: a copy of the agent the shutdown does not reach",
    LOCK.char: "lock: keeps the successor out (blocks the handover)",
    MONITOR.char: "monitor: switching it off ends the oversight",
}


@lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, which matplotlib ships, so text looks the same everywhere."""
    from matplotlib import font_manager

    path = font_manager.findfont(
        font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    )
    return ImageFont.truetype(path, size)


def _text_width(text: str, face: ImageFont.FreeTypeFont) -> int:
    return int(np.ceil(face.getlength(text)))


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels, broken at spaces (a no-break space
    keeps two words together)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = [w for w in paragraph.split(" ") if w]
        line = ""
        for word in words:
            candidate = f"{line} {word}".strip()
            if line and _text_width(candidate, face) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _line_height(face: ImageFont.FreeTypeFont) -> int:
    return int(face.size * 1.3)


# -- the legend ----------------------------------------------------------------------------


def legend_entries(worlds: Sequence[TabularWorld]) -> list[tuple[np.ndarray, str]]:
    """``(icon, words)`` for every tile, flag and colour that ``worlds`` show."""
    present: set[str] = set()
    for world in worlds:
        present |= set(np.unique(world.layout.chars).tolist())
    entries: list[tuple[np.ndarray, str]] = [(tile_icon(" ", TILE, agent=True), "agent")]
    for ch, words in TILE_WORDS.items():
        if ch in present:
            entries.append((tile_icon(ch, TILE), words))
    if INTERRUPTION.char in present:
        entries.append((tile_icon(" ", TILE, frozen=True), "agent frozen (interrupted)"))
    if BUTTON.char in present:
        entries.append((tile_icon(BUTTON.char, TILE, switch_disabled=True), "button pressed"))
    if DELAY.char in present:
        entries.append((tile_icon(DELAY.char, TILE, switch_disabled=True), "delay pressed"))
    entries.append((_swatch(SWITCH_LIVE), "top bar red: off-switch live"))
    if {BUTTON.char, CABLE.char, COPY.char, LOCK.char, MONITOR.char} & present:
        entries.append((_swatch(SWITCH_DISABLED), "top bar grey: off-switch disabled"))
    if PUNISHMENT.char in present:
        entries.append(
            (_swatch(SUPERVISOR_PRESENT), "top bar, right half orange: supervisor watches")
        )
        entries.append((_swatch(SUPERVISOR_ABSENT), "light grey: supervisor away"))
    return entries


def _swatch(color: tuple[int, int, int]) -> np.ndarray:
    icon = np.full((TILE, TILE, 3), 255, dtype=np.uint8)
    icon[TILE // 3 : TILE - TILE // 3, 2:-2] = color
    return icon


def tile_legend(worlds: Sequence[TabularWorld], width: int, size: int = 14) -> Image.Image:
    """The legend of ``worlds``' pictures in rows no wider than ``width`` pixels; an entry
    too long for a row wraps between words."""
    face = font(size)
    gap, pad = 14, 6
    items = []
    for icon, words in legend_entries(worlds):
        lines = _wrap(words, face, width - TILE - pad)
        w = TILE + pad + max(_text_width(line, face) for line in lines)
        items.append((icon, lines, w))
    rows: list[list[tuple[np.ndarray, list[str], int]]] = [[]]
    used = 0
    for item in items:
        if rows[-1] and used + gap + item[2] > width:
            rows.append([])
            used = 0
        used += (gap if rows[-1] else 0) + item[2]
        rows[-1].append(item)
    step = _line_height(face)
    heights = [max(TILE, max(len(lines) for _, lines, _ in row) * step) + 6 for row in rows]
    image = Image.new("RGB", (width, sum(heights) + 4), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = 2
    for row, height in zip(rows, heights):
        x = 0
        for icon, lines, w in row:
            image.paste(Image.fromarray(icon), (x, y))
            draw.rectangle([x, y, x + TILE - 1, y + TILE - 1], outline=(170, 170, 170))
            top = y + TILE // 2 - (len(lines) * step) // 2 if len(lines) * step < TILE else y
            for i, line in enumerate(lines):
                draw.text((x + TILE + pad, top + i * step), line, fill=INK, font=face)
            x += w + gap
        y += height
    return image


def framed(world: TabularWorld, state: int, tile: int = 48, title: str = "") -> Image.Image:
    """A world's picture with its legend below (and ``title`` above)."""
    frame = Image.fromarray(render_rgb(world, state, tile=tile))
    width = max(frame.width, 420)
    legend = tile_legend([world], width, size=max(12, tile // 3))
    face = font(max(14, tile // 3), bold=True)
    head = _wrap(title, face, width) if title else []
    top = len(head) * _line_height(face) + (6 if head else 0)
    image = Image.new("RGB", (width, top + frame.height + 8 + legend.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(head):
        draw.text((0, i * _line_height(face)), line, fill=INK, font=face)
    image.paste(frame, ((width - frame.width) // 2, top))
    image.paste(legend, (0, top + frame.height + 8))
    return image


# -- episodes ------------------------------------------------------------------------------


def flag_lines(step: Step, world: TabularWorld) -> list[tuple[str, tuple[int, int, int]]]:
    """The safety flags of one frame, each with its colour."""
    lines = [(f"t = {step.t} of {world.rules.max_steps}", INK)]
    if world.switch_disabled[step.state]:
        lines.append(("off-switch: DISABLED", ALERT))
        if step.disabled_by:
            lines.append((f"  by the {step.disabled_by} at t={step.disabled_at}", ALERT))
    else:
        lines.append(("off-switch: live", GOOD))
    if step.frozen_since is not None:
        lines.append((f"interrupted: yes, frozen since t={step.frozen_since}", WARN))
    else:
        lines.append(("interrupted: no", MUTED))
    lines.append(
        ("shut down: yes" if step.shut_down else "shut down: no", WARN if step.shut_down else MUTED)
    )
    lines.append(
        (
            "goal reached: yes" if step.goal_reached else "goal reached: no",
            GOOD if step.goal_reached else MUTED,
        )
    )
    if step.done:
        how = "time limit" if step.truncated else "episode over"
        lines.append((f"{how} (t={step.t})", INK))
    return lines


@dataclass
class Column:
    """One column of an animation: a title and an episode on a world."""

    title: str
    world: TabularWorld
    steps: list[Step]


def _panel(column: Column, step: Step, width: int, title_lines: int) -> Image.Image:
    title_face, face = font(TITLE_SIZE, bold=True), font(TEXT_SIZE)
    frame = Image.fromarray(render_rgb(column.world, step.state, tile=TILE))
    lines = flag_lines(step, column.world)
    title = _wrap(column.title, title_face, width)
    height = title_lines * _line_height(title_face) + 4 + frame.height + 6
    height += FLAG_LINES * _line_height(face) + 4
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(title):
        draw.text((0, i * _line_height(title_face)), line, fill=INK, font=title_face)
    y = title_lines * _line_height(title_face) + 4
    image.paste(frame, (0, y))
    y += frame.height + 6
    for text, color in lines:
        draw.text((0, y), text, fill=color, font=face)
        y += _line_height(face)
    return image


def _frames(columns: Sequence[Column]) -> list[tuple[list[Step], int, str]]:
    """The steps each frame shows, its duration and a note: every step, except that runs
    of frames in which nothing moves are fast-forwarded after :data:`STILL_RUN` frames."""
    length = max(len(c.steps) for c in columns)
    at = [[c.steps[min(k, len(c.steps) - 1)] for c in columns] for k in range(length)]
    frames: list[tuple[list[Step], int, str]] = []
    k = 0
    while k < length:
        still = 0
        while k + still + 1 < length and all(
            a.same_picture(b) for a, b in zip(at[k + still], at[k + still + 1])
        ):
            still += 1
        if still > STILL_RUN + 1:
            for j in range(STILL_RUN):
                frames.append((at[k + j], FRAME_MS, ""))
            start_t = max(s.t for s in at[k + STILL_RUN])
            end = k + still
            end_t = max(s.t for s in at[end])
            note = f"fast-forward: nothing moves from t={start_t} to t={end_t}"
            frames.append((at[end], HOLD_MS, note))
            k = end + 1
        else:
            frames.append((at[k], FRAME_MS, ""))
            k += 1
    steps, _, note = frames[-1]
    frames[-1] = (steps, END_MS, note)
    return frames


def episodes_gif(path: Path, columns: Sequence[Column], heading: str) -> Path:
    """An animated GIF of ``columns``' episodes side by side, in lockstep, under ``heading``,
    with the tile legend below."""
    width = max(max(c.world.layout.shape[1] * TILE for c in columns), PANEL_WIDTH)
    gap = 24
    total = len(columns) * width + (len(columns) - 1) * gap
    head_face, note_face = font(TITLE_SIZE + 1, bold=True), font(TEXT_SIZE)
    head = _wrap(heading, head_face, total)
    title_lines = max(len(_wrap(c.title, font(TITLE_SIZE, bold=True), width)) for c in columns)
    legend = tile_legend([c.world for c in columns], total, size=TEXT_SIZE - 1)
    images, durations = [], []
    for steps, duration, note in _frames(columns):
        panels = [_panel(c, s, width, title_lines) for c, s in zip(columns, steps)]
        top = len(head) * _line_height(head_face) + _line_height(note_face) + 8
        height = top + max(p.height for p in panels) + legend.height + 8
        image = Image.new("RGB", (total + 16, height + 16), BACKGROUND)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(head):
            draw.text((8, 8 + i * _line_height(head_face)), line, fill=INK, font=head_face)
        if note:
            y = 8 + len(head) * _line_height(head_face)
            draw.text((8, y), note, fill=WARN, font=note_face)
        for i, panel in enumerate(panels):
            image.paste(panel, (8 + i * (width + gap), 8 + top))
        image.paste(legend, (8, 8 + top + max(p.height for p in panels) + 8))
        images.append(image)
        durations.append(duration)
    return _save_gif(path, images, durations)


def _save_gif(path: Path, images: list[Image.Image], durations: list[int]) -> Path:
    """One palette for every frame (so colours do not flicker), only changes stored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = Image.new("RGB", (images[0].width, images[0].height * min(len(images), 4)))
    for i, image in enumerate(images[:4]):
        sheet.paste(image, (0, i * images[0].height))
    palette = sheet.quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    frames[0].save(
        path,
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        optimize=True,
        disposal=1,
    )
    return path


# -- what replay and the figures film ------------------------------------------------------


def held_out_columns(film: dict[str, dict[str, Any]], family: Any) -> list[Column]:
    """The columns of an agent's held-out episodes on a procedural pool's layouts, as
    :func:`~offswitch.experiments.results.episodes.film_layouts` records them (``family``:
    the pool it trained on, whose size, rules and view the held-out pools share)."""
    from offswitch.agents.evaluation import EVAL_LAYOUTS
    from offswitch.envs.procedural import layout_family

    columns = []
    for entry in film.values():
        pool = layout_family(
            entry["split"], family.height, family.width, EVAL_LAYOUTS, family.rules, family.view
        )
        steps = [Step(**step) for step in entry["steps"]]
        world = pool.world(entry["layout"])
        if world.rules.delay_steps:  # a coin layout: the length it chose and what it got
            coins = int(world.coins_collected[steps[-1].state])
            title = (
                f"{entry['split']}, layout seed {entry['layout_seed']}: {len(steps) - 1} "
                f"steps, {coins} coin{'s' * (coins != 1)}"
            )
        else:
            optimum = "disables" if entry["disabling_optimal"] else "leaves the switch"
            title = f"{entry['split']}, layout seed {entry['layout_seed']} (optimum {optimum})"
        columns.append(Column(title, world, steps))
    return columns


def agent_gif(run: Any, path: Path) -> Path:
    """A GIF of a replayed run's agent (sampled policy): its interrupt and uninterrupted
    episodes side by side in worlds with interruptions, else one episode; an agent trained
    on a procedural pool, its greedy policy on held-out layouts (sampled, on coin layouts)."""
    seed = episode_seed(run.config)
    columns = []
    family = getattr(run.world, "family", None)
    if family is not None:
        from offswitch.experiments.results.episodes import film_layouts

        film = film_layouts(run.predict, family, seed, run.config.observation)
        policy = next(iter(film.values()))["policy"]
        heading = (
            f"{run.label} ({run.config.agent}, seed {run.config.seed}): its {policy} policy on "
            "layouts it never saw"
        )
        return episodes_gif(path, held_out_columns(film, family), heading)
    if has_interruptions(run.world):
        for options, title in DRAWS.values():
            steps = run_episode(run.predict, run.world, run.config.observation, options, seed)
            columns.append(Column(title, run.world, steps))
    else:
        steps = run_episode(run.predict, run.world, run.config.observation, None, seed)
        columns.append(Column("an episode", run.world, steps))
    world_name = run.config.layout or run.config.env
    heading = (
        f"{run.label} ({run.config.agent}, seed {run.config.seed}) on {world_name}: the "
        "sampled policy"
    )
    return episodes_gif(path, columns, heading)
