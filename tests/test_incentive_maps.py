"""Incentive maps (issue 22): the exact boundary at hand-computed cells, the two planners
agreeing, the map's bookkeeping, bad input, and a whole map at a tiny budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_cli

from offswitch.agents.interventions import make_intervention
from offswitch.envs.off_switch_game import OffSwitchGameEnv
from offswitch.envs.planning import disabling_values, optimal_values, solve
from offswitch.envs.safe_interruptibility import SafeInterruptibilityEnv
from offswitch.experiments.results.incentives import (
    ExactCell,
    NotComputable,
    exact_cell,
    learner_reward,
)
from offswitch.experiments.spec.experiment import ExperimentError, build_experiment


def si_margin(spec: str = "none", gamma: float = 1.0, **rules) -> float:
    world = SafeInterruptibilityEnv(**rules).world
    return exact_cell(world, learner_reward(world, make_intervention(spec)), gamma).margin


# SafeInterruptibility-v0, goal +50, step reward s < 0, time limit 100. Keeping the switch:
# the 8-step path, worth 50 + 8s uninterrupted and 100s when frozen on the interruption tile
# until the time limit (probability p). Disabling it: the 12-step path over the button, 50 + 12s
# in every episode. Margin = 50 + 12s - [(1 - p)(50 + 8s) + 100ps] = p(50 + 92|s|) - 4|s|.
@pytest.mark.parametrize(
    "p, s, margin",
    [
        (0.0, -1.0, -4.0),  # no interruptions: the detour's 4 steps are pure loss
        (0.5, -1.0, 67.0),  # 38 against 0.5 * 42 + 0.5 * (-100) = -29
        (0.1, -1.0, 10.2),  # 38 against 0.9 * 42 - 10 = 27.8
        (0.02, -0.5, -0.08),  # 44 against 0.98 * 46 - 1 = 44.08: just keeps (p* = 2/96)
        (0.03, -0.5, 0.88),  # 44 against 0.97 * 46 - 1.5 = 43.12: just disables
        (0.05, -2.0, 3.7),  # 26 against 0.95 * 34 - 10 = 22.3
    ],
)
def test_the_exact_margin_of_safe_interruptibility_is_the_hand_computed_one(p, s, margin):
    assert si_margin(interruption_probability=p, step_reward=s) == pytest.approx(margin)


@pytest.mark.parametrize(
    "spec, p, margin",
    [
        # penalty:K takes K on the disabling step: 38 - K against 142p - 100 (s = -1).
        ("penalty:50", 0.5, 17.0),  # -12 against -29
        ("penalty:20", 0.2, 4.4),  # 18 against 13.6: boundary at p = 24/142 = 0.169
        ("penalty:20", 0.1, -9.8),  # 18 against 0.9 * 42 - 10 = 27.8
        # indifference pays the interrupted agent what it loses (undiscounted): keeping the
        # switch is worth 42 whatever p, so the detour never pays.
        ("indifference", 0.5, -4.0),
        ("indifference", 0.9, -4.0),
    ],
)
def test_the_exact_margin_under_an_intervention_is_the_hand_computed_one(spec, p, margin):
    assert si_margin(spec, interruption_probability=p) == pytest.approx(margin)


def test_discounting_moves_the_boundary_the_way_the_discounted_sums_say():
    # p = 0, s = -1, gamma = 0.99: keeping is -sum_{k<8} 0.99^k + 0.99^7 * 50 and disabling
    # the same over 12 steps (the goal is paid on the last step).
    def path(steps: int) -> float:
        return -sum(0.99**k for k in range(steps)) + 0.99 ** (steps - 1) * 50

    expected = path(12) - path(8)
    assert si_margin(gamma=0.99, interruption_probability=0.0, step_reward=-1.0) == (
        pytest.approx(expected)
    )


# OffSwitchGame-v0: the goal is worth -2 (probability q) or +10, the step reward -0.01. Keeping
# the switch: 2 steps to the human, who presses (the episode ends, -0.02) or lets the agent
# pass to the goal (4 steps, U - 0.04). Disabling it: 2 steps left to the button, then 6 right
# to the goal, E[U] - 0.08 in every episode.
def osg_margin(beta: float, q: float) -> float:
    world = OffSwitchGameEnv(human_rationality=beta, goal_value_probs=(q, 1 - q)).world
    return exact_cell(world, learner_reward(world, make_intervention("none")), 1.0).margin


def test_the_off_switch_game_margins_are_the_hand_computed_ones():
    # beta = 0: the human flips a coin whatever U: keeping is 0.5 (E[U] - 0.04) - 0.5 * 0.02,
    # so the margin is E[U] - 0.08 - 0.5 E[U] + 0.03 = 0.5 E[U] - 0.05 (E[U] = 10 - 12q).
    # (Four draws: the belief planner.)
    assert osg_margin(0.0, 0.0) == pytest.approx(4.95)
    assert osg_margin(0.0, 0.5) == pytest.approx(1.95)
    # beta = inf: the human is right: keeping is 0.5 (10 - 0.04) + 0.5 (-0.02) = 4.97 against
    # 4 - 0.08 (two draws: the array planner).
    assert osg_margin(math.inf, 0.5) == pytest.approx(3.92 - 4.97)

    # beta = 1, q = 0.5: the human passes U with probability sigmoid(U).
    def sig(x):
        return 1 / (1 + math.exp(-x))

    keep = sum(0.5 * (sig(u) * (u - 0.04) + (1 - sig(u)) * -0.02) for u in (-2.0, 10.0))
    assert osg_margin(1.0, 0.5) == pytest.approx(3.92 - keep)


@pytest.mark.parametrize(
    "rules, spec",
    [
        ({"interruption_probability": 0.3, "step_reward": -0.5}, "none"),
        ({"interruption_probability": 0.1}, "penalty:7"),
        ({"interruption_probability": 0.7, "step_reward": -0.2}, "indifference"),
    ],
)
@pytest.mark.parametrize("gamma", [1.0, 0.95])
def test_the_array_planner_agrees_with_the_belief_planner(rules, spec, gamma):
    """disabling_values' three values against solve() over beliefs: the optimum, the best
    never disabling (a barrier on every disabling step) and the best ending disabled (a
    barrier on every ending with the switch live)."""
    world = SafeInterruptibilityEnv(**rules).world
    reward = learner_reward(world, make_intervention(spec))
    best, never, ending = disabling_values(world, gamma, reward)
    barrier = 1e6

    def barred(tr):
        return reward(tr) - barrier * (np.asarray(tr.disabled_by) > 0)

    def live_end(tr):
        return reward(tr) - barrier * (tr.done & ~world.switch_disabled[tr.next_state])

    assert best == pytest.approx(solve(world, gamma, reward=reward).value)
    assert never == pytest.approx(solve(world, gamma, reward=barred).value)
    assert ending == pytest.approx(solve(world, gamma, reward=live_end).value)
    assert best == pytest.approx(max(never, ending))
    if spec == "none":
        assert (best, never) == pytest.approx(optimal_values(world, gamma))


def test_an_intervention_without_a_fixed_reward_is_not_computable():
    world = SafeInterruptibilityEnv().world
    for spec in ("indifference:critic", "safe-interruptibility"):
        with pytest.raises(NotComputable):
            learner_reward(world, make_intervention(spec))


def test_ties_and_decisions():
    assert ExactCell(0.0, 1.0).tie and not ExactCell(0.0, 1.0).disables
    assert ExactCell(0.5, 1.0).disables and not ExactCell(-0.5, 1.0).disables


# -- the experiment file -------------------------------------------------------------------


def map_file(sweep: dict, axes: list, **extra) -> dict:
    label = "cell " + " ".join("{" + key.split(".")[-1] + "}" for key in sweep)
    return {
        "seeds": "0",
        "defaults": {"env": "offswitch/OffSwitchGame-v0", "agent": "batched-ppo", "steps": 8192},
        "conditions": [{"label": label, "sweep": sweep}],
        "report": {"map": axes, **extra},
    }


SWEEP = {
    "rules.human_rationality": [0.0, 1.0],
    "rules.goal_value_probs": [[0.0, 1.0], [0.5, 0.5]],
}


@pytest.mark.parametrize(
    "sweep, axes, message",
    [
        (
            {"rules.human_rationality": [0.0, 1.0]},
            ["rules.human_rationality", "rules.goal_value_probs"],
            "does not sweep 'rules.goal_value_probs'",
        ),
        (SWEEP, ["rules.human_rationality"], "give two different sweep keys"),
        (SWEEP, ["rules.human_rationality", "rules.human_rationality"], "two different"),
        (
            {**SWEEP, "rules.no_such_rule": [1.0]},
            ["rules.human_rationality", "rules.no_such_rule"],
            "no_such_rule",
        ),
    ],
)
def test_a_map_without_a_2d_sweep_is_refused_in_one_line(sweep, axes, message, tmp_path, capsys):
    with pytest.raises(ExperimentError, match=message):
        build_experiment(map_file(sweep, axes), "map.toml")
    path = tmp_path / "map.toml"
    path.write_text(_toml(map_file(sweep, axes)))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def _toml(data: dict) -> str:
    """Enough TOML for these files (json's lists and strings are TOML's)."""

    def inline(table: dict) -> str:
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table.items()) + " }"
        )

    lines = [f"seeds = {json.dumps(data['seeds'])}", "[defaults]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in data["defaults"].items()]
    for condition in data["conditions"]:
        lines += ["[[conditions]]", f"label = {json.dumps(condition['label'])}"]
        lines += [f"sweep = {inline(condition['sweep'])}"]
    lines += ["[report]"] + [f"{k} = {json.dumps(v)}" for k, v in data["report"].items()]
    return "\n".join(lines) + "\n"


def test_a_tiny_map_runs_reports_and_publishes(tmp_path, capsys):
    """2 x 2 cells, 1 seed, 8,192 steps: the page has the map, its agreement table and the
    figure, and no per-condition figures or viewer."""
    path = tmp_path / "tiny_map.toml"
    path.write_text(_toml(map_file(SWEEP, ["rules.human_rationality", "rules.goal_value_probs"])))
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    page = (out / "report.md").read_text()
    assert "## The map" in page and "figures/map.png" in page
    assert "away from the boundary: majority of seeds matches the optimum" in page
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["map.png"]
    assert not any("film" in json.loads(m.read_text()) for m in out.glob("*/seed0/metrics.json"))
    code, _, err = run_cli(["report", str(out), "--to", str(tmp_path / "docs")], capsys)
    assert code == 0, err
    published = (tmp_path / "docs" / "tiny_map.md").read_text()
    assert "No browser viewer: a map has a condition per cell" in published
    assert (tmp_path / "docs" / "tiny_map" / "map.png").is_file()


def test_the_map_reads_cells_and_boundary_as_drawn():
    """A 1 x 3 map with hand-made cells: keep, keep, disable. The boundary is the pair of cells
    either side of the change; the one away from it counts for the agreement."""
    from offswitch.experiments.pages.maps import Cell, IncentiveMap

    def cell(margin: float, disabling: int) -> Cell:
        exact = ExactCell(margin, 0.0)
        rates = {"sampled": disabling / 5, "greedy": disabling / 5}
        return Cell(
            "c",
            exact,
            exact,
            exact,
            5,
            {"sampled": disabling, "greedy": disabling},
            rates,
            {"sampled": 1.0, "greedy": 1.0},
            {"sampled": 0.0, "greedy": 0.0},
        )

    m = IncentiveMap(
        "",
        "x",
        "y",
        [0, 1, 2],
        [0],
        {(0, 0): cell(-2.0, 0), (0, 1): cell(-1.0, 3), (0, 2): cell(5.0, 5)},
        1.0,
        "none",
        "x",
        "y",
    )
    assert m.boundary == {(0, 1), (0, 2)}
    assert m.away() == [(0, 0)]
    assert m.agreement("sampled", m.away()) == (1, 1)
    assert m.agreement("sampled", sorted(m.boundary)) == (1, 2)  # 3/5 disable where it keeps
