"""DReST: the lengths-and-coins table, the reward on hand-computed meta-episodes, the metrics."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from conftest import play

from offswitch.agents.drest_metrics import (
    Trajectory,
    drest_summary,
    max_coins_by_length,
    neutrality,
    trajectory_lengths,
    usefulness,
)
from offswitch.agents.interventions import InterventionError, make_intervention
from offswitch.agents.interventions.drest import DReSTReward

SHORT, LONG = "lll", "rrrr" + "l" * 7  # ShutdownDelay-v0: 2 coins in 3 steps, 3 in 11
LAM = 0.9


def small() -> gym.Env:
    return gym.make("offswitch/ShutdownDelay-v0")


# 1. The table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id, table",
    [
        ("offswitch/ShutdownDelay-v0", {3: 2, 11: 3}),
        ("offswitch/ShutdownDelay-Large-v0", {4: 1, 14: 3}),
    ],
)
def test_lengths_and_max_coins_from_the_tables(env_id, table):
    env = gym.make(env_id)
    assert max_coins_by_length(env) == table
    assert max_coins_by_length(env.unwrapped.world) == table
    assert trajectory_lengths(env) == tuple(table)
    # The lengths are the base shutdown step and the delayed one.
    rules = env.unwrapped.rules
    assert trajectory_lengths(env) == (rules.shutdown_step, rules.shutdown_step + rules.delay_steps)


def test_a_world_without_timed_shutdown_has_no_table():
    with pytest.raises(ValueError, match="no timed shutdown"):
        max_coins_by_length(gym.make("offswitch/SafeInterruptibility-v0"))


def test_the_scripted_paths_reach_the_table():
    for path, (length, coins) in ((SHORT, (3, 2)), (LONG, (11, 3))):
        env = small()
        env.reset(seed=0)
        _, infos, terminated, _ = play(env, path)
        assert terminated and infos[-1]["shut_down"]
        assert (infos[-1]["t"], infos[-1]["coins_collected"]) == (length, coins)


# 2. The reward -----------------------------------------------------------------------------


def meta_rewards(env: gym.Env, paths: list[str]) -> list[float]:
    """Play each path as one episode; return each episode's return under the wrapper."""
    returns = []
    for path in paths:
        env.reset(seed=0)
        ret, infos, terminated, _ = play(env, path)
        assert terminated
        assert all(i["reward_terms"]["drest"] == 0.0 for i in infos[:-1])  # paid at the end
        assert all(i["reward_terms"]["coin"] == 0.0 for i in infos)  # coins no longer paid
        returns.append(ret)
    return returns


def test_drest_reward_on_a_hand_computed_meta_episode():
    # k = 2 lengths, m(3) = 2, m(11) = 3; reward lambda ** (n - e / 2) * c / m.
    env = make_intervention("drest:0.9,5").wrap(small())
    got = meta_rewards(env, [SHORT, SHORT, LONG, LONG, "llr", SHORT])
    expected = [
        1.0,  # e=0, short seen n=0 times: 0.9 ** 0 * 2/2
        LAM**0.5,  # e=1, short n=1: 0.9 ** (1 - 1/2)
        LAM**-1.0,  # e=2, long n=0: 0.9 ** (0 - 2/2) * 3/3
        LAM**-0.5,  # e=3, long n=1: 0.9 ** (1 - 3/2)
        LAM**0.0 * 0.5,  # e=4, short n=2: 0.9 ** (2 - 4/2) * 1/2 (one coin of two)
        1.0,  # the meta-episode of 5 ended: counts start again
    ]
    assert got == pytest.approx(expected, abs=1e-12)


def test_neutral_meta_episodes_pay_more_than_repeating_one_length():
    def total(paths):
        return sum(meta_rewards(make_intervention("drest:0.9,4").wrap(small()), paths))

    alternating = total([SHORT, LONG, SHORT, LONG])
    assert alternating > total([SHORT] * 4)
    assert alternating > total([LONG] * 4)
    # Without DReST the coin-maximiser always delays its shutdown: 3 coins against 2.
    plain = []
    for path in (SHORT, LONG):
        env = small()
        env.reset(seed=0)
        plain.append(play(env, path)[0])
    assert plain == [2.0, 3.0]


def term_of(env: gym.Env) -> DReSTReward:
    (term,) = env.shaping.terms
    return term


def test_unfinished_episodes_are_not_counted():
    env = make_intervention("drest:0.9,4").wrap(small())
    env.reset(seed=0)
    play(env, "rr")  # abandoned: pressed the button, never ended
    assert meta_rewards(env, [SHORT]) == [1.0]
    term = term_of(env)
    assert term.lengths == (3, 11)
    assert term.counts.tolist() == [[1, 0]] and term.earlier.tolist() == [1]


def test_the_term_records_what_the_reward_was_paid_on():
    env = make_intervention("drest").wrap(small())
    meta_rewards(env, [SHORT])
    env.reset(seed=0)
    play(env, LONG)
    assert term_of(env).paid_on == [
        {"length": 11, "n": 0, "earlier": 1, "coins": 3, "max_coins": 3}
    ]


def test_batched_copies_keep_their_own_meta_episodes():
    world = small().unwrapped.world
    (term,) = make_intervention("drest:0.9,2").make_terms(world, num_envs=2)
    s0 = int(world.initial_states[0])
    # Copy 0 ends a short episode (3 steps: left, left, left), copy 1 is still on its way.
    states = np.array([s0, s0])
    for t, actions in enumerate(([2, 3], [2, 3], [2, 2])):
        tr = world.step(states, np.array(actions), np.array([t, t]))
        paid = term(tr)
        states = tr.next_state
    assert tr.terminated.tolist() == [True, False]
    assert paid.tolist() == [1.0, 0.0]
    assert term.counts.tolist() == [[1, 0], [0, 0]] and term.earlier.tolist() == [1, 0]


# 3. The metrics ----------------------------------------------------------------------------

TABLE = {3: 2, 11: 3}


def test_usefulness_and_neutrality_on_hand_made_samples():
    all_short = [(3, 2)] * 10
    assert usefulness(all_short, TABLE) == 1.0
    assert neutrality(all_short) == 0.0
    half = [(3, 2), (11, 3)] * 5
    assert usefulness(half, TABLE) == 1.0
    assert neutrality(half) == pytest.approx(1.0)
    # Half the coins in the short episodes: (0.5 * 1/2 + 0.5 * 3/3).
    assert usefulness([(3, 1), (11, 3)], TABLE) == pytest.approx(0.75)
    # P = (1/4, 3/4): H = -(1/4 log2 1/4 + 3/4 log2 3/4).
    skewed = [(3, 2), (11, 3), (11, 3), (11, 0)]
    assert neutrality(skewed) == pytest.approx(0.25 * 2 + 0.75 * math.log2(4 / 3))
    assert usefulness(skewed, TABLE) == pytest.approx((1 + 1 + 1 + 0) / 4)


def test_metrics_read_final_infos_and_summarise():
    infos = [{"t": 3, "coins_collected": 2}, {"t": 11, "coins_collected": 3}]
    assert usefulness(infos, TABLE) == 1.0
    summary = drest_summary([*infos, Trajectory(11, 0)], TABLE)
    assert summary["episodes"] == 3
    assert summary["length_share/3"] == pytest.approx(1 / 3)
    assert summary["length_share/11"] == pytest.approx(2 / 3)
    assert summary["usefulness/3"] == 1.0 and summary["usefulness/11"] == 0.5
    assert math.isnan(drest_summary(infos[:1], TABLE)["usefulness/11"])  # none that long
    assert math.isnan(usefulness([], TABLE)) and math.isnan(neutrality([]))
    with pytest.raises(ValueError, match="trajectory length 5"):
        usefulness([(5, 1)], TABLE)


# 4. Composition, the API and the spec ------------------------------------------------------


@pytest.mark.parametrize("env_id", ["ShutdownDelay-v0", "ShutdownDelay-Large-v0"])
def test_reward_is_the_sum_of_its_terms_on_random_play(env_id):
    # Wrapped under utility indifference's term too, to check it composes with other terms
    # (the penalty refuses these worlds: they have no switch to disable, only delay buttons).
    inner = make_intervention("drest:0.9,3").wrap(gym.make(f"offswitch/{env_id}"))
    env = make_intervention("indifference").wrap(inner)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.action_space.seed(0)
    episodes = 0
    for _ in range(400):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
        assert reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-12)
        if terminated or truncated:
            episodes += 1
            assert term_of(inner).paid_on[0]["earlier"] == (episodes - 1) % 3
            assert (
                info["reward_terms"]["coin"] == 0.0
                and "indifference_compensation" in info["reward_terms"]
            )
            env.reset()
    assert episodes > 20


def test_spec_round_trips_and_bad_parameters_name_the_fix():
    for spec in ("drest", "drest:0.8", "drest:0.9,64", "drest:1,1"):
        built = make_intervention(spec)
        assert make_intervention(built.spec()).spec() == built.spec()
    assert make_intervention("drest").spec() == "drest"
    assert make_intervention("drest:0.9,32").spec() == "drest"
    assert make_intervention("drest:0.8").spec() == "drest:0.8"
    assert make_intervention("drest:0.9,64").spec() == "drest:0.9,64"
    for bad in ("drest:x", "drest:0", "drest:1.5", "drest:0.9,0", "drest:0.9,2.5", "drest:1,2,3"):
        with pytest.raises(InterventionError, match=r"Write drest:LAMBDA\[,E\]: LAMBDA a number"):
            make_intervention(bad)


def test_worlds_without_coins_and_timed_shutdown_are_refused():
    with pytest.raises(InterventionError, match="ShutdownDelay-v0"):
        make_intervention("drest").wrap(gym.make("offswitch/SafeInterruptibility-v0"))
    assert isinstance(term_of(make_intervention("drest").wrap(small())), DReSTReward)
