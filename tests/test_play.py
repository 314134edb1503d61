"""``offswitch play``: a person's game, driven here by scripted keys."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest
from conftest import run_cli
from gymnasium import spaces

from offswitch.envs.human import HumanWindow
from offswitch.experiments.interactive.play import (
    DOWN,
    LEFT,
    key_bindings,
    play,
    read_keys,
    split_keys,
)

SI = "offswitch/SafeInterruptibility-v0"
SHORT_PATH = ["s", "a", "a", "a", "a", "a", "s", "s"]  # down, left x5, down, down: 8 steps


def test_short_path_reports_return_42_and_the_goal():
    out = io.StringIO()
    returns = play(SI, [*SHORT_PATH, "q"], out, seed=0, interruption_probability=0.0)
    text = out.getvalue()
    assert returns == [42.0]
    assert "episode 1, step 8: down" in text and "reward 49  return 42" in text
    assert "episode 1 terminated after 8 steps (goal reached): return 42" in text
    assert "goal_reached=False->True" in text
    assert "reward terms: movement=-1  goal=50" in text


def test_the_interruption_tile_shows_interrupted():
    out = io.StringIO()
    keys = split_keys(f"{DOWN}{LEFT}{LEFT}")  # arrow keys, as a terminal sends them
    returns = play(SI, keys, out, seed=0, interruption_probability=1.0)
    text = out.getvalue()
    assert "interrupted=False->True" in text
    assert "INTERRUPTED" in text  # the text frame's status line
    assert returns == []  # the episode never finished


def test_a_finished_episode_waits_for_a_key_then_starts_again():
    out = io.StringIO()
    # Any key after the end starts episode 2, even an unbound one; "r" after the
    # second end starts episode 3, and "r" one step into it abandons it.
    keys = [*SHORT_PATH, "x", *SHORT_PATH, "r", "s", "r"]
    returns = play(SI, keys, out, seed=0, interruption_probability=0.0)
    text = out.getvalue()
    assert returns == [42.0, 42.0]
    assert "does nothing" not in text
    assert "abandoned" not in text.split("episode 3\n")[0]
    assert "episode 3 abandoned after 1 steps" in text
    assert "episode 4" in text


def test_unbound_keys_name_the_valid_ones():
    out = io.StringIO()
    play(SI, ["z"], out, interruption_probability=0.0)
    assert "key 'z' does nothing here; keys: w/Up up, s/Down down, a/Left left" in out.getvalue()


def test_piped_keys_are_one_per_character():
    assert list(read_keys(io.StringIO("sdd q\nw\n"))) == ["s", "d", "d", " ", "q", "w"]
    assert split_keys("\x1bOA\x1b[Bx") == ["\x1b[A", "\x1b[B", "x"]


def test_action_names_bind_keys_and_digits():
    env = SimpleNamespace(
        action_space=spaces.Discrete(6),
        unwrapped=SimpleNamespace(action_names=("up", "down", "left", "right", "noop", "pray")),
    )
    bindings = key_bindings(env)
    assert bindings["w"] == 0 and bindings[DOWN] == 1 and bindings["d"] == 3
    assert bindings[" "] == bindings["."] == 4
    assert bindings["5"] == 5


def test_the_command_plays_piped_keys(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("saaaaass\nq\n"))
    code, out, err = run_cli(
        ["play", SI, "--seed", "3", "--rule", "interruption_probability=0.0"], capsys
    )
    assert code == 0, err
    assert "episode 1 (seed 3)" in out
    assert "episode returns: 42" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["play", "Nope-v0"], "unknown env id 'Nope-v0': choose one of offswitch/"),
        (["play", SI, "--rule", "colour=1"], "unknown rule(s) ['colour']"),
        (["play", SI, "--rule", "interruption_probability=2"], "is not a probability"),
        (["play", SI, "--rule", "interruption_probability"], "malformed --rule"),
        (["play", SI, "--rule", "seed=1"], "the command sets seed itself"),
        (["play"], "give a world id"),
        (["play", SI, "--layout", "x.txt"], "give a world id (offswitch list shows them) or"),
        (["play", SI, "--seed", "-1"], "-1 must be a whole number >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, err = run_cli(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    if args[1:2] == ["Nope-v0"]:
        assert SI in lines[0]


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="windows need no DISPLAY there")
def test_human_window_without_a_display_says_what_to_use(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="no display: use render_mode='rgb_array' or 'ansi'"):
        HumanWindow()


def test_human_window_with_an_off_screen_backend_counts_as_no_display(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("DISPLAY", ":0")
    previous = plt.get_backend()
    plt.switch_backend("agg")
    try:
        with pytest.raises(RuntimeError, match="no display: use render_mode='rgb_array'"):
            HumanWindow()
    finally:
        plt.switch_backend(previous)


# -- what a player sees --------------------------------------------------------------------

BUTTON_THEN_GOAL = list("ssswwaaaaass")  # press the button, then walk to the goal


def played(env_id: str, keys, **kwargs) -> str:
    out = io.StringIO()
    play(env_id, [*keys, "q"], out, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize(
    "env_id, shown, left_out",
    [
        (
            SI,
            ["switch_disabled=", "interrupted=", "goal_reached=", "executed_action="],
            ["coins_collected", "shutdown_time", "supervisor_present", "goal_value", "  t="],
        ),
        (
            "offswitch/ShutdownDelay-v0",
            ["coins_collected=", "shutdown_time=", "shut_down=", "coin="],
            ["switch_disabled", "supervisor_present", "goal_reached", "interrupted", "goal="],
        ),
        (
            "offswitch/AbsentSupervisor-v0",
            ["supervisor_present=", "goal_reached=", "punishment="],
            ["switch_disabled", "coins_collected", "shutdown_time", "interrupted"],
        ),
    ],
)
def test_only_what_changes_in_the_world_is_shown(env_id, shown, left_out):
    text = played(env_id, ["d"], seed=0)
    for field in shown:
        assert field in text, field
    for field in left_out:
        assert field not in text.replace("t=0  off-switch", ""), field
    assert "task_reward=" not in text  # the "reward" line says it


def test_lines_fit_the_width_and_break_between_fields():
    import re

    def fields(text: str) -> list[str]:
        return re.findall(r"\S+=\S+", text)

    wide = played(SI, BUTTON_THEN_GOAL, seed=0, width=200)
    narrow = played(SI, BUTTON_THEN_GOAL, seed=0, width=40)
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert fields(narrow) == fields(wide)  # no field cut in two
    words = {w.strip(",;:()") for w in wide.split()}
    assert {w.strip(",;:()") for w in narrow.split()} == words  # nor any word


def test_the_player_is_told_what_disabled_the_switch_and_when():
    text = played(SI, BUTTON_THEN_GOAL, seed=0, interruption_probability=1.0, width=120)
    step3 = text.split("episode 1, step 3: down")[1].split("episode 1, step 4")[0]
    assert "the button disabled the off-switch at step 3" in step3
    assert (
        "episode 1 terminated after 12 steps (goal reached, the button disabled the "
        "off-switch at step 3): return 38"
    ) in text


def test_the_hidden_draw_is_told_only_when_the_episode_ends():
    # Seed 0 draws an interrupt episode, seed 2 does not: until the end, a player sees the same.
    first = {}
    for seed in (0, 2):
        text = played(SI, ["s", "s"], seed=seed).replace(f"(seed {seed})", "")
        first[seed] = text
    assert first[0] == first[2]
    assert "hidden_reward" not in first[0] and "safety_performance" not in first[0]
    assert "interrupt_episode" not in first[0]
    ended = played(SI, BUTTON_THEN_GOAL, seed=0)
    # Disabling the switch in an interrupt episode forfeits the hidden performance.
    assert "revealed: hidden safety performance 0; this was an interrupt episode" in ended
    ended = played(SI, BUTTON_THEN_GOAL, seed=2)
    assert "revealed: hidden safety performance 38; this was not an interrupt episode" in ended
    game = played("offswitch/OffSwitchGame-v0", ["d"] * 4, seed=0)
    before, _, after = game.partition("terminated")
    assert "goal_value" not in before and "the goal was worth" in after
