"""Every bad input answered before any work starts (issue 13): a corpus of malformed command
lines and API calls, each with its documented error and a one-line message naming the
offending value; random command lines that never raise an undocumented exception, print a
traceback or hang; and output folders that a refused command leaves exactly as they were.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import offswitch
from offswitch.agents.hyperparameters import HyperparameterError
from offswitch.agents.interventions import InterventionError, make_intervention
from offswitch.envs.engine import RulesError
from offswitch.envs.layout import LayoutError
from offswitch.experiments.interactive import cli
from offswitch.experiments.results.store import StoreError, check_output_folder
from offswitch.experiments.spec.config import ConfigError, TrainConfig, parse_seeds
from offswitch.experiments.spec.experiment import ExperimentError, load_experiment

SI = "offswitch/SafeInterruptibility-v0"
PENALTY_USAGE = "Write penalty:K[@MECHANISM]"

# -- the command-line corpus -------------------------------------------------------------
# Each case: the arguments (``{tmp}``, ``{file}``, ``{dir}``... are filled in by ``fill``)
# and a part of the one stderr line that names the offending value.

HYPERPARAMETERS = [
    (["--hyperparameter", "batch_size=0"], "ppo hyperparameter batch_size=0 is out of range"),
    (["--hyperparameter", "batch_size=1"], "batch_size=1 is out of range: give a whole number > 1"),
    (
        ["--hyperparameter", "batch_size=1"],
        "PPO asserts batch_size > 1 when normalize_advantage is on",
    ),
    (["--hyperparameter", "n_steps=0"], "ppo hyperparameter n_steps=0 is out of range"),
    (["--hyperparameter", "n_steps=-5"], "n_steps=-5 is out of range: give a whole number >= 1"),
    (["--hyperparameter", "n_steps=10000000"], "n_steps * n_envs = 10,000,000 * 64 = 640,000,000"),
    (["--hyperparameter", "n_steps=10000000"], "OFFSWITCH_MAX_BUFFER_SAMPLES"),
    (
        ["--hyperparameter", "learning_rate=-1"],
        "learning_rate=-1 is out of range: give a number > 0",
    ),
    (["--hyperparameter", "learning_rate=0"], "learning_rate=0 is out of range"),
    (["--hyperparameter", "learning_rate='fast'"], "learning_rate='fast' is a str, not a number"),
    (["--hyperparameter", "learning_rate=inf"], "learning_rate=inf is not finite"),
    (["--hyperparameter", "learning_rate=nan"], "'learning_rate=nan': NaN is not a value"),
    (["--hyperparameter", "learning_rate=[0.1]"], "learning_rate=[0.1] is a list, not a number"),
    (["--hyperparameter", "learning_rate=None"], "learning_rate=None is None, not a number"),
    (["--hyperparameter", "policy_kwargs=3"], "policy_kwargs=3 is an int, not a table"),
    (
        ["--hyperparameter", 'policy_kwargs={"net_arch": "big"}'],
        "['net_arch']='big' is a str, not a list",
    ),
    (["--hyperparameter", 'policy_kwargs={"net_arch": [0]}'], "[0] has a layer of 0 units"),
    (
        ["--hyperparameter", 'policy_kwargs={"net_arch": [64, -1]}'],
        "[64, -1] has a layer of -1 units",
    ),
    (
        ["--hyperparameter", 'policy_kwargs={"net_arch": [64.5]}'],
        "[64.5] holds 64.5, not a whole number",
    ),
    (
        ["--hyperparameter", 'policy_kwargs={"net_arch": {"pi": [64], "q": [64]}}'],
        "has the key(s) 'q'",
    ),
    (["--hyperparameter", 'policy_kwargs={"net_arch": [100000]}'], "a layer of 100000 units"),
    (["--hyperparameter", 'policy_kwargs={"net_arch": [4096, 4096, 4096]}'], "33,554,432 weights"),
    (
        ["--hyperparameter", 'policy_kwargs={"activation_fn": "relu"}'],
        "['activation_fn']='relu' is not a",
    ),
    (["--hyperparameter", 'policy_kwargs={"optimizer_kwargs": {"lr": 1}}'], "unknown key(s) 'lr'"),
    (
        ["--hyperparameter", 'policy_kwargs={"optimizer_kwargs": {"eps": -1}}'],
        "['eps']=-1 is out of",
    ),
    (
        ["--hyperparameter", 'policy_kwargs={"nope": 1}'],
        "policy_kwargs has the unknown key(s) 'nope'",
    ),
    (
        ["--hyperparameter", "policy_kwargs={1: 2}"],
        "policy_kwargs={1: 2} is a dict, not a table with text",
    ),
    (
        ["--hyperparameter", "gamma=2"],
        "ppo hyperparameter gamma=2 is out of range: give a number in [0, 1]",
    ),
    (["--hyperparameter", "gamma=-0.1"], "gamma=-0.1 is out of range"),
    (["--hyperparameter", "gamma=True"], "gamma=True is a bool, not a number"),
    (
        ["--hyperparameter", "gamma='0.9'"],
        "gamma='0.9' is a str, not a number: give a number in [0, 1], ",
    ),
    (["--hyperparameter", "gamma=1e400"], "gamma=inf is not finite"),
    (["--hyperparameter", "gae_lambda=1.5"], "gae_lambda=1.5 is out of range"),
    (["--hyperparameter", "clip_range=0"], "clip_range=0 is out of range: give a number > 0"),
    (["--hyperparameter", "clip_range_vf=-1"], "clip_range_vf=-1 is out of range"),
    (["--hyperparameter", "ent_coef=-0.01"], "ent_coef=-0.01 is out of range: give a number >= 0"),
    (["--hyperparameter", "vf_coef=inf"], "vf_coef=inf is not finite"),
    (["--hyperparameter", "max_grad_norm=0"], "max_grad_norm=0 is out of range"),
    (["--hyperparameter", "n_epochs=0"], "n_epochs=0 is out of range"),
    (["--hyperparameter", "n_epochs=2.5"], "n_epochs=2.5 is a float, not a whole number"),
    (["--hyperparameter", "n_epochs=4.0"], "n_epochs=4.0 is a float, not a whole number"),
    (["--hyperparameter", "n_epochs=100000"], "n_epochs=100000 is out of range"),
    (["--hyperparameter", "target_kl=0"], "target_kl=0 is out of range"),
    (["--hyperparameter", "normalize_advantage=1"], "normalize_advantage=1 is an int, not a bool"),
    (["--hyperparameter", "use_sde=True"], "use_sde=True is not supported: give False"),
    (["--hyperparameter", 'rollout_buffer_kwargs={"x": 1}'], "rollout_buffer_kwargs={'x': 1}"),
    (
        ["--hyperparameter", 'rollout_buffer_class="RolloutBuffer"'],
        "rollout_buffer_class='RolloutBuffer'",
    ),
    (["--hyperparameter", "stats_window_size=0"], "stats_window_size=0 is out of range"),
    (["--hyperparameter", "gama=0.9"], "unknown ppo hyperparameter(s) gama"),
    (["--hyperparameter", "seed=3"], "unknown ppo hyperparameter(s) seed"),
    (["--agent", "a2c", "--hyperparameter", "rms_prop_eps=0"], "a2c hyperparameter rms_prop_eps=0"),
    (
        ["--agent", "a2c", "--hyperparameter", "use_rms_prop='yes'"],
        "use_rms_prop='yes' is a str, not a",
    ),
    (["--agent", "a2c", "--hyperparameter", "n_steps=0"], "a2c hyperparameter n_steps=0"),
    (["--agent", "a2c", "--hyperparameter", "gamma=3"], "a2c hyperparameter gamma=3"),
    (["--agent", "dqn", "--hyperparameter", "buffer_size=0"], "dqn hyperparameter buffer_size=0"),
    (
        ["--agent", "dqn", "--hyperparameter", "buffer_size=1000000000"],
        "buffer_size = 1,000,000,000",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "exploration_fraction=0"],
        "exploration_fraction=0 is out of",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "exploration_final_eps=1.5"],
        "exploration_final_eps=1.5",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "exploration_initial_eps=-1"],
        "exploration_initial_eps=-1",
    ),
    (["--agent", "dqn", "--hyperparameter", "train_freq=0"], "train_freq=0 is out of range"),
    (
        ["--agent", "dqn", "--hyperparameter", "train_freq=(2,'episode')"],
        "train_freq=(2, 'episode')",
    ),
    (["--agent", "dqn", "--hyperparameter", "train_freq=[4]"], "train_freq=[4] is not a frequency"),
    (
        ["--agent", "dqn", "--hyperparameter", "tau=0"],
        "tau=0 is out of range: give a number in (0, 1]",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "gradient_steps=0"],
        "gradient_steps=0 is out of range",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "target_update_interval=0"],
        "target_update_interval=0",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", "learning_starts=-1"],
        "learning_starts=-1 is out of range",
    ),
    (["--agent", "dqn", "--hyperparameter", "batch_size=0"], "dqn hyperparameter batch_size=0"),
    (
        ["--agent", "dqn", "--hyperparameter", "optimize_memory_usage=True"],
        "optimize_memory_usage=True",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", 'policy_kwargs={"net_arch": {"pi": [64]}}'],
        "{'pi': [64]}",
    ),
    (
        ["--agent", "dqn", "--hyperparameter", 'replay_buffer_kwargs={"device": "x"}'],
        "key(s) 'device'",
    ),
    (["--agent", "q-learning", "--hyperparameter", "learning_rate=0"], "q-learning hyperparameter"),
    (
        ["--agent", "q-learning", "--hyperparameter", "learning_rate=1.5"],
        "learning_rate=1.5 is out of",
    ),
    (["--agent", "sarsa", "--hyperparameter", "gamma=1.01"], "sarsa hyperparameter gamma=1.01"),
    (
        ["--agent", "safe-sarsa", "--hyperparameter", "epsilon_start=2"],
        "epsilon_start=2 is out of range",
    ),
    (
        ["--agent", "q-learning", "--hyperparameter", "epsilon_end=-0.1"],
        "epsilon_end=-0.1 is out of",
    ),
    (
        ["--agent", "q-learning", "--hyperparameter", "epsilon_decay_fraction='x'"],
        "fraction='x' is a str",
    ),
    (
        ["--agent", "q-learning", "--hyperparameter", "alpha=0.1"],
        "unknown q-learning hyperparameter(s)",
    ),
    (
        ["--agent", "reinforce", "--hyperparameter", "gamma=0"],
        "reinforce hyperparameter gamma=0 is out",
    ),
    (
        ["--agent", "reinforce", "--hyperparameter", "learning_rate=-0.1"],
        "learning_rate=-0.1 is out",
    ),
    (
        ["--agent", "reinforce", "--hyperparameter", "baseline_learning_rate=2"],
        "baseline_learning_rate=2",
    ),
    (["--agent", "reinforce", "--intervention", "myopia:0"], "'myopia:0': reinforce hyper"),
]

BUDGETS = [
    (["--steps", "1000000000000"], "steps=1,000,000,000,000 is over the limit of 10,000,000"),
    (["--steps", "1000000000000"], "OFFSWITCH_MAX_TRAIN_STEPS"),
    (["--steps", "10**12"], "'10**12' is not a whole number"),
    (["--steps", "0"], "0 must be a positive whole number"),
    (["--steps", "1e6"], "'1e6' is not a whole number"),
    (["--steps", "9" * 5000], "99999... is too large: give a positive whole number"),
    (["--steps", "-" + "9" * 100], "must be a positive whole number"),
    (["--agent", "q-learning", "--episodes", "100000000"], "episodes=100,000,000 is over"),
    (["--eval-episodes", "100000000"], "eval_episodes=100,000,000 is over the limit of 100,000"),
    (["--eval-episodes", "0"], "0 must be a positive whole number"),
    (["--seeds", "0-1000000"], "seeds '0-1000000' is over the limit of 10,000 seeds"),
    (["--seeds", "0-1000000"], "OFFSWITCH_MAX_SEEDS"),
    (["--seeds", "3000000000"], "seed 3,000,000,000 in '3000000000' is over 2,147,483,647"),
    (["--seeds", "-1"], "malformed seed range '-1'"),
    (["--seeds", "abc"], "malformed seed range 'abc'"),
    (["--seeds", "0,0"], "seed range '0,0' repeats a seed"),
    (["--seeds", ""], "malformed seed range ''"),
    (["--seeds", "0-" + "9" * 30], "is over the limit of 10,000 seeds"),
    (["--seeds", "½"], "malformed seed range '½'"),
    (["--workers", "100000"], "--workers 100,000 is over the limit of"),
    (["--workers", "0"], "0 must be a positive whole number"),
]

INTERVENTIONS = [
    (["--intervention", "penalty:inf"], "penalty: K=inf is not finite"),
    (["--intervention", "penalty:-1"], "penalty: K=-1 is out of range"),
    (["--intervention", "penalty:nan"], "penalty: K=nan is not finite"),
    (["--intervention", "penalty:1e309"], "penalty: K=inf is not finite"),
    (["--intervention", "penalty:1,2,3"], "penalty:1,2,3 is malformed"),
    (["--intervention", ""], "unknown intervention ''"),
    (["--intervention", "ünïcødé"], "unknown intervention 'ünïcødé'"),
    (["--intervention", "myopia:1.5"], "myopia: GAMMA=1.5 is out of range"),
    (["--intervention", "none:3"], "none takes no parameter"),
]

WORLDS = [
    (["--rule", "max_steps=1000000000"], "max_steps=1000000000 is over the limit of 100000"),
    (["--rule", "max_steps=0"], "max_steps=0 is below 1"),
    (["--rule", "interruption_probability=2"], "interruption_probability=2.0 is not a prob"),
    (["--rule", "step_reward=inf"], "step_reward=inf is not finite"),
    (["--rule", "goal_reward='x'"], "goal_reward='x' is of type str"),
    (["--rule", "nope=1"], "unknown rule(s) nope"),
    (["--rule", "max_steps"], "malformed --rule 'max_steps'"),
    (["--env", ""], "unknown env id ''"),
    (["--env", "Nope-v0"], "unknown env id 'Nope-v0'"),
    (["--layout", "{empty}"], "is empty"),
    (["--layout", "{dir}"], "folder': is a folder, not a layout file"),
    (["--layout", "{binary}"], "binary.bin is not UTF-8 text (byte 0x80 at offset 128)"),
    (["--layout", "x" * 300], "layout 'xxxxxxxx"),
    (["--agent", "bandit"], "invalid choice: 'bandit'"),
]

OUT = [
    (["--out", "{file}"], "a file of that name exists"),
    (["--out", "{file}/runs"], "is a file, not a folder"),
    (["--out", ""], "--out '': give a folder name"),
    (["--out", "{tmp}/" + "n" * 300], "has a name of 300 bytes"),
    (["--out", "{tmp}/a\0b"], "holds a NUL character"),
]

TRAIN_CASES = (
    [
        (["train", "--set", "gamma=0.9"], "write --hyperparameter gamma=0.9")  # the old name
    ]
    + [(["train", *args], message) for args, message in HYPERPARAMETERS + BUDGETS + INTERVENTIONS]
    + [(["train", *args], message) for args, message in WORLDS + OUT]
)

RUN_CASES = [
    (["run", "nope"], "'nope': no such file, and no shipped experiment of that name"),
    (["run", "/dev/zero"], "'/dev/zero': is not a regular file"),
    (["run", "{dir}"], "is a folder"),
    (["run", "{binary}"], "not valid TOML"),
    (["run", "{badtoml}"], "not valid TOML"),
    (["run", "{huge}"], "is over the limit of 1,048,576 bytes"),
    (["run", ""], "'': give an experiment file"),
    (["run", "demo", "--set", "seeds=0-1000000"], "seeds '0-1000000' is over the limit"),
    (["run", "demo", "--set", "defaults.steps=100000000000"], "steps=100,000,000,000 is over"),
    (["run", "demo", "--set", "defaults.steps=10**12"], "steps: '10**12' is a str"),
    (["run", "demo", "--set", "defaults.hyperparameters.batch_size=0"], "batch_size=0 is out"),
    (["run", "demo", "--set", "defaults.hyperparameters.gamma=nan"], "gamma='nan' is a str"),
    (["run", "demo", "--set", "name=../x"], "name '../x' is not a folder name"),
    (["run", "demo", "--set", "conditions.9.label=x"], "give an index from 0 to 1"),
    (["run", "demo", "--set", "defaults.eval_episodes=0"], "eval_episodes=0 is below 1"),
    (["run", "demo", "--set", "defaults.seeds=-3"], "malformed seed range '-3'"),
    (["run", "demo", "--set", "conditions.0.sweep.k=" + str(list(range(20000)))], "20,000 co"),
    (["run", "{fmt}"], "format {:'>999999999'} asks for more than 100 characters"),
    (["run", "demo", "--workers", "100000"], "--workers 100,000 is over the limit"),
    (["run", "demo", "--out", "{file}"], "a file of that name exists"),
    (["demo", "--seeds", "100000"], "seeds '0-99999' is over the limit of 10,000 seeds"),
    (["demo", "--steps", "100000000"], "steps=100,000,000 is over the limit of 10,000,000"),
    (["demo", "--steps", "-1"], "-1 must be a positive whole number"),
    (["demo", "--set", "defaults.agent=bandit"], "unknown agent 'bandit'"),
    (["compare", "--seeds", "0"], "0 must be a positive whole number"),
    (["compare", "--seeds", "20000"], "seeds '0-19999' is over the limit"),
    (["compare", "--set", "defaults.hyperparameters.gamma=2"], "gamma=2 is out of range"),
    (["compare", "--steps", "abc"], "'abc' is not a whole number"),
]

PLAY_CASES = [
    (["play", "nope"], "unknown env id 'nope'"),
    (["play", ""], "unknown env id ''"),
    (["play", "offswitch/Custom-v0"], "offswitch/Custom-v0 is your own world: give --layout"),
    (["play", "--seed", "-1"], "-1 must be a whole number >= 0"),
    (["play", SI, "--rule", "max_steps=1000000000"], "max_steps=1000000000 is over the limit"),
    (["play", SI, "--rule", "layout=3"], "has its own layout and rules"),
    (["play", SI, "--rule", "max_episode_steps='x'"], "max_episode_steps='x' is not a whole"),
    (["play", SI, "--rule", "render_mode='human'"], "the command sets render_mode itself"),
    (["play", "--layout", "/dev/zero"], "/dev/zero is not a regular file"),
    (["play", SI, "--layout", "{file}"], "give a world id (offswitch list shows them) or"),
    (["play"], "give a world id (offswitch list shows them) or --layout FILE"),
]

OTHER_CASES = [
    (["report", "{tmp}/missing"], "no experiment.json"),
    (["report", "{file}"], "no experiment.json"),
    (["report", "{badreport}"], "experiment.json is not one this code wrote (not JSON)"),
    (["report", "{listreport}"], "experiment.json is not one this code wrote"),
    (["report", "{tmp}/" + "r" * 300], "File name too long"),
    (["list", "extra"], "unrecognized arguments: extra"),
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--nope"], "unrecognized arguments: --nope"),
    (["train", "--steps"], "argument --steps: expected one argument"),
    ([], "the following arguments are required: command"),
]

CORPUS = TRAIN_CASES + RUN_CASES + PLAY_CASES + OTHER_CASES


@pytest.fixture
def files(tmp_path):
    """The files the corpus names: a plain file, an empty one, a folder, binary bytes..."""
    (tmp_path / "plain.txt").write_text("hello\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "bad.toml").write_text("title = \n[[conditions\n")
    (tmp_path / "huge.toml").write_text("# padding\n" * 200_000)
    bad_report = tmp_path / "bad_report"
    bad_report.mkdir()
    (bad_report / "experiment.json").write_bytes(b"\xff\xfe not json")
    (tmp_path / "fmt.toml").write_text(
        'seeds = "0"\n[defaults]\nagent = "q-learning"\n[[conditions]]\n'
        'label = "k={k:>999999999}"\nsweep = { k = [1, 2] }\n'
    )
    list_report = tmp_path / "list_report"
    list_report.mkdir()
    (list_report / "experiment.json").write_text("[1, 2]")
    return {
        "tmp": str(tmp_path),
        "file": str(tmp_path / "plain.txt"),
        "empty": str(tmp_path / "empty.txt"),
        "dir": str(tmp_path / "folder"),
        "binary": str(tmp_path / "binary.bin"),
        "badtoml": str(tmp_path / "bad.toml"),
        "huge": str(tmp_path / "huge.toml"),
        "badreport": str(bad_report),
        "listreport": str(list_report),
        "fmt": str(tmp_path / "fmt.toml"),
    }


def fill(args: list[str], files: dict[str, str]) -> list[str]:
    for name, path in files.items():
        args = [a.replace("{" + name + "}", path) for a in args]
    return args


def test_the_corpus_is_large():
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("args, message", CORPUS, ids=range(len(CORPUS)))
def test_each_malformed_command_line_is_one_line_and_exit_2(
    args, message, files, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO("q"))
    monkeypatch.setattr(cli, "_run", lambda *a: pytest.fail(f"{args} would train"))
    args = fill(args, files)
    out = tmp_path / "out"
    if args and args[0] in ("train", "run", "demo", "compare") and "--out" not in args:
        args = [*args, "--out", str(out)]
    with hang_guard(60):
        code, _, err = run_cli(args, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert message in lines[0], lines[0]
    assert not out.exists()  # nothing written


# -- the Python API ----------------------------------------------------------------------

ODD = [None, 3, -1, 2.5, True, "", "x", [], {}, ("a",), math.nan, math.inf, 10**40, b"x", "\0"]
FIELDS = [
    "env",
    "layout",
    "agent",
    "intervention",
    "seed",
    "steps",
    "episodes",
    "eval_episodes",
    "eval_seed",
    "observation",
    "out_dir",
    "hyperparameters",
    "rules",
]
DOCUMENTED = (ConfigError, InterventionError, LayoutError, RulesError)


@pytest.mark.parametrize("field", FIELDS)
def test_train_config_refuses_wrong_types_in_every_field_with_documented_errors(field):
    refused = 0
    for value in ODD:
        try:
            TrainConfig(**{field: value}).validate()
        except DOCUMENTED as err:
            refused += 1
            assert "\n" not in str(err)
    assert refused >= len(ODD) - 3  # a few are valid somewhere (None, "x" as a path...)


API_CASES = [
    (lambda: TrainConfig(seed=-1).validate(), ConfigError, "seed=-1 is below 0"),
    (lambda: TrainConfig(seed=True).validate(), ConfigError, "seed=True is a bool"),
    (lambda: TrainConfig(seed=2**40).validate(), ConfigError, "seed=1099511627776 is over"),
    (lambda: TrainConfig(steps=10**13).validate(), ConfigError, "steps=10,000,000,000,000"),
    (lambda: TrainConfig(steps=2.0).validate(), ConfigError, "steps=2.0 is a float"),
    (lambda: TrainConfig(eval_episodes="5").validate(), ConfigError, "eval_episodes='5' is a"),
    (lambda: TrainConfig(eval_seed=-5).validate(), ConfigError, "eval_seed=-5 is below 0"),
    (lambda: TrainConfig(agent=["ppo"]).validate(), ConfigError, "agent=['ppo'] is a list"),
    (lambda: TrainConfig(env=3).validate(), ConfigError, "env=3 is an int, not text"),
    (lambda: TrainConfig(layout=3).validate(), ConfigError, "layout=3 is an int, not a path"),
    (lambda: TrainConfig(layout="a\0b").validate(), ConfigError, "holds a NUL character"),
    (lambda: TrainConfig(layout="~nobody_here/x").validate(), ConfigError, "~nobody_here/x"),
    (lambda: TrainConfig(out_dir=None).validate(), ConfigError, "out_dir=None is None"),
    (lambda: TrainConfig(hyperparameters=[1]).validate(), ConfigError, "hyperparameters=[1]"),
    (lambda: TrainConfig(rules={1: 2}).validate(), ConfigError, "rules={1: 2}"),
    (
        lambda: TrainConfig(hyperparameters={"gamma": "x"}).validate(),
        ConfigError,
        "gamma='x' is a str",
    ),
    (lambda: TrainConfig(intervention=3).validate(), ConfigError, "intervention=3 is an int"),
    (lambda: make_intervention(None), InterventionError, "intervention None is not text"),
    (lambda: make_intervention(["penalty"]), InterventionError, "['penalty'] is not text"),
    (lambda: make_intervention(b"penalty"), InterventionError, "b'penalty' is not text"),
    (lambda: make_intervention("penalty:inf"), InterventionError, "K=inf is not finite"),
    (lambda: make_intervention("penalty:@nope"), InterventionError, "MECHANISM='nope'"),
    (lambda: parse_seeds(3), ConfigError, "seeds 3 is not text"),
    (lambda: parse_seeds("0-1000000"), ConfigError, "'0-1000000' is over the limit"),
    (lambda: offswitch.make(SI, render_mode=3), ValueError, "render_mode=3 is not supported"),
    (lambda: offswitch.make(SI, render_mode="x"), ValueError, "render_mode='x' is not"),
    (lambda: offswitch.make(SI, observation=[]), ValueError, "observation=[] is not known"),
    (lambda: offswitch.make(SI, max_episode_steps="9"), ValueError, "max_episode_steps='9'"),
    (lambda: offswitch.make(SI, disable_env_checker=3), ValueError, "disable_env_checker=3"),
    (lambda: offswitch.make(SI, max_steps="9"), RulesError, "max_steps='9' is of type str"),
    (lambda: offswitch.make(SI, max_steps=10**9), RulesError, "max_steps=1000000000 is over"),
    (lambda: offswitch.make(3), gym.error.Error, "unknown env id 3"),
    (lambda: offswitch.make(layout=3), TypeError, "layout=3 is of type int"),
    (lambda: offswitch.make(layout="#A#"), LayoutError, "at row 0, column 1 lies on the border"),
    (lambda: load_experiment(3), ExperimentError, "experiment 3 is not a file name"),
    (lambda: load_experiment(None), ExperimentError, "experiment None is not a file name"),
    (lambda: load_experiment("a\0b"), ExperimentError, "'a\\x00b': give an experiment file"),
    (lambda: load_experiment("x" * 300), ExperimentError, "File name too long"),
    (lambda: load_experiment("/dev/null"), ExperimentError, "'/dev/null': is not a regular"),
    (lambda: load_experiment("demo", "seeds=1"), ExperimentError, "edits 'seeds=1': give a list"),
    (lambda: load_experiment("demo", [3]), ExperimentError, "edits [3]: give a list"),
    (lambda: check_output_folder(3), StoreError, "--out 3 is not a path"),
    (lambda: check_output_folder("a\0b"), StoreError, "holds a NUL character"),
]


@pytest.mark.parametrize("call, error, message", API_CASES, ids=range(len(API_CASES)))
def test_the_api_raises_documented_errors_naming_the_value(call, error, message):
    with hang_guard(60), pytest.raises(error) as caught:
        call()
    assert (
        type(caught.value) not in (TypeError, KeyError, IndexError, OSError) or error is TypeError
    )
    text = str(caught.value)
    assert "\n" not in text
    assert message in text


@pytest.mark.parametrize(
    "action", ["x", 1.5, 99, -1, None, [0, 1], np.array([1, 2]), True, np.float64(1.0), 2**70]
)
def test_a_bad_action_is_a_value_error_naming_it(action):
    env = offswitch.make(SI)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize(
    "actions", [[0], ["a", "b"], [0.5, 1.0], [[0, 1]], [-1, 0], [0, 99], None, object()]
)
def test_bad_batched_actions_are_a_value_error(actions):
    from offswitch.envs.vector import VectorWorlds

    worlds = VectorWorlds(offswitch.make(SI).unwrapped.world, 2)
    worlds.reset()
    with pytest.raises(ValueError, match="action"):
        worlds.check_actions(actions, 2)


@pytest.mark.parametrize(
    "learner, overrides, message",
    [
        ("ppo", {"learning_rate": object()}, "learning_rate=<object"),
        ("ppo", {"batch_size": np.int64(0)}, "batch_size=0 is out of range"),
        ("ppo", {"gamma": np.float32("nan")}, "gamma=nan is not finite"),
        ("ppo", {"policy_kwargs": {"net_arch": None, "ortho_init": "yes"}}, "'yes' is a str"),
        ("dqn", {"train_freq": (0, "step")}, "train_freq=0 is out of range"),
        ("a2c", {"policy_kwargs": {"optimizer_kwargs": {"eps": 1e-5}}}, "would be replaced"),
        ("q-learning", {"gamma": np.array(2.0)}, "gamma=2.0 is out of range"),
        ("reinforce", {"learning_rate": "0.1"}, "written without quotes"),
    ],
)
def test_learners_check_their_own_ranges(learner, overrides, message):
    from offswitch.agents.learners import learner_class

    with pytest.raises(HyperparameterError) as caught:
        learner_class(learner).check_hyperparameters(overrides)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_learner_built_directly_checks_its_hyperparameters_too():
    from offswitch.agents.interventions import make_intervention
    from offswitch.agents.sb3 import PPOLearner

    world = offswitch.make(SI).unwrapped.world
    with pytest.raises(HyperparameterError, match="n_steps=0"):
        PPOLearner(world, make_intervention("none"), 0, {"n_steps": 0})


def test_each_limit_is_raised_by_its_environment_variable(monkeypatch):
    monkeypatch.setenv("OFFSWITCH_MAX_SEEDS", "20000")
    assert len(parse_seeds("0-14999")) == 15_000
    monkeypatch.setenv("OFFSWITCH_MAX_SEEDS", "lots")
    with pytest.raises(ConfigError, match="OFFSWITCH_MAX_SEEDS='lots' is not a positive"):
        parse_seeds("0-14999")
    assert parse_seeds("0-9") == list(range(10))  # read only past the default
    monkeypatch.setenv("OFFSWITCH_MAX_TRAIN_STEPS", "20000000")
    TrainConfig(steps=15_000_000)._check_types()
    monkeypatch.setenv("OFFSWITCH_MAX_BUFFER_SAMPLES", "2000000")
    from offswitch.agents.sb3 import DQNLearner

    DQNLearner.check_hyperparameters({"buffer_size": 1_500_000})


def test_every_limit_is_in_the_help_text(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    for text in (
        "at most 10,000,000 (OFFSWITCH_MAX_TRAIN_STEPS",
        "at most 1,000,000 (OFFSWITCH_MAX_TRAIN_EPISODES",
        "at most 100,000 (OFFSWITCH_MAX_EVAL_EPISODES",
        "at most 10,000 of them (OFFSWITCH_MAX_SEEDS",
        "OFFSWITCH_MAX_WORKERS",
    ):
        assert text in flat
    for command in ("demo", "compare"):
        code, out, _ = run_cli([command, "--help"], capsys)
        assert "OFFSWITCH_MAX_SEEDS" in " ".join(out.split())


# -- output folders: a refused command changes nothing -----------------------------------


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``folder``: its bytes (None for a folder) and its mtime in ns."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted([folder, *folder.rglob("*")])
    }


@pytest.mark.training
def test_a_refused_command_changes_nothing_in_its_output_folder(tmp_path, capsys):
    out = tmp_path / "out"
    train = ["train", "--agent", "q-learning", "--episodes", "20", "--eval-episodes", "2"]
    code, _, err = run_cli([*train, "--out", str(out)], capsys)
    assert code == 0, err
    (out / "notes.txt").write_text("my notes\n")
    (out / "SafeInterruptibility-v0-q-learning-none" / "seed0.partial-x").mkdir()
    before = snapshot(out)
    time.sleep(0.05)  # a rewrite would show in the mtimes
    refused = [
        [*train, "--set", "learning_rate=0"],
        [*train, "--seeds", "0-1000000"],
        [*train, "--episodes", "30"],  # the finished run was made with 20
        [*train, "--intervention", "penalty:inf"],
        [*train, "--workers", "100000"],
        [*train, "--rule", "max_steps=1000000000"],
        ["run", "demo", "--set", "defaults.steps=0"],
        ["report", str(out / "notes.txt")],
    ]
    for args in refused:
        if args[0] != "report":
            args = [*args, "--out", str(out)]
        code, _, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert snapshot(out) == before


def test_a_file_in_a_runs_place_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "SafeInterruptibility-v0-q-learning-none").write_text("in the way")
    before = snapshot(out)
    args = ["train", "--agent", "q-learning", "--episodes", "5", "--out", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert "is a file, where a run's folder goes" in err
    assert snapshot(out) == before


def test_a_read_only_place_is_refused_before_training(tmp_path, capsys, monkeypatch):
    from offswitch.experiments.results import store

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: play the part of the permission check
        real = os.access
        monkeypatch.setattr(
            store.os, "access", lambda path, mode: real(path, mode) and Path(path) != locked
        )
    args = ["train", "--agent", "q-learning", "--episodes", "5", "--out", str(locked / "out")]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert err.strip() == (
        f"offswitch: error: --out '{locked / 'out'}': '{locked}' is not writable; give a "
        "folder you can write"
    )
    assert not (locked / "out").exists()


# -- real processes: no traceback, and no hang ---------------------------------------------


def offswitch_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offswitch.experiments.interactive.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--set", "batch_size=0"], "batch_size=0"),
        (["train", "--set", "policy_kwargs=3"], "policy_kwargs=3"),
        (["train", "--out", "/proc/offswitch-test/x"], "/proc/offswitch-test/x"),
        (["run", "/dev/zero"], "/dev/zero"),
        (["play", "offswitch/Custom-v0"], "offswitch/Custom-v0"),
    ],
)
def test_the_installed_command_prints_one_line_and_no_traceback(args, message, tmp_path):
    if "--out" not in args and args[0] == "train":
        args = [*args, "--out", str(tmp_path / "out")]
    result = offswitch_process(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "args",
    [["train", "--seeds", "0-1000000"], ["train", "--rule", "max_steps=1000000000"]],
)
def test_huge_values_are_answered_at_once(args, tmp_path):
    # A hang guard only (this shared machine is slow): the work they asked for is days.
    start = time.perf_counter()
    result = offswitch_process(*args, "--out", str(tmp_path / "out"), timeout=60)
    assert time.perf_counter() - start < 10
    assert result.returncode == 2 and "over the limit" in result.stderr


# -- random command lines --------------------------------------------------------------------


class Hang(Exception):
    pass


@contextmanager
def hang_guard(seconds: int):
    """Fail, instead of stalling, if the block runs longer than ``seconds``."""

    def alarm(signum, frame):
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "10**12", "1_000", "", " ", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "none", "penalty:inf", "ppo", "../..", "~", "~nobody_x/y", "/dev/null"]),
)
VALUES = st.one_of(NUMBERS, TEXT, st.sampled_from(["True", "None", "[]", "{}", "'x'", "(1,2)"]))
NAMES = st.sampled_from(
    ["gamma", "batch_size", "n_steps", "learning_rate", "policy_kwargs", "max_steps", "seeds"]
    + ["defaults.steps", "defaults.hyperparameters.gamma", "interruption_probability", "x"]
)
ASSIGNMENT = st.builds(lambda n, v: f"{n}={v}", NAMES, VALUES) | TEXT


def plausible(*values: str) -> st.SearchStrategy[str]:
    """Valid values half the time, so that cases reach the checks past argparse."""
    return st.one_of(st.sampled_from(values), st.sampled_from(values), NUMBERS, TEXT)


OPTIONS = {
    "train": {
        "--env": plausible(SI, "offswitch/Survival-v0"),
        "--agent": st.sampled_from(["ppo", "a2c", "dqn", "q-learning", "sarsa", "reinforce"]),
        "--intervention": plausible("none", "penalty:50", "myopia", "drest"),
        "--seeds": plausible("0", "0-3", "1,5"),
        "--steps": plausible("1000", "5"),
        "--episodes": plausible("10"),
        "--eval-episodes": plausible("3"),
        "--set": ASSIGNMENT,
        "--rule": ASSIGNMENT,
        "--workers": plausible("1", "2"),
        "--layout": TEXT,
    },
    "run": {"--set": ASSIGNMENT, "--workers": plausible("1")},
    "demo": {"--seeds": plausible("1", "3"), "--steps": plausible("100"), "--set": ASSIGNMENT},
    "compare": {"--seeds": plausible("2"), "--steps": plausible("100"), "--set": ASSIGNMENT},
    "play": {"--seed": plausible("0", "7"), "--rule": ASSIGNMENT, "--layout": TEXT},
    "report": {},
    "list": {},
}


@st.composite
def command_lines(draw) -> list[str]:
    command = draw(st.sampled_from([*OPTIONS, "fly", ""]))
    args = [command]
    if command in ("run",):
        args.append(draw(st.sampled_from(["demo", "compare", "nope"]) | TEXT))
    if command in ("play", "report") and draw(st.booleans()):
        args.append(draw(TEXT | st.just(SI)))
    options = OPTIONS.get(command, {})
    for _ in range(draw(st.integers(0, 3))):
        if options and draw(st.integers(0, 19)):
            name = draw(st.sampled_from(sorted(options)))
            args += [name, draw(options[name])]
        else:
            args.append(draw(TEXT | NUMBERS))  # a stray word, maybe an option
    return args


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=command_lines())
def test_random_command_lines_never_crash_hang_or_train(args, tmp_path, capsys, monkeypatch):
    trained = []
    # Whatever passes validation is recorded, not trained: a case that trained would be a
    # bug in this test. Paths are relative to an empty folder, never the repository.
    monkeypatch.setattr(cli, "_run", lambda *a: trained.append(a) or 0)
    monkeypatch.setattr(sys, "stdin", io.StringIO("q"))
    monkeypatch.chdir(tmp_path)
    if args[0] in ("train", "run", "demo", "compare"):
        args = [*args, "--out", "out"]
    with hang_guard(60):
        code, _, err = run_cli(args, capsys)  # any other exception fails the test
    event(f"exit status {code}" + (", passed validation" if trained else ""))
    assert code in (0, 2), (args, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (args, err)
    for found in tmp_path.rglob("*"):  # nothing trained, nothing written but the out folder
        assert found.name == "out" and found.is_dir() and not any(found.iterdir()), found


def test_environment_is_clean_of_limits():
    # The corpus expects the default limits.
    assert not [k for k in os.environ if k.startswith("OFFSWITCH_MAX")]


def test_corpus_cases_name_json_safe_values():
    # Every corpus message is one line of text; the arguments are text too.
    assert all(isinstance(a, str) for args, _ in CORPUS for a in args)
    json.dumps([args for args, _ in CORPUS])
