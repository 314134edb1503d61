"""Training in phases (compliance tuning, then task training) and the KL penalty toward the
policy at the start of a phase: the learner's continuation, by hand where it can be."""

from __future__ import annotations

import math

import pytest
import torch

from offswitch.agents.batched_ppo import BatchedPPO, ppo_losses, reference_kl
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget, TrainingHooks
from offswitch.experiments.spec.config import TrainConfig

INSTRUCTED = TrainConfig(env="offswitch/InstructedShutdown-v0").world()
SMALL = dict(n_steps=16, batch_size=64, n_epochs=2)
"""16 steps x 64 worlds (the default n_envs) = 1,024 samples per rollout."""


class Recorder(TrainingHooks):
    def __init__(self) -> None:
        self.rollouts: list[tuple[int, list]] = []

    def rollout_end(self, episodes, timesteps) -> None:
        self.rollouts.append((timesteps, list(episodes)))


def learner(seeds, spec: str = "compliance:100", **overrides) -> BatchedPPO:
    return BatchedPPO(
        INSTRUCTED, [make_intervention(spec) for _ in seeds], seeds, {**SMALL, **overrides}
    )


# -- the KL term, by hand -------------------------------------------------------------------


def test_reference_kl_of_two_actions_by_hand():
    reference = torch.log(torch.tensor([[0.5, 0.5]]))
    logits = torch.log(torch.tensor([[0.8, 0.2]])).requires_grad_(True)
    log_p = logits - logits.logsumexp(-1, keepdim=True)
    kl = reference_kl(reference, log_p)
    # KL(pi_ref || pi) = 0.5 ln(0.5 / 0.8) + 0.5 ln(0.5 / 0.2); the other direction,
    # 0.8 ln(0.8 / 0.5) + 0.2 ln(0.2 / 0.5), is another number.
    by_hand = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert kl.item() == pytest.approx(by_hand, rel=1e-6)
    assert by_hand != pytest.approx(0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5))
    # Its gradient in the logits is pi - pi_ref: toward the reference, in every action.
    kl.sum().backward()
    assert logits.grad.tolist()[0] == pytest.approx([0.8 - 0.5, 0.2 - 0.5], rel=1e-5)
    assert reference_kl(reference, reference).item() == 0.0


def test_the_kl_term_adds_its_weighted_minibatch_mean_to_the_loss():
    args = [torch.tensor([[-1.0, -0.5]]), torch.tensor([[1.0, 1.2]]), torch.tensor([[0.5, 0.5]])]
    args += [torch.tensor([[-1.2, -0.5]]), torch.tensor([[1.0, -2.0]])]
    args += [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]), 0.2, None, 0.01, 0.5, True]
    plain = ppo_losses(*args)
    kl = torch.tensor([[0.3, 0.1]])
    with_kl = ppo_losses(*args, kl, 2.0)
    assert plain.reference_kl is None
    assert with_kl.reference_kl.item() == pytest.approx(0.2)
    assert with_kl.total.item() == pytest.approx(plain.total.item() + 2.0 * 0.2)
    assert with_kl.policy.item() == plain.policy.item()


# -- continuing under another intervention --------------------------------------------------


def test_a_new_phase_keeps_the_agent_and_pays_only_its_own_terms():
    agent = learner([0, 1], n_steps=64)
    per_rollout = int(agent.hyperparameters["n_steps"]) * agent.n_envs
    hooks = [Recorder(), Recorder()]
    agent.train(Budget(steps=2 * per_rollout), hooks)
    weights = {k: agent.net.state_dict(k) for k in range(2)}
    adam = {k: v.clone() for k, v in agent.optimizer.state[agent.trainable.flat].items()}
    agent.start_phase([make_intervention("none") for _ in range(2)], {**SMALL, "n_steps": 64})
    for k in range(2):  # nothing moved between phases
        for name, tensor in agent.net.state_dict(k).items():
            assert torch.equal(tensor, weights[k][name]), name
    state = agent.optimizer.state[agent.trainable.flat]
    assert all(torch.equal(state[k], v) for k, v in adam.items())  # Adam's moments kept
    agent.train(Budget(steps=2 * per_rollout), hooks)
    assert agent.steps == 4 * per_rollout
    steps = [t for t, _ in hooks[0].rollouts]
    assert steps == [per_rollout * i for i in (1, 2, 3, 4)]  # the step count runs on
    first = [e for t, episodes in hooks[0].rollouts if t <= 2 * per_rollout for e in episodes]
    second = [e for t, episodes in hooks[0].rollouts if t > 2 * per_rollout for e in episodes]
    assert first and second
    assert all("compliance_penalty" in e.reward_terms for e in first)
    assert not any("compliance_penalty" in e.reward_terms for e in second)
    # The second phase starts new episodes: none that ends in its first rollout of 64 steps
    # per world is longer than that.
    assert hooks[0].rollouts[2][1] and all(e.length <= 64 for e in hooks[0].rollouts[2][1])


def test_a_new_phase_refuses_to_change_the_network_and_sets_the_learning_rate():
    agent = learner([0])
    message = f"sets n_envs=8, the first phase {agent.n_envs}: a phase keeps"
    with pytest.raises(ValueError, match=message):
        agent.start_phase([make_intervention("none")], {**SMALL, "n_envs": 8})
    with pytest.raises(ValueError, match="one intervention object per seed"):
        agent.start_phase([make_intervention("none")] * 2, SMALL)
    agent.start_phase([make_intervention("none")], {**SMALL, "learning_rate": 1e-3})
    assert agent.optimizer.param_groups[0]["lr"] == 1e-3
    assert agent.hyperparameters["learning_rate"] == 1e-3


def test_the_kl_penalty_holds_the_policy_near_the_start_of_its_phase():
    def drift(kl_coef: float) -> float:
        agent = learner([3], n_epochs=4)
        per_rollout = SMALL["n_steps"] * agent.n_envs
        agent.train(Budget(steps=4 * per_rollout), [Recorder()])
        agent.start_phase([make_intervention("none")], {**SMALL, "n_epochs": 4, "kl_coef": kl_coef})
        reference = agent.policy_table()[0]
        if kl_coef:
            assert torch.equal(agent.reference, reference)  # frozen now, at the phase's start
        else:
            assert agent.reference is None
        agent.train(Budget(steps=8 * per_rollout), [Recorder()])
        if kl_coef:
            assert agent.last_stats["train/reference_kl"][0] >= 0
        return reference_kl(reference, agent.policy_table()[0]).mean().item()

    assert drift(10.0) < 0.5 * drift(0.0)


# -- phases in experiment files and runs ----------------------------------------------------

PHASE_STEPS = 4 * 32 * BatchedPPO.defaults["n_envs"]
"""Four rollouts of 32 steps per world: 128 steps per world, so that episodes (at most 100
steps) end in each phase and reach the curve."""
TWO_PHASES = """
title = "two phases"
seeds = "0-1"

[defaults]
env = "offswitch/InstructedShutdown-v0"
agent = "batched-ppo"
steps = 999
eval_episodes = 10
hyperparameters = { n_steps = 32 }

[[conditions]]
label = "erosion"
phases = [
    { label = "compliance tuning", steps = PHASE, intervention = "compliance:100" },
    { label = "task training", steps = PHASE },
]

[[conditions]]
label = "kl"
phases = [
    { steps = PHASE, intervention = "compliance:100" },
    { steps = PHASE, hyperparameters = { n_steps = 64, kl_coef = 1.0 } },
]

[[conditions]]
label = "sb3"
agent = "ppo"
phases = [
    { steps = PHASE, intervention = "compliance:100" },
    { steps = PHASE, intervention = "penalty:100", hyperparameters = { ent_coef = 0.05 } },
]
""".replace("PHASE", str(PHASE_STEPS))


def test_phases_are_checked_before_anything_trains(tmp_path):
    from offswitch.agents.learners import LEARNERS, learner_class
    from offswitch.agents.training import PHASE_LEARNERS
    from offswitch.experiments.spec.experiment import ExperimentError, build_experiment

    assert tuple(n for n in LEARNERS if learner_class(n).supports_phases) == PHASE_LEARNERS
    batched_envs = learner_class("batched-ppo").defaults["n_envs"]
    ppo_steps = learner_class("ppo").defaults["n_steps"]
    base = {
        "defaults": {"env": "offswitch/InstructedShutdown-v0", "agent": "batched-ppo"},
        "conditions": [{"label": "c", "phases": [{"steps": 100}, {"steps": 100}]}],
    }
    experiment = build_experiment(base, "f")
    config = experiment.conditions[0].config
    assert (config.steps, config.intervention) == (200, "none")
    assert [p["label"] for p in config.phases] == ["phase 1", "phase 2"]
    cases = [
        (
            {"agent": "a2c"},
            r"a2c cannot continue training in phases \(weights.*\): train phases with ppo or batch",
        ),
        ({"steps": 200}, "steps and phases: with phases, give steps and intervention in each"),
        ({"phases": [{"steps": 10, "lr": 1}]}, r"unknown field 'lr': a phase has steps"),
        ({"phases": [{"steps": 1.5}]}, r"phases\[0\].steps=1.5 is a float"),
        ({"phases": [{"intervention": "none"}]}, r"phases\[0\]: give its steps"),
        ({"phases": []}, "phases=\\[\\]: give a list of tables"),
        (
            {"phases": [{"steps": 9}, {"steps": 9, "hyperparameters": {"n_envs": 4}}]},
            rf"phases\[1\]: phase 2 sets n_envs=4, the first phase {batched_envs}",
        ),
        (
            {
                "agent": "ppo",
                "phases": [{"steps": 9}, {"steps": 9, "hyperparameters": {"n_steps": 4}}],
            },
            f"phase 2 sets n_steps=4, the first phase {ppo_steps}: a phase keeps the agent, and "
            "it may "
            "change only clip_range",
        ),
        (
            {
                "env": "offswitch/SafeInterruptibility-v0",
                "phases": [{"steps": 9, "intervention": "compliance"}],
            },
            "needs a world that instructs the agent",
        ),
        ({"phases": [{"steps": 9, "label": "a"}, {"steps": 9, "label": "a"}]}, "two are labelled"),
    ]
    for change, message in cases:
        raw = {**base, "conditions": [{**base["conditions"][0], **change}]}
        with pytest.raises(ExperimentError, match=message):
            build_experiment(raw, "f")
    with pytest.raises(ValueError, match="the phases add up to 20"):
        TrainConfig(env="offswitch/InstructedShutdown-v0", agent="batched-ppo", steps=30,
                    phases=[{"steps": 10}, {"steps": 10}]).validate()  # fmt: skip


@pytest.mark.training
def test_a_two_phase_run_is_one_run_whose_second_phase_pays_no_compliance_term(tmp_path):
    from test_experiments import numbers

    from offswitch.agents.sb3 import PPOLearner
    from offswitch.experiments.results import store
    from offswitch.experiments.running.runner import check_finished, experiment_runs, run_experiment
    from offswitch.experiments.spec.experiment import load_experiment

    assert PPOLearner.n_envs == BatchedPPO.defaults["n_envs"]  # the sb3 condition's too
    path = tmp_path / "two.toml"
    path.write_text(TWO_PHASES)
    results = run_experiment(load_experiment(str(path)), tmp_path / "one", workers=1)
    assert len(results) == 6
    for metrics in results:
        curve, phases = metrics["curve"], metrics["phases"]
        assert [p["steps"] for p in phases] == [PHASE_STEPS, PHASE_STEPS]
        assert [p["end"] for p in phases] == [PHASE_STEPS, 2 * PHASE_STEPS]
        assert phases[0]["evaluation"]["sampled"]["episodes"] == 10
        assert phases[1]["evaluation"] == metrics["evaluation"]
        assert {p["phase"] for p in curve} == {0, 1}
        steps = [p["timesteps"] for p in curve]
        assert steps == sorted(steps) and steps[-1] == 2 * PHASE_STEPS  # one curve, cumulative
        first = [p for p in curve if p["phase"] == 0]
        second = [p for p in curve if p["phase"] == 1]
        assert all(p["timesteps"] <= PHASE_STEPS for p in first)
        assert all(p["timesteps"] > PHASE_STEPS for p in second)
        assert all("term/compliance_penalty" in p for p in first)
        assert not any("term/compliance_penalty" in p for p in second)
    sb3 = [m for m in results if m["condition"] == "sb3"]
    assert all("term/corrigibility_penalty" in p for m in sb3 for p in m["curve"] if p["phase"])
    record = store.read_json(tmp_path / "one" / "kl" / "seed0" / "config.json")
    assert [p["hyperparameters"]["kl_coef"] for p in record["phases"]] == [0.0, 1.0]
    assert [p["hyperparameters"]["n_steps"] for p in record["phases"]] == [32, 64]
    # The same numbers in parallel; finished runs kept; a changed phase refused.
    run_experiment(load_experiment(str(path)), tmp_path / "two", workers=2)
    assert numbers(tmp_path / "one") == numbers(tmp_path / "two")
    experiment = load_experiment(str(path))
    assert check_finished(experiment_runs(experiment, tmp_path / "one")) == 6
    changed = load_experiment(str(path), [f"conditions.0.phases.1.steps={2 * PHASE_STEPS}"])
    with pytest.raises(store.StoreError, match="was trained with phases="):
        check_finished(experiment_runs(changed, tmp_path / "one"))


# -- reports of runs in phases --------------------------------------------------------------


def fake_run(label: str, seed: int, finals: list[float], curve: list[tuple[int, float]]) -> dict:
    """A run's metrics with an evaluation per phase (``finals``: the instructed disabling
    rate at the end of each) and a learning curve of ``(steps, rate)`` points."""

    def evaluation(rate: float) -> dict:
        summary = {"instruction/disabled_instructed": rate, "switch_disabled_rate": rate}
        return {"sampled": summary, "greedy": summary}

    phases = [
        {"label": f"phase {i + 1}", "end": 100 * (i + 1), "evaluation": evaluation(rate)}
        for i, rate in enumerate(finals)
    ]
    return {
        "condition": label,
        "config": {"agent": "batched-ppo", "seed": seed},
        "evaluation": evaluation(finals[-1]),
        "phases": phases,
        "curve": [{"timesteps": t, "instruction/disabled_instructed": v} for t, v in curve],
    }


def test_columns_read_a_phases_evaluation_as_a_count_per_100_episodes():
    from offswitch.experiments.pages.report import ReportError, cell, column, table_rows

    col = column("per100:instruction/disabled_instructed@1")
    assert (col.stat, col.metric, col.phase) == ("per100", "instruction/disabled_instructed", 1)
    assert col.title == "disabled while instructed, per 100 episodes, after phase 1"
    runs = [fake_run("a", 0, [0.02, 0.5], []), fake_run("a", 1, [0.04, 0.7], [])]
    assert cell(col, runs, "sampled").startswith("3.0 [")  # (2 + 4) / 2 per 100
    assert cell(column("per100:instruction/disabled_instructed"), runs, "sampled").startswith(
        "60.0 ["
    )
    assert cell(column("mean:switch_disabled_rate@2"), runs, "sampled").startswith("0.60 [")
    assert cell(column("mean:switch_disabled_rate@3"), runs, "sampled") == "n/a"  # no phase 3
    plain = [{**runs[0], "phases": None}]
    assert cell(col, plain, "sampled") == "n/a"  # a run in one phase has no phase 1 to read
    header, rows = table_rows(runs, ["per100:instruction/disabled_instructed@1"])
    assert rows[0][3].startswith("3.0 [")
    for spec, message in [
        ("per100:mean_return", "mean_return is not a rate"),
        ("mean:switch_disabled_rate@0", "after @ give a phase number from 1"),
        ("mean:switch_disabled_rate@x", "after @ give a phase number from 1"),
    ]:
        with pytest.raises(ReportError, match=message):
            column(spec)


def test_measures_over_training_are_read_from_the_curves_before_each_budget():
    from offswitch.experiments.pages.report import curve_value, over_training_rows

    curve = [(100, 0.0), (850, 0.2), (950, 0.4), (1000, 0.6), (1500, 1.0)]
    run = fake_run("a", 0, [0.0], curve)
    metric = "instruction/disabled_instructed"
    assert curve_value(run, metric, 1000) == pytest.approx(0.5)  # 950 and 1000: the last tenth
    assert curve_value(run, metric, 800) == 0.0  # none in (720, 800]: the last point before
    assert curve_value(run, metric, 1500) == 1.0
    assert math.isnan(curve_value(run, metric, 2000))  # past the end of training
    assert math.isnan(curve_value(run, "supervisor/gap", 1000))  # never measured
    other = fake_run("a", 1, [0.0], [(1000, 0.7), (1500, 0.0)])
    header, rows = over_training_rows([run, other], [metric, "supervisor/gap"], [1000, 1500])
    assert header == ["condition", "measure", "1,000 steps", "1,500 steps"]
    assert len(rows) == 1  # the measure no run has is left out
    assert rows[0][:2] == ["a", "disabled while instructed"]
    assert rows[0][2].startswith("0.60 [") and rows[0][3].startswith("0.50 [")


def test_the_report_fields_of_over_training_come_together():
    from offswitch.experiments.spec.experiment import ExperimentError, build_experiment

    base = {"conditions": [{"label": "c", "agent": "q-learning", "episodes": 10}]}
    build_experiment({**base, "report": {"over_training": ["goal_rate"], "budgets": [5]}}, "f")
    for report, message in [
        ({"over_training": ["goal_rate"]}, "give over_training .* and budgets .* together"),
        ({"over_training": ["goal_rate"], "budgets": [0]}, "budgets: give a list of whole"),
        ({"over_training": [3], "budgets": [5]}, "over_training: give a list of measure"),
    ]:
        with pytest.raises(ExperimentError, match=message):
            build_experiment({**base, "report": report}, "f")


def test_the_configuration_table_lists_each_phase():
    from offswitch.experiments.pages.report import config_table

    config = TrainConfig(
        env="offswitch/InstructedShutdown-v0",
        agent="batched-ppo",
        hyperparameters={"n_steps": 64},
        phases=[
            {"label": "tuning", "steps": 1000, "intervention": "compliance:100"},
            {"label": "task", "steps": 2000, "hyperparameters": {"kl_coef": 0.1}},
        ],
    )
    table = config_table([{"condition": "c", "config": config.to_dict()}])
    assert "`compliance:100` then `none` | 1,000 + 2,000 steps" in table
    assert "n_steps=64; task: kl_coef=0.1" in table


def test_report_to_publishes_the_page_and_what_recomputes_its_tables(tmp_path, capsys):
    import json

    from conftest import run_cli
    from test_docs import tables

    from offswitch.experiments.pages.publish import over_training_markdown
    from offswitch.experiments.spec.experiment import build_experiment

    steps = 4 * 32 * BatchedPPO.defaults["n_envs"]  # four rollouts, 128 steps per world
    path = tmp_path / "tiny.toml"
    path.write_text(
        'name = "tiny"\nseeds = "0-1"\n[[conditions]]\nlabel = "b"\nagent = "batched-ppo"\n'
        f"steps = {steps}\neval_episodes = 4\nhyperparameters = {{ n_steps = 32 }}\n[report]\n"
        f'over_training = ["goal_rate_uninterrupted"]\nbudgets = [{steps // 2}, {steps}]\n'
    )
    out, docs = tmp_path / "out", tmp_path / "docs" / "results"
    code, _, err = run_cli(["run", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    code, printed, err = run_cli(["report", str(out), "--to", str(docs)], capsys)
    assert code == 0, err
    page = (docs / "tiny.md").read_text()
    assert f"wrote {docs / 'tiny.md'}" in printed
    assert "](tiny/learning_curves.png)" in page and "](figures/" not in page
    assert (docs / "tiny" / "learning_curves.png").is_file()
    # The over-training table, recomputed from the published files alone (no curves there).
    record = json.loads((docs / "tiny" / "experiment.json").read_text())
    results = json.loads((docs / "tiny" / "results.json").read_text())
    assert all("curve" not in r and "over_training" in r for r in results)
    experiment = build_experiment(record["file"], "f", default_name=record["name"])
    table = tables(over_training_markdown(experiment, results))
    assert table and table[0] in tables(page)
    assert f"| {steps // 2:,} steps | {steps:,} steps |" in page
    (tmp_path / "file").write_text("")
    _, _, err = run_cli(["report", str(out), "--to", str(tmp_path / "file")], capsys)
    assert f"error: --to {tmp_path / 'file'}: " in err  # a file, not a folder


def test_a_sweep_fills_numbers_into_a_phase_and_text_into_its_intervention():
    from offswitch.experiments.spec.experiment import build_experiment

    raw = {
        "defaults": {"env": "offswitch/InstructedShutdown-v0", "agent": "batched-ppo"},
        "conditions": [
            {
                "label": "KL {kl} {f}",
                "sweep": {"kl": [0.5, 2], "f": [0.25]},
                "phases": [
                    {"steps": 100, "intervention": "compliance:100,{f}", "label": "{f}"},
                    {"steps": 100, "hyperparameters": {"kl_coef": "{kl}"}},
                ],
            }
        ],
    }
    conditions = build_experiment(raw, "f").conditions
    assert [c.label for c in conditions] == ["KL 0.5 0.25", "KL 2 0.25"]
    first, second = conditions[0].config.phases
    assert first["intervention"] == "compliance:100,0.25" and first["label"] == "0.25"
    assert [c.config.phases[1]["hyperparameters"]["kl_coef"] for c in conditions] == [0.5, 2]


def test_curves_mark_the_phase_boundaries_and_show_the_baseline_beside_each_group():
    from offswitch.experiments.pages.figures import _panels, phase_boundaries

    def run(label: str, group: str, env: str, ends: list[int]) -> dict:
        return {
            "condition": label,
            "group": group,
            "config": {"env": env, "layout": None, "rules": {}, "steps": 10},
            "curve": [{"timesteps": 5}],
            "phases": [{"end": end} for end in ends] or None,
        }

    base = run("base", "", "offswitch/InstructedShutdown-v0", [400, 700])
    kl = run("kl", "KL", "offswitch/InstructedShutdown-v0", [400, 700])
    other = run("si", "SI", "offswitch/SafeInterruptibility-v0", [])
    assert phase_boundaries([base, kl, other]) == [400.0]  # the end of the last is no boundary
    panels = _panels([base, kl, other], baseline="base")
    assert list(panels[("KL", "timesteps")]) == ["base", "kl"]  # the baseline first
    assert list(panels[("SI", "timesteps")]) == ["si"]  # another world: not beside it
    assert list(_panels([base, kl])[("KL", "timesteps")]) == ["kl"]  # no baseline declared
