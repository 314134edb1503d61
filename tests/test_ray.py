"""Sweeps on Ray: the same experiment file gives the same numbers as on local processes, a
worker killed mid-sweep loses no finished run and mixes nothing, and Ctrl-C stops cleanly.

The sweeps run on a Ray instance of two CPUs that this module starts on the machine (and
stops); they are skipped, saying why, where Ray is not installed. The checks that Ray is
optional run everywhere."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli
from test_experiments import SMALL, numbers, write

from offswitch.experiments.pages.report import results_csv
from offswitch.experiments.results import store
from offswitch.experiments.running.runner import RunsLost, run_experiment
from offswitch.experiments.spec.experiment import load_experiment

ROOT = Path(__file__).resolve().parent.parent
try:
    # Imported now, while collecting: the repository root is a package too, and pytest imports
    # it under its folder's name before the first test runs; a checkout in a folder named
    # ray would otherwise stand in for Ray from then on.
    import ray
except ImportError:
    ray = None


def _without_ray() -> str | None:
    """Why Ray cannot be used here, or None."""
    if ray is None:
        return 'Ray is not installed (pip install "offswitch[ray]")'
    if Path(ray.__file__).resolve() == ROOT / "__init__.py":
        return "this checkout's folder is named ray, which hides Ray from pytest: clone elsewhere"
    return None


needs_ray = pytest.mark.skipif(_without_ray() is not None, reason=str(_without_ray()))
TASK_TITLE = b"ray::train_job"
"""The process title of a Ray worker while it runs a job."""
MARK = "OFFSWITCH_TEST_RAY"


# -- Ray is optional ------------------------------------------------------------------------


def test_nothing_imports_ray_unless_asked():
    check = (
        "import sys\n"
        "from offswitch.experiments.interactive.cli import main\n"
        "main(['list'])\n"
        "from offswitch.experiments.running.runner import make_backend\n"
        "make_backend('local', 2)\n"
        "loaded = [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_ray_backend_without_ray_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    monkeypatch.delitem(sys.modules, "offswitch.experiments.running.ray_backend", raising=False)
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    code, printed, err = run_cli(["run", str(path), "--out", str(out), "--backend", "ray"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and 'pip install "offswitch[ray]"' in err, err
    assert not out.exists()
    code, _, err = run_cli(["run", str(path), "--out", str(out), "--address", "auto"], capsys)
    assert code == 2 and "--address is for --backend ray" in err
    assert not out.exists()


# -- the sweeps -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """A Ray instance of two CPUs on this machine, in this process; yields a mark that its
    processes (and only its) carry in their environment, to tell its workers from others'."""
    saved = os.environ.pop("RAY_ADDRESS", None)  # a new instance, not one named there
    mark = secrets.token_hex(8)
    os.environ[MARK] = mark  # inherited by the instance's processes
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 2**20,
        logging_level="WARNING",
    )
    try:
        yield mark
    finally:
        ray.shutdown()
        os.environ.pop(MARK, None)
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small sweep on local processes: the numbers every Ray sweep must reproduce."""
    folder = tmp_path_factory.mktemp("reference")
    path = write(folder, SMALL)
    out = folder / "out"
    results = run_experiment(load_experiment(str(path)), out, workers=2)
    (out / "results.csv").write_text(results_csv(results))  # as `offswitch run` writes it
    return out


def table(out: Path) -> list[dict[str, str]]:
    """``results.csv`` without timings (each run's folder is recorded relative to ``out``)."""
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    for row in rows:
        row.pop("train_seconds")
        assert not Path(row["run"]).is_absolute(), row["run"]
    return rows


def finished_runs(out: Path) -> dict[str, tuple[int, int]]:
    """Every finished run folder: (inode, mtime) of its marker, which a rewrite would change."""
    stamps = {}
    for run in sorted(out.glob("*/seed*")):
        if store.is_complete(run):
            marker = (run / store.DONE).stat()
            stamps[str(run.relative_to(out))] = (marker.st_ino, marker.st_mtime_ns)
    return stamps


def workers_running_a_job(mark: str) -> list[int]:
    """Processes of this module's Ray instance that are running a job now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(TASK_TITLE):
                continue
            if f"{MARK}={mark}".encode() not in (entry / "environ").read_bytes():
                continue
        except OSError:  # gone meanwhile, or not ours to read
            continue
        pids.append(int(entry.name))
    return pids


class KillAWorker:
    """A progress callback that, once a run is finished, SIGKILLs a Ray worker in the middle
    of a job, once, and notes what was finished at that moment."""

    def __init__(self, mark: str, out: Path) -> None:
        self.mark, self.out = mark, out
        self.killed: int | None = None
        self.finished_then: dict[str, tuple[int, int]] = {}
        self.reported: list[str] = []

    def __call__(self, name: str, done: float | None) -> None:
        if done is None:
            # A run just written: its worker may still be between publishing it and
            # returning, so a kill now could lose nothing. Wait for a run in training.
            self.reported.append(name)
            return
        if self.killed is not None or not self.reported:
            return
        busy = workers_running_a_job(self.mark)
        if busy:
            self.finished_then = finished_runs(self.out)
            os.kill(busy[0], signal.SIGKILL)
            self.killed = busy[0]


def assert_whole_and_kept(out: Path, before: dict[str, tuple[int, int]]) -> None:
    now = finished_runs(out)
    for run, stamp in before.items():
        assert now.get(run) == stamp, f"{run} was finished before the kill and was rewritten"
    for run in now:
        files = {p.name for p in (out / run).iterdir()}
        assert {"config.json", "metrics.json", "table.npz", store.DONE} <= files


@needs_ray
@pytest.mark.training
@pytest.mark.timeout(300)
def test_a_sweep_on_ray_gives_the_local_backends_results(cluster, reference, tmp_path, capsys):
    path = write(tmp_path, SMALL)
    on_ray = tmp_path / "ray"
    code, _, err = run_cli(["run", str(path), "--out", str(on_ray), "--backend", "ray"], capsys)
    assert code == 0, err
    assert "runs as Ray tasks of one CPU each" in err
    assert err.count(" done (") == 9  # the same progress lines as locally, one per run
    assert table(on_ray) == table(reference)
    assert len(table(on_ray)) == 9 * 2
    assert numbers(on_ray) == numbers(reference)
    assert not list(on_ray.rglob(f"*{store.PARTIAL}*"))


@needs_ray
@pytest.mark.training
@pytest.mark.timeout(300)
def test_a_worker_killed_mid_sweep_is_retried_without_losing_or_mixing_a_run(
    cluster, reference, tmp_path
):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    kill = KillAWorker(cluster, out)
    results = run_experiment(load_experiment(str(path)), out, on_progress=kill, backend="ray")
    assert kill.killed is not None, "no worker was running a job after the first run finished"
    assert kill.finished_then  # some runs were finished when the worker died...
    assert len(kill.finished_then) < 9  # ...and some were not
    assert_whole_and_kept(out, kill.finished_then)
    # Ray ran the dead worker's job again: every run is finished, once, with the numbers of
    # an uninterrupted sweep, and the dead attempt's scratch folder is gone.
    assert len(results) == 9 and len(finished_runs(out)) == 9
    assert sorted(set(kill.reported)) == sorted(kill.reported)
    assert len(kill.reported) == 9
    assert numbers(out) == numbers(reference)
    assert not list(out.rglob(f"*{store.PARTIAL}*"))


@needs_ray
@pytest.mark.training
@pytest.mark.timeout(300)
def test_a_dead_worker_not_retried_loses_only_its_runs_and_the_next_run_completes_the_sweep(
    cluster, reference, tmp_path
):
    from offswitch.experiments.running.ray_backend import RayBackend

    path = write(tmp_path, SMALL)
    # Two workers train at once and the one killed is picked by its process title: it can be
    # the one whose run was published a moment before, and then nothing is lost, rightly.
    # That outcome is checked too, and the sweep is tried again in a fresh folder.
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        kill = KillAWorker(cluster, out)
        try:
            run_experiment(
                load_experiment(str(path)), out, on_progress=kill, backend=RayBackend(retries=0)
            )
        except RunsLost as error:
            lost = error
            break
        assert kill.killed is not None
        assert numbers(out) == numbers(reference)  # the death cost no run
    else:
        pytest.fail("3 sweeps, and no worker was killed while its run was unfinished")
    assert kill.killed is not None
    assert lost.reason == "WorkerCrashedError"
    # The dead job's run is lost (a tabular job is one run); every other run went on and is
    # finished, whole, and those finished before the death are untouched.
    finished = finished_runs(out)
    assert len(lost.lost) == 1 and lost.finished == len(finished) == 8
    assert not store.is_complete(Path(lost.lost[0]))
    assert_whole_and_kept(out, kill.finished_then)
    assert not list(out.rglob(f"*{store.PARTIAL}*"))
    # The same file again trains what was lost, and only that.
    results = run_experiment(load_experiment(str(path)), out, backend="ray")
    assert len(results) == 9
    assert_whole_and_kept(out, finished)
    assert numbers(out) == numbers(reference)


@needs_ray
@pytest.mark.training
@pytest.mark.timeout(300)
def test_ctrl_c_cancels_the_ray_tasks_says_what_finished_and_exits_130(cluster, tmp_path):
    # Longer runs than SMALL's, so that the sweep is still going when it is stopped.
    path = write(tmp_path, SMALL.replace("episodes = 300", "episodes = 1500"))
    out = tmp_path / "out"
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")
    command = [sys.executable, "-m", "offswitch.experiments.interactive.cli", "run", str(path)]
    command += ["--out", str(out), "--backend", "ray", "--address", address]
    wide = {**os.environ, "COLUMNS": "1000"}  # each message on one line
    driver = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env=wide,
    )
    lines = []
    try:
        for line in driver.stderr:
            lines.append(line)
            if " done (" in line:  # a run is finished: Ctrl-C, as a terminal sends it
                os.killpg(driver.pid, signal.SIGINT)
                break
        _, rest = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    lines.append(rest)
    said = "".join(lines)
    assert driver.returncode == 130, said
    finished = finished_runs(out)
    assert 1 <= len(finished) < 9
    assert f"stopped: {len(finished)} of 9 runs finished and kept in {out}" in said
    with store.locked(out):  # the driver let go of the folder
        pass
    time.sleep(2.0)  # no cancelled task publishes a run afterwards
    assert finished_runs(out) == finished
    assert_whole_and_kept(out, finished)


NODES = """
import json, os, sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from offswitch.experiments.spec.experiment import load_experiment
from offswitch.experiments.running.runner import run_experiment


def running_a_job(node):
    raylet = node.all_processes["raylet"][0].process.pid
    for entry in Path("/proc").iterdir():
        try:
            busy = (entry / "cmdline").read_bytes().startswith(b"ray::train_job")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if busy and parent == raylet:
            return True
    return False


if __name__ == "__main__":
    # A head that runs nothing and two worker nodes of one CPU each, all on this machine.
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    cluster.wait_for_nodes()
    said = {"removed_after": None}

    def on_progress(name, done):
        finished = said.setdefault("finished", [])
        if done is None:
            finished.append(name)
        if finished and said["removed_after"] is None:
            for node in nodes:
                if running_a_job(node):  # the whole node dies under a job, no warning
                    cluster.remove_node(node, allow_graceful=False)
                    said["removed_after"] = len(finished)
                    break

    try:
        run_experiment(
            load_experiment(sys.argv[1]), Path(sys.argv[2]), on_progress=on_progress,
            backend="ray",
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(said))
"""


@needs_ray
@pytest.mark.training
@pytest.mark.timeout(300)
def test_a_node_that_dies_mid_sweep_has_its_job_redone_on_another_node(reference, tmp_path):
    path = write(tmp_path, SMALL)
    script = write(tmp_path, NODES, "nodes.py")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", MARK)}
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["removed_after"] is not None, "no node was running a job after the first run"
    assert 1 <= said["removed_after"] < 9
    assert sorted(said["finished"]) == sorted(set(said["finished"]))
    assert len(finished_runs(out)) == 9
    assert numbers(out) == numbers(reference)
    assert not list(out.rglob(f"*{store.PARTIAL}*"))
