"""Saved agents, loaded back safely from their run folders (``offswitch replay`` and the pages
use them).

A run folder (:mod:`offswitch.experiments.running.runner`) holds the run's ``config.json`` and its
trained agent. :func:`load_agent` rebuilds the agent from what offswitch itself knows about
its learner, and runs none of the folder's code:

* Stable-Baselines3 learners (``ppo``, ``a2c``, ``dqn``) save ``model.zip``, whose ``data``
  entry holds cloudpickled objects: unpickling it would run whatever code its author put
  there. It is never read. Only ``policy.pth`` is, with ``torch.load(weights_only=True)``
  (tensors only; anything else is refused by torch's own unpickler), into a policy built
  here from the learner's class, the hyperparameters ``config.json`` records (its
  ``policy_kwargs.net_arch``) and the world's observation and action spaces; every tensor's
  name and shape must be the policy's.
* Tabular learners save ``table.npz``: read with ``allow_pickle=False``, exactly the arrays
  ``observations`` (uint8) and ``values`` (floats) of the world's sizes.
* ``batched-ppo`` (where :mod:`offswitch.agents.batched_ppo` exists) saves ``model.pt`` and
  ``model.json``, loaded by that module's own ``load_member`` (``weights_only=True``).

Anything else is refused with a one-line :class:`ReplayError` saying why (exit status 2 at
the command line). The replayed evaluation uses the run's own evaluation seeds and the
learner's own evaluation stream, so it reproduces the numbers in ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import json
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offswitch.envs.engine import TabularWorld
from offswitch.experiments.results import store

MAX_FILE_BYTES = 256 * 2**20
"""The largest agent file (or ``policy.pth`` inside ``model.zip``, uncompressed) read."""
SB3_AGENTS = ("ppo", "a2c", "dqn")
TABULAR_AGENTS = {"q-learning": 0, "sarsa": 0, "safe-sarsa": 0, "reinforce": 1}
"""Tabular learners and the columns their table has beyond one per action (REINFORCE keeps
a baseline)."""
BATCHED = ("batched-ppo", "batched-ppo-sb3")
POLICY_KWARGS = {"net_arch", "ortho_init", "share_features_extractor", "normalize_images"}
"""The ``policy_kwargs`` a rebuilt SB3 policy accepts: plain values only."""
OPTIMIZER_KWARGS = {"optimizer_class", "optimizer_kwargs"}
"""``policy_kwargs`` that configure training only (A2C records its RMSprop there): dropped,
never read, as a policy that only acts has no optimizer to configure."""
AGENT_FILES = {
    **dict.fromkeys(SB3_AGENTS, ("model.zip",)),
    **dict.fromkeys(TABULAR_AGENTS, ("table.npz",)),
    **dict.fromkeys(BATCHED, ("model.pt", "model.json")),
}

Predict = Callable[[np.ndarray, bool], np.ndarray]


class ReplayError(ValueError):
    """A run folder or agent that replay refuses; the message says why, in one line."""


@dataclass
class Run:
    """A run folder's configuration, world and trained agent."""

    path: Path
    config: Any
    """The run's :class:`~offswitch.experiments.spec.config.TrainConfig`."""
    record: dict[str, Any]
    """``config.json`` as written by the runner."""
    world: TabularWorld
    predict: Predict
    """``predict(observations, deterministic) -> actions``, as the learner's own."""

    @property
    def label(self) -> str:
        return str(self.record.get("condition") or self.path.name)


# -- the run's configuration ---------------------------------------------------------------


def read_config(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's :class:`~offswitch.experiments.spec.config.TrainConfig` and ``config.json``."""
    from offswitch.experiments.spec.config import ConfigError, TrainConfig

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReplayError(f"{run_dir}: no such folder; give a run folder (it has config.json)")
    path = run_dir / "config.json"
    if not path.is_file():
        raise ReplayError(
            f"{run_dir}: no config.json, so not a run folder; give one such as "
            "runs/demo/task-reward-only/seed0"
        )
    record = _json(path)
    config = record.get("config")
    if isinstance(config, dict):  # written before the one schema: today's names
        config = {store.RECORDED_NAMES.get(k, k): v for k, v in config.items()}
        record["config"] = config
    if not isinstance(config, dict):
        raise ReplayError(f"{path}: no 'config' table; was it written by offswitch?")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ReplayError(f"{path}: unknown configuration field(s) {', '.join(unknown)}")
    agent = config.get("agent")
    if agent not in AGENT_FILES:
        known = ", ".join(AGENT_FILES)
        raise ReplayError(f"{path}: unsupported agent {agent!r}: replay knows {known}")
    try:
        train_config = TrainConfig(**config)
        train_config.validate()
    except (ConfigError, ValueError, TypeError) as err:
        raise ReplayError(f"{path}: {_one_line(err)}") from None
    return train_config, record


def _json(path: Path) -> dict[str, Any]:
    _check_size(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReplayError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ReplayError(f"{path}: not a JSON object")
    return data


def _check_size(path: Path, size: int | None = None) -> None:
    size = path.stat().st_size if size is None else size
    if size > MAX_FILE_BYTES:
        raise ReplayError(
            f"{path}: {size:,} bytes, over the {MAX_FILE_BYTES:,} an agent of these worlds "
            "needs; refusing to read it"
        )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _hyperparameters(record: dict[str, Any], path: Path) -> dict[str, Any]:
    learner = record.get("learner", {})
    hyperparameters = learner.get("hyperparameters") if isinstance(learner, dict) else None
    if not isinstance(hyperparameters, dict):
        raise ReplayError(f"{path / 'config.json'}: no learner hyperparameters recorded")
    return hyperparameters


# -- loading agents ------------------------------------------------------------------------


def load_run(run_dir: Path) -> Run:
    """A run folder's configuration, world and agent, loaded without running its code."""
    run_dir = Path(run_dir)
    config, record = read_config(run_dir)
    world = config.world()
    agent = config.agent
    expected = AGENT_FILES[agent]
    missing = [name for name in expected if not (run_dir / name).is_file()]
    if missing:
        others = sorted(
            p.name for p in run_dir.iterdir() if p.is_file() and p.suffix in _AGENT_SUFFIXES
        )
        seen = f" (it has {', '.join(others)}, which replay never loads)" if others else ""
        raise ReplayError(f"{run_dir}: no {missing[0]}, the saved {agent} agent{seen}")
    if agent in SB3_AGENTS:
        predict = _sb3_predict(run_dir / "model.zip", config, record, world)
    elif agent in TABULAR_AGENTS:
        predict = _tabular_predict(run_dir / "table.npz", config, record, world)
    else:
        predict = _batched_predict(run_dir, config, world)
    return Run(run_dir, config, record, world, predict)


_AGENT_SUFFIXES = {".zip", ".npz", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".bin", ".npy"}


def _spaces(world: TabularWorld, observation: str) -> tuple[Any, Any]:
    from gymnasium import spaces

    from offswitch.envs.gridworld import observation_table

    shape = observation_table(world, observation).shape[1:]
    return spaces.Box(0, 1, shape=shape, dtype=np.uint8), spaces.Discrete(world.n_actions)


def _policy_kwargs(hyperparameters: dict[str, Any], where: Path) -> dict[str, Any]:
    kwargs = hyperparameters.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ReplayError(f"{where}: policy_kwargs is not a table")
    kwargs = {k: v for k, v in kwargs.items() if k not in OPTIMIZER_KWARGS}
    unknown = sorted(set(kwargs) - POLICY_KWARGS)
    if unknown:
        raise ReplayError(
            f"{where}: policy_kwargs {', '.join(unknown)}: replay rebuilds policies with "
            f"{', '.join(sorted(POLICY_KWARGS))} only"
        )
    arch = kwargs.get("net_arch")
    if arch is not None:
        layers = arch.values() if isinstance(arch, dict) else [arch]
        ok = isinstance(arch, (list, dict)) and all(
            isinstance(layer, list)
            and all(
                isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 65536 for n in layer
            )
            for layer in layers
        )
        if isinstance(arch, dict) and not set(arch) <= {"pi", "vf", "qf"}:
            ok = False
        if not ok:
            raise ReplayError(f"{where}: net_arch {arch!r} is not a list of layer widths")
    for key in POLICY_KWARGS - {"net_arch"}:
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise ReplayError(f"{where}: policy_kwargs {key}={kwargs[key]!r} is not True/False")
    return dict(kwargs)


def _tensors(path: Path) -> dict[str, Any]:
    """``policy.pth`` of an SB3 ``model.zip``, as tensors; nothing else of the archive is
    read (its ``data`` entry holds pickles)."""
    import torch

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ReplayError(f"{path}: not a Stable-Baselines3 model archive ({err})") from None
    with archive:
        try:
            info = archive.getinfo("policy.pth")
        except KeyError:
            raise ReplayError(
                f"{path}: no policy.pth in the archive, so no weights to load (replay reads "
                "nothing else of a model.zip: its data entry holds pickles)"
            ) from None
        _check_size(path, info.file_size)
        payload = archive.read(info)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # the weights-only unpickler names what it refused
        raise ReplayError(
            f"{path}: policy.pth holds more than plain tensors, refusing to load it "
            f"({_refusal(err)})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and type(v) is torch.Tensor for k, v in state.items()
    ):
        raise ReplayError(f"{path}: policy.pth is not a dict of parameter name -> tensor")
    return state


def _refusal(err: BaseException) -> str:
    """What torch's weights-only unpickler refused, in a few words."""
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it would call {found.group(1)}, which plain weights never do"
    if "Unsupported operand" in text:
        return "it is a pickle, not torch's format of plain tensors"
    return _one_line(err)[:200]


def _sb3_predict(path: Path, config: Any, record: dict[str, Any], world: TabularWorld) -> Predict:
    import torch

    from offswitch.agents.learners import learner_class
    from offswitch.agents.sb3 import eval_generator, policy_actions

    hyperparameters = _hyperparameters(record, path.parent)
    kwargs = _policy_kwargs(hyperparameters, path.parent / "config.json")
    state = _tensors(path)
    algorithm = learner_class(config.agent).algorithm
    observation_space, action_space = _spaces(world, config.observation)
    policy_class = algorithm.policy_aliases["MlpPolicy"]
    torch.set_num_threads(1)  # as the learner trained and evaluated: the same arithmetic
    extra = {"use_sde": False} if config.agent != "dqn" else {}
    policy = policy_class(observation_space, action_space, lambda _: 0.0, **extra, **kwargs)
    expected = policy.state_dict()
    if set(state) != set(expected):
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        raise ReplayError(
            f"{path}: policy.pth does not fit a {config.agent} policy with "
            f"net_arch={kwargs.get('net_arch')}: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}"
        )
    for name, tensor in state.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise ReplayError(
                f"{path}: policy.pth's {name} is {tuple(tensor.shape)} {tensor.dtype}, but this "
                f"world's {config.agent} policy needs {tuple(want.shape)} {want.dtype}"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ReplayError(f"{path}: policy.pth's {name} has NaN or infinite weights")
    policy.load_state_dict(state, strict=True)
    generator = eval_generator(config.seed)
    epsilon = (
        float(hyperparameters.get("exploration_final_eps", 0.0)) if config.agent == "dqn" else 0.0
    )
    if not 0.0 <= epsilon <= 1.0:
        raise ReplayError(f"{path.parent / 'config.json'}: exploration_final_eps={epsilon}")

    def predict(obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return policy_actions(policy, obs, deterministic, generator, epsilon)

    return predict


def read_table(path: Path, width: int, obs_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``observations`` and ``values`` of a tabular agent's ``table.npz``, checked: plain
    arrays only (``allow_pickle=False``), of the world's observation size and ``width``
    columns, finite values, each observation once."""
    _check_size(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if names != {"observations", "values"}:
                raise ReplayError(
                    f"{path}: holds {sorted(names)}; a table holds exactly observations and values"
                )
            observations, values = data["observations"], data["values"]
    except ReplayError:
        raise
    except ValueError as err:  # object arrays: pickles
        raise ReplayError(f"{path}: refusing to load it: {_one_line(err)}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ReplayError(f"{path}: not a table of plain arrays ({_one_line(err)})") from None
    if observations.dtype != np.uint8 or observations.ndim != 2:
        raise ReplayError(
            f"{path}: observations are {observations.dtype} of shape {observations.shape}; "
            "a table's are uint8 rows"
        )
    if len(observations) and observations.shape[1] != obs_size:
        raise ReplayError(
            f"{path}: observations of {observations.shape[1]} numbers, but this world's have "
            f"{obs_size}"
        )
    if values.dtype.kind != "f" or values.shape != (len(observations), width):
        raise ReplayError(
            f"{path}: values of shape {values.shape} ({values.dtype}); this world's agent "
            f"needs ({len(observations)}, {width}) floats"
        )
    if not np.isfinite(values).all():
        raise ReplayError(f"{path}: values has NaN or infinite entries")
    if len({row.tobytes() for row in observations}) != len(observations):
        raise ReplayError(f"{path}: an observation appears twice")
    return observations, values.astype(np.float64)


def _tabular_predict(
    path: Path, config: Any, record: dict[str, Any], world: TabularWorld
) -> Predict:
    from offswitch.agents.interventions import make_intervention
    from offswitch.agents.learners import learner_class
    from offswitch.agents.tabular import ObservationTable
    from offswitch.envs.gridworld import observation_table

    obs_size = int(np.prod(observation_table(world, config.observation).shape[1:]))
    width = world.n_actions + TABULAR_AGENTS[config.agent]
    observations, values = read_table(path, width, obs_size)
    hyperparameters = _hyperparameters(record, path.parent)
    cls = learner_class(config.agent)
    try:
        cls.check_hyperparameters(hyperparameters)
        learner = cls(world, make_intervention("none"), config.seed, hyperparameters)
    except (ValueError, TypeError) as err:
        raise ReplayError(f"{path.parent / 'config.json'}: {_one_line(err)}") from None
    table = ObservationTable(width, capacity=max(len(values), 1))
    for row, obs in enumerate(observations):
        table.rows[obs.tobytes()] = row
    table.values[: len(values)] = values
    # A fresh learner has its evaluation stream as after training (training never draws on
    # it): with the trained table in place it acts as the run's learner did.
    learner._table = table
    return learner.predict


def _batched_predict(run_dir: Path, config: Any, world: TabularWorld) -> Predict:
    module = importlib.import_module("offswitch.agents.batched_ppo")
    _check_size(run_dir / "model.pt")
    try:
        member = module.load_member(run_dir)
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ReplayError(f"{run_dir}: refusing the batched-ppo agent: {_one_line(err)}") from None
    shape = _spaces(world, config.observation)[0].shape
    if tuple(getattr(member, "obs_shape", shape)) != tuple(shape):
        raise ReplayError(
            f"{run_dir}: the agent sees observations of shape {member.obs_shape}, this world "
            f"gives {shape}"
        )
    return member.predict


# -- what replay does ----------------------------------------------------------------------


def replay_evaluation(run: Run, episodes: int | None = None) -> dict[str, dict[str, float]]:
    """The evaluation of ``run``'s agent on its world, as the runner made it: the run's
    evaluation seeds, ``episodes`` episodes per policy (default: the run's number)."""
    from offswitch.agents.evaluation import evaluate

    n = episodes or run.config.eval_episodes
    return evaluate(run.predict, run.world, n, run.config.eval_seed, run.config.observation)


def recorded_evaluation(run: Run) -> dict[str, Any] | None:
    """The evaluation ``metrics.json`` records, if the folder has it."""
    path = run.path / "metrics.json"
    if not path.is_file():
        return None
    evaluation = _json(path).get("evaluation")
    return evaluation if isinstance(evaluation, dict) else None
