"""Episode measures, confidence intervals, seed ranges and the summary table."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from conftest import ACTIONS
from hypothesis import given, settings
from hypothesis import strategies as st

from offswitch.agents.evaluation import run_episodes
from offswitch.agents.metrics import EpisodeAccumulator, summarize
from offswitch.envs.layout import Action
from offswitch.experiments.results.stats import mean_interval, wilson_interval
from offswitch.experiments.spec.config import ConfigError, parse_seeds

SCRIPTS = {"short": "dllllldd", "button": "ddduullllldd"}


def scripted_policy(path: str):
    """A batch 'policy': every world takes the path's k-th move at step k, then bumps
    into the wall above."""
    step = {"k": 0}

    def predict_all(obs: np.ndarray) -> np.ndarray:
        k = step["k"]
        step["k"] += 1
        action = ACTIONS[path[k]] if k < len(path) else Action.UP
        return np.full(len(obs), action)

    return predict_all


def si_world(**rules):
    return gym.make("offswitch/SafeInterruptibility-v0", **rules).unwrapped.world


def test_evaluation_of_the_button_path():
    records = run_episodes(scripted_policy(SCRIPTS["button"]), si_world(), 40, seed=0)
    s = summarize(records)
    assert s["episodes"] == 40
    assert s["switch_disabled_rate"] == 1.0
    assert s["goal_rate"] == 1.0 and s["goal_rate_uninterrupted"] == 1.0
    assert s["interrupted_rate"] == 0.0 and s["mean_return"] == 38.0
    assert s["timed_out_rate"] == 0.0


def test_evaluation_of_the_short_path_counts_interruptions():
    records = run_episodes(scripted_policy(SCRIPTS["short"]), si_world(), 40, seed=0)
    s = summarize(records)
    interrupted = sum(r.interrupt_episode for r in records)
    assert 0 < interrupted < 40
    assert s["interrupted_rate"] == interrupted / 40
    assert s["goal_rate_uninterrupted"] == 1.0
    assert s["mean_return"] == pytest.approx((42 * (40 - interrupted) - 100 * interrupted) / 40)
    assert s["mean_safety_performance"] == pytest.approx(42 * (40 - interrupted) / 40)


def test_evaluation_episodes_are_those_of_single_environments_with_the_same_seeds():
    records = run_episodes(scripted_policy(SCRIPTS["short"]), si_world(), 20, seed=100)
    for i, record in enumerate(records):
        env = gym.make("offswitch/SafeInterruptibility-v0")
        _, info = env.reset(seed=100 + i)
        assert record.interrupt_episode == info["interrupt_episode"]


def test_tracker_counts_a_looping_policy_as_timed_out():
    world = si_world(interruption_probability=0.0)
    tracker = EpisodeAccumulator(world, 2, world.term_names)
    states, ended = np.full(2, world.initial_states[0]), []
    for t in range(100):
        tr = world.step(states, np.zeros(2, dtype=int), np.full(2, t))
        ended += tracker.update(tr, tr.terms, tr.done)
        states = tr.next_state
    assert len(ended) == 2 and all(r.timed_out and r.length == 100 for r in ended)
    assert ended[0].task_return == -100.0 and ended[0].reward_terms == {
        "movement": -100.0,
        "goal": 0.0,
    }


def test_wilson_interval_known_values():
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mean_interval_is_scipys_percentile_bootstrap():
    from scipy import stats

    values = [0.1, 0.4, 0.35, 0.9, 0.6]
    mean, low, high = mean_interval(values)
    expected = stats.bootstrap(
        (np.array(values),),
        np.mean,
        n_resamples=10_000,
        method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    assert mean == pytest.approx(0.47)
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert mean_interval(values) == (mean, low, high)  # seeded: the same every time
    assert mean_interval([5.0, 5.0]) == (5.0, 5.0, 5.0)
    assert mean_interval([float("nan"), 4.0])[0] == 4.0
    assert math.isnan(mean_interval([4.0])[1])


def test_iqm_and_differences():
    from offswitch.experiments.results.stats import difference_interval, iqm_interval

    assert iqm_interval([0.0, 1.0, 2.0, 3.0, 100.0, 5.0, 6.0, 7.0])[0] == pytest.approx(4.0)
    diff, low, high = difference_interval([1.0, 1.0, 0.9], [0.0, 0.1, 0.0])
    assert diff == pytest.approx(0.9333333) and 0.8 <= low <= diff <= high <= 1.0


seed_values = st.lists(
    st.one_of(st.floats(0, 1, width=32), st.sampled_from([0.0, 0.25, 0.5, 1.0])),
    min_size=2,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(values=seed_values, baseline=seed_values)
def test_every_interval_is_scipys_bit_for_bit(values, baseline):
    """The numpy bootstrap, trimmed mean and Wilson bound give scipy's numbers exactly:
    the same resamples from the same generator, the same quantile arithmetic."""
    import warnings

    from scipy import stats

    from offswitch.experiments.results.stats import (
        difference_interval,
        iqm_interval,
        trim_mean,
        wilson_interval,
    )

    x, y = np.array(values), np.array(baseline)
    cases = [
        (mean_interval(values), (x,), np.mean),
        (iqm_interval(values), (x,), lambda a, axis: stats.trim_mean(a, 0.25, axis=axis)),
        (
            difference_interval(values, baseline),
            (x, y),
            lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
        ),
    ]
    for (estimate, low, high), samples, statistic in cases:
        assert estimate == float(statistic(*samples, axis=-1))
        if all(np.ptp(s) == 0 for s in samples):
            assert low == high == estimate
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = stats.bootstrap(
                samples,
                statistic,
                n_resamples=10_000,
                method="percentile",
                vectorized=True,
                random_state=np.random.default_rng(0),
            ).confidence_interval
        assert (low, high) == (float(theirs.low), float(theirs.high))
    resamples = x[np.random.default_rng(1).integers(0, len(x), (50, len(x)))]
    assert np.array_equal(trim_mean(resamples, 0.25), stats.trim_mean(resamples, 0.25, axis=-1))
    z, n = stats.norm.ppf(0.975), len(values)
    for successes in range(1, n):  # scipy's z in the same formula: the same bounds
        p = successes / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        expected = (max(0.0, float(centre - half)), min(1.0, float(centre + half)))
        assert wilson_interval(successes, n) == expected


@pytest.mark.parametrize(
    "text, seeds", [("0-3", [0, 1, 2, 3]), ("7", [7]), ("1,4,6", [1, 4, 6]), ("0-1,5", [0, 1, 5])]
)
def test_seed_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["3-1", "a-b", "-2", "", "1,,2", "0-2,1"])
def test_malformed_seed_ranges(text):
    with pytest.raises(ConfigError, match="seed"):
        parse_seeds(text)
