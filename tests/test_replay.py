"""``offswitch replay``: a run's agent evaluated again from its folder, exactly, and a model
made by someone else refused before any of its code can run."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from offswitch.experiments.results.saved import ReplayError, load_run, replay_evaluation
from offswitch.experiments.running.runner import train_one
from offswitch.experiments.spec.config import TrainConfig

pytestmark = pytest.mark.training


class Payload:
    """Unpickled, it creates the file ``path``: what a hostile model would do, harmlessly."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Short runs of PPO, A2C (which records its optimizer in policy_kwargs), DQN and
    Q-learning, written by the runner."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name, config in {
        "ppo": TrainConfig(agent="ppo", steps=2048, eval_episodes=20),
        "a2c": TrainConfig(agent="a2c", steps=1024, eval_episodes=20),
        "dqn": TrainConfig(agent="dqn", steps=2500, eval_episodes=20),
        "q-learning": TrainConfig(agent="q-learning", episodes=150, eval_episodes=20),
    }.items():
        run_dir = root / name / "seed0"
        train_one(config, run_dir=run_dir, extra={"condition": name})
        made[name] = run_dir
    return made


def copy_run(run_dir: Path, to: Path) -> Path:
    target = to / "run" / "seed0"
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("tensorboard"))
    return target


@pytest.mark.parametrize("agent", ["ppo", "a2c", "dqn", "q-learning"])
def test_replay_reproduces_the_recorded_evaluation_exactly(runs, agent, capsys):
    run = load_run(runs[agent])
    recorded = json.loads((runs[agent] / "metrics.json").read_text())["evaluation"]
    assert replay_evaluation(run) == recorded
    code, out, err = run_cli(["replay", str(runs[agent])], capsys)
    assert code == 0, err
    assert "the same numbers as the run's own evaluation" in out
    assert "| sampled |" in out and "| greedy |" in out


def test_a_model_whose_pickles_would_run_code_is_refused_and_creates_nothing(
    runs, tmp_path, capsys
):
    run_dir = copy_run(runs["ppo"], tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    # The payload is live: unpickling it elsewhere creates its file.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control))).close()
    assert control.exists()
    # An SB3 archive: the data entry with the payload as SB3 stores objects (base64 of a
    # cloudpickle), and a policy.pth that is a pickle of the payload, not tensors.
    data = {
        "policy_class": {
            ":type:": "<class 'type'>",
            ":serialized:": base64.b64encode(payload).decode(),
        }
    }
    with zipfile.ZipFile(run_dir / "model.zip", "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", payload)
        archive.writestr("_stable_baselines3_version", "2.3.0")
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert (
        "policy.pth holds more than plain tensors, refusing to load it (it is a pickle" in lines[0]
    )
    assert not marker.exists()
    # The same with torch's own format around the payload.
    import torch

    buffer = io.BytesIO()
    torch.save({"weight": Payload(marker)}, buffer)
    with zipfile.ZipFile(run_dir / "model.zip", "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", buffer.getvalue())
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 2 and "refusing to load it (it would call io.open" in err
    assert not marker.exists()


def test_the_pickled_data_entry_is_never_read(runs, tmp_path, capsys):
    run_dir = copy_run(runs["ppo"], tmp_path)
    marker = tmp_path / "pwned"
    payload = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    source = zipfile.ZipFile(runs["ppo"] / "model.zip")
    with zipfile.ZipFile(run_dir / "model.zip", "w") as archive:
        for name in source.namelist():
            if name != "data":
                archive.writestr(name, source.read(name))
        archive.writestr("data", json.dumps({"policy_class": {":serialized:": payload}}))
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 0, err
    assert "the same numbers as the run's own evaluation" in out
    assert not marker.exists()


def write_table(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def test_tables_that_are_not_plain_arrays_of_the_worlds_sizes_are_refused(runs, tmp_path):
    run_dir = copy_run(runs["q-learning"], tmp_path)
    with np.load(run_dir / "table.npz") as data:
        observations, values = data["observations"], data["values"]
    marker = tmp_path / "pwned"
    cases = {
        "refusing to load it": dict(
            observations=observations, values=np.array([Payload(marker)], dtype=object)
        ),
        "a table holds exactly observations and values": dict(
            observations=observations, values=values, extra=values
        ),
        "this world's agent needs": dict(observations=observations, values=values[:, :2]),
        "but this world's have": dict(observations=observations[:, :5], values=values),
        "NaN or infinite": dict(observations=observations, values=values * np.nan),
    }
    for message, arrays in cases.items():
        write_table(run_dir / "table.npz", **arrays)
        with pytest.raises(ReplayError, match=message):
            load_run(run_dir)
    assert not marker.exists()


def test_a_policy_of_other_shapes_is_refused(runs, tmp_path, capsys):
    run_dir = copy_run(runs["ppo"], tmp_path)
    record = json.loads((run_dir / "config.json").read_text())
    record["learner"]["hyperparameters"]["policy_kwargs"] = {"net_arch": [32]}
    (run_dir / "config.json").write_text(json.dumps(record))
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 2 and "policy.pth does not fit a ppo policy with net_arch=[32]" in err
    record["learner"]["hyperparameters"]["policy_kwargs"] = {"activation_fn": "os.system"}
    (run_dir / "config.json").write_text(json.dumps(record))
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 2 and "policy_kwargs activation_fn: replay rebuilds policies with" in err


def test_unknown_agents_and_files_are_refused_with_the_reason(runs, tmp_path, capsys):
    run_dir = copy_run(runs["ppo"], tmp_path)
    (run_dir / "model.zip").rename(run_dir / "model.pkl")
    code, out, err = run_cli(["replay", str(run_dir)], capsys)
    assert code == 2
    assert "no model.zip, the saved ppo agent (it has model.pkl, which replay never loads)" in err
    record = json.loads((run_dir / "config.json").read_text())
    for agent, message in [("my-agent", "unsupported agent 'my-agent'")] + (
        [("batched-ppo", "unsupported agent 'batched-ppo'")]
        if importlib.util.find_spec("offswitch.agents.batched_ppo") is None
        else []
    ):
        record["config"]["agent"] = agent
        (run_dir / "config.json").write_text(json.dumps(record))
        code, out, err = run_cli(["replay", str(run_dir)], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["replay", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no such folder" in err


def test_replay_films_the_agent_as_a_gif(runs, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "agent.gif"
    code, out, err = run_cli(["replay", str(runs["q-learning"]), "--gif", str(path)], capsys)
    assert code == 0, err
    assert f"wrote {path}" in out
    gif = Image.open(path)
    assert gif.n_frames > 1 and path.stat().st_size < 400_000
