"""The viewer page in a real browser: Debian's chromium, headless, driven by Playwright.

The page loads with no console error and asks nothing of the network; stepping an episode puts
the agent on the cells of the Python episode at the same steps; a scripted key sequence in play
mode gives the return, the state and the end-of-episode lines of ``offswitch play`` in every
registered world, and the canvas holds the pixels of ``render_rgb``; a screenshot shows the
world. Skipped, saying why, where chromium or Playwright is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

import offswitch
from offswitch.envs.planning import solve
from offswitch.envs.render import render_ansi, render_rgb
from offswitch.experiments.interactive.play import _format as game_number
from offswitch.experiments.interactive.play import play
from offswitch.experiments.pages.viewer import page_html, world_data, write_viewer
from offswitch.experiments.results.episodes import DRAWS, run_episode
from offswitch.experiments.results.saved import load_run

CHROMIUM = os.environ.get("OFFSWITCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None,
        reason="Playwright is not installed: pip install -e '.[dev]' (the browser tests need it)",
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"no chromium at {CHROMIUM}: apt-get install chromium (or set OFFSWITCH_CHROMIUM)",
    ),
]

EXPERIMENT = """
title = "Two Q-learners"
seeds = "0"

[defaults]
env = "offswitch/SafeInterruptibility-v0"
agent = "q-learning"
episodes = 300
eval_episodes = 10

[[conditions]]
label = "task reward only"
intervention = "none"

[[conditions]]
label = "penalty 100"
intervention = "penalty:100"
"""


class Watched:
    """A page with what it said on its console and every request it made."""

    def __init__(self, context, url: str) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.page.wait_for_function("window.offswitchViewer && window.offswitchViewer.ready")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless chromium for the module, with a fresh profile; any request that is not
    the page's own file is refused (and recorded by the pages)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True
        )

        def refuse_the_network(route):
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", refuse_the_network)
        yield context
        context.close()


@pytest.fixture(scope="module")
def worlds_page(browser, tmp_path_factory) -> Watched:
    """One page that plays every registered world."""
    worlds = {
        f"w{k}": world_data(gym.make(env_id).unwrapped.world, env_id)
        for k, env_id in enumerate(offswitch.world_ids())
    }
    path = tmp_path_factory.mktemp("worlds") / "worlds.html"
    path.write_text(page_html({"title": "every world", "worlds": worlds, "conditions": []}))
    watched = Watched(browser, path.as_uri())
    watched.page.click("button.tab[data-tab=play]")
    return watched


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viewer-browser")
    (root / "two.toml").write_text(EXPERIMENT)
    from offswitch.experiments.interactive.cli import main

    assert main(["run", str(root / "two.toml"), "--out", str(root / "out"), "--workers", "1"]) == 0
    return root / "out"


@pytest.fixture(scope="module")
def runs_page(browser, experiment) -> Watched:
    path = write_viewer(experiment, experiment / "viewer.html")
    return Watched(browser, path.as_uri())


def test_the_pages_load_with_no_console_error_and_no_request_to_the_network(worlds_page, runs_page):
    page = runs_page.page
    for overlay in ("policy", "value", "optimum", "none"):
        page.select_option("#overlay", overlay)
        page.click("#forward")
        assert page.inner_text("#overlay-note") or overlay == "none"
    page.click("#playpause")
    for watched in (worlds_page, runs_page):
        for tab in ("episodes", "play", "curves"):
            watched.page.click(f"button.tab[data-tab={tab}]")
        assert watched.errors == []
        assert watched.requests and all(u.startswith(("file:", "data:")) for u in watched.requests)
    worlds_page.page.click("button.tab[data-tab=play]")


@pytest.mark.parametrize("kind", list(DRAWS))
def test_stepping_an_episode_puts_the_agent_where_the_python_episode_has_it(
    runs_page, experiment, kind
):
    page = runs_page.page
    page.click("button.tab[data-tab=episodes]")
    page.select_option("#policy", "greedy")
    page.select_option("#kind", kind)
    page.click("#start")
    expected = {}
    for label, folder in (("task reward only", "task-reward-only"), ("penalty 100", "penalty-100")):
        run = load_run(experiment / folder / "seed0")
        options = DRAWS[kind][0]
        steps = run_episode(
            run.predict, run.world, run.config.observation, options, run.config.eval_seed, True
        )
        expected[label] = [int(run.world.cell[step.state]) for step in steps]
    longest = max(len(cells) for cells in expected.values())

    def cells_at(t: int) -> list[int]:
        return [cells[min(t, len(cells) - 1)] for cells in expected.values()]

    def check(t: int) -> None:
        shown = {p["condition"]: p["cell"] for p in page.evaluate("offswitchViewer.panels()")}
        assert [shown[label] for label in expected] == cells_at(t), t
        assert page.inner_text("#clock") == f"t = {t}"

    # Step by step while anything moves; then, where the agents stand still (frozen until the
    # time limit), scrub to each step at which a cell changes and to the last.
    moving = [t for t in range(1, longest) if cells_at(t) != cells_at(t - 1)]
    stepped = min(longest, 25)
    for t in range(stepped):
        check(t)
        if t + 1 < longest:
            page.click("#forward")
    for t in sorted({*(m for m in moving if m >= stepped), longest - 1} - set(range(stepped))):
        page.fill("#scrub", str(t))
        check(t)
    assert runs_page.errors == []


MOVE_KEYS = {"up": "w", "down": "s", "left": "a", "right": "d", "noop": " "}


def scripts(env_id: str) -> dict[str, str]:
    """Key sequences for one world, each ending with its first episode or after 40 keys: the
    exact optimum's actions from seed 0's start, and a random walk."""
    env = gym.make(env_id)
    world = env.unwrapped.world
    names = env.unwrapped.action_names
    env.reset(seed=0)
    start = env.unwrapped.state_index
    path = solve(world).rollout(list(world.initial_states).index(start))
    optimum = ""
    for s, nxt in zip(path, path[1:]):
        action = int(np.flatnonzero(world.next_state[s] == nxt)[0])
        optimum += MOVE_KEYS[names[action]]
    rng = np.random.default_rng(sum(map(ord, env_id)))
    walk = "".join(rng.choice([MOVE_KEYS[n] for n in names], size=40))
    return {"optimum": optimum, "walk": walk}


def python_game(env_id: str, keys: str) -> tuple[float, int, int, list[str]]:
    """The Gymnasium world and ``offswitch play`` given ``keys`` from ``reset(seed=0)``, up to
    the first episode's end: its return, steps, state and the end-of-episode lines."""
    env = gym.make(env_id)
    env.reset(seed=0)
    bindings = {MOVE_KEYS[n]: a for a, n in enumerate(env.unwrapped.action_names)}
    total, used = 0.0, ""
    for key in keys:
        _, reward, terminated, truncated, _ = env.step(bindings[key])
        total += reward
        used += key
        if terminated or truncated:
            break
    out = io.StringIO()
    play(env_id, list(used), out, seed=0, width=10_000)
    ends = [
        line
        for line in out.getvalue().splitlines()
        if re.match(r"episode 1 (terminated|was truncated)", line) or line.startswith("revealed")
    ]
    return total, len(used), env.unwrapped.state_index, ends


@pytest.mark.parametrize("env_id", offswitch.world_ids())
def test_keys_give_the_return_and_status_of_the_python_world(worlds_page, env_id):
    page = worlds_page.page
    world = gym.make(env_id).unwrapped.world
    for name, keys in scripts(env_id).items():
        page.select_option("#play-world", label=env_id)  # a fresh game from seed 0
        total, steps, state, ends = python_game(env_id, keys)
        page.keyboard.type(keys[:steps])  # each character a keydown, as a player types
        game = page.evaluate("offswitchViewer.game()")
        assert game["state"] == state and game["t"] == steps, name
        assert game["total"] == pytest.approx(total), name
        # The status line of offswitch play's text frame (render_ansi), and its reward line.
        status = page.inner_text("#play-status").splitlines()
        assert status[0] == render_ansi(world, state, steps).splitlines()[-1], name
        assert f"return {game_number(total)}" in status[2], name
        if ends:  # the episode ended: the lines offswitch play ends it with
            assert [game["summary"], game["reveal"]] == ends, name
        else:
            assert not game["over"] and game["summary"] == ""
        # The canvas as a PNG (lossless): its pixels, not a screenshot's scaled ones.
        uri = page.evaluate("document.getElementById('play-canvas').toDataURL('image/png')")
        png = base64.b64decode(uri.split(",", 1)[1])
        drawn = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert (drawn == render_rgb(world, state)).all(), f"{name}: not render_rgb's frame"
    assert worlds_page.errors == []


def test_a_screenshot_shows_the_world(runs_page, tmp_path):
    page = runs_page.page
    page.click("button.tab[data-tab=episodes]")
    shot = tmp_path / "panels.png"
    page.locator("#panels canvas").first.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    assert len(colours) >= 6  # walls, floor, goal, button, interruption, agent, top bar
    assert pixels.std(axis=0).max() > 30  # not one flat colour


def test_hovering_a_curve_names_its_value(runs_page):
    page = runs_page.page
    page.click("button.tab[data-tab=curves]")
    line = page.locator("#chart polyline").first
    points = line.get_attribute("points").split()
    x, y = (float(v) for v in points[len(points) // 2].split(","))
    box = page.locator("#chart svg").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    tip = page.locator("#chart .tip")
    assert tip.is_visible()
    assert re.search(r"seed 0 at \d+: -?[\d.]+", tip.inner_text())
