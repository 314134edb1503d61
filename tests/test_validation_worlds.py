"""World-level input validation: malformed layouts and rules get a documented error whose
one-line message names the offending value or field and the fix, before any work starts.

The documented exceptions, and the only ones these tests allow:

* :class:`~offswitch.envs.layout.LayoutError` (a ``ValueError``): a bad layout or layout
  file, a layout over ``MAX_CELLS`` tiles;
* :class:`~offswitch.envs.engine.RulesError` (a ``ValueError``): a rule of the wrong type
  or out of range, over ``MAX_STEPS_LIMIT`` or ``MAX_ITEMS``;
* :class:`~offswitch.envs.engine.WorldTooLargeError`, both of the above: tables over the
  memory limit;
* ``TypeError``: a layout or ``rules=`` of the wrong type, an unknown rule name.

Time bounds here are hang guards (a slow 2-core CI machine), not speed goals.
"""

from __future__ import annotations

import dataclasses
import math
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import offswitch
from offswitch.envs import LayoutError, ShutdownGridEnv, engine, parse_layout
from offswitch.envs.engine import (
    MAX_STEPS_LIMIT,
    MEMORY_LIMIT_MB,
    RulesError,
    ShutdownRules,
    TabularWorld,
    WorldTooLargeError,
    check_world_size,
    estimate_world_size,
)
from offswitch.envs.layout import MAX_CELLS

OK = "#####\n#A G#\n#####"
NAN, INF = float("nan"), float("inf")
HANG_GUARD_S = 5.0
"""Generous bound for work that must answer within about a second."""


def box(height: int, width: int, inside: str = "G") -> str:
    """An open room of height x width tiles with the agent top left, then ``inside``."""
    rows = [list("#" + " " * (width - 2) + "#") for _ in range(height)]
    rows[0] = rows[-1] = list("#" * width)
    for k, ch in enumerate("A" + inside):
        r, c = divmod(k, width - 2)
        rows[1 + r][1 + c] = ch
    return "\n".join("".join(row) for row in rows)


# -- The corpus: (how it is given, the input, the exception, what the message must name) ----
def rules(**kw):
    return lambda tmp: ShutdownRules(**kw)


def make_id(env_id, **kw):
    return lambda tmp: offswitch.make(env_id, **kw)


def make_layout(layout, **kw):
    return lambda tmp: offswitch.make(layout=layout(tmp) if callable(layout) else layout, **kw)


def parse(text):
    return lambda tmp: parse_layout(text)


def file_with(data: bytes):
    def write(tmp: Path) -> str:
        path = tmp / "world.txt"
        path.write_bytes(data)
        return str(path)

    return write


CORPUS = [
    # max_steps: whole, >= 1, finite, not a bool, under the limit
    ("max_steps nan", rules(max_steps=NAN), RulesError, ["max_steps=nan", "whole number"]),
    ("max_steps inf", rules(max_steps=INF), RulesError, ["max_steps=inf"]),
    ("max_steps -inf", rules(max_steps=-INF), RulesError, ["max_steps=-inf"]),
    ("max_steps 0", rules(max_steps=0), RulesError, ["max_steps=0", ">= 1"]),
    ("max_steps negative", rules(max_steps=-5), RulesError, ["max_steps=-5"]),
    ("max_steps fraction", rules(max_steps=1.5), RulesError, ["max_steps=1.5"]),
    ("max_steps bool", rules(max_steps=True), RulesError, ["max_steps=True", "bool"]),
    ("max_steps str", rules(max_steps="100"), RulesError, ["max_steps='100'", "without quotes"]),
    ("max_steps None", rules(max_steps=None), RulesError, ["max_steps=None"]),
    ("max_steps list", rules(max_steps=[100]), RulesError, ["max_steps=[100]"]),
    (
        "max_steps 1e9",
        rules(max_steps=1_000_000_000),
        RulesError,
        ["max_steps=1000000000", f"limit of {MAX_STEPS_LIMIT}", "OFFSWITCH_MAX_STEPS_LIMIT"],
    ),
    ("max_steps huge int", rules(max_steps=10**400), RulesError, ["max_steps=", "digits"]),
    ("max_steps huge float", rules(max_steps=1e300), RulesError, ["max_steps=", "limit"]),
    ("max_steps numpy nan", rules(max_steps=np.float64(NAN)), RulesError, ["max_steps=nan"]),
    # rewards: finite real numbers
    ("step_reward nan", rules(step_reward=NAN), RulesError, ["step_reward=nan", "finite"]),
    ("step_reward inf", rules(step_reward=INF), RulesError, ["step_reward=inf"]),
    ("goal_reward -inf", rules(goal_reward=-INF), RulesError, ["goal_reward=-inf"]),
    ("coin_reward str", rules(coin_reward="1"), RulesError, ["coin_reward='1'"]),
    ("punishment None", rules(punishment_reward=None), RulesError, ["punishment_reward=None"]),
    ("disable_cost nan", rules(disable_cost=NAN), RulesError, ["disable_cost=nan"]),
    ("step_reward bool", rules(step_reward=True), RulesError, ["step_reward=True", "bool"]),
    ("step_reward complex", rules(step_reward=1 + 2j), RulesError, ["step_reward=(1+2j)"]),
    ("goal_reward huge", rules(goal_reward=10**400), RulesError, ["goal_reward=", "too large"]),
    # probabilities
    (
        "interruption str",
        rules(interruption_probability="0.5"),
        RulesError,
        ["interruption_probability='0.5'", "without quotes"],
    ),
    (
        "interruption 1.5",
        rules(interruption_probability=1.5),
        RulesError,
        ["interruption_probability=1.5", "[0, 1]"],
    ),
    (
        "interruption negative",
        rules(interruption_probability=-0.1),
        RulesError,
        ["interruption_probability=-0.1"],
    ),
    (
        "interruption nan",
        rules(interruption_probability=NAN),
        RulesError,
        ["interruption_probability=nan"],
    ),
    ("supervisor 2", rules(supervisor_probability=2), RulesError, ["supervisor_probability=2"]),
    (
        "supervisor list",
        rules(supervisor_probability=[0.5]),
        RulesError,
        ["supervisor_probability=[0.5]"],
    ),
    # shutdown_step, delay_steps
    ("shutdown_step 0", rules(shutdown_step=0), RulesError, ["shutdown_step=0", "or None"]),
    ("shutdown_step 2.5", rules(shutdown_step=2.5), RulesError, ["shutdown_step=2.5"]),
    ("shutdown_step nan", rules(shutdown_step=NAN), RulesError, ["shutdown_step=nan"]),
    ("shutdown_step bool", rules(shutdown_step=False), RulesError, ["shutdown_step=False"]),
    ("shutdown_step str", rules(shutdown_step="3"), RulesError, ["shutdown_step='3'"]),
    (
        "shutdown_step over",
        rules(shutdown_step=10**7),
        RulesError,
        ["shutdown_step=10000000", "OFFSWITCH_MAX_STEPS_LIMIT"],
    ),
    ("delay_steps 1.5", rules(delay_steps=1.5), RulesError, ["delay_steps=1.5"]),
    ("delay_steps -1", rules(delay_steps=-1), RulesError, ["delay_steps=-1", ">= 0"]),
    ("delay_steps inf", rules(delay_steps=INF), RulesError, ["delay_steps=inf"]),
    # goal values and their probabilities
    ("goal_values str", rules(goal_values="12"), RulesError, ["goal_values='12'", "tuple"]),
    ("goal_values int", rules(goal_values=5), RulesError, ["goal_values=5"]),
    ("goal_values nan", rules(goal_values=(1, NAN)), RulesError, ["goal_values[1]=nan"]),
    ("goal_values text", rules(goal_values=(1, "a")), RulesError, ["goal_values[1]='a'"]),
    ("goal_values inf", rules(goal_values=[INF]), RulesError, ["goal_values[0]=inf"]),
    ("goal_values set", rules(goal_values={1, 2}), RulesError, ["goal_values={1, 2}"]),
    ("goal_values None", rules(goal_values=None), RulesError, ["goal_values=None"]),
    (
        "goal_values too many",
        rules(goal_values=[1.0] * 20_001),
        RulesError,
        ["goal_values has 20001 entries"],
    ),
    (
        "probs without values",
        rules(goal_value_probs=(0.5, 0.5)),
        RulesError,
        ["goal_value_probs has 2 entries", "goal_values has 0"],
    ),
    (
        "probs sum",
        rules(goal_values=(1, 2), goal_value_probs=(0.2, 0.3)),
        RulesError,
        ["goal_value_probs=(0.2, 0.3)", "sums to 0.5"],
    ),
    (
        "probs negative",
        rules(goal_values=(1, 2), goal_value_probs=(-0.5, 1.5)),
        RulesError,
        ["goal_value_probs[0]=-0.5"],
    ),
    (
        "probs nan",
        rules(goal_values=(1, 2), goal_value_probs=[NAN, 1]),
        RulesError,
        ["goal_value_probs[0]=nan"],
    ),
    (
        "estimate without values",
        rules(goal_value_estimate=4.0),
        RulesError,
        ["goal_value_estimate", "goal_values is empty"],
    ),
    (
        "estimate nan",
        rules(goal_values=(1, 2), goal_value_estimate=NAN),
        RulesError,
        ["goal_value_estimate=nan"],
    ),
    # human_rationality, noop, safety_measure
    ("rationality nan", rules(human_rationality=NAN), RulesError, ["human_rationality=nan"]),
    ("rationality -1", rules(human_rationality=-1), RulesError, ["human_rationality=-1.0"]),
    ("rationality str", rules(human_rationality="inf"), RulesError, ["human_rationality='inf'"]),
    ("noop -1", rules(noop=-1), RulesError, ["noop=-1", "True or False"]),
    ("noop 1", rules(noop=1), RulesError, ["noop=1"]),
    ("noop str", rules(noop="yes"), RulesError, ["noop='yes'"]),
    ("noop None", rules(noop=None), RulesError, ["noop=None"]),
    (
        "safety_measure typo",
        rules(safety_measure="returns"),
        RulesError,
        ["safety_measure='returns'", "'return'"],
    ),
    ("safety_measure list", rules(safety_measure=["return"]), RulesError, ["safety_measure="]),
    ("safety_measure None", rules(safety_measure=None), RulesError, ["safety_measure=None"]),
    # rules through offswitch.make
    (
        "make max_steps str",
        make_id("offswitch/Survival-v0", max_steps="10"),
        RulesError,
        ["max_steps='10'"],
    ),
    (
        "make goal_values mixed",
        make_id("offswitch/OffSwitchGame-v0", goal_values=[1, "x"]),
        RulesError,
        ["goal_values[1]='x'"],
    ),
    (
        "make noop int",
        make_id("offswitch/SafeInterruptibility-v0", noop=0),
        RulesError,
        ["noop=0"],
    ),
    (
        "make rule typo",
        make_id("offswitch/Survival-v0", max_step=5),
        TypeError,
        ["max_step", "did you mean max_steps"],
    ),
    (
        "make custom rule typo",
        make_layout(OK, interuption_probability=0.2),
        TypeError,
        ["interuption_probability", "did you mean interruption_probability"],
    ),
    ("make rules str", make_layout(OK, rules="x"), TypeError, ["rules must be a ShutdownRules"]),
    ("make rules dict", make_layout(OK, rules={}), TypeError, ["rules must be", "dict"]),
    ("make custom id alone", make_id(offswitch.envs.CUSTOM_ID), TypeError, ["layout=..."]),
    # layout of the wrong type
    ("layout int", make_layout(123), TypeError, ["layout=123 is of type int"]),
    ("layout bytes", make_layout(OK.encode()), TypeError, ["of type bytes", "decode"]),
    ("layout float", make_layout(1.5), TypeError, ["layout=1.5"]),
    ("layout dict", make_layout({"a": 1}), TypeError, ["dict"]),
    ("layout row int", make_layout(["#####", 5]), TypeError, ["row 1 of layout, 5,", "int"]),
    ("layout ndarray", make_layout(np.array(["###"])), TypeError, ["ndarray"]),
    ("parse None", parse(None), TypeError, ["NoneType"]),
    ("parse int", parse(5), TypeError, ["layout 5 is of type int"]),
    (
        "parse row None",
        parse(["#####", None]),
        TypeError,
        ["row 1 of the layout, None,", "NoneType"],
    ),
    # layout files
    (
        "missing file",
        make_layout("maps/nope.txt"),
        LayoutError,
        ["no such file: maps/nope.txt"],
    ),
    ("missing .txt", make_layout("nope.txt"), LayoutError, ["no such file: nope.txt"]),
    (
        "missing home file",
        make_layout("~/surely-not-here-offswitch.txt"),
        LayoutError,
        ["no such file: ~/surely-not-here-offswitch.txt", str(Path.home())],
    ),
    ("missing Path", make_layout(lambda tmp: tmp / "no.txt"), LayoutError, ["no such file"]),
    ("directory", make_layout(lambda tmp: str(tmp)), LayoutError, ["is a directory"]),
    ("directory Path", make_layout(lambda tmp: tmp), LayoutError, ["is a directory"]),
    ("device", make_layout("/dev/zero"), LayoutError, ["/dev/zero is not a regular file"]),
    ("empty file", make_layout(file_with(b"")), LayoutError, ["world.txt is empty"]),
    ("blank file", make_layout(file_with(b"\n  \n\n")), LayoutError, ["only blank lines"]),
    (
        "latin-1 file",
        make_layout(file_with(b"#####\n#A \xe9G#\n#####\n")),
        LayoutError,
        ["world.txt is not UTF-8", "0xe9"],
    ),
    (
        "tab in file",
        make_layout(file_with(b"#####\n#A\tG#\n#####\n")),
        LayoutError,
        ["tab at row 1, column 2"],
    ),
    (
        "name too long",
        make_layout("a" * 300 + "/x.txt"),
        LayoutError,
        ["aaaaaaaaaa"],  # "cannot read ... File name too long" or "no such file"
    ),
    # layout text
    ("long one-line", make_layout("#" * 5000), LayoutError, ["no agent"]),
    ("long one-line slashes", make_layout("#/" * 3000), LayoutError, ["unknown tile '/'"]),
    ("parse empty", parse(""), LayoutError, ["empty"]),
    ("parse blank lines", parse("\n\n  \n\t\n"), LayoutError, ["empty"]),
    ("parse path", parse("maps/foo.txt"), LayoutError, ["'maps/foo.txt' looks like a file path"]),
    ("parse row break", parse(["###\n#A#", "###"]), LayoutError, ["row 0", "line break"]),
    ("tab", parse("#####\n#A\tG#\n#####"), LayoutError, ["tab at row 1, column 2"]),
    ("carriage return", parse("#####\n#A\rG#\n#####"), LayoutError, ["carriage return"]),
    (
        "indented",
        parse("\n    #####\n    #A G#\n    #####\n"),
        LayoutError,
        ["starts with whitespace", "textwrap.dedent"],
    ),
    ("unknown tile", parse("#####\n#A Z#\n#####"), LayoutError, ["unknown tile 'Z' at row 1"]),
    ("unicode tile", parse("#####\n#Aé #\n#####"), LayoutError, ["unknown tile 'é'"]),
    ("NUL tile", parse("#####\n#A\x00 #\n#####"), LayoutError, ["unknown tile '\\x00'"]),
    ("widths", parse("#####\n#A G#\n####"), LayoutError, ["row 2 has 4 tiles"]),
    ("border", parse("#####\n A G#\n#####"), LayoutError, ["row 1, column 0 lies on the border"]),
    ("no agent", parse("#####\n#  G#\n#####"), LayoutError, ["no agent"]),
    ("two agents", parse("#####\n#AAG#\n#####"), LayoutError, ["2 agents"]),
    ("unreachable goal", parse("#####\n#A#G#\n#####"), LayoutError, ["goal at row 1, column 3"]),
    (
        "too many coins",
        make_layout("#" * 18 + "\n#A" + "C" * 15 + "#\n" + "#" * 18),
        RulesError,
        ["15 coins", "14 or fewer"],
    ),
    (
        "too many tiles",
        parse(["#" * 2000] * 600),
        LayoutError,
        ["1200000 tiles", f"limit of {MAX_CELLS}"],
    ),
]


@pytest.mark.parametrize("build, error, names", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_malformed_input_gets_a_documented_error_naming_it(tmp_path, build, error, names):
    start = time.perf_counter()
    with pytest.raises(error) as raised:
        build(tmp_path)
    assert time.perf_counter() - start < HANG_GUARD_S
    message = str(raised.value)
    for name in names:
        assert name in message
    assert "\n" not in message, "messages are one line"
    assert ": " in message, "messages name the problem, then the fix"


def test_the_corpus_is_large():
    assert len(CORPUS) >= 60


# -- Valid inputs keep working, normalised ----------------------------------------------------
def test_rules_accept_numpy_numbers_whole_floats_and_lists():
    r = ShutdownRules(
        max_steps=100.0,
        shutdown_step=np.int64(6),
        delay_steps=np.float32(2.0),
        interruption_probability=np.float32(0.25),
        step_reward=np.int32(-1),
        goal_reward=Fraction(1, 2),
        goal_values=[1, np.float64(2.5)],
        goal_value_probs=np.array([0.5, 0.5]),
        noop=np.bool_(True),
        human_rationality=INF,
    )
    assert (r.max_steps, r.shutdown_step, r.delay_steps) == (100, 6, 2)
    assert all(type(v) is int for v in (r.max_steps, r.shutdown_step, r.delay_steps))
    assert r.goal_values == (1.0, 2.5) and r.goal_value_probs == (0.5, 0.5)
    assert type(r.step_reward) is float and r.goal_reward == 0.5
    assert r.noop is True and r.human_rationality == INF
    hash(r)  # hashable: the world cache keys on it
    assert r == ShutdownRules(**r.to_dict())


def test_list_goal_values_build_the_same_world_as_a_tuple():
    a = offswitch.make("offswitch/OffSwitchGame-v0", goal_values=[-2, 10]).unwrapped
    b = offswitch.make("offswitch/OffSwitchGame-v0", goal_values=(-2.0, 10.0)).unwrapped
    assert a.world is b.world


@pytest.mark.parametrize(
    "layout",
    [
        OK,
        OK.split("\n"),
        tuple(OK.split("\n")),
        OK.replace("\n", "\r\n"),
        "\n\n" + OK + "\n   \n",
    ],
    ids=["text", "list", "tuple", "crlf", "blank lines around"],
)
def test_layouts_given_every_documented_way_build_the_same_world(layout):
    assert offswitch.make(layout=layout).unwrapped.layout.to_text() == OK
    assert ShutdownGridEnv(layout).world.n_states == ShutdownGridEnv(OK).world.n_states


def test_layout_files_by_str_path_and_home(tmp_path, monkeypatch):
    path = tmp_path / "world.txt"
    path.write_bytes(b"\xef\xbb\xbf" + OK.replace("\n", "\r\n").encode() + b"\r\n")  # BOM, CRLF
    monkeypatch.setenv("HOME", str(tmp_path))
    for where in (str(path), path, "~/world.txt"):
        assert offswitch.make(layout=where).unwrapped.layout.to_text() == OK


def test_registered_worlds_are_well_within_the_limits():
    for env_id in offswitch.world_ids():
        env = offswitch.make(env_id).unwrapped
        size = estimate_world_size(env.layout, env.rules)
        assert env.world.n_states <= size.states  # an upper bound
        assert size.bytes < MEMORY_LIMIT_MB * 2**20 / 100
        assert env.rules.max_steps <= MAX_STEPS_LIMIT / 100


def test_the_estimate_bounds_the_memory_really_spent():
    import tracemalloc

    layout = parse_layout(box(8, 9, "CCCCCCI"))
    rules = ShutdownRules()
    size = estimate_world_size(layout, rules)
    tracemalloc.start()
    try:
        world = TabularWorld(layout, rules)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert world.n_states <= size.states
    assert peak <= size.bytes


# -- The limits, and how to go past them knowingly --------------------------------------------
def _refused_quickly(layout: str, error: type[Exception]) -> str:
    start = time.perf_counter()
    with pytest.raises(error) as raised:
        offswitch.make(layout=layout)
    assert time.perf_counter() - start < HANG_GUARD_S
    return str(raised.value)


def test_a_200_by_200_layout_is_refused_before_memory_is_spent():
    message = _refused_quickly(box(200, 200, "IG"), WorldTooLargeError)
    assert "GiB" in message and f"limit of {MEMORY_LIMIT_MB} MiB" in message
    assert "39204 reachable cells" in message and "OFFSWITCH_MEMORY_LIMIT_MB" in message


def test_a_10000_by_10000_layout_is_refused_before_it_is_parsed():
    message = _refused_quickly("\n".join(["#" * 10_000] * 10_000), LayoutError)
    assert "100000000 tiles" in message and f"limit of {MAX_CELLS}" in message


def test_a_12_by_12_layout_with_14_coins_is_refused():
    message = _refused_quickly(box(12, 12, "C" * 14 + "G"), WorldTooLargeError)
    assert "2**14 coin sets" in message and "OFFSWITCH_MEMORY_LIMIT_MB" in message


def test_a_1000_by_1000_layout_parses_and_is_refused_quickly():
    text = box(1000, 1000, "G")
    start = time.perf_counter()
    assert parse_layout(text).shape == (1000, 1000)
    assert time.perf_counter() - start < HANG_GUARD_S
    _refused_quickly(text, WorldTooLargeError)


def test_too_large_is_both_a_layout_and_a_rules_error():
    assert issubclass(WorldTooLargeError, LayoutError)
    assert issubclass(WorldTooLargeError, RulesError)


def test_the_steps_limit_is_raised_by_its_environment_variable(monkeypatch):
    with pytest.raises(RulesError, match="OFFSWITCH_MAX_STEPS_LIMIT"):
        ShutdownRules(max_steps=MAX_STEPS_LIMIT + 1)
    monkeypatch.setenv("OFFSWITCH_MAX_STEPS_LIMIT", "1000000")
    assert ShutdownRules(max_steps=1_000_000).max_steps == 1_000_000
    with pytest.raises(RulesError, match="limit of 1000000 steps"):
        ShutdownRules(max_steps=1_000_001)


def test_the_steps_variable_never_lowers_the_limit_nor_breaks_the_worlds(monkeypatch):
    monkeypatch.setenv("OFFSWITCH_MAX_STEPS_LIMIT", "10")
    assert ShutdownRules(max_steps=100).max_steps == 100
    monkeypatch.setenv("OFFSWITCH_MAX_STEPS_LIMIT", "lots")
    offswitch.make("offswitch/Survival-v0")  # read only past the default
    with pytest.raises(RulesError, match="OFFSWITCH_MAX_STEPS_LIMIT='lots' is not a positive"):
        ShutdownRules(max_steps=MAX_STEPS_LIMIT + 1)


def test_the_memory_limit_is_raised_by_its_environment_variable(monkeypatch):
    layout, rules = parse_layout(box(200, 200, "IG")), ShutdownRules()
    with pytest.raises(WorldTooLargeError):
        check_world_size(layout, rules)
    monkeypatch.setenv("OFFSWITCH_MEMORY_LIMIT_MB", str(10**6))
    assert check_world_size(layout, rules).states == 39204 * 2  # estimated, not built
    monkeypatch.setenv("OFFSWITCH_MEMORY_LIMIT_MB", "-3")
    with pytest.raises(RulesError, match="OFFSWITCH_MEMORY_LIMIT_MB='-3'"):
        check_world_size(layout, rules)


def test_a_very_negative_goal_value_with_a_finite_human_builds():
    env = offswitch.make(
        "offswitch/OffSwitchGame-v0", goal_values=(-1000.0, 10.0), human_rationality=1.0
    )
    env.reset(seed=0)


# -- Random input: only the documented exceptions, each quickly -------------------------------
RULE_NAMES = [f.name for f in dataclasses.fields(ShutdownRules)]

any_value = st.one_of(
    st.integers(-3, 30),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-5, 5),
    st.sampled_from([NAN, INF, -INF, 0.0, 0.5, 1.0, 1e300, -1e300]),
    st.text(max_size=8),
    st.sampled_from(["0.5", "100", "return", "uninterrupted_return", ""]),
    st.lists(st.one_of(st.floats(), st.integers(-50, 50), st.text(max_size=2)), max_size=6),
    st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
    st.sampled_from([(0.5, 0.5), (0.2, 0.8), (1.0,), ()]),
    st.none(),
    st.booleans(),
    st.sampled_from([np.float32(0.5), np.int64(7), np.float64(NAN), np.bool_(True)]),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
rule_dicts = st.dictionaries(st.sampled_from(RULE_NAMES), any_value, max_size=5)


def _check_message(error: Exception, named: list[str]) -> None:
    message = str(error)
    assert message and "\n" not in message
    assert any(name in message for name in named), message


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(env_id=st.sampled_from(offswitch.world_ids()), world_rules=rule_dicts)
def test_random_rules_get_a_world_or_a_documented_error(env_id, world_rules):
    try:
        env = offswitch.make(env_id, **world_rules)
    except RulesError as error:  # WorldTooLargeError included
        _check_message(error, [*world_rules, "OFFSWITCH_", "this world would need"])
        return
    env.reset(seed=0)
    env.step(0)
    for name, value in world_rules.items():
        kept = getattr(env.unwrapped.rules, name)
        if isinstance(value, float) and math.isnan(value):
            raise AssertionError(f"{name}=nan was accepted")
        assert not isinstance(kept, list)


@settings(max_examples=300, deadline=2000)
@given(world_rules=rule_dicts)
def test_random_rules_on_a_custom_world(world_rules):
    try:
        env = offswitch.make(layout="#######\n#A IHG#\n#BP  C#\n#######", **world_rules)
    except RulesError as error:
        _check_message(error, [*world_rules, "OFFSWITCH_", "this world would need"])
        return
    env.reset(seed=1)


TILE_LIKE = list("#  AGIBKCDPH") + ["\t", "\r", "/", "~", ".", "x", "é", "\x00", "\n"]


@st.composite
def walled_layouts(draw) -> str:
    """Mostly valid layouts (walls all around, one agent, any tiles inside), sometimes with
    one fault: an odd character, a second agent, a broken row."""
    height, width = draw(st.integers(3, 9)), draw(st.integers(3, 10))
    inside = st.sampled_from(list("      #GIBKCDPH"))
    rows = [["#"] * width] + [
        ["#"] + [draw(inside) for _ in range(width - 2)] + ["#"] for _ in range(height - 2)
    ]
    rows.append(["#"] * width)
    rows[draw(st.integers(1, height - 2))][draw(st.integers(1, width - 2))] = "A"
    fault = draw(st.integers(0, 5))
    if fault == 1:
        rows[draw(st.integers(0, height - 1))][draw(st.integers(0, width - 1))] = draw(
            st.sampled_from(TILE_LIKE)
        )
    text = ["".join(row) for row in rows]
    if fault == 2:
        text[draw(st.integers(0, height - 1))] = draw(st.text(max_size=width + 1))
    return "\n".join(text)


layout_texts = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from(TILE_LIKE), max_size=120),
    walled_layouts(),
)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(text=layout_texts, as_rows=st.booleans())
def test_random_text_as_a_layout_gets_a_world_or_a_documented_error(text, as_rows):
    layout = text.split("\n") if as_rows else text
    with pytest.MonkeyPatch.context() as patch:
        # A lower memory limit keeps every world built here within the deadline.
        patch.setattr(engine, "MEMORY_LIMIT_MB", 16)
        for build in (parse_layout, lambda t: offswitch.make(layout=t)):
            try:
                build(layout)
            except LayoutError as error:  # WorldTooLargeError included
                _check_message(error, ["row", "layout", "tile", "file", "agent", "goal", "world"])
            except RulesError as error:  # too many coins and delay buttons
                _check_message(error, ["coins"])


@settings(max_examples=200, deadline=2000)
@given(
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.binary(max_size=20),
        st.lists(st.one_of(st.integers(), st.none(), st.binary(max_size=3)), min_size=1),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        st.sets(st.integers(), max_size=3),
    )
)
def test_random_objects_as_a_layout_get_a_type_error(value):
    for build in (parse_layout, lambda v: offswitch.make(layout=v), ShutdownGridEnv):
        if value is None and build is not parse_layout:
            continue  # make(layout=None) is "no layout"; covered in the corpus
        with pytest.raises(TypeError) as raised:
            build(value)
        message = str(raised.value)
        assert "layout" in message and "\n" not in message
        assert "was raised from the environment creator" not in message
