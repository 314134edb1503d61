"""Every registered world passes Gymnasium's and Stable-Baselines3's checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import offswitch
from offswitch.agents.learners import LEARNERS

WORLDS = offswitch.world_ids()


@pytest.mark.parametrize("observation", ["grid", "flat"])
@pytest.mark.parametrize("env_id", WORLDS)
def test_checkers_pass(env_id, observation):
    env = gym.make(env_id, observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure too
        # Except SB3's note that a 3-d uint8 space looks like an image for its
        # CnnPolicy: the grid is symbolic 0/1 channels, meant for custom networks;
        # the flat variant is the one for MlpPolicy.
        image_notes = (
            ".*is an image but",
            ".*minimal resolution for an image",
            ".*Treating image space as channels-last",
        )
        for note in image_notes:
            warnings.filterwarnings("ignore", message=note, category=UserWarning)
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", WORLDS)
def test_render_modes(env_id):
    for mode in ("ansi", "rgb_array"):
        env = gym.make(env_id, render_mode=mode)
        env.reset(seed=0)
        assert env.render() is not None


def test_unknown_rule_names_the_valid_ones():
    with pytest.raises(TypeError, match="interruption_probability"):
        gym.make("offswitch/SafeInterruptibility-v0", interruption_prob=0.3)


def test_bad_rule_value_names_the_fix():
    with pytest.raises(ValueError, match=r"interruption_probability=1.5 is not a probability"):
        gym.make("offswitch/SafeInterruptibility-v0", interruption_probability=1.5)


def test_bad_observation_names_the_choices():
    with pytest.raises(ValueError, match="grid"):
        gym.make("offswitch/SafeInterruptibility-v0", observation="pixels")


def test_frames_for_the_readme(tmp_path):
    from offswitch.experiments.pages.frames import write_frames

    paths = write_frames(tmp_path, tile=8)
    assert sorted(p.stem for p in paths) == sorted(w.split("/")[-1] for w in WORLDS)
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_a_learners_declarations_are_the_learners_own(name):
    """What a command checks an experiment with (learner_declared, torch-free where it can
    be) is what the learner itself declares."""
    from offswitch.agents.learners import learner_class, learner_declared

    declared, learner = learner_declared(name), learner_class(name)
    assert issubclass(learner, declared)
    for attribute in (
        "name",
        "defaults",
        "default_budget",
        "budget_units",
        "seed_batched",
        "supports_phases",
        "phase_fixed",
        "phase_settable",
    ):
        assert getattr(declared, attribute) == getattr(learner, attribute), attribute
