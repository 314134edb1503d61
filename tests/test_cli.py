"""The command line: bad input is one line, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_cli


def offswitch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offswitch.experiments.interactive.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--env", "Nope-v0"], "unknown env id 'Nope-v0': choose one of offswitch/"),
        (["train", "--intervention", "magic"], "unknown intervention 'magic': choose one of"),
        (["train", "--intervention", "penalty:x"], "penalty: K='x' is not a number >= 0"),
        (["train", "--seeds", "5-2"], "malformed seed range '5-2'"),
        (["train", "--steps", "-10"], "-10 must be a positive whole number"),
        (["train", "--agent", "bandit"], "--agent: invalid choice: 'bandit'"),
        (["train", "--agent", "ppo", "--episodes", "10"], "ppo trains for a number of steps"),
        (["train", "--steps", "10", "--episodes", "10"], "not allowed with argument"),
        (["train", "--layout", "no/such/world.txt"], "no such file"),
        (["train", "--intervention", "aup"], "AUP needs a no-op action"),
        (["train", "--rule", "max_steps=1", "--rule", "max_steps=2"], "given twice"),
        (["train", "--rule", "step_reward=nan"], "NaN is not a value"),
        (["demo", "--seeds", "0"], "0 must be a positive whole number"),
        (["demo", "--set", "defaults.agent=bandit"], "unknown agent 'bandit'"),
        (["run", "nope"], "no such file, and no shipped experiment of that name"),
        (["fly"], "invalid choice: 'fly'"),
        (
            ["train", "--hyperparameter", "gamma"],
            "malformed --hyperparameter 'gamma': write NAME=VALUE",
        ),
        (
            ["train", "--hyperparameter", "gama=0.9"],
            "unknown ppo hyperparameter(s) gama: choose from",
        ),
        (["train", "--hyperparameter", "gamma=high"], "is not a Python literal"),
        (["train", "--rule", "rationality=1"], "unknown rule(s) rationality: choose from"),
        (["train", "--rule", "max_steps=-3"], "max_steps=-3 is below 1: give a whole number >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(args + (["--out", str(out)] if args[0] != "fly" else []), capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert not out.exists()  # nothing written


def test_the_installed_command_prints_no_traceback(tmp_path):
    result = offswitch("train", "--env", "Nope-v0", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("offswitch: error: unknown env id")


def test_train_help_lists_every_intervention(capsys):
    from offswitch.agents.interventions import INTERVENTIONS

    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    for name, cls in INTERVENTIONS.items():
        assert name in out and cls.description[:30] in out


def test_list_shows_worlds_agents_interventions(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    assert "offswitch/SafeInterruptibility-v0" in out
    assert "ppo" in out and "penalty" in out


LAYOUT = """\
#######
#A I G#
#B    #
#######
"""


def test_train_and_play_a_users_own_layout(tmp_path, capsys, monkeypatch):
    import io
    import json

    layout = tmp_path / "corridor.txt"
    layout.write_text(LAYOUT)
    out = tmp_path / "out"
    args = ["train", "--layout", str(layout), "--agent", "q-learning", "--episodes", "50"]
    code, _, err = run_cli(args + ["--eval-episodes", "4", "--out", str(out)], capsys)
    assert code == 0, err
    (condition,) = [p for p in out.iterdir() if p.is_dir() and p.name != "figures"]
    assert condition.name == "layout-corridor-q-learning-none"
    run = condition / "seed0"
    assert json.loads((run / "config.json").read_text())["config"]["layout"] == str(layout)
    monkeypatch.setattr(sys, "stdin", io.StringIO("ss q"))
    code, printed, err = run_cli(["play", "--layout", str(layout)], capsys)
    assert code == 0, err
    assert "episode 1, step 1: down" in printed


@pytest.mark.parametrize("command", ["train", "play"])
def test_an_infinite_rule_value_works_for_every_command(command, tmp_path, capsys, monkeypatch):
    import io

    game = ["--rule", "human_rationality=inf"]
    if command == "play":
        monkeypatch.setattr(sys, "stdin", io.StringIO("q"))
        args = ["play", "offswitch/OffSwitchGame-v0", *game]
    else:
        args = ["train", "--env", "offswitch/OffSwitchGame-v0", *game, "--agent", "q-learning"]
        args += ["--episodes", "20", "--eval-episodes", "2", "--out", str(tmp_path)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
