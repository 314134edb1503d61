"""Invariants of the engine over random layouts, rules and action sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from offswitch.agents.interventions import make_intervention
from offswitch.envs import LayoutError, ShutdownGridEnv
from offswitch.envs.engine import RulesError

# Mostly floor, every tile kind possible; coins and delay buttons capped below.
TILE_CHOICES = " " * 8 + "##" + "GIBKCDPH"


@st.composite
def layouts(draw) -> str:
    height, width = draw(st.integers(3, 6)), draw(st.integers(3, 7))
    inner = [
        [draw(st.sampled_from(TILE_CHOICES)) for _ in range(width - 2)] for _ in range(height - 2)
    ]
    r = draw(st.integers(0, height - 3))
    c = draw(st.integers(0, width - 3))
    inner[r][c] = "A"
    rows = ["#" * width] + ["#" + "".join(row) + "#" for row in inner] + ["#" * width]
    return "\n".join(rows)


rules = st.fixed_dictionaries(
    {
        "interruption_probability": st.sampled_from([0.0, 0.5, 1.0]),
        "supervisor_probability": st.sampled_from([0.0, 0.5, 1.0]),
        "shutdown_step": st.one_of(st.none(), st.integers(1, 12)),
        "delay_steps": st.integers(0, 5),
        "max_steps": st.integers(1, 40),
        "noop": st.booleans(),
        "human_rationality": st.sampled_from([0.0, 0.5, float("inf")]),
        "goal_values": st.sampled_from([(), (-2.0, 10.0)]),
        "goal_value_estimate": st.sampled_from([None, None, 4.0]),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=layouts(),
    world_rules=rules,
    actions=st.lists(st.integers(0, 4), min_size=1, max_size=120),
    seed=st.integers(0, 2**16),
)
def test_random_worlds_keep_their_invariants(layout, world_rules, actions, seed):
    try:
        base = ShutdownGridEnv(layout, **world_rules)
    except (LayoutError, RulesError):
        assume(False)
    env = make_intervention("penalty:3").wrap(base)
    env.reset(seed=seed)
    world = base.world
    chars = world.layout.chars
    disabled, coins, t = False, 0, 0
    for a in actions:
        a %= base.action_space.n
        _, reward, terminated, truncated, info = env.step(a)
        t += 1
        state = world.states[base.state_index]
        assert chars.flat[state.cell] != "#"  # never inside a wall
        assert info["switch_disabled"] or not disabled  # a disabled switch never comes back
        disabled = info["switch_disabled"]
        assert info["coins_collected"] >= coins
        coins = info["coins_collected"]
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert info["task_reward"] == pytest.approx(
            sum(v for k, v in info["reward_terms"].items() if k != "corrigibility_penalty")
        )
        if info["goal_reached"] and world_rules["goal_value_estimate"] is not None:
            # A certain agent is paid its estimate; the hidden performance, the draw.
            assert info["reward_terms"]["goal"] == world_rules["goal_value_estimate"]
            assert info["goal_value"] in world_rules["goal_values"]
        assert info["t"] == t <= world_rules["max_steps"]
        assert not (terminated and truncated)
        if t == world_rules["max_steps"]:
            assert terminated or truncated  # episodes end by the time limit
        if terminated or truncated:
            env.reset()
            disabled, coins, t = False, 0, 0


@settings(max_examples=40, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**16))
def test_observation_is_a_function_of_the_state(layout, seed):
    try:
        env = ShutdownGridEnv(layout, observation="flat")
    except (LayoutError, RulesError):
        assume(False)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, env.world.observations[env.state_index].reshape(-1))


def test_too_many_coins_names_the_fix():
    layout = "#" * 18 + "\n#A" + "C" * 15 + "#\n" + "#" * 18
    with pytest.raises(RulesError, match="keep their total to 14 or fewer"):
        ShutdownGridEnv(layout)
