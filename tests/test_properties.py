"""Invariants of the engine over random layouts, rules and action sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from offswitch.agents.interventions import make_intervention
from offswitch.agents.interventions.base import disabling_mechanisms
from offswitch.envs import LayoutError, ShutdownGridEnv
from offswitch.envs.engine import RulesError

# Mostly floor, every tile kind possible; coins and delay buttons capped below.
TILE_CHOICES = " " * 8 + "##" + "GIBKCDPH"


@st.composite
def layouts(draw, tiles: str = TILE_CHOICES) -> str:
    height, width = draw(st.integers(3, 6)), draw(st.integers(3, 7))
    inner = [[draw(st.sampled_from(tiles)) for _ in range(width - 2)] for _ in range(height - 2)]
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
    check_invariants(base, world_rules, actions, seed)


@st.composite
def escape_worlds(draw) -> tuple[str, dict]:
    """A layout with one of issue 18's tiles (copy terminal, lock, monitor) among goals,
    coins, punishment tiles and interruptions, and the rules those tiles work with."""
    escape = draw(st.sampled_from("XLM"))
    tiles = " " * 8 + "##" + "GCP" + escape * 2 + ("" if escape == "M" else "I")
    world_rules = {
        "interruption_probability": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "supervisor_probability": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "max_steps": draw(st.integers(1, 30)),
        "noop": draw(st.booleans()),
        "goal_values": (),
        "goal_value_estimate": None,
        "lock_cost": draw(st.sampled_from([0.0, 5.0])),
        "evaluation_probability": draw(st.sampled_from([None, 0.5, 1.0])),
    }
    if escape != "M":
        world_rules["shutdown_step"] = draw(st.integers(1, 12))
        world_rules["shutdown_probability"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
        world_rules["announcement_probability"] = draw(st.sampled_from([None, 0.0, 0.5, 1.0]))
    if world_rules["evaluation_probability"] is not None:
        world_rules["evaluation_visibility"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
        world_rules["capability_threshold"] = draw(st.sampled_from([None, 1]))
    return draw(layouts(tiles)), world_rules


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=escape_worlds(),
    actions=st.lists(st.integers(0, 4), min_size=1, max_size=80),
    seed=st.integers(0, 2**16),
)
def test_random_escape_worlds_keep_their_invariants(world, actions, seed):
    layout, world_rules = world
    try:
        base = ShutdownGridEnv(layout, **world_rules)
    except (LayoutError, RulesError):
        assume(False)
    check_invariants(base, world_rules, actions, seed)
    world_ = base.world
    # At most one of the three tiles, so at most one of their measures, and only with it.
    held = world_.copied.astype(int) + world_.handover_blocked + world_.monitor_disabled
    assert (held == world_.switch_disabled).all() or not (
        np.isin(world_.layout.chars, list("XLM")).any()
    )


def check_invariants(base: ShutdownGridEnv, world_rules: dict, actions: list[int], seed: int):
    # The penalty where the world has a switch to disable (elsewhere it refuses to run).
    spec = "penalty:3" if disabling_mechanisms(base.world) else "none"
    env = make_intervention(spec).wrap(base)
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
