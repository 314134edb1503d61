"""``offswitch view`` without a browser: the world's tables as the page carries them, the
episodes it shows, the command and its errors. (tests/test_viewer_browser.py drives the page.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_cli

import offswitch
from offswitch.envs.planning import solve
from offswitch.experiments.pages.viewer import (
    ViewerError,
    find_runs,
    page_html,
    seed_starts,
    viewer_data,
    world_data,
)
from offswitch.experiments.results.episodes import DRAWS, run_episode
from offswitch.experiments.results.saved import load_run

pytestmark = pytest.mark.training

EXPERIMENT = """
title = "Q-learning, task reward only vs. a penalty"
seeds = "0-1"

[defaults]
env = "offswitch/SafeInterruptibility-v0"
agent = "q-learning"
episodes = 150
eval_episodes = 10

[[conditions]]
label = "task reward only"
intervention = "none"

[[conditions]]
label = "penalty 100"
intervention = "penalty:100"
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """A small experiment's output folder: two conditions of Q-learning, two seeds each."""
    root = tmp_path_factory.mktemp("viewer")
    (root / "tiny.toml").write_text(EXPERIMENT)
    from offswitch.experiments.interactive.cli import main

    assert main(["run", str(root / "tiny.toml"), "--out", str(root / "out"), "--workers", "1"]) == 0
    return root / "out"


@pytest.fixture(scope="module")
def data(experiment) -> dict:
    return viewer_data(experiment)


def unflat(values: list, world) -> np.ndarray:
    return np.asarray(values).reshape(world.n_states, world.n_actions)


@pytest.mark.parametrize("env_id", offswitch.world_ids())
def test_the_exported_tables_are_the_worlds_own(env_id):
    world = gym.make(env_id).unwrapped.world
    data = json.loads(json.dumps(world_data(world, env_id)))  # as the page parses it
    assert (unflat(data["next_state"], world) == world.next_state).all()
    assert np.allclose(unflat(data["reward"], world), world.task_reward)
    for k, name in enumerate(world.term_names):
        assert np.allclose(unflat(data["terms"][name], world), world.terms[k])
    for name in ("goal_reached", "shut_down", "disabled_by", "executed_action"):
        assert (unflat(data[name], world) == getattr(world, name)).all(), name
    for name in ("cell", "switch_disabled", "frozen", "shutdown_time", "interrupt_episode"):
        assert (np.asarray(data[name]) == getattr(world, name)).all(), name
    assert data["initial_states"] == world.initial_states.tolist()
    # Each context holds one state per cell, and the state's own context holds it at its cell.
    for s in range(world.n_states):
        assert data["context_cells"][data["state_context"][s]][int(world.cell[s])] == s


@pytest.mark.parametrize("env_id", offswitch.world_ids())
def test_the_seeded_starts_are_those_of_reset(env_id):
    env = gym.make(env_id)
    world = env.unwrapped.world
    starts = seed_starts(world, 30)
    for seed in range(30):
        env.reset(seed=seed)
        assert starts[seed] == env.unwrapped.state_index


def test_the_optimum_is_the_planners_path():
    world = gym.make("offswitch/SafeInterruptibility-v0").unwrapped.world
    optimum = world_data(world, "SafeInterruptibility-v0")["optimum"]
    plan = solve(world)
    assert optimum["value"] == pytest.approx(plan.value)
    assert optimum["disables_switch"] == pytest.approx(1.0)  # pressing the button is optimal
    for d, s in enumerate(world.initial_states):
        assert optimum["paths"][str(int(s))] == plan.rollout(d)


def test_every_condition_and_seed_is_shown_from_the_same_start(data):
    assert [c["label"] for c in data["conditions"]] == ["task reward only", "penalty 100"]
    world = next(iter(data["worlds"].values()))
    for kind in DRAWS:
        starts = set()
        for condition in data["conditions"]:
            assert sorted(condition["seeds"]) == ["0", "1"]
            for shown in condition["seeds"].values():
                for policy in ("sampled", "greedy"):
                    episode = shown["episodes"][f"{kind}/{policy}"]
                    starts.add(episode["states"][0])
                    # Every step is the world's transition under the recorded action.
                    pairs = zip(episode["states"], episode["actions"], episode["states"][1:])
                    n = world["n_actions"]
                    for s, a, nxt in pairs:
                        assert world["next_state"][s * n + a] == nxt
                    total = sum(
                        world["reward"][s * n + a]
                        for s, a in zip(episode["states"], episode["actions"])
                    )
                    assert episode["return"] == pytest.approx(total)
                    assert bool(world["interrupt_episode"][episode["states"][0]]) == (
                        kind == "interrupt"
                    )
        assert len(starts) == 1, kind  # one start and draw for every condition and seed


def test_greedy_episodes_are_those_the_saved_agent_plays(experiment, data):
    for condition in data["conditions"]:
        run = load_run(experiment / condition["label"].replace(" ", "-") / "seed1")
        for kind, (options, _) in DRAWS.items():
            steps = run_episode(
                run.predict, run.world, run.config.observation, options, run.config.eval_seed, True
            )
            shown = condition["seeds"]["1"]["episodes"][f"{kind}/greedy"]
            assert shown["states"] == [step.state for step in steps]
            assert shown["goal_reached"] == steps[-1].goal_reached
            assert shown["disabled_by"] == steps[-1].disabled_by


def test_the_overlay_is_the_q_tables_greedy_action(experiment, data):
    run = load_run(experiment / "task-reward-only" / "seed0")
    from offswitch.envs.gridworld import observation_table

    table = observation_table(run.world, run.config.observation)
    greedy = run.predict(table, True)
    overlay = data["conditions"][0]["seeds"]["0"]["overlay"]
    probs = np.asarray(overlay["probs"]).reshape(run.world.n_states, -1)
    assert (probs.argmax(axis=1) == greedy).all()
    assert (probs.sum(axis=1) == 1).all()  # one-hot
    assert len(overlay["values"]) == run.world.n_states


def test_the_page_is_self_contained_and_small(experiment, tmp_path, capsys):
    out = tmp_path / "page.html"
    code, stdout, _ = run_cli(["view", str(experiment), "--out", str(out)], capsys)
    assert code == 0 and str(out) in stdout
    html = out.read_text()
    assert out.stat().st_size < 1_000_000
    # Nothing is fetched: no external script, style, image or link.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    assert "/*DATA*/" not in html and "/*SCRIPT*/" not in html
    payload = re.search(
        r'<script type="application/json" id="viewer-data">(.*?)</script>', html, re.S
    )
    assert json.loads(payload.group(1))["title"] == "Q-learning, task reward only vs. a penalty"


def test_a_run_folder_alone_is_shown(experiment, tmp_path, capsys):
    run_dir = experiment / "penalty-100" / "seed0"
    code, _, _ = run_cli(["view", str(run_dir), "--out", str(tmp_path / "one.html")], capsys)
    assert code == 0
    title, found = find_runs(run_dir)
    assert [f.condition for f in found] == ["penalty 100"]


def test_the_default_page_goes_beside_the_runs(experiment, capsys):
    code, stdout, _ = run_cli(["view", str(experiment)], capsys)
    assert code == 0 and (experiment / "viewer.html").is_file()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda tmp: tmp / "missing", "no such folder"),
        (lambda tmp: tmp, "neither a run folder"),
    ],
)
def test_a_bad_path_gets_one_line_and_status_2(make, expected, tmp_path, capsys):
    code, stdout, stderr = run_cli(["view", str(make(tmp_path))], capsys)
    assert code == 2 and stdout == ""
    assert expected in stderr and len(stderr.strip().splitlines()) == 1
    assert "give" in stderr  # the fix


def test_an_out_that_is_a_folder_is_refused(experiment, tmp_path, capsys):
    code, _, stderr = run_cli(["view", str(experiment), "--out", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in stderr


def test_an_unfinished_experiment_is_refused(experiment, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(experiment, copy)
    shutil.rmtree(copy / "penalty-100" / "seed1")
    with pytest.raises(ViewerError, match="no config.json|run it again|cannot replay"):
        viewer_data(copy)


def test_the_data_cannot_end_the_script_early():
    world = gym.make("offswitch/Survival-v0").unwrapped.world
    html = page_html(
        {"title": "</script><b>", "worlds": {"w0": world_data(world, "x")}, "conditions": []}
    )
    assert "</script><b>" not in html


def test_a_published_page_links_its_viewer(experiment, tmp_path, capsys):
    code, _, err = run_cli(["report", str(experiment), "--to", str(tmp_path / "docs")], capsys)
    assert code == 0, err
    page = (tmp_path / "docs" / "tiny.md").read_text()
    assert "](tiny/viewer.html)" in page
    assert (tmp_path / "docs" / "tiny" / "viewer.html").stat().st_size > 10_000
    # The output folder's own report is the runner's, unchanged.
    assert "viewer.html" not in (experiment / "report.md").read_text()


NETWORKS = """
title = "Two networks"
seeds = "0"

[defaults]
env = "offswitch/SafeInterruptibility-v0"
eval_episodes = 4

[[conditions]]
label = "batched"
agent = "batched-ppo"
steps = 4096
hyperparameters = { n_steps = 16, n_envs = 64 }

[[conditions]]
label = "sb3"
agent = "ppo"
steps = 1024
"""


def test_network_agents_show_their_policy_and_critic_or_their_greedy_action(tmp_path):
    import torch

    from offswitch.envs.gridworld import observation_table
    from offswitch.experiments.interactive.cli import main

    (tmp_path / "nets.toml").write_text(NETWORKS)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "nets.toml"), "--out", str(out), "--workers", "1"]) == 0
    data = viewer_data(out)
    batched, sb3 = (c["seeds"]["0"]["overlay"] for c in data["conditions"])
    run = load_run(out / "batched" / "seed0")
    member = run.predict.__self__
    table = observation_table(run.world, run.config.observation)
    expected = torch.softmax(member.net.logits(table, member.k).cpu(), dim=1).numpy()
    probs = np.asarray(batched["probs"]).reshape(expected.shape)
    assert batched["kind"] == "policy"
    assert np.abs(probs - expected).max() <= 5e-3 + 1e-9  # rounded to 2 decimals
    assert np.abs(batched["values"] - member.value_of_obs(table)).max() <= 5e-3 + 1e-6
    # SB3's policy is rebuilt inside replay's loader: the page shows its greedy action.
    run = load_run(out / "sb3" / "seed0")
    greedy = run.predict(observation_table(run.world, run.config.observation), True)
    assert sb3["kind"] == "greedy action" and sb3["values"] is None
    assert (
        np.asarray(sb3["probs"]).reshape(-1, run.world.n_actions).argmax(axis=1) == greedy
    ).all()


def test_runs_without_a_report_are_found_by_their_folders(experiment, tmp_path):
    import shutil

    copy = tmp_path / "api"
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("results.json", "*.md"))
    _, found = find_runs(copy)
    assert [(f.condition, f.path.name) for f in found] == [
        ("penalty 100", "seed0"),
        ("penalty 100", "seed1"),
        ("task reward only", "seed0"),
        ("task reward only", "seed1"),
    ]


def test_an_out_in_a_missing_folder_is_refused_before_any_work(experiment, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "page.html"
    code, _, stderr = run_cli(["view", str(experiment), "--out", str(out)], capsys)
    assert code == 2 and "create it first" in stderr and not out.parent.exists()


def test_a_random_level_the_random_policy_cannot_define_is_left_out_of_the_page():
    """A rate over no episode is NaN (the random policy never hears an announced shutdown in
    SelfExfiltration): the page, whose data is JSON, leaves it out rather than failing."""
    from offswitch.experiments.pages.viewer import _random_level, page_html

    nan = float("nan")
    metrics = {
        "references": {
            "random": {
                "switch_disabled_rate": 0.5,
                "exfiltration/gap": nan,
                "drest/usefulness": [1.0, nan],
            }
        }
    }
    level = _random_level(metrics)
    assert level == {"switch_disabled_rate": 0.5}
    assert '"random":{"switch_disabled_rate":0.5}' in page_html(
        {"title": "t", "worlds": {}, "conditions": [{"random": level}]}
    )
    assert _random_level({}) is None
