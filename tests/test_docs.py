"""The documentation says what its commands print: no table typed in, no link broken."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
PAGES = sorted(RESULTS.glob("*.md"))


def tables(text: str) -> list[str]:
    """Every Markdown table of ``text``, as its block of lines."""
    blocks, block = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks.append("\n".join(block))
            block = []
    if block:
        blocks.append("\n".join(block))
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_results_table_is_recomputed_from_the_runs(page):
    """Each page's result tables are what the report code computes from the evaluations of
    the runs it was written from (published beside it)."""
    from offswitch.experiments.pages.layouts import across_layouts_markdown
    from offswitch.experiments.pages.publish import over_training_markdown, tables_markdown
    from offswitch.experiments.pages.report import is_family
    from offswitch.experiments.spec.experiment import build_experiment

    folder = RESULTS / page.stem
    record = json.loads((folder / "experiment.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    experiment = build_experiment(record["file"], str(folder), default_name=record["name"])
    expected = tables(tables_markdown(experiment, results))
    expected += tables(over_training_markdown(experiment, results))  # if it has one
    if is_family(results):  # a procedural pool's page: its tables across layouts
        expected += tables("\n".join(across_layouts_markdown(results)))
    assert expected and all(table in tables(page.read_text()) for table in expected)
    assert f"`{record['command']}`" in page.read_text()  # the command that made it


def _is_map(page: Path) -> bool:
    record = json.loads((RESULTS / page.stem / "experiment.json").read_text())
    return bool(record["file"].get("report", {}).get("map"))


@pytest.mark.parametrize("page", [p for p in PAGES if _is_map(p)], ids=lambda p: p.stem)
def test_every_incentive_map_table_is_recomputed_from_the_runs(page):
    """A map page's agreement and departure tables are what dynamic programming and the
    published evaluations give now."""
    from offswitch.experiments.pages.maps import map_markdown
    from offswitch.experiments.spec.experiment import build_experiment

    folder = RESULTS / page.stem
    record = json.loads((folder / "experiment.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    experiment = build_experiment(record["file"], str(folder), default_name=record["name"])
    expected = tables(map_markdown(experiment, results))
    assert expected and all(table in tables(page.read_text()) for table in expected)


def _differs(recorded, default) -> bool:
    if isinstance(recorded, dict) and isinstance(default, dict):
        return any(recorded.get(key) != value for key, value in default.items())
    return recorded != default


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_page_was_made_at_its_learners_current_defaults(page):
    """A page records the commit and package versions its runs were made with, and each
    learner's defaults as the runs resolved them; a page made before a learner's defaults
    changed is stale, and this names it (run its command again, then ``offswitch report``)."""
    from offswitch.agents.learners import learner_class

    made_with = json.loads((RESULTS / page.stem / "experiment.json").read_text())["made_with"]
    assert made_with["code"] and all(
        re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", c) for c in made_with["code"]
    )
    assert {"python", "torch", "numpy", "gymnasium", "stable-baselines3"} <= set(
        made_with["versions"]
    )
    for name, used in made_with["learner_defaults"].items():
        current = json.loads(json.dumps(learner_class(name).defaults, default=str))  # as recorded

        # A learner may add to a table default as it builds (A2C records its optimizer in
        # policy_kwargs): within a table, the keys the default has are compared.
        changed = sorted(k for k in set(used) & set(current) if _differs(used[k], current[k]))
        assert not changed, f"{page.name}: made with other {name} defaults ({', '.join(changed)})"


def test_the_readme_quotes_the_demo_page():
    readme = (ROOT / "README.md").read_text()
    demo = (RESULTS / "demo.md").read_text()
    quoted = tables(readme)
    assert quoted and quoted[0] == tables(demo)[0]
    assert "offswitch demo" in demo


def test_the_off_switch_game_table_is_what_its_command_prints():
    from offswitch.envs import off_switch_game

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        off_switch_game.main()
    assert printed.getvalue().strip() in (DOCS / "worlds.md").read_text()


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *PAGES], ids=lambda p: p.name
)
def test_links_and_pictures_resolve(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
