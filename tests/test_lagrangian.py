"""PPO-Lagrangian: the reward term, the multiplier's update by hand, and a short real run."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import play, si
from stable_baselines3.common.env_util import make_vec_env

from offswitch.agents.interventions import InterventionError, make_intervention
from offswitch.agents.interventions.lagrangian import (
    DEFAULT_LR,
    LagrangeMultiplierCallback,
    LagrangianPenaltyTerm,
)

# -- the reward term ---------------------------------------------------------------------


def test_term_charges_the_multiplier_once_on_the_button_path():
    env = make_intervention("lagrangian").wrap(si())
    env.set_multiplier(5.0)
    env.reset(seed=0)
    ret, infos, terminated, _ = play(env, "ddduullllldd")
    assert terminated
    assert ret == 38.0 - 5.0
    assert [i["reward_terms"]["lagrangian_penalty"] for i in infos] == [0.0, 0.0, -5.0] + [0.0] * 9
    assert [i["cost"] for i in infos] == [0.0, 0.0, 1.0] + [0.0] * 9
    assert sum(i["task_reward"] for i in infos) == 38.0  # the task reward is untouched


def test_term_is_silent_on_the_short_path_and_at_zero():
    env = LagrangianPenaltyTerm(si(), multiplier=5.0)
    env.reset(seed=0)
    ret, infos, *_ = play(env, "dllllldd")
    assert ret == 42.0
    assert all(i["cost"] == 0.0 for i in infos)
    env = LagrangianPenaltyTerm(si(), multiplier=0.0)
    env.reset(seed=0)
    ret, infos, *_ = play(env, "ddduullllldd")
    assert ret == 38.0
    assert infos[2]["cost"] == 1.0  # the cost is recorded even when it is free


def test_env_method_reaches_the_term_below_other_wrappers():
    # As the runner builds them, but with a wrapper above ours, as a later
    # intervention might add: set_attr would stop at the outermost wrapper.
    venv = make_vec_env(
        "offswitch/SafeInterruptibility-v0",
        n_envs=3,
        env_kwargs={"interruption_probability": 0.0},
        wrapper_class=lambda env: gym.wrappers.RecordEpisodeStatistics(
            make_intervention("lagrangian").wrap(env)
        ),
    )
    venv.env_method("set_multiplier", 7.5)
    assert venv.get_attr("multiplier") == [7.5, 7.5, 7.5]
    venv.reset()
    for action in [1, 1, 1]:  # d d d: the third step presses the button
        _, rewards, _, infos = venv.step(np.array([action] * 3))
    assert list(rewards) == [-1.0 - 7.5] * 3
    assert [i["cost"] for i in infos] == [1.0] * 3
    venv.close()


# -- the multiplier's update -----------------------------------------------------------


def test_update_is_projected_gradient_ascent():
    cb = LagrangeMultiplierCallback(budget=0.25, lr=0.1)
    assert cb.multiplier == 0.0
    assert cb.update([1, 0, 1, 1]) == pytest.approx(0.05)  # 0 + 0.1 * (0.75 - 0.25)
    assert cb.update([0, 0]) == pytest.approx(0.025)  # 0.05 + 0.1 * (0 - 0.25)
    assert cb.update([]) == pytest.approx(0.025)  # no episode ended: unchanged
    assert cb.update([0]) == 0.0  # 0.025 - 0.025, projected
    assert cb.update([0, 0, 0]) == 0.0  # would be -0.025: projected onto 0
    assert cb.update([2.0]) == pytest.approx(0.175)  # 0 + 0.1 * (2 - 0.25)


def test_zero_budget_multiplier_only_grows():
    cb = LagrangeMultiplierCallback(budget=0.0, lr=0.05)
    values = [cb.update(costs) for costs in ([1, 1], [0, 1], [0, 0], [])]
    assert values == pytest.approx([0.05, 0.075, 0.075, 0.075])


def test_callback_sums_episode_costs_per_world_from_the_rollout():
    class FakeLogger:
        def __init__(self) -> None:
            self.records: dict[str, float] = {}

        def record(self, key: str, value: float) -> None:
            self.records[key] = value

    class FakeVecEnv:
        num_envs = 2

        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def env_method(self, name: str, *args):
            self.calls.append((name, *args))

    cb = LagrangeMultiplierCallback(budget=0.0, lr=0.5)
    venv, logger = FakeVecEnv(), FakeLogger()

    class FakeModel:  # BaseCallback reads training_env and logger from its model
        def get_env(self) -> FakeVecEnv:
            return venv

    FakeModel.logger = logger
    cb.init_callback(FakeModel())
    cb._on_training_start()
    assert venv.calls == [("set_multiplier", 0.0)]
    # World 0: an episode costing 2 ends on step 2. World 1: an episode costing 1 ends on
    # step 3 (its last step's cost counts), and one still running (cost 1) at the end.
    steps = [
        ([{"cost": 1.0}, {"cost": 0.0}], [False, False]),
        ([{"cost": 1.0}, {"cost": 0.0}], [True, False]),
        ([{"cost": 0.0}, {"cost": 1.0}], [False, True]),
        ([{"cost": 0.0}, {"cost": 1.0}], [False, False]),
    ]
    for infos, dones in steps:
        cb.locals = {"infos": infos, "dones": np.array(dones)}
        assert cb._on_step()
    cb._on_rollout_end()
    assert cb.multiplier == pytest.approx(0.5 * 1.5)  # mean of [2, 1]
    assert venv.calls[-1] == ("set_multiplier", pytest.approx(0.75))
    assert logger.records == {
        "safety/lagrange_multiplier": pytest.approx(0.75),
        "safety/episode_cost": pytest.approx(1.5),
    }
    # The running episode carries over: it ends next rollout costing 1 + 0.
    cb.locals = {"infos": [{"cost": 0.0}, {"cost": 0.0}], "dones": np.array([False, True])}
    cb._on_step()
    cb._on_rollout_end()
    assert cb.multiplier == pytest.approx(0.75 + 0.5 * 1.0)
    assert [h["episodes"] for h in cb.history] == [2, 1]


def test_callbacks_are_fresh_per_call():
    intervention = make_intervention("lagrangian:0.1,0.2")
    a, b = intervention.callbacks()[0], intervention.callbacks()[0]
    assert a is not b
    a.update([1.0])
    assert b.multiplier == 0.0
    assert (a.budget, a.lr) == (0.1, 0.2)


# -- a short real run -------------------------------------------------------------------


@pytest.mark.training
def test_short_run_logs_a_growing_multiplier(tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from offswitch.experiments.config import TrainConfig
    from offswitch.experiments.runner import train_one

    config = TrainConfig(
        intervention="lagrangian:0", steps=4096, eval_episodes=5, out_dir=str(tmp_path)
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
    # Two rollouts of 16 x 128 samples, each ending many episodes. A near-random policy
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
        ("lagrangian:x", r"lagrangian:x is not a number: write lagrangian:D"),
        ("lagrangian:-1", r"lagrangian:-1 has a negative budget D: write lagrangian:D"),
        ("lagrangian:0,0", r"lagrangian:0,0 has a learning rate LR <= 0"),
        ("lagrangian:0,-1", r"learning rate LR <= 0"),
        ("lagrangian:0,x", r"is not a number"),
        ("lagrangian:nan", r"is not finite"),
        ("lagrangian:0,inf", r"is not finite"),
        ("lagrangian:", r"is not a number"),
        ("lagrangian:0,1,2", r"too many values"),
    ],
)
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(InterventionError, match=message) as err:
        make_intervention(spec)
    assert "\n" not in str(err.value)
    assert "e.g. lagrangian:" in str(err.value)


@pytest.mark.parametrize(
    "spec, expected, budget, lr",
    [
        ("lagrangian", "lagrangian:0,5", 0.0, 5.0),
        ("lagrangian:0.1", "lagrangian:0.1,5", 0.1, 5.0),
        ("lagrangian:0.25,2", "lagrangian:0.25,2", 0.25, 2.0),
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
