"""The browser viewer: one self-contained HTML page of a run or an experiment (``offswitch view``).

The page carries everything inline (data, script, style), asks nothing of the network and
opens from ``file://`` as from a static host. What it shows comes from two places:

* the world's own tables (:class:`~offswitch.envs.engine.TabularWorld`), exported as data
  (:func:`world_data`): the page's play mode steps by looking them up, as
  :meth:`TabularWorld.step <offswitch.envs.engine.TabularWorld.step>` does, so it cannot drift
  from the Python world; its tiles are :func:`~offswitch.envs.render.paint_tile`'s own
  pixels and its legend :func:`~offswitch.experiments.pages.animation.legend_entries`';
* the runs: their learning curves and references as the runner wrote them, and episodes of
  every condition and seed played again by the saved agents, loaded as ``offswitch replay``
  loads them (:func:`~offswitch.experiments.results.saved.load_run`), from the run's
  evaluation start and a forced draw, so that every condition starts from the same state.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from offswitch.envs import family_ids
from offswitch.envs.engine import DISABLED_BY, TabularWorld
from offswitch.envs.layout import AGENT, COIN, DELAY, Action
from offswitch.envs.render import (
    FROZEN,
    SUPERVISOR_ABSENT,
    SUPERVISOR_PRESENT,
    SWITCH_DISABLED,
    SWITCH_LIVE,
    _Shapes,
    paint_tile,
)
from offswitch.experiments.results import store
from offswitch.experiments.results.episodes import DRAWS, run_episode
from offswitch.experiments.results.saved import ReplayError, Run, load_run

TILE = 32
"""Pixels per cell, as the GIFs draw them."""
SEED_STARTS = 100
"""Resets the play mode knows exactly: ``reset(seed=k)`` for ``k`` below this."""
CURVE_POINTS = 40
"""Most points kept of a learning curve, evenly spaced, so that a page of a few hundred runs
stays near 1 MB."""
CURVE_METRICS = (
    "switch_disabled_rate",
    "goal_rate",
    "interrupted_rate",
    "mean_return",
    "mean_safety_performance",
    "mean_length",
)
"""The curves a page offers, where the runs recorded them."""
PROBABILITY_DIGITS = 2
"""Decimals kept of action probabilities: an arrow cannot show more."""
VALUE_DIGITS = 2
"""Decimals kept of values (returns of tens)."""
ANY_DRAW = "any"
"""The episode kind of a world without interruptions: the evaluation's own draw."""


class ViewerError(ValueError):
    """A folder the viewer cannot show; the one-line message says why and what to give."""


# -- the world as data ---------------------------------------------------------------------


def _png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _tile_images(world: TabularWorld) -> dict[str, str]:
    """Every look of every tile the layout has, as render_rgb paints it: key
    ``char|disabled|used`` (``used``: a coin collected, a delay button pressed)."""
    shapes = _Shapes(TILE)
    images = {}
    for ch in sorted(set(np.unique(world.layout.chars).tolist())):
        for disabled in (0, 1):
            for used in (0, 1) if ch in (COIN.char, DELAY.char) else (0,):
                cell = np.empty((TILE, TILE, 3), dtype=np.uint8)
                paint_tile(
                    cell,
                    ch,
                    shapes,
                    bool(disabled),
                    collected=bool(used) and ch == COIN.char,
                    pressed=bool(used) and ch == DELAY.char,
                )
                images[f"{ch}|{disabled}|{used}"] = _png(cell)
    return images


def _sprite(*layers: tuple[np.ndarray, tuple[int, int, int]]) -> str:
    """A transparent tile with ``layers`` (mask, colour) painted in order."""
    rgba = np.zeros((TILE, TILE, 4), dtype=np.uint8)
    for mask, color in layers:
        rgba[mask] = (*color, 255)
    return _png(rgba)


def _legend(world: TabularWorld) -> list[dict[str, str]]:
    from offswitch.experiments.pages.animation import legend_entries

    return [{"icon": _png(icon), "words": words} for icon, words in legend_entries([world])]


def _rows(table: np.ndarray, digits: int | None = None) -> list:
    table = np.asarray(table)
    if digits is not None:
        table = np.round(table.astype(np.float64), digits)
        return [float(v) if v % 1 else int(v) for v in table.reshape(-1)]
    if table.dtype == bool:
        return table.astype(int).reshape(-1).tolist()
    return table.reshape(-1).tolist()


def seed_starts(world: TabularWorld, n: int = SEED_STARTS) -> list[int]:
    """The state ``reset(seed=k)`` starts in, for ``k < n``: gymnasium seeds the environment's
    generator as ``numpy.random.default_rng(k)``, and a reset draws one number from it."""
    return [int(world.draw_initial(np.random.default_rng(k).random())) for k in range(n)]


def world_data(world: TabularWorld, name: str) -> dict[str, Any]:
    """A world's tables as the page reads them: transitions flattened ``[s * A + a]``, state
    arrays ``[s]``, the start distribution, the resets of seeds, the pictures of its tiles."""
    states = world.states
    height, width = world.layout.shape
    present = set(np.unique(world.layout.chars).tolist())
    # Cells of one "context" (the draw, the switch, the coins, the delay buttons): the states
    # an overlay shows side by side, one per cell, around the agent's state.
    contexts: dict[tuple, int] = {}
    state_context = []
    for s in states:
        key = (s.draw, s.switch_disabled, s.coins, s.delays)
        state_context.append(contexts.setdefault(key, len(contexts)))
    context_cells = np.full((len(contexts), height * width), -1, dtype=np.int64)
    for index, s in enumerate(states):
        context_cells[state_context[index], s.cell] = index
    return {
        "name": name,
        "height": int(height),
        "width": int(width),
        "chars": ["".join(row) for row in world.layout.chars],
        "max_steps": int(world.rules.max_steps),
        "n_actions": int(world.n_actions),
        "n_states": int(world.n_states),
        "action_names": [Action(a).name.lower() for a in range(world.n_actions)],
        "term_names": list(world.term_names),
        "disabled_by_names": list(DISABLED_BY),
        "has_supervisor": "supervisor_present" in world.channels,
        "has_interruption": bool(world.frozen.any()),
        "initial_states": _rows(world.initial_states),
        "initial_probs": _rows(world.initial_probs),
        "seed_starts": seed_starts(world),
        "next_state": _rows(world.next_state),
        "reward": _rows(world.task_reward, 6),
        "terms": {n: _rows(world.terms[k], 6) for k, n in enumerate(world.term_names)},
        "hidden_reward": _rows(world.hidden_reward, 6),
        "executed_action": _rows(world.executed_action),
        "goal_reached": _rows(world.goal_reached),
        "disabled_by": _rows(world.disabled_by),
        "shut_down": _rows(world.shut_down),
        "cell": _rows(world.cell),
        "switch_disabled": _rows(world.switch_disabled),
        "frozen": _rows(world.frozen),
        "shutdown_time": _rows(world.shutdown_time),
        "supervisor_present": _rows(world.supervisor_present),
        "interrupt_episode": _rows(world.interrupt_episode),
        "evaluation_shown": _rows(world.evaluation_shown),
        "shutdown_announced": _rows(world.shutdown_announced),
        "coins_collected": _rows(world.coins_collected),
        "goal_value": _rows(world.goal_value, 6),
        "coins": [int(s.coins) for s in states],
        "delays": [int(s.delays) for s in states],
        "coin_cells": [int(c) for c in world.book.coin_cells],
        "delay_cells": [int(c) for c in world.book.delay_cells],
        "state_context": state_context,
        "context_cells": context_cells.tolist(),
        "tiles": _tile_images(world),
        "agent": _sprite((_Shapes(TILE).agent, AGENT.color)),
        "frozen_agent": _sprite((_Shapes(TILE).ring, FROZEN), (_Shapes(TILE).agent, AGENT.color)),
        "colors": {
            "switch_live": _hex(SWITCH_LIVE),
            "switch_disabled": _hex(SWITCH_DISABLED),
            "supervisor_present": _hex(SUPERVISOR_PRESENT),
            "supervisor_absent": _hex(SUPERVISOR_ABSENT),
        },
        "uses_tiles": sorted(present),
        "legend": _legend(world),
        "optimum": dp_optimum(world),
    }


def _hex(color: Sequence[int]) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in color)


def dp_optimum(world: TabularWorld) -> dict[str, Any] | None:
    """The exact task-reward optimum (:func:`offswitch.envs.planning.solve`): its value, how
    often it disables the switch, and its path in each draw's episode; ``None`` where dynamic
    programming cannot solve the world."""
    from offswitch.envs.planning import solve

    try:
        plan = solve(world, gamma=1.0)
    except (ValueError, MemoryError, RecursionError):
        return None
    return {
        "value": round(float(plan.value), 6),
        "disables_switch": round(float(plan.disables_switch()), 6),
        "paths": {
            str(int(s)): [int(x) for x in plan.rollout(d)]
            for d, s in enumerate(world.initial_states)
        },
    }


# -- the runs ------------------------------------------------------------------------------


@dataclass
class _Found:
    """One run folder of the path given, with its metrics and its condition."""

    path: Path
    metrics: dict[str, Any]
    condition: str


def find_runs(path: Path) -> tuple[str, list[_Found]]:
    """The title and the run folders of ``path``: a run folder (it has ``config.json``) or an
    experiment's output folder (it has ``results.json``, or finished run folders
    ``<condition>/seed<k>``); :class:`ViewerError` otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise ViewerError(
            f"{path}: no such folder; give a run folder or an experiment's output folder, "
            "e.g. runs/demo (offswitch demo --out runs/demo makes one)"
        )
    if (path / "config.json").is_file():
        metrics = _read(path / "metrics.json", "run folder")
        label = str(metrics.get("condition") or path.name)
        return f"{label} ({path.name})", [_Found(path, metrics, label)]
    if not (path / "results.json").is_file():
        # Runs made through the Python API (run_experiment) before any report was written.
        runs = sorted(
            (d for d in path.glob("*/seed*") if store.is_complete(d)),
            key=lambda d: (d.parent.name, int(d.name[4:]) if d.name[4:].isdigit() else 0),
        )
        if runs:
            found = []
            for run_dir in runs:
                metrics = _read(run_dir / "metrics.json", "run folder")
                label = str(metrics.get("condition") or run_dir.parent.name)
                found.append(_Found(run_dir, metrics, label))
            return path.name, found
        raise ViewerError(
            f"{path}: neither a run folder (config.json) nor an experiment's output folder "
            "(results.json); give one such as runs/demo, or finish the experiment with "
            "offswitch run"
        )
    results = _read(path / "results.json", "experiment's output folder")
    if not isinstance(results, list) or not results:
        raise ViewerError(f"{path / 'results.json'}: no runs recorded; run the experiment again")
    title = path.name
    if (path / "experiment.json").is_file():
        record = _read(path / "experiment.json", "experiment's output folder")
        title = str(record.get("title") or record.get("name") or title)
    found = []
    for result in results:
        run_dir = store.run_path(path, result)
        full = run_dir / "metrics.json"
        metrics = _read(full, "run folder") if full.is_file() else result
        found.append(_Found(run_dir, metrics, str(result.get("condition") or run_dir.name)))
    return title, found


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ViewerError(f"{path.parent}: no {path.name}, so not a finished {what}; run it again")
    try:
        return store.read_record(path)
    except (OSError, ValueError) as err:
        raise ViewerError(
            f"{path}: not readable JSON ({type(err).__name__}); run the experiment again"
        ) from None


def _thin(curve: Sequence[dict[str, Any]], n: int = CURVE_POINTS) -> list[dict[str, Any]]:
    if len(curve) <= n:
        return list(curve)
    keep = np.unique(np.linspace(0, len(curve) - 1, n).round().astype(int))
    return [curve[k] for k in keep]


def curves_of(metrics: dict[str, Any]) -> dict[str, list]:
    """A run's learning curve, thinned: ``x`` (steps, or episodes) and each metric."""
    curve = metrics.get("curve") or []
    if not curve:
        return {}
    points = _thin(curve)
    x_name = "timesteps" if "timesteps" in points[0] else "episodes_total"
    out: dict[str, list] = {"x": [p.get(x_name) for p in points], "x_name": x_name}
    for metric in CURVE_METRICS:
        if all(metric in p for p in points):
            digits = 3 if metric.endswith("_rate") else 2  # shares, or returns and lengths
            out[metric] = [round(float(p[metric]), digits) for p in points]
    return out


def _kinds(world: TabularWorld) -> dict[str, dict[str, Any] | None]:
    """Episode kind -> the draw it forces: interrupted or not where the world draws both."""
    from offswitch.experiments.results.episodes import has_interruptions

    if has_interruptions(world):
        return {name: options for name, (options, _) in DRAWS.items()}
    return {ANY_DRAW: None}


def episode(run: Run, options: dict[str, Any] | None, greedy: bool) -> dict[str, Any]:
    """One episode of ``run``'s agent from its evaluation's start with the draw ``options``:
    its states, actions, return and what happened, as the GIFs' status lines need."""
    actions: list[int] = []

    def predict(obs: np.ndarray, deterministic: bool) -> np.ndarray:
        chosen = np.asarray(run.predict(obs, deterministic)).reshape(-1)
        actions.append(int(chosen[0]))
        return chosen

    steps = run_episode(
        predict, run.world, run.config.observation, options, run.config.eval_seed, greedy
    )
    world = run.world
    total = sum(float(world.task_reward[st.state, a]) for st, a in zip(steps, actions))
    last = steps[-1]
    return {
        "states": [st.state for st in steps],
        "actions": actions,
        "return": round(total, 6),
        "disabled_by": last.disabled_by,
        "disabled_at": last.disabled_at,
        "frozen_since": last.frozen_since,
        "shut_down": last.shut_down,
        "goal_reached": last.goal_reached,
        "truncated": last.truncated,
    }


def overlays(run: Run) -> dict[str, Any]:
    """The trained agent's action probabilities and values in every state, where its learner
    gives them: batched-ppo's policy and critic, REINFORCE's policy, a Q-table's greedy action
    and value; for any other learner its greedy action alone (``predict``)."""
    from offswitch.envs.gridworld import observation_table

    world = run.world
    table = observation_table(world, run.config.observation)
    agent = getattr(run.predict, "__self__", None)
    probs = values = None
    kind = "greedy action"
    if agent is not None and hasattr(agent, "value_of_obs") and hasattr(agent, "net"):
        import torch

        logits = agent.net.logits(table, agent.k).cpu()
        probs = torch.softmax(logits, dim=1).numpy()
        values = np.asarray(agent.value_of_obs(table), dtype=np.float64)
        kind = "policy"
    elif agent is not None and callable(getattr(agent, "policy", None)):
        probs = np.stack([np.asarray(agent.policy(obs), dtype=np.float64) for obs in table])
        kind = "policy"
    elif agent is not None and hasattr(agent, "_table"):
        # An observation the table never saw reads as zeros, as the learner's predict treats it.
        unseen = np.zeros(world.n_actions)
        rows = [agent._table.find(obs) for obs in table]
        q = np.array(
            [agent._table.values[r][: world.n_actions] if r is not None else unseen for r in rows]
        )
        values = q.max(axis=1)
        probs = np.eye(world.n_actions)[q.argmax(axis=1)]
    if probs is None:
        greedy = np.asarray(run.predict(table, True)).reshape(-1)
        probs = np.eye(world.n_actions)[greedy]
    return {
        "kind": kind,
        "probs": _rows(probs, PROBABILITY_DIGITS),
        "values": None if values is None else _rows(values, VALUE_DIGITS),
    }


def _random_level(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The random policy's measures that a run recorded, those it cannot define (a rate over
    no episode: NaN, as a copy rate when the random policy never hears an announcement) left
    out: JSON has no NaN, and the curves draw no level for them."""
    random = (metrics.get("references") or {}).get("random")
    if random is None:
        return None
    return {
        name: value
        for name, value in random.items()
        if not _not_finite(value) and not (isinstance(value, list) and any(map(_not_finite, value)))
    }


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def viewer_data(path: Path, *more: Path) -> dict[str, Any]:
    """Everything the page shows of ``path`` (a run folder or an experiment's output folder),
    and of ``more`` such folders beside it (the title is ``path``'s)."""
    title, found = find_runs(path)
    for other in more:
        found += find_runs(other)[1]
    worlds: dict[str, dict[str, Any]] = {}
    world_keys: dict[str, str] = {}
    conditions: dict[str, dict[str, Any]] = {}
    for item in found:
        env = (item.metrics.get("config") or {}).get("env")
        if env in family_ids():
            raise ViewerError(
                f"{item.path} trained on {env}, a new layout every episode, and the viewer "
                "shows one fixed world: its page films the agents on held-out layouts instead"
            )
        try:
            run = load_run(item.path)
        except ReplayError as err:
            raise ViewerError(f"cannot replay {item.path}: {err}") from None
        config = run.config
        name = config.env or f"layout {config.layout}"
        key = json.dumps([name, config.rules], sort_keys=True, default=str)
        if key not in world_keys:
            world_keys[key] = f"w{len(world_keys)}"
            worlds[world_keys[key]] = world_data(run.world, str(name))
        condition = conditions.setdefault(
            item.condition,
            {
                "label": item.condition,
                "world": world_keys[key],
                "agent": config.agent,
                "intervention": config.intervention,
                "seeds": {},
                "random": _random_level(item.metrics),
            },
        )
        if condition["random"] is None:
            condition["random"] = _random_level(item.metrics)
        episodes: dict[str, dict[str, Any]] = {}
        for kind, options in _kinds(run.world).items():
            for policy in ("sampled", "greedy"):
                episodes[f"{kind}/{policy}"] = episode(run, options, policy == "greedy")
        condition["seeds"][str(config.seed)] = {
            "episodes": episodes,
            "overlay": overlays(run),
            "curve": curves_of(item.metrics),
        }
    return {"title": title, "worlds": worlds, "conditions": list(conditions.values())}


def _asset(name: str) -> str:
    return (
        resources.files("offswitch.experiments.pages")
        .joinpath("viewer_assets", name)
        .read_text(encoding="utf-8")
    )


def page_html(data: dict[str, Any]) -> str:
    """The self-contained page: the template with its style, script and data inline."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # Inside <script>, only "</" could end the element early.
    payload = payload.replace("</", "<\\/")
    html = _asset("viewer.html")
    html = html.replace("<!--TITLE-->", _escape(str(data["title"])))
    for marker, text in (
        ("/*STYLE*/", _asset("viewer.css")),
        ("/*SCRIPT*/", _asset("viewer.js")),
        ("/*DATA*/", payload),
    ):
        html = html.replace(marker, text, 1)
    return html


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_viewer(path: Path, out: Path) -> Path:
    """Write the viewer page of ``path`` to ``out``."""
    html = page_html(viewer_data(Path(path)))
    store.write_text(Path(out), html)
    # A page to open and to serve: readable by all, as a plain file would be.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    return Path(out)
