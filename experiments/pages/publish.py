"""The Markdown page of an experiment: what it shows, its tables, figures and configuration.

:func:`write_report` writes ``report.md``, ``results.csv`` (one row per run and evaluation
policy), ``results.json`` and ``figures/`` into an experiment's output folder at the end of
every run; ``offswitch report DIR`` writes them again from the runs' own files
(:func:`rewrite_report`), and with ``--to docs/results`` publishes the page and its figures
for GitHub, where the shipped experiments' pages live.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offswitch.experiments.pages.layouts import (
    COIN_HEADING,
    across_layouts_markdown,
    coin_run,
    layout_figures,
    switch_runs,
)
from offswitch.experiments.pages.report import (
    DEFAULT_COLUMNS,
    OVER_TRAINING_NOTE,
    TABLE_NOTE,
    config_table,
    curve_value,
    is_family,
    markdown_table,
    over_training_rows,
    results_csv,
    table_rows,
)
from offswitch.experiments.results import store
from offswitch.experiments.spec.experiment import is_map

VERSION_KEYS = ("python", "offswitch", "torch", "numpy", "gymnasium", "stable-baselines3")


def _groups(experiment: Any, results: Sequence[dict[str, Any]]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r.get("group") or "", []).append(r)
    return groups


def tables_markdown(experiment: Any, results: Sequence[dict[str, Any]]) -> str:
    """Every results table of the report, one per group of conditions."""
    options = experiment.report
    columns = options.get("columns") or list(DEFAULT_COLUMNS)
    policies = options.get("policies") or ("sampled", "greedy")
    parts = []
    for group, runs in _groups(experiment, results).items():
        if all(coin_run(r) for r in runs):  # no switch, no goal: DReST's measures instead
            if group:
                parts.append(f"### {group}")
            heading = COIN_HEADING.lstrip("# ")
            parts.append(
                "Coin layouts have neither switch nor goal: DReST's measures are under "
                f"*{heading}*, below."
            )
            continue
        baseline = options.get("baseline")
        if baseline and baseline not in {r.get("condition") for r in runs}:
            runs = [r for r in results if r.get("condition") == baseline] + runs
        header, rows = table_rows(runs, columns, policies, baseline)
        if group:
            parts.append(f"### {group}")
        parts.append(markdown_table(header, rows))
    return "\n\n".join(parts)


def over_training_markdown(experiment: Any, results: Sequence[dict[str, Any]]) -> str:
    """The table of measures over training the experiment asks for (``""`` if none)."""
    options = experiment.report
    metrics, budgets = options.get("over_training"), options.get("budgets")
    if not metrics or not budgets:
        return ""
    header, rows = over_training_rows(results, metrics, budgets)
    return markdown_table(header, rows) if rows else ""


def write_report(
    experiment: Any, results: Sequence[dict[str, Any]], out: Path, command: str
) -> Path:
    """Write ``report.md``, ``results.csv``, ``results.json`` and ``figures/`` into ``out``."""
    from offswitch.experiments.pages.figures import make_figures

    out = Path(out)
    store.write_text(out / "results.csv", results_csv(results))
    store.write_json(out / "results.json", list(results))
    if is_map(experiment):  # its cells are its conditions: a figure per map, not per condition
        from offswitch.experiments.pages.maps import map_figures

        figures = map_figures(experiment, results, out / "figures")
    else:  # the switch's figures mean nothing on coin pools (no switch)
        figures = make_figures(experiment, switch_runs(results), out / "figures")
    if is_family(results):  # a procedural pool: its held-out layouts
        figures = layout_figures(results, out / "figures") + list(figures)
    page = page_markdown(experiment, results, command, figures, out)
    store.write_text(out / "report.md", page)
    return out / "report.md"


def page_markdown(
    experiment: Any,
    results: Sequence[dict[str, Any]],
    command: str,
    figures: Sequence[tuple[str, Path]],
    out: Path,
) -> str:
    runs = len(results)
    conditions = len({r.get("condition") for r in results})
    lines = [f"# {experiment.title}", ""]
    if experiment.description:
        lines += [experiment.description, ""]
    lines += [
        f"Made by `{command}` ({conditions} conditions, {runs} runs). Every number below is "
        "computed from the runs' own `metrics.json` files; `offswitch report` writes this page "
        "again from them.",
        "",
    ]
    if is_map(experiment):  # the maps first: they are the page's point
        from offswitch.experiments.pages.maps import map_markdown

        lines += ["## The map", ""]
        for caption, path in figures:
            lines += [f"![{caption}]({path.relative_to(out).as_posix()})", "", caption, ""]
        lines += [map_markdown(experiment, results), ""]
        figures = []
        notes = (experiment.report or {}).get("notes", "").strip()
        if notes:  # the reading of the map, beside it
            lines += ["### Reading the map", "", notes, ""]
    lines += [
        "## Results",
        "",
        tables_markdown(experiment, results),
        "",
        TABLE_NOTE,
        "",
    ]
    if is_family(results):
        lines += ["## Across layouts", "", *across_layouts_markdown(results)]
    over_training = over_training_markdown(experiment, results)
    if over_training:
        lines += ["## Over training", "", over_training, "", OVER_TRAINING_NOTE, ""]
    notes = (experiment.report or {}).get("notes", "").strip()
    if notes and not is_map(experiment):
        lines += ["## Notes", "", notes, ""]
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures:
            lines += [f"![{caption}]({path.relative_to(out).as_posix()})", "", caption, ""]
    lines += ["## Configuration", "", config_table(results), ""]
    if experiment.path is not None and experiment.path.is_file():
        lines += [
            f"The experiment file, `{experiment.path.name}` (before any `--set` of the command):",
            "",
            "```toml",
            experiment.path.read_text().rstrip(),
            "```",
            "",
        ]
    versions, code = _versions(results, out)
    if versions:
        shown = ", ".join(f"{k} {versions[k]}" for k in VERSION_KEYS if k in versions)
        lines += [f"Versions: {shown}; code: `{code}`.", ""]
    return "\n".join(lines)


def made_with(results: Sequence[dict[str, Any]], out: Path) -> dict[str, Any]:
    """What made a page, from its runs' ``config.json``: the code's commit of each run (one,
    normally), the package versions, and each learner's defaults as the runs resolved them
    (their hyperparameters less the ones a condition set), so that a page whose learner's
    defaults have since changed can be found (``tests/test_docs.py``). ``out``: the experiment's
    output folder, which the runs' folders are recorded relative to."""
    codes: set[str] = set()
    versions: dict[str, str] = {}
    defaults: dict[str, dict[str, Any]] = {}
    for r in results:
        path = store.run_path(out, r) / "config.json"
        if not path.is_file():
            continue
        record = store.read_record(path)
        codes.add(str(record.get("code", "unknown")))
        versions = versions or dict(record.get("versions", {}))
        learner = record.get("learner", {})
        overrides = (record.get("config") or {}).get("hyperparameters") or {}
        used = {
            k: v for k, v in (learner.get("hyperparameters") or {}).items() if k not in overrides
        }
        defaults.setdefault(str(learner.get("name")), {}).update(used)
    return {"code": sorted(codes), "versions": versions, "learner_defaults": defaults}


def _versions(results: Sequence[dict[str, Any]], out: Path) -> tuple[dict[str, str], str]:
    for r in results:
        path = store.run_path(out, r) / "config.json"
        if path.is_file():
            record = store.read_record(path)
            return record.get("versions", {}), record.get("code", "unknown")
    return {}, "unknown"


def rewrite_report(out: Path, to: Path | None = None) -> Path:
    """Write an output folder's report again from its runs; with ``to``, also publish it as
    ``to/<name>.md`` with its figures in ``to/<name>/``."""
    from offswitch.experiments.running.runner import experiment_runs
    from offswitch.experiments.spec.experiment import build_experiment

    out = Path(out)
    recorded = out / "experiment.json"
    try:
        if not recorded.is_file():
            raise FileNotFoundError(f"{out}: no experiment.json; give an output folder of a run")
        info = store.read_json(recorded)
    except OSError as err:  # a name too long, no permission
        if isinstance(err, FileNotFoundError) and not err.filename:
            raise
        raise store.StoreError(f"{out}: {err.strerror or err}; give an output folder") from None
    except ValueError:  # not UTF-8, not JSON
        raise store.StoreError(
            f"{recorded} is not one this code wrote (not JSON): run the experiment again"
        ) from None
    if not isinstance(info, dict) or not isinstance(info.get("file"), dict):
        raise store.StoreError(f"{recorded} is not one this code wrote: run the experiment again")
    name = info.get("name")
    experiment = build_experiment(info["file"], str(recorded), default_name=str(name))
    if info.get("path"):
        experiment.path = Path(info["path"])
    runs = experiment_runs(experiment, out)
    missing = [str(d) for _, d, _ in runs if not store.is_complete(d)]
    if missing:
        raise ValueError(
            f"{out}: {len(missing)} of {len(runs)} runs are not finished (e.g. {missing[0]}): "
            "run the experiment again to finish them"
        )
    try:
        results = [store.read_record(d / "metrics.json") for _, d, _ in runs]
        # Everything computed from the runs' files before anything is written.
        results_csv(results)
        tables_markdown(experiment, results)
        over_training_markdown(experiment, results)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise store.StoreError(
            f"{out}: a run's metrics.json is missing or not one this code wrote "
            f"({type(err).__name__}: {str(err)[:80]}): run the experiment again into a new folder"
        ) from None
    page = write_report(experiment, results, out, info.get("command", "offswitch run"))
    if to is None:
        return page
    return publish(out, Path(to), experiment.name, experiment.report)


def publish(out: Path, to: Path, name: str, report: dict[str, Any] | None = None) -> Path:
    """Copy ``out``'s report to ``to/<name>.md`` and its figures to ``to/<name>/``, with the
    browser viewer of its runs (``to/<name>/viewer.html``, which the page links), the
    experiment's record and the runs' evaluations (``results.json``, without the learning
    curves and visit counts, and ``results.csv``), from which a test recomputes the page's
    tables. In place of the curves, each run keeps what the over-training table of
    ``report`` read from them (``over_training``: measure -> budget -> value)."""
    to.mkdir(parents=True, exist_ok=True)
    target = to / name
    if target.exists():
        shutil.rmtree(target)
    if (out / "figures").is_dir():
        shutil.copytree(out / "figures", target)
    target.mkdir(exist_ok=True)
    results = store.read_record(out / "results.json")
    slim = [
        {
            **{k: v for k, v in r.items() if k not in ("curve", "visits", "film")},
            "run": store.recorded_run(r),
        }
        for r in results
    ]
    metrics, budgets = (report or {}).get("over_training"), (report or {}).get("budgets")
    if metrics and budgets:
        for run, full in zip(slim, results):
            run["over_training"] = {
                m: {str(b): curve_value(full, m, b) for b in budgets} for m in metrics
            }
    store.write_json(target / "results.json", slim)
    shutil.copyfile(out / "results.csv", target / "results.csv")
    record = store.read_json(out / "experiment.json")
    store.write_json(target / "experiment.json", {**record, "made_with": made_with(results, out)})
    text = (out / "report.md").read_text().replace("](figures/", f"]({name}/")
    viewer = (
        "No browser viewer: a map has a condition per cell; `offswitch view` one cell's run "
        f"(`offswitch view runs/{name}/<cell>/seed0`) to watch its agents."
        if (report or {}).get("map")
        else _viewer_line(out, target, name)
    )
    first = "\n## The map\n" if (report or {}).get("map") else "\n## Results\n"
    text = text.replace(first, f"\n{viewer}\n{first}", 1)
    store.write_text(to / f"{name}.md", text)
    return to / f"{name}.md"


def _viewer_line(out: Path, target: Path, name: str) -> str:
    """Write the browser viewer of ``out``'s runs beside the published page, as
    ``target/viewer.html``; the page's line that links it, or says why there is none."""
    from offswitch.experiments.pages.viewer import ViewerError, write_viewer

    try:
        write_viewer(out, target / "viewer.html")
    except ViewerError as err:
        return f"No browser viewer for these runs: {err}"
    return (
        f"[Watch the episodes and play the world in the browser]({name}/viewer.html): one "
        "self-contained page (`offswitch view`); download it and open it, or serve the folder."
    )
