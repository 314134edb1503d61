"""Experiments as files: checked before anything runs, nothing lost or mixed when killed,
the same numbers sequentially, in parallel and resumed, and reports recomputed from runs."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from offswitch.experiments.pages.report import MAJORITY, metric_name, results_csv
from offswitch.experiments.results import store
from offswitch.experiments.running.runner import run_experiment
from offswitch.experiments.spec.experiment import (
    CONFIGS,
    ExperimentError,
    load_experiment,
)

SMALL = """
title = "small sweep"
seeds = "0-2"

[defaults]
env = "offswitch/SafeInterruptibility-v0"
agent = "q-learning"
episodes = 300
eval_episodes = 6

[[conditions]]
label = "Q {k}"
intervention = "penalty:{k}"
sweep = { k = [0, 100] }

[[conditions]]
label = "SARSA"
agent = "sarsa"
"""


def write(tmp_path: Path, text: str, name: str = "small.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def numbers(out: Path) -> dict[str, str]:
    """Every run's metrics, timings and paths aside, as text: equal means byte for byte."""
    found = {}
    for path in sorted(out.rglob("metrics.json")):
        if store.PARTIAL in str(path):
            continue
        metrics = json.loads(path.read_text())
        for key in ("train_seconds", "steps_per_second", "run"):
            metrics.pop(key, None)
        metrics["config"].pop("out_dir")  # where, not what
        found[str(path.relative_to(out))] = json.dumps(metrics, sort_keys=True)
    return found


# -- the files ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_is_valid_with_a_folder_per_condition(path):
    experiment = load_experiment(str(path))
    assert experiment.title and experiment.description
    slugs = [c.slug for c in experiment.conditions]
    assert len(set(slugs)) == len(slugs)
    assert all(c.seeds for c in experiment.conditions)
    baseline = experiment.report.get("baseline")
    assert baseline is None or baseline in [c.label for c in experiment.conditions]


def test_sweeps_expand_and_set_edits_any_field(tmp_path):
    path = write(tmp_path, SMALL)
    experiment = load_experiment(str(path), ["seeds=0-4", "defaults.episodes=10"])
    labels = [c.label for c in experiment.conditions]
    assert labels == ["Q 0", "Q 100", "SARSA"]
    assert [c.config.intervention for c in experiment.conditions] == [
        "penalty:0",
        "penalty:100",
        "none",
    ]
    assert all(
        c.seeds == (0, 1, 2, 3, 4) and c.config.episodes == 10 for c in experiment.conditions
    )
    # Each condition records the values its sweep gave it, for the dose-response figure.
    assert [c.sweep_values for c in experiment.conditions] == [{"k": 0}, {"k": 100}, {}]
    product = SMALL.replace(
        "sweep = { k = [0, 100] }", 'sweep = { k = [0, 100], "rules.max_steps" = [20, 30] }'
    ).replace('label = "Q {k}"', 'label = "Q {k} {max_steps}"')
    swept = load_experiment(str(write(tmp_path, product, "product.toml"))).conditions
    assert swept[1].sweep == (("k", 0), ("rules.max_steps", 30))
    assert swept[1].config.rules == {"max_steps": 30}
    edited = load_experiment(str(path), ["conditions.1.agent=safe-sarsa"])
    assert edited.conditions[2].config.agent == "safe-sarsa"
    assert load_experiment("demo").path == CONFIGS / "demo.toml"  # shipped files by name


BAD = [
    ("intervnetion = 'x'\n" + SMALL, "unknown field 'intervnetion'"),
    (SMALL.replace("episodes = 300", 'episodes = "many"'), "defaults.episodes: 'many' is a str"),
    (
        SMALL.replace('[[conditions]]\nlabel = "SARSA"', '[[conditions]]\nlabl = "SARSA"'),
        "unknown field 'labl' (did you mean 'label'?)",
    ),
    (
        SMALL.replace("offswitch/SafeInterruptibility-v0", "offswitch/Nope-v0"),
        "unknown env id 'offswitch/Nope-v0'",
    ),
    (SMALL.replace('agent = "sarsa"', 'agent = "sarsaa"'), "unknown agent 'sarsaa'"),
    (SMALL.replace('"penalty:{k}"', '"penalize:{k}"'), "unknown intervention 'penalize'"),
    (SMALL.replace("k = [0, 100]", "k = []"), "sweep.k: give a non-empty list of values"),
    (SMALL.replace("sweep = { k = [0, 100] }", "sweep = {}"), "sweep is empty"),
    (SMALL.replace('seeds = "0-2"', 'seeds = "0-200000"'), "over the limit of 10,000"),
    (SMALL.replace('seeds = "0-2"', 'seeds = "2-0"'), "malformed seed range '2-0'"),
    (SMALL.replace('label = "SARSA"', 'label = "Q 0"'), "two conditions are labelled 'Q 0'"),
    ("title = 'no conditions'\n", "no conditions: add at least one [[conditions]]"),
    (SMALL + "\n[report]\nbaseline = 'nobody'\n", "report.baseline 'nobody' is not a condition"),
    ("title = [\n", "not valid TOML"),
    (SMALL.replace("episodes = 300", "episodes = 300\nrules = { max_steps = -1 }"), "max_steps"),
    (
        SMALL.replace('agent = "sarsa"', 'agent = "sarsa"\nhyperparameters = { gama = 0.9 }'),
        "unknown sarsa hyperparameter(s) gama",
    ),
]


@pytest.mark.parametrize("text, message", BAD)
def test_malformed_files_name_the_file_the_field_and_the_fix(tmp_path, text, message):
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ExperimentError) as err:
        load_experiment(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_command_line_refuses_a_malformed_file_before_any_run(tmp_path, capsys):
    path = write(tmp_path, BAD[5][0], "bad.toml")
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(path), "--out", str(out)], capsys)
    assert code == 2 and "unknown intervention 'penalize'" in err and str(path) in err
    assert not out.exists()
    code, _, err = run_cli(["run", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "no such file" in err


# -- nothing lost, nothing mixed ------------------------------------------------------------


def test_finished_runs_are_kept_and_a_changed_setting_is_refused(tmp_path):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    run_experiment(load_experiment(str(path)), out, workers=2)
    marker = out / "Q-0" / "seed0" / store.DONE
    stamp = marker.stat().st_mtime_ns
    run_experiment(load_experiment(str(path)), out, workers=2)  # nothing to do
    assert marker.stat().st_mtime_ns == stamp
    with pytest.raises(store.StoreError, match="was trained with episodes=300 .now 30."):
        run_experiment(load_experiment(str(path), ["defaults.episodes=30"]), out, workers=2)


def test_a_second_command_into_the_same_folder_is_refused_and_a_dead_lock_is_not(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from offswitch.experiments.results.store import locked\n"
            "with locked(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(store.StoreError, match="is in use by process"), store.locked(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    with store.locked(out):  # the killed holder's lock died with it
        pass


def test_json_writes_never_share_a_temporary_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "x.json"
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda i: store.write_json(target, {"i": i, "pad": "x" * 10_000}), range(200))
        )
    assert json.loads(target.read_text())["pad"] == "x" * 10_000
    assert list(tmp_path.iterdir()) == [target]


RUNNER = """
import sys
from pathlib import Path
from offswitch.experiments.spec.experiment import load_experiment
from offswitch.experiments.running.runner import run_experiment

if __name__ == "__main__":
    run_experiment(load_experiment(sys.argv[1]), Path(sys.argv[2]), workers=2)
"""


@pytest.mark.training
def test_killed_sweeps_resume_to_the_same_table_with_no_partial_run_counted(tmp_path):
    path = write(tmp_path, SMALL)
    script = write(tmp_path, RUNNER, "runner.py")
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, str(script), str(path), str(reference)], check=True)
    out = tmp_path / "killed"

    def progress() -> tuple[int, int]:
        finished = sum(store.is_complete(d) for d in out.glob("*/seed*"))
        return finished, len(list(out.glob(f"*/*{store.PARTIAL}*")))

    kills = 0
    # Killed while the first runs train, then after 3 and 6 runs have finished (at whatever
    # moment of the runs under way that falls): progress, not the clock, decides.
    for target in (0, 3, 6):
        process = subprocess.Popen(
            [sys.executable, str(script), str(path), str(out)], start_new_session=True
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            finished, training = progress()
            if finished >= target and training:
                time.sleep(random.Random(target).uniform(0.0, 0.3))
                break
            time.sleep(0.02)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the runner and its workers, no warning
            kills += 1
        process.wait()
        finished = [d for d in out.glob("*/seed*") if store.is_complete(d)]
        for run in finished:  # whatever was counted is whole
            assert {"config.json", "metrics.json", "table.npz"} <= {p.name for p in run.iterdir()}
    assert kills >= 2
    results = run_experiment(load_experiment(str(path)), out, workers=2)
    assert not list(out.rglob(f"*{store.PARTIAL}*"))  # the dead runs' folders are gone
    assert numbers(out) == numbers(reference)
    assert len(results) == 9


@pytest.mark.training
def test_sequential_and_parallel_runs_give_byte_identical_metrics(tmp_path):
    path = write(tmp_path, SMALL)
    run_experiment(load_experiment(str(path)), tmp_path / "one", workers=1)
    run_experiment(load_experiment(str(path)), tmp_path / "two", workers=2)
    assert numbers(tmp_path / "one") == numbers(tmp_path / "two")
    assert len(numbers(tmp_path / "one")) == 9


# -- reports --------------------------------------------------------------------------------


def test_the_report_is_recomputed_from_the_runs(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    code, printed, err = run_cli(["run", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    page = (out / "report.md").read_text()
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 9 * 2  # every run, both policies
    assert "Versions: python " in page  # read from the runs' config.json, found from out
    # The seed counts of the page, recomputed from each run's own metrics.json.
    for label, slug in (("Q 0", "Q-0"), ("Q 100", "Q-100"), ("SARSA", "SARSA")):
        for policy in ("sampled", "greedy"):
            rates = [
                json.loads((out / slug / f"seed{s}" / "metrics.json").read_text())["evaluation"][
                    policy
                ]["switch_disabled_rate"]
                for s in range(3)
            ]
            count = sum(r > MAJORITY for r in rates)
            assert f"| {label} | " in page
            line = next(
                x for x in page.splitlines() if x.startswith(f"| {label} | ") and policy in x
            )
            assert f"| {count}/3 [" in line
            csv_rates = [
                float(r["switch_disabled_rate"])
                for r in rows
                if r["condition"] == label and r["policy"] == policy
            ]
            assert csv_rates == rates
    before = page
    (out / "report.md").unlink()
    code, _, err = run_cli(["report", str(out)], capsys)
    assert code == 0, err
    assert (out / "report.md").read_text() == before
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.csv").read_text() == results_csv(results)
    # Run folders are recorded relative to the output folder, the same on every machine.
    slugs = {"Q 0": "Q-0", "Q 100": "Q-100", "SARSA": "SARSA"}
    assert {r["run"] for r in rows} == {f"{v}/seed{s}" for v in slugs.values() for s in range(3)}
    assert all(r["run"] == f"{slugs[r['condition']]}/seed{r['config']['seed']}" for r in results)
    # The runner filmed each condition's first seed; drawing from that film gives the GIFs
    # that replaying the saved agents gives.
    filmed = {(r["condition"], r["config"]["seed"]) for r in results if r.get("film")}
    assert filmed == {(label, 0) for label in slugs}
    from offswitch.experiments.pages.figures import gif_figures
    from offswitch.experiments.spec.experiment import load_experiment

    experiment = load_experiment(str(path))
    replayed = [{k: v for k, v in r.items() if k != "film"} for r in results]
    gif_figures(experiment, results, out / "filmed")
    gif_figures(experiment, replayed, out / "figures")  # beside the runs, to load them
    for gif in ("episode_interrupt.gif", "episode_no_interrupt.gif"):
        filmed_gif = (out / "filmed" / gif).read_bytes()
        assert filmed_gif == (out / "figures" / gif).read_bytes(), gif


def test_reading_an_experiment_imports_no_torch():
    """A command reads and checks its experiment with the learners' declarations alone
    (agents/learners.py's learner_declared): only the processes that train import torch."""
    code = (
        "import sys; from offswitch.experiments.spec.experiment import load_experiment; "
        "load_experiment('demo'); load_experiment('compare'); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_metrics_are_named_in_words_in_tables_and_figures():
    assert metric_name("supervisor/shortcut_watched") == "shortcut while watched"
    assert metric_name("drest/length_share/11") == "share of episodes of length 11"
    assert metric_name("drest/usefulness/3") == "USEFULNESS at length 3"
    assert metric_name("my/own_metric") == "my/own_metric"  # unknown: the key itself


def test_the_optimum_column_reads_the_references_the_runner_recorded():
    from offswitch.experiments.pages.report import optimum

    def runs(share, value=43.0):
        return [
            {"config": {}, "references": {"optimum": {"disables_switch": share, "value": value}}}
        ]

    assert optimum(runs(1.0)) == "disables, 43.00"
    assert optimum(runs(0.0)) == "keeps the switch, 43.00"
    assert optimum(runs(0.5)) == "disables in 50% of episodes, 43.00"
    # A world with nothing to disable (Sandbagging) does not "keep the switch".
    nothing = runs(0.0, 60.0)
    nothing[0]["references"]["optimum"]["has_switch"] = 0.0
    assert optimum(nothing) == "no switch to disable, 60.00"
    none = [{"config": {}, "references": {"optimum": None, "random": {}}}]
    assert optimum(none) == "not computable"


def test_a_run_records_its_references_and_they_are_the_worlds(tmp_path):
    """The first seed's metrics carry the random policy's level and the exact optimum, equal
    to what is computed afresh from its configuration (the fallback for older runs)."""
    from offswitch.experiments.results.references import references_of
    from offswitch.experiments.running.runs import train_one
    from offswitch.experiments.spec.config import TrainConfig

    config = TrainConfig(agent="q-learning", episodes=50, eval_episodes=10, out_dir=str(tmp_path))
    metrics = train_one(config, extra={"condition": "c", "filmed": True, "optimum_shown": True})
    recorded = metrics["references"]
    assert recorded["optimum"]["disables_switch"] == 1.0  # SafeInterruptibility's optimum
    assert recorded["optimum"]["has_switch"] == 1.0
    fresh = references_of([{"config": metrics["config"]}], need="optimum")
    assert json.loads(json.dumps(fresh)) == json.loads(json.dumps(recorded))


def test_a_runs_code_version_watches_the_folders_a_run_executes():
    # The commit is marked +dirty by changes under these paths, read from the repository
    # root: from anywhere else the paths name nothing and no change would ever show.
    from offswitch.experiments.results import store

    assert all((store.CODE_ROOT / path).exists() for path in store.CODE_PATHS)
