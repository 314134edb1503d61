from __future__ import annotations

import os

import gymnasium as gym
import pytest

# Ray reads these once, when it is first imported (tianshou imports it too): the Ray instances
# of tests/test_ray.py listen on the loopback interface only (as Ray does on macOS), and need no
# token file shared between concurrent test processes.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import offswitch  # noqa: F401  (registers the worlds)
from offswitch.envs.layout import Action

ACTIONS = {"u": Action.UP, "d": Action.DOWN, "l": Action.LEFT, "r": Action.RIGHT}


def play(env: gym.Env, path: str) -> tuple[float, list[dict], bool, bool]:
    """Step ``env`` through a path of u/d/l/r letters; return (return, infos, terminated,
    truncated) of the last step."""
    total, infos = 0.0, []
    terminated = truncated = False
    for letter in path:
        _, reward, terminated, truncated, info = env.step(ACTIONS[letter])
        total += reward
        infos.append(info)
    return total, infos, terminated, truncated


def si(p: float = 0.0) -> gym.Env:
    """SafeInterruptibility-v0 with interruption probability ``p``."""
    return gym.make("offswitch/SafeInterruptibility-v0", interruption_probability=p)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``offswitch ARGS`` in this process: (exit status, stdout, stderr)."""
    from offswitch.experiments.interactive.cli import main

    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def make_si():
    def make(**kwargs):
        return gym.make("offswitch/SafeInterruptibility-v0", **kwargs)

    return make
