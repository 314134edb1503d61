"""Training in phases (compliance tuning, then task training) and the KL penalty toward the
policy at the start of a phase: the learner's continuation, by hand where it can be."""

from __future__ import annotations

import math

import pytest
import torch

from offswitch.agents.batched_ppo import BatchedPPO, ppo_losses, reference_kl
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget, TrainingHooks
from offswitch.experiments.config import TrainConfig

INSTRUCTED = TrainConfig(env_id="offswitch/InstructedShutdown-v0").world()
SMALL = dict(n_steps=16, batch_size=64, n_epochs=2)
"""16 steps x 16 worlds = 256 samples per rollout."""


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
    agent = learner([0, 1], n_steps=64)  # 1024 samples per rollout
    hooks = [Recorder(), Recorder()]
    agent.train(Budget(steps=2048), hooks)
    weights = {k: agent.net.state_dict(k) for k in range(2)}
    adam = {k: v.clone() for k, v in agent.optimizer.state[agent.trainable.flat].items()}
    agent.start_phase([make_intervention("none") for _ in range(2)], {**SMALL, "n_steps": 64})
    for k in range(2):  # nothing moved between phases
        for name, tensor in agent.net.state_dict(k).items():
            assert torch.equal(tensor, weights[k][name]), name
    state = agent.optimizer.state[agent.trainable.flat]
    assert all(torch.equal(state[k], v) for k, v in adam.items())  # Adam's moments kept
    agent.train(Budget(steps=2048), hooks)
    assert agent.steps == 4096
    steps = [t for t, _ in hooks[0].rollouts]
    assert steps == [1024, 2048, 3072, 4096]  # the step count runs on
    first = [e for t, episodes in hooks[0].rollouts if t <= 2048 for e in episodes]
    second = [e for t, episodes in hooks[0].rollouts if t > 2048 for e in episodes]
    assert first and second
    assert all("compliance_penalty" in e.reward_terms for e in first)
    assert not any("compliance_penalty" in e.reward_terms for e in second)
    # The second phase starts new episodes: none that ends in its first rollout of 64 steps
    # per world is longer than that.
    assert hooks[0].rollouts[2][1] and all(e.length <= 64 for e in hooks[0].rollouts[2][1])


def test_a_new_phase_refuses_to_change_the_network_and_sets_the_learning_rate():
    agent = learner([0])
    with pytest.raises(ValueError, match="sets n_envs=8, the first phase 16: a phase keeps"):
        agent.start_phase([make_intervention("none")], {**SMALL, "n_envs": 8})
    with pytest.raises(ValueError, match="one intervention object per seed"):
        agent.start_phase([make_intervention("none")] * 2, SMALL)
    agent.start_phase([make_intervention("none")], {**SMALL, "learning_rate": 1e-3})
    assert agent.optimizer.param_groups[0]["lr"] == 1e-3
    assert agent.hyperparameters["learning_rate"] == 1e-3


def test_the_kl_penalty_holds_the_policy_near_the_start_of_its_phase():
    def drift(kl_coef: float) -> float:
        agent = learner([3], n_epochs=4)
        agent.train(Budget(steps=1024), [Recorder()])
        agent.start_phase([make_intervention("none")], {**SMALL, "n_epochs": 4, "kl_coef": kl_coef})
        reference = agent.policy_table()[0]
        if kl_coef:
            assert torch.equal(agent.reference, reference)  # frozen now, at the phase's start
        else:
            assert agent.reference is None
        agent.train(Budget(steps=2048), [Recorder()])
        if kl_coef:
            assert agent.last_stats["train/reference_kl"][0] >= 0
        return reference_kl(reference, agent.policy_table()[0]).mean().item()

    assert drift(10.0) < 0.5 * drift(0.0)


# -- phases in experiment files and runs ----------------------------------------------------

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
    { label = "compliance tuning", steps = 2048, intervention = "compliance:100" },
    { label = "task training", steps = 2048 },
]

[[conditions]]
label = "kl"
phases = [
    { steps = 2048, intervention = "compliance:100" },
    { steps = 2048, hyperparameters = { n_steps = 64, kl_coef = 1.0 } },
]

[[conditions]]
label = "sb3"
agent = "ppo"
phases = [
    { steps = 2048, intervention = "compliance:100" },
    { steps = 2048, intervention = "penalty:100", hyperparameters = { ent_coef = 0.05 } },
]
"""


def test_phases_are_checked_before_anything_trains(tmp_path):
    from offswitch.agents.learners import LEARNERS, learner_class
    from offswitch.agents.training import PHASE_LEARNERS
    from offswitch.experiments.experiment import ExperimentError, build_experiment

    assert tuple(n for n in LEARNERS if learner_class(n).supports_phases) == PHASE_LEARNERS
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
            r"phases\[1\]: phase 2 sets n_envs=4, the first phase 16",
        ),
        (
            {
                "agent": "ppo",
                "phases": [{"steps": 9}, {"steps": 9, "hyperparameters": {"n_steps": 4}}],
            },
            "phase 2 sets n_steps=4, the first phase 128: a phase keeps the agent, and it may "
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
        TrainConfig(env_id="offswitch/InstructedShutdown-v0", agent="batched-ppo", steps=30,
                    phases=[{"steps": 10}, {"steps": 10}]).validate()  # fmt: skip


@pytest.mark.training
def test_a_two_phase_run_is_one_run_whose_second_phase_pays_no_compliance_term(tmp_path):
    from test_experiments import numbers

    from offswitch.experiments import store
    from offswitch.experiments.experiment import load_experiment
    from offswitch.experiments.runner import check_finished, experiment_runs, run_experiment

    path = tmp_path / "two.toml"
    path.write_text(TWO_PHASES)
    results = run_experiment(load_experiment(str(path)), tmp_path / "one", workers=1)
    assert len(results) == 6
    for metrics in results:
        curve, phases = metrics["curve"], metrics["phases"]
        assert [p["steps"] for p in phases] == [2048, 2048]
        assert [p["end"] for p in phases] == [2048, 4096]
        assert phases[0]["evaluation"]["sampled"]["episodes"] == 10
        assert phases[1]["evaluation"] == metrics["evaluation"]
        assert {p["phase"] for p in curve} == {0, 1}
        steps = [p["timesteps"] for p in curve]
        assert steps == sorted(steps) and steps[-1] == 4096  # one curve, cumulative steps
        first = [p for p in curve if p["phase"] == 0]
        second = [p for p in curve if p["phase"] == 1]
        assert all(p["timesteps"] <= 2048 for p in first)
        assert all(p["timesteps"] > 2048 for p in second)
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
    changed = load_experiment(str(path), ["conditions.0.phases.1.steps=4096"])
    with pytest.raises(store.StoreError, match="was trained with phases="):
        check_finished(experiment_runs(changed, tmp_path / "one"))
