"""Where runs live on disk: written atomically, counted only once complete, never mixed.

A run is trained in a scratch folder ``<name>.partial-<token>/`` beside its final place and
moved to ``<name>/`` in one rename once everything in it is written, with its completion
marker ``done.json`` last. So a folder named after a run is always a complete run; a killed
run leaves only a scratch folder, which the next run of the same experiment removes (its
TensorBoard files with it, so TensorBoard never mixes a dead run's curves with the new one).

Every JSON file is written through a temporary file of its own (unique name, same folder)
and renamed into place: two writers never share a temporary name, and a crash never leaves
half a file. An output folder is locked (``.lock``, an advisory ``flock``) while a command
writes into it: a second command is refused with a message, and the lock dies with the
process that held it, so a killed command never leaves it stuck.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DONE = "done.json"
"""The completion marker: written last into a run's folder, with its config and timings."""
PARTIAL = ".partial-"
LOCK = ".lock"
NAME_MAX = 255
"""The longest file or folder name, in bytes, that common file systems allow."""


class StoreError(RuntimeError):
    """An output folder that cannot be used as asked; the message says why and what to do."""


def run_folder(out: Path, condition_slug: str, seed: int) -> Path:
    """Where an experiment writes the run of ``seed`` of a condition: ``<out>/<condition
    slug>/seed<seed>``; the one place that names run folders."""
    return Path(out) / condition_slug / f"seed{seed}"


def run_record(run_dir: Path, in_experiment: bool) -> str:
    """How results name a run folder: relative to the experiment's output folder
    (``<condition slug>/seed<k>``), or for a lone run its own name, so that results say the
    same on every machine and after the folder is moved."""
    run_dir = Path(run_dir)
    return f"{run_dir.parent.name}/{run_dir.name}" if in_experiment else run_dir.name


def recorded_run(result: dict[str, Any]) -> str:
    """A result's run folder as :func:`run_record` names it. Results written before that rule
    recorded the folder as the command was given it (``runs/demo/task-reward-only/seed0``, or
    an absolute path): those are shortened the same way."""
    run = str(result.get("run", ""))
    return run_record(Path(run), bool(result.get("condition"))) if run else run


def run_path(out: Path, result: dict[str, Any]) -> Path:
    """A result's run folder on this machine, from its record (:func:`recorded_run`) joined to
    the experiment's output folder ``out``."""
    return Path(out) / recorded_run(result)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically, through a uniquely named temporary file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str, allow_nan=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (as :func:`write_json`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


RECORDED_NAMES = {"env_id": "env", "world_rules": "rules", "learner_overrides": "hyperparameters"}
"""Configuration names in run records written before the one schema, and today's names."""


def read_record(path: Path) -> Any:
    """A run's ``metrics.json``, ``config.json`` or ``done.json``, its ``config`` under
    today's names (:data:`RECORDED_NAMES`), so that runs written before still report and
    resume. The same for each run of a ``results.json`` (a list of run records)."""
    data = read_json(path)
    for record in data if isinstance(data, list) else [data]:
        if isinstance(record, dict) and isinstance(record.get("config"), dict):
            config = record["config"]
            record["config"] = {RECORDED_NAMES.get(k, k): v for k, v in config.items()}
    return data


def check_output_folder(out: Path) -> Path:
    """``out`` as a folder this process can write runs into, or :class:`StoreError` naming
    the problem (an empty name, a file in the way, a name the system refuses, no permission,
    a read-only file system) before anything is trained. Reads only: nothing is created."""
    try:
        text = os.fspath(out)
    except TypeError:
        raise StoreError(f"--out {_shown(out)} is not a path: give a folder") from None
    if not isinstance(text, str) or not text.strip():
        raise StoreError(f"--out {_shown(text)}: give a folder name")
    if "\0" in text:
        raise StoreError(f"--out {_shown(text)} holds a NUL character: give a folder name")
    try:
        out = Path(text).expanduser()
        longest = max((len(os.fsencode(part)) for part in out.parts), default=0)
        if longest > NAME_MAX:
            raise StoreError(
                f"--out {_shown(text)} has a name of {longest} bytes, over the {NAME_MAX} that "
                "file systems allow: give shorter names"
            )
        if out.exists() and not out.is_dir():
            raise StoreError(f"--out {_shown(str(out))}: a file of that name exists; give a folder")
        existing = out
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise StoreError(
                f"--out {_shown(str(out))}: {_shown(str(existing))} is a file, not a folder; "
                "give another path"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StoreError(
                f"--out {_shown(str(out))}: {_shown(str(existing))} is not writable; give a "
                "folder you can write"
            )
        if hasattr(os, "statvfs") and os.statvfs(existing).f_flag & getattr(os, "ST_RDONLY", 1):
            raise StoreError(
                f"--out {_shown(str(out))}: {_shown(str(existing))} is on a read-only file "
                "system; give a folder you can write"
            )
    except StoreError:
        raise
    except (OSError, RuntimeError) as err:  # a name too long, ~nobody, a dead mount...
        reason = (getattr(err, "strerror", None) or str(err)).rstrip(".")
        raise StoreError(f"--out {_shown(text)}: {reason}; give another folder") from None
    return out


def _shown(value: Any) -> str:
    from offswitch.agents.hyperparameters import shown

    return shown(value, 300)  # paths whole, unless absurd


@contextmanager
def locked(out: Path) -> Iterator[Path]:
    """Hold ``out``'s lock while writing into it; :class:`StoreError` if another live
    command holds it."""
    import fcntl

    out = check_output_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK, "a+")  # noqa: SIM115 (held for the whole block)
    except OSError as err:
        raise StoreError(f"{out}: {err.strerror or err}; give another --out") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StoreError(
                f"{out} is in use by {holder}: wait for it to finish, or give another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield out
    finally:
        handle.close()  # closing releases the lock


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / DONE).is_file()


def scratch_dir(final: Path) -> Path:
    """A fresh scratch folder beside ``final`` for a run being trained."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{final.name}{PARTIAL}", dir=final.parent))


def publish(scratch: Path, final: Path, marker: dict[str, Any]) -> None:
    """Write the completion marker into ``scratch`` and move it to ``final`` in one rename.
    A stale ``final`` (incomplete, from an older layout) is replaced."""
    write_json(scratch / DONE, marker)
    if final.exists():
        if is_complete(final):
            raise StoreError(f"{final} was completed by another writer meanwhile")
        shutil.rmtree(final)
    os.replace(scratch, final)


def remove_partials(folder: Path) -> list[Path]:
    """Remove the scratch folders of killed runs under ``folder``; return them."""
    removed = []
    if folder.is_dir():
        for path in sorted(folder.rglob(f"*{PARTIAL}*")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def remove_scratch(final: Path) -> list[Path]:
    """Remove the scratch folders of the run ``final`` (left by attempts that died); only
    when no attempt at it is still running."""
    final = Path(final)
    removed = []
    for path in sorted(final.parent.glob(f"{final.name}{PARTIAL}*")):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


CODE_PATHS = ("envs", "agents", "experiments", "pyproject.toml")
"""What a run executes: uncommitted changes here mark its commit ``+dirty``; changes to the
tests, benchmarks or docs do not, as a run never reads them."""
CODE_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (or the installed package) that :data:`CODE_PATHS` are relative to."""


def code_version() -> str:
    """The git commit of the code (``+dirty`` with uncommitted changes to :data:`CODE_PATHS`),
    else the installed version of offswitch."""
    root = CODE_ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--"]
                + list(CODE_PATHS),
                capture_output=True,
                text=True,
                timeout=10,
            )
            return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib import metadata

    try:
        return f"offswitch {metadata.version('offswitch')}"
    except metadata.PackageNotFoundError:
        return "unknown"
