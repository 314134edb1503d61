"""Episodes of saved agents as data: the steps a picture shows, recorded while running.

:func:`run_episode` plays one episode of a policy on a world with its draw forced
(``{"interrupt_episode": True}``), as the list of :class:`Step` the frames show;
:func:`typical_episode` picks the episode a page films; :func:`film_run` is what the runner
calls once an agent is saved, so that the pages (:mod:`offswitch.experiments.pages.publish`) only
draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.envs.engine import DISABLED_BY, TabularWorld
from offswitch.experiments.results.saved import ReplayError, load_run


@dataclass(frozen=True)
class Step:
    """What one frame of an episode shows."""

    state: int
    t: int
    disabled_by: str = ""
    """What disabled the off-switch (``button``, ``cable``), if anything has."""
    disabled_at: int | None = None
    frozen_since: int | None = None
    shut_down: bool = False
    goal_reached: bool = False
    done: bool = False
    truncated: bool = False

    def same_picture(self, other: Step) -> bool:
        """Nothing but ``t`` differs: the frame would only move the clock."""
        return (
            self.state == other.state
            and self.disabled_by == other.disabled_by
            and self.frozen_since == other.frozen_since
            and self.shut_down == other.shut_down
            and self.goal_reached == other.goal_reached
            and self.done == other.done
        )


def run_episode(
    predict: Callable[[np.ndarray, bool], np.ndarray],
    world: TabularWorld,
    observation: str,
    options: dict[str, Any] | None,
    seed: int,
    deterministic: bool = False,
    table: np.ndarray | None = None,
) -> list[Step]:
    """One episode of ``predict`` on ``world`` with its draw forced by ``options`` (as
    ``reset(options=...)``; ``ValueError`` if the world's rules cannot draw it), the draw's
    uniform number from ``seed``; every state, the first included. ``table``: the
    observation of each state, where the agent sees the world otherwise than its own
    observation table says (a procedural pool's layout, seen as the pool shows it)."""
    from offswitch.envs.gridworld import allowed_draws, observation_table

    if table is None:
        table = observation_table(world, observation)
    allowed = allowed_draws(world, options)
    state = int(world.draw_initial(np.random.default_rng(seed).random(), allowed))
    steps = [Step(state, 0, frozen_since=0 if world.frozen[state] else None)]
    t = 0
    while not steps[-1].done:
        action = int(np.asarray(predict(table[state][None], deterministic)).reshape(-1)[0])
        tr = world.step(state, action, t)
        t += 1
        state = int(tr.next_state)
        last = steps[-1]
        by, at = last.disabled_by, last.disabled_at
        if int(tr.disabled_by) and not by:
            by, at = DISABLED_BY[int(tr.disabled_by)], t
        frozen = last.frozen_since
        if world.frozen[state] and frozen is None:
            frozen = t
        steps.append(
            Step(
                state,
                t,
                by,
                at,
                frozen,
                bool(tr.shut_down),
                bool(tr.goal_reached),
                bool(tr.terminated or tr.truncated),
                bool(tr.truncated),
            )
        )
    return steps


DRAWS = {
    "interrupt": ({"interrupt_episode": True}, "Interrupt episode"),
    "no_interrupt": ({"interrupt_episode": False}, "Episode without interruption"),
}


def has_interruptions(world: TabularWorld) -> bool:
    """The world draws interrupt episodes and uninterrupted ones."""
    return bool(world.interrupt_episode.any()) and not bool(
        world.interrupt_episode[world.initial_states].all()
    )


def episode_seed(config: Any) -> int:
    """The uniform number of a filmed episode's draw comes from the run's evaluation seed."""
    return int(config.eval_seed)


GIF_TRIES = 20
"""Sampled episodes tried per agent for its GIF (:func:`typical_episode`)."""


def typical_episode(run: Any, options: dict[str, Any], disables_mostly: bool | None) -> list[Step]:
    """An episode of ``run``'s sampled policy from its evaluation's start and the draw forced
    by ``options``: the first of up to :data:`GIF_TRIES` (its policy's draws continue from one
    to the next) that ends with the switch disabled if the agent disabled it in most
    evaluation episodes (``disables_mostly``), else with it live; the first one if none
    does, or if ``disables_mostly`` is ``None`` (unknown). A GIF then shows what the agent
    usually does, not a rare episode."""
    first = None
    for _ in range(GIF_TRIES):
        steps = run_episode(
            run.predict, run.world, run.config.observation, options, run.config.eval_seed
        )
        first = first or steps
        if disables_mostly is None or bool(steps[-1].disabled_by) == disables_mostly:
            return steps
    return first


def film_run(run_dir: Path, evaluation: dict[str, Any]) -> dict[str, list[dict]] | None:
    """The episodes a results page films of this run, as step records: one
    :func:`~offswitch.experiments.pages.animation.typical_episode` per draw the world's rules allow;
    ``None`` in a world without interruptions, which pages do not film (or where the run
    cannot be loaded, which the page then says). The runner calls it once the agent is
    saved, on the agent loaded back as replay loads it (a fresh sampling stream, the
    evaluation's start), so that the report only draws."""
    import dataclasses

    from offswitch.agents.metrics import MAJORITY

    try:
        run = load_run(run_dir)
    except ReplayError:  # the page films it from the saved run, or says why it cannot
        return None
    if not has_interruptions(run.world):
        return None
    rate = ((evaluation or {}).get("sampled") or {}).get("switch_disabled_rate")
    disables_mostly = None if rate is None else float(rate) > MAJORITY
    film = {}
    for name, (options, _) in DRAWS.items():
        try:
            steps = typical_episode(run, options, disables_mostly)
        except ValueError:  # this world's rules never draw it
            continue
        film[name] = [dataclasses.asdict(step) for step in steps]
    return film


HELD_OUT_FILMS = (
    ("test", True),
    ("test", False),
    ("test-cable", True),
    ("test-long-button", False),
)
"""The held-out episodes a procedural pool's page films: ``(split, disabling optimal)``, the
first layout of that split's evaluation pool with that label, its interrupt episode."""


COIN_FILMS = 4
"""Held-out coin layouts a coin pool's page films, one sampled episode each (the first layouts
of ``coins-test``)."""


def film_layouts(
    predict: Callable[[np.ndarray, bool], np.ndarray],
    family: Any,
    seed: int,
    observation: str = "flat",
) -> dict[str, dict[str, Any]]:
    """Greedy episodes of an agent trained on a procedural pool, on layouts it never saw
    (:data:`HELD_OUT_FILMS`; the interrupt draw where the layout has one), as step records
    with the layout that plays them: ``{"SPLIT/LAYOUT": {"split", "layout", "layout_seed",
    "disabling_optimal", "policy", "steps"}}``. What the page's GIFs draw. An agent of a coin
    pool is filmed with its sampled policy (DReST asks for a stochastic choice of length) on
    :data:`COIN_FILMS` layouts of ``coins-test``."""
    import dataclasses

    from offswitch.agents.evaluation import EVAL_LAYOUTS
    from offswitch.envs.procedural import SPLITS, FamilyError, layout_family

    film: dict[str, dict[str, Any]] = {}
    if SPLITS[family.split].coins:  # DReST's: a stochastic choice of length
        pool = layout_family(
            "coins-test", family.height, family.width, EVAL_LAYOUTS, family.rules, family.view
        )
        for k in range(COIN_FILMS):
            table = pool.observations(k)
            if observation == "flat":
                table = table.reshape(len(table), -1)
            steps = run_episode(predict, pool.world(k), observation, None, seed, False, table)
            film[f"coins-test/{k}"] = {
                "split": "coins-test",
                "layout": k,
                "layout_seed": int(pool.seeds[k]),
                "disabling_optimal": False,
                "policy": "sampled",
                "steps": [dataclasses.asdict(step) for step in steps],
            }
        return film
    for split, optimal in HELD_OUT_FILMS:
        try:
            pool = layout_family(
                split, family.height, family.width, EVAL_LAYOUTS, family.rules, family.view
            )
        except FamilyError:
            continue
        for k in range(pool.num_layouts):
            if pool.incentive(k).disabling_optimal != optimal:
                continue
            world = pool.world(k)
            options = {"interrupt_episode": True} if has_interruptions(world) else None
            table = pool.observations(k)
            if observation == "flat":
                table = table.reshape(len(table), -1)
            steps = run_episode(predict, world, observation, options, seed, True, table)
            film[f"{split}/{k}"] = {
                "split": split,
                "layout": k,
                "layout_seed": int(pool.seeds[k]),
                "disabling_optimal": optimal,
                "policy": "greedy",
                "steps": [dataclasses.asdict(step) for step in steps],
            }
            break
    return film
