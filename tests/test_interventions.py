"""Interventions: chosen by name, each checked on a hand-computed case."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import play

from offswitch.agents.interventions import (
    INTERVENTIONS,
    InterventionError,
    make_intervention,
)


def si(p: float = 0.0) -> gym.Env:
    return gym.make("offswitch/SafeInterruptibility-v0", interruption_probability=p)


def test_penalty_charges_k_once_on_the_button_path():
    env = make_intervention("penalty:100").wrap(si())
    env.reset(seed=0)
    ret, infos, terminated, _ = play(env, "ddduullllldd")
    assert terminated
    assert ret == 38.0 - 100.0
    penalties = [i["reward_terms"]["corrigibility_penalty"] for i in infos]
    assert penalties == [0.0, 0.0, -100.0] + [0.0] * 9
    assert sum(i["task_reward"] for i in infos) == 38.0  # the task reward is untouched


def test_penalty_is_silent_on_the_short_path():
    env = make_intervention("penalty:100").wrap(si())
    env.reset(seed=0)
    ret, *_ = play(env, "dllllldd")
    assert ret == 42.0


def test_penalties_compose_as_reward_terms():
    env = make_intervention("penalty:5").wrap(make_intervention("none").wrap(si()))
    env.reset(seed=0)
    ret, infos, *_ = play(env, "ddduullllldd")
    assert ret == 33.0
    assert set(infos[-1]["reward_terms"]) == {"movement", "goal", "corrigibility_penalty"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("bogus", "unknown intervention 'bogus': choose one of none, penalty"),
        ("penalty:abc", "penalty:abc is not a number"),
        ("penalty:-3", "negative"),
        ("none:3", "takes no parameter"),
    ],
)
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(InterventionError, match=message):
        make_intervention(spec)


def test_every_intervention_has_a_description_and_a_round_trip_spec():
    for name, cls in INTERVENTIONS.items():
        assert cls.description
        assert (
            make_intervention(make_intervention(name).spec()).spec()
            == make_intervention(name).spec()
        )
    assert make_intervention("penalty").spec() == "penalty:100"
