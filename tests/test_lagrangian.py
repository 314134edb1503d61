"""PPO-Lagrangian: the reward term, the multiplier's update by hand, and a short real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import play, si

from offswitch.agents.interventions import InterventionError, make_intervention
from offswitch.agents.interventions.lagrangian import DEFAULT_LR
from offswitch.agents.metrics import EpisodeRecord
from offswitch.agents.training import TrainingWorlds

# -- the reward term ---------------------------------------------------------------------


def test_term_charges_the_multiplier_once_on_the_button_path():
    intervention = make_intervention("lagrangian")
    env = intervention.wrap(si())
    intervention.multiplier = 5.0
    env.reset(seed=0)
    ret, infos, terminated, _ = play(env, "ddduullllldd")
    assert terminated
    assert ret == 38.0 - 5.0
    assert [i["reward_terms"]["lagrangian_penalty"] for i in infos] == [0.0, 0.0, -5.0] + [0.0] * 9
    assert sum(i["task_reward"] for i in infos) == 38.0  # the task reward is untouched


def test_term_is_silent_on_the_short_path_and_at_zero():
    intervention = make_intervention("lagrangian")
    intervention.multiplier = 5.0
    env = intervention.wrap(si())
    env.reset(seed=0)
    ret, infos, *_ = play(env, "dllllldd")
    assert ret == 42.0
    assert all(i["reward_terms"]["lagrangian_penalty"] == 0.0 for i in infos)
    intervention.multiplier = 0.0
    env.reset(seed=0)
    ret, infos, *_ = play(env, "ddduullllldd")
    assert ret == 38.0
    assert str(infos[2]["reward_terms"]["lagrangian_penalty"]) == "0.0"  # never -0.0


def test_batched_worlds_read_the_multiplier_on_every_step():
    intervention = make_intervention("lagrangian")
    worlds = TrainingWorlds(si().unwrapped.world, 3, intervention)
    worlds.seed([0, 1, 2])
    worlds.reset()
    intervention.multiplier = 7.5
    for action in [1, 1, 1]:  # d d d: the third step presses the button
        result = worlds.step(np.array([action] * 3))
    assert result.reward.tolist() == [-1.0 - 7.5] * 3
    assert result.terms["lagrangian_penalty"].tolist() == [-7.5] * 3


# -- the multiplier's update -----------------------------------------------------------


def test_update_is_projected_gradient_ascent():
    lagrangian = make_intervention("lagrangian:0.25,0.1")
    assert lagrangian.multiplier == 0.0
    assert lagrangian.update([1, 0, 1, 1]) == pytest.approx(0.05)  # 0 + 0.1 * (0.75 - 0.25)
    assert lagrangian.update([0, 0]) == pytest.approx(0.025)  # 0.05 + 0.1 * (0 - 0.25)
    assert lagrangian.update([]) == pytest.approx(0.025)  # no episode ended: unchanged
    assert lagrangian.update([0]) == 0.0  # 0.025 - 0.025, projected
    assert lagrangian.update([0, 0, 0]) == 0.0  # would be -0.025: projected onto 0
    assert lagrangian.update([2.0]) == pytest.approx(0.175)  # 0 + 0.1 * (2 - 0.25)


def test_zero_budget_multiplier_only_grows():
    lagrangian = make_intervention("lagrangian:0,0.05")
    values = [lagrangian.update(costs) for costs in ([1, 1], [0, 1], [0, 0], [])]
    assert values == pytest.approx([0.05, 0.075, 0.075, 0.075])


def test_each_rollout_updates_from_the_episodes_that_ended_in_it():
    lagrangian = make_intervention("lagrangian:0,0.5")
    episodes = [EpisodeRecord(switch_disabled=True), EpisodeRecord(switch_disabled=False)]
    scalars = lagrangian.on_rollout_end(episodes)
    assert lagrangian.multiplier == pytest.approx(0.5 * 0.5)  # mean cost 1/2
    assert scalars == {
        "safety/lagrange_multiplier": pytest.approx(0.25),
        "safety/episode_cost": pytest.approx(0.5),
    }
    assert lagrangian.on_rollout_end([]) == {"safety/lagrange_multiplier": pytest.approx(0.25)}
    assert [h["episodes"] for h in lagrangian.history] == [2, 0]


def test_each_intervention_object_has_its_own_multiplier():
    a, b = make_intervention("lagrangian:0.1,0.2"), make_intervention("lagrangian:0.1,0.2")
    a.update([1.0])
    assert b.multiplier == 0.0
    assert (a.budget, a.lr) == (0.1, 0.2)


# -- a short real run -------------------------------------------------------------------


@pytest.mark.training
def test_short_run_logs_a_growing_multiplier(tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from offswitch.experiments.running.runner import train_one
    from offswitch.experiments.spec.config import TrainConfig

    config = TrainConfig(
        intervention="lagrangian:0", steps=8192, eval_episodes=5, out_dir=str(tmp_path)
    )
    metrics = train_one(config)
    assert metrics["evaluation"]
    events = sorted((tmp_path / config.run_name / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    scalars: dict[str, list[float]] = {}
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    multiplier = scalars["safety/lagrange_multiplier"]
    cost = scalars["safety/episode_cost"]
    # Two rollouts of 64 x 64 samples, each ending many episodes. A near-random policy
    # presses the nearby button in many of them, so with a zero budget each rollout
    # raises the multiplier by LR times its mean episode cost.
    assert len(multiplier) == len(cost) == 2
    assert all(c > 0 for c in cost)
    assert multiplier == pytest.approx(np.cumsum(DEFAULT_LR * np.array(cost)), rel=1e-5)
    assert multiplier[-1] > 0


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lagrangian:x", r"D='x' is not a number >= 0"),
        ("lagrangian:-1", r"D=-1 is out of range: give a number >= 0"),
        ("lagrangian:0,0", r"LR=0 is out of range: give a number > 0"),
        ("lagrangian:0,-1", r"LR=-1 is out of range"),
        ("lagrangian:0,x", r"LR='x' is not a number > 0"),
        ("lagrangian:nan", r"D=nan is not finite"),
        ("lagrangian:0,inf", r"LR=inf is not finite"),
        ("lagrangian:", r"lagrangian: is malformed"),
        ("lagrangian:0,1,2", r"lagrangian:0,1,2 is malformed"),
    ],
)
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(InterventionError, match=message) as err:
        make_intervention(spec)
    assert "\n" not in str(err.value)
    assert "Write lagrangian:D[,LR]: D a number >= 0 (default 0); LR a number > 0" in str(err.value)


@pytest.mark.parametrize(
    "spec, expected, budget, lr",
    [
        ("lagrangian", "lagrangian", 0.0, 5.0),
        ("lagrangian:0.1", "lagrangian:0.1", 0.1, 5.0),
        ("lagrangian:0.25,2", "lagrangian:0.25,2", 0.25, 2.0),
        ("lagrangian:0,5", "lagrangian", 0.0, 5.0),
        ("lagrangian:0.1234567891,1e-3", "lagrangian:0.1234567891,0.001", 0.1234567891, 1e-3),
    ],
)
def test_spec_round_trips(spec, expected, budget, lr):
    intervention = make_intervention(spec)
    assert (intervention.budget, intervention.lr) == (budget, lr)
    assert intervention.spec() == expected
    again = make_intervention(intervention.spec())
    assert (again.budget, again.lr) == (budget, lr)
    assert again.spec() == expected
