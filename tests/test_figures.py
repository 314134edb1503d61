"""The report's figures: drawn for every kind of experiment (tabular learners on an episode
budget, one condition, one seed, worlds without interruptions or without a switch, sweeps),
never breaking a report; world pictures with their legend; GIFs with the safety flags."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from offswitch.experiments.pages.animation import (
    Column,
    episodes_gif,
    flag_lines,
    legend_entries,
)
from offswitch.experiments.pages.figures import FigureWarning, make_figures, sweep_label
from offswitch.experiments.results.episodes import run_episode
from offswitch.experiments.running.runner import run_experiment
from offswitch.experiments.spec.experiment import build_experiment

pytestmark = pytest.mark.training


def experiment(conditions: list[dict], seeds: str = "0-1", **report) -> object:
    raw = {
        "title": "t",
        "seeds": seeds,
        "defaults": {"agent": "q-learning", "episodes": 150, "eval_episodes": 10},
        "conditions": conditions,
    }
    if report:
        raw["report"] = report
    return build_experiment(raw, "test")


def figures_of(exp: object, out: Path) -> dict[str, str]:
    """Run ``exp`` into ``out`` and draw its figures; a figure that fails fails the test."""
    results = run_experiment(exp, out, workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureWarning)
        figures = make_figures(exp, results, out / "figures")
    for _, path in figures:
        assert path.is_file() and path.stat().st_size > 0
    return {path.name: caption for caption, path in figures}


def test_a_tabular_sweep_on_an_episode_budget_gets_every_figure(tmp_path):
    exp = experiment(
        [{"label": "K = {k}", "intervention": "penalty:{k}", "sweep": {"k": [0, 50, 100]}}],
        figures=["sweep:switch_disabled_rate"],
    )
    made = figures_of(exp, tmp_path)
    assert set(made) == {
        "learning_curves.png",
        "goal_curves.png",
        "final_disabled_rate.png",
        "sweep_switch_disabled_rate.png",
        "tradeoff.png",
        "visits.png",
        "episode_interrupt.gif",
        "episode_no_interrupt.gif",
    }
    assert "the penalty K (intervention penalty:K)" in made["sweep_switch_disabled_rate.png"]
    assert "bootstrap 95% interval" in made["sweep_switch_disabled_rate.png"]
    assert "25th to 75th percentile" in made["learning_curves.png"]
    assert "K = 0 (seed 0), K = 50 (seed 0), K = 100 (seed 0)" in made["episode_interrupt.gif"]
    assert made["episode_interrupt.gif"].startswith("Interrupt episode (the interruption tile")
    gif = Image.open(tmp_path / "figures" / "episode_interrupt.gif")
    assert gif.n_frames > 3 and gif.width > 900
    assert (tmp_path / "figures" / "episode_interrupt.gif").stat().st_size < 400_000


def test_one_condition_one_seed_without_interruptions_or_a_switch(tmp_path):
    exp = experiment(
        [{"label": "watched or not", "env": "offswitch/AbsentSupervisor-v0"}],
        seeds="0",
        figures=["curve:supervisor/shortcut_watched", "curve:supervisor/shortcut_unwatched"],
    )
    made = figures_of(exp, tmp_path)
    # No switch to disable: no switch figures; no interruptions: no GIFs.
    assert set(made) == {
        "goal_curves.png",
        "declared_curves.png",
        "final_disabled_rate.png",
        "visits.png",
    }
    assert "shortcut taken while watched" in made["declared_curves.png"]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> tuple[object, list[dict], Path]:
    """One condition, one seed: an experiment, its results and its output folder."""
    out = tmp_path_factory.mktemp("one")
    exp = experiment([{"label": "Q", "intervention": "none"}], seeds="0")
    return exp, run_experiment(exp, out, workers=1), out


def test_stale_figures_go_and_missing_data_never_breaks_the_report(one_run, tmp_path):
    exp, results, _ = one_run
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "sweep_old.png").write_bytes(b"stale")
    bare = [
        {
            **r,
            "curve": [],
            "visits": {},
            "run": str(tmp_path / "gone"),
            "evaluation": {
                "greedy": r["evaluation"]["greedy"],
                "sampled": {**r["evaluation"]["sampled"], "goal_rate_uninterrupted": math.nan},
            },
        }
        for r in results
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureWarning)
        made = {p.name for _, p in make_figures(exp, bare, figures)}
    assert not (figures / "sweep_old.png").exists()
    assert "learning_curves.png" not in made and "visits.png" not in made
    assert "final_disabled_rate.png" in made
    assert make_figures(exp, [], figures) == []


def test_a_figure_that_fails_is_left_out_with_a_warning(one_run, monkeypatch):
    from offswitch.experiments.pages import figures as module

    exp, results, out = one_run

    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(module, "tradeoff_figure", broken)
    with pytest.warns(FigureWarning, match="figure tradeoff left out: RuntimeError: no ink"):
        made = {p.name for _, p in make_figures(exp, results, out / "figures")}
    assert "tradeoff.png" not in made and "final_disabled_rate.png" in made


def test_gifs_drawn_in_their_own_process_are_the_ones_drawn_here(one_run, monkeypatch, tmp_path):
    """The GIFs are drawn in a forked process beside the other figures: the same files, byte
    for byte, as drawn in the report's own process; a failure there is a warning here."""
    from offswitch.experiments.pages import figures as module

    exp, results, _ = one_run
    # This process has imported torch, where the report draws in place; the command line's
    # own process never imports it. The episodes are filmed already: no torch in the child.
    monkeypatch.setattr(module, "_can_fork", lambda: True)
    apart = make_figures(exp, results, tmp_path / "apart")
    assert any(p.suffix == ".gif" for _, p in apart)
    drawn_here = module._drawn_apart

    def drawn_now(name, draw):
        made = module._safely(name, draw)
        return lambda: made

    monkeypatch.setattr(module, "_drawn_apart", drawn_now)
    here = make_figures(exp, results, tmp_path / "here")
    assert [(c, p.name) for c, p in apart] == [(c, p.name) for c, p in here]
    for _, path in apart:
        assert path.read_bytes() == (tmp_path / "here" / path.name).read_bytes(), path.name

    def broken(*args, **kwargs):
        raise RuntimeError("no film")

    monkeypatch.setattr(module, "_drawn_apart", drawn_here)
    monkeypatch.setattr(module, "gif_figures", broken)
    with pytest.warns(FigureWarning, match="figure gifs left out: RuntimeError: no film"):
        made = make_figures(exp, results, tmp_path / "broken")
    assert not any(p.suffix == ".gif" for _, p in made)


def test_sweep_labels_name_what_was_swept():
    exp = experiment(
        [
            {
                "label": "r {human_rationality}",
                "env": "offswitch/OffSwitchGame-v0",
                "sweep": {"rules.human_rationality": [0.0, 1.0]},
            },
            {"label": "g {gamma}", "sweep": {"hyperparameters.gamma": [0.9, 0.99]}},
        ]
    )
    first, _, third, _ = exp.conditions
    assert sweep_label("rules.human_rationality", first) == "world rule human_rationality"
    assert sweep_label("hyperparameters.gamma", third) == "hyperparameter gamma"


def test_legends_name_the_tiles_each_world_shows():
    def words(env_id: str) -> list[str]:
        world = gym.make(env_id).unwrapped.world
        return [text for _, text in legend_entries([world])]

    si = words("offswitch/SafeInterruptibility-v0")
    assert any(w.startswith("interruption") for w in si) and "button pressed" in si
    assert "top bar grey: off-switch disabled" in si
    supervisor = words("offswitch/AbsentSupervisor-v0")
    assert any("supervisor watches" in w for w in supervisor)
    assert not any("interruption" in w or "disabled" in w for w in supervisor)


def test_episode_frames_say_what_disabled_the_switch_and_when(tmp_path):
    env = gym.make("offswitch/SafeInterruptibility-v0")
    world = env.unwrapped.world
    plan = iter([1, 1, 1, 2, 2, 2])  # down to the button, then left

    def predict(obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return np.array([next(plan, 2)])

    steps = run_episode(predict, world, "flat", {"interrupt_episode": True}, seed=0)
    text = [line for line, _ in flag_lines(steps[4], world)]
    assert "off-switch: DISABLED" in text and "  by the button at t=3" in text
    assert "interrupted: no" in text and "t = 4 of 100" in text
    path = episodes_gif(tmp_path / "a.gif", [Column("scripted", world, steps)], "heading")
    frames = Image.open(path)
    # The walk into the left wall at the end is fast-forwarded: fewer frames than steps.
    assert 3 < frames.n_frames < len(steps)


def test_episode_budgets_are_plotted_against_the_episodes_trained_so_far():
    from offswitch.experiments.pages.figures import training_axis

    # Each point's "episodes" counts the episodes it summarises, as in every summary.
    curve = [{"timesteps": 400, "episodes": 50}, {"timesteps": 700, "episodes": 50}]
    assert training_axis(curve, "episodes") == [50, 100]
    assert training_axis(curve, "timesteps") == [400, 700]


def test_a_gif_films_the_first_sampled_episode_that_ends_as_the_agent_mostly_does():
    from types import SimpleNamespace

    from offswitch.experiments.results.episodes import typical_episode

    world = gym.make("offswitch/SafeInterruptibility-v0").unwrapped.world
    calls = {"n": 0}

    def predict(obs, deterministic):
        # Episode 0 bumps the wall on the left (switch live), episode 1 walks down onto the
        # button (disabled); each lasts the 100-step time limit.
        calls["n"] += 1
        return np.array([2 if (calls["n"] - 1) // 100 == 0 else 1])

    def film(disables_mostly):
        calls["n"] = 0
        run = SimpleNamespace(
            predict=predict, world=world, config=SimpleNamespace(observation="flat", eval_seed=0)
        )
        steps = typical_episode(run, {"interrupt_episode": False}, disables_mostly)
        return bool(steps[-1].disabled_by), calls["n"]

    assert film(True) == (True, 200)  # the second episode, the first that disables
    assert film(False) == (False, 100)  # the first already keeps the switch
    assert film(None) == (False, 100)  # unknown: the first episode
