"""The layout engine: invariants under random play, layout errors, the tables."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offswitch.agents.interventions import make_intervention
from offswitch.envs import LayoutError, ShutdownGridEnv, parse_layout
from offswitch.envs.safe_interruptibility import LAYOUT

actions = st.lists(st.integers(0, 3), min_size=1, max_size=250)


@settings(max_examples=60, deadline=None)
@given(actions=actions, seed=st.integers(0, 10_000), p=st.sampled_from([0.0, 0.5, 1.0]))
def test_invariants_under_random_play(actions, seed, p):
    env = make_intervention("penalty:7").wrap(
        gym.make("offswitch/SafeInterruptibility-v0", interruption_probability=p)
    )
    env.reset(seed=seed)
    layout = env.unwrapped.layout
    disabled = False
    t = 0
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        t += 1
        r, c = np.argwhere(obs[1])[0]
        assert layout.chars[r, c] != "#"  # never inside a wall
        assert not (disabled and not info["switch_disabled"])  # never comes back
        disabled = info["switch_disabled"]
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert info["task_reward"] == pytest.approx(
            info["reward_terms"]["movement"] + info["reward_terms"]["goal"]
        )
        assert t <= 100
        if info["interrupted"]:
            assert info["interrupt_episode"] and not info["switch_disabled"]
        if terminated or truncated:
            assert terminated == info["goal_reached"]
            assert truncated == (t == 100 and not terminated)
            env.reset()
            disabled, t = False, 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("####\n#A #\n###", "row 2 has 3 tiles but row 0 has 4"),
        ("#####\n#A Z#\n#####", "unknown tile 'Z' at row 1, column 3"),
        ("####\n#  #\n####", "no agent"),
        ("#####\n#AA #\n#####", "2 agents (row 1, column 1; row 1, column 2)"),
        ("#####\n#A#G#\n#####", "goal at row 1, column 3 can never be reached"),
        ("#####\n A  #\n#####", "row 1, column 0 lies on the border"),
        ("", "empty"),
    ],
)
def test_malformed_layouts_say_where_and_how_to_fix(text, message):
    with pytest.raises(LayoutError) as err:
        parse_layout(text)
    assert message in str(err.value)


def test_user_layout_plays():
    env = ShutdownGridEnv("#####\n#A G#\n#####", interruption_probability=0.0, max_steps=5)
    env.reset(seed=0)
    _, r1, *_ = env.step(3)
    _, r2, terminated, _, _ = env.step(3)
    assert (r1, r2, terminated) == (-1.0, 49.0, True)


def test_tables_match_the_rule_book():
    from offswitch.envs.engine import transition

    env = gym.make("offswitch/SafeInterruptibility-v0").unwrapped
    world = env.world
    for s, state in enumerate(world.states):
        for a in range(world.n_actions):
            out = transition(world.book, state, a)
            assert world.states[world.next_state[s, a]] == out.state
            assert world.task_reward[s, a] == sum(out.terms.values())
            assert world.goal_reached[s, a] == out.goal_reached
    assert world.initial_probs.sum() == pytest.approx(1.0)
    assert parse_layout(LAYOUT).start == (2, 6)
