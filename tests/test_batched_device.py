"""The seed-batched PPO's ``device`` hyperparameter (``agents/batched_ppo.py``): the CPU, named
or by default, gives the same run bit for bit; a bad name, or CUDA where none is visible, is
refused in one line; and the device benchmark runs without Stable-Baselines3. The tests that
need a CUDA device skip without one. This file imports nothing from Stable-Baselines3, so it
also runs on a GPU machine that lacks it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from offswitch.agents.batched_ppo import BatchedPPO, load_member
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget, TrainingWorlds
from offswitch.experiments.spec.config import TrainConfig

WORLD = TrainConfig().world()
OBS = TrainingWorlds(WORLD, 1, make_intervention("none")).obs_table
SMALL = dict(n_steps=16, batch_size=64, n_epochs=2)
"""16 steps x 64 worlds (the default n_envs) = 1,024 samples per rollout, 16 minibatches of 64
per epoch."""
BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "batched_device.py"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


def trained(seeds: list[int], rollouts: int = 2, **overrides: object) -> BatchedPPO:
    learner = BatchedPPO(WORLD, [make_intervention("penalty:10") for _ in seeds], seeds, overrides)
    learner.train(Budget(steps=rollouts * int(learner.hyperparameters["n_steps"]) * learner.n_envs))
    return learner


def same_stats(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> bool:
    return first.keys() == second.keys() and all(
        np.array_equal(first[name], second[name], equal_nan=True) for name in first
    )


@pytest.mark.parametrize("overrides", [SMALL, {**SMALL, "kl_coef": 0.5, "batch_size": 8}])
def test_device_cpu_named_is_the_default_bit_for_bit(overrides):
    """The weights, Adam's moments and the last update's statistics, after two rollouts, on
    the per-observation path and on the per-sample one with the KL penalty."""
    default = trained([0, 4], **overrides)
    named = trained([0, 4], device="cpu", **overrides)
    assert named.device == torch.device("cpu") and named.inputs.device == torch.device("cpu")
    for k in range(2):
        for name, tensor in default.net.state_dict(k).items():
            assert torch.equal(tensor, named.net.state_dict(k)[name]), name
    adam = default.optimizer.state[default.trainable.flat]
    for name, tensor in named.optimizer.state[named.trainable.flat].items():
        assert torch.equal(tensor, adam[name]), name
    assert same_stats(default.last_stats, named.last_stats)


@pytest.mark.parametrize("device", ["tpu", "CPU", "cuda:", "cuda:x", "gpu", 0, None])
def test_an_unknown_device_is_refused_naming_the_valid_ones(device):
    message = f"batched-ppo hyperparameter device={device!r} is not known: give one of 'cpu', "
    message += "'cuda', 'cuda:N'"
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        BatchedPPO.check_hyperparameters({"device": device})
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        BatchedPPO(WORLD, [make_intervention("none")], [0], {"device": device})


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_cuda_device_is_refused_with_a_reason(device):
    BatchedPPO.check_hyperparameters({"device": device})  # well spelled: the machine decides
    with pytest.raises(ValueError) as refused:
        BatchedPPO(WORLD, [make_intervention("none")], [0], {"device": device})
    message = str(refused.value)
    assert f"device={device!r}: no CUDA device is visible" in message
    assert message.endswith("use device='cpu'") and "\n" not in message


def test_a_phase_keeps_the_device():
    learner = trained([0], rollouts=1, **SMALL)
    with pytest.raises(ValueError, match="phase 2 sets device='cuda', the first phase 'cpu'"):
        learner.start_phase([make_intervention("none")], {**SMALL, "device": "cuda"})


def test_the_benchmark_imports_without_stable_baselines3_and_prints_its_table():
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(BENCHMARK)!r}, run_name='not_main')\n"
        "assert 'stable_baselines3' not in sys.modules, 'importing the benchmark pulled SB3'\n"
        f"sys.argv = [{str(BENCHMARK)!r}, '--steps', '1', '--seeds', '1,2', '--devices', 'cpu']\n"
        f"runpy.run_path({str(BENCHMARK)!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("cpu ")]
    assert [row[1] for row in rows] == ["1", "2"]
    assert f"torch {torch.__version__}" in done.stdout
    assert done.stdout.rstrip().endswith("stable_baselines3 imported: no")


@needs_cuda
def test_on_cuda_the_same_seeds_start_alike_train_and_save_cpu_tensors(tmp_path):
    """The initial weights are drawn on the CPU, so they are the CPU run's exactly; the
    network, the table and Adam live on the GPU; saved weights are CPU tensors and load."""
    cpu = BatchedPPO(WORLD, [make_intervention("none") for _ in range(2)], [0, 4], SMALL)
    gpu = BatchedPPO(
        WORLD, [make_intervention("none") for _ in range(2)], [0, 4], {**SMALL, "device": "cuda"}
    )
    for k in range(2):
        for name, tensor in cpu.net.state_dict(k).items():
            assert torch.equal(tensor, gpu.net.state_dict(k)[name]), name
    gpu.train(Budget(steps=2 * SMALL["n_steps"] * gpu.n_envs))  # two rollouts
    assert gpu.trainable.flat.is_cuda and gpu.inputs.is_cuda
    assert all(t.is_cuda for t in gpu.optimizer.state[gpu.trainable.flat].values())
    assert all(np.isfinite(v).all() for v in gpu.last_stats.values())
    member = gpu.member(1)
    member.save(tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())
    loaded = load_member(tmp_path)
    assert np.array_equal(loaded.predict(OBS), member.predict(OBS))
    np.testing.assert_allclose(loaded.value_of_obs(OBS), member.value_of_obs(OBS), atol=1e-5)
    sampled = member.predict(OBS, deterministic=False)
    assert sampled.shape == (len(OBS),) and sampled.dtype == np.int64


@needs_cuda
def test_on_cuda_training_stays_close_to_the_cpus():
    """The same random draws on either device: after a rollout and its update the policies
    and values differ only by rounding (GPU kernels sum in another order)."""
    cpu = trained([3], rollouts=1, **SMALL)
    gpu = trained([3], rollouts=1, device="cuda", **SMALL)
    for ours, theirs in zip(gpu.policy_table(), cpu.policy_table()):
        torch.testing.assert_close(ours.cpu(), theirs, atol=1e-3, rtol=1e-3)
