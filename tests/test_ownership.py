"""A run owns its directory and no process outlives its sweep, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from acexp.config.resume import load_run
from acexp.runtime.job_end import resume_command
from tests.conftest import ROOT, acexp

TINY = ("total_steps=300", "log.progress=false")
LONG = ("total_steps=2000000", "stop_on_solve=false", "checkpoint.every_steps=1000",
        "log.progress=false")  # fmt: skip

# `python -m acexp` with Hydra's clock stopped at 2000-01-02 03:04:05: runs started in
# different seconds still get the same default directory name, as runs in one second do.
FROZEN_CLOCK = """
import datetime, runpy
import hydra.core.utils
class Frozen(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2000, 1, 2, 3, 4, 5)
hydra.core.utils.datetime = Frozen
runpy.run_module("acexp", run_name="__main__", alter_sys=True)
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` by its relative path, with its content's digest."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def start(*args: str, cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "acexp", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 120
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within 120 s"
        assert proc is None or proc.poll() is None, f"ended before {what}: {proc.stderr.read()}"
        time.sleep(0.05)


def test_runs_started_at_the_same_moment_get_directories_of_their_own(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FROZEN_CLOCK, *TINY, f"seed={seed}"],
            cwd=tmp_path,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    day = tmp_path / "outputs" / "runs" / "2000-01-02"
    assert sorted(p.name for p in day.iterdir()) == ["03-04-05", "03-04-05-1"]
    seeds = set()
    for run_dir in day.iterdir():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["env_steps"] >= 300
        seeds.add(OmegaConf.load(run_dir / ".hydra" / "config.yaml").seed)
        assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # no mixed event files
    assert seeds == {1, 2}


def test_a_run_pointed_at_another_runs_directory_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    taken = tmp_path / "taken"
    assert acexp(*TINY, f"hydra.run.dir={taken}", cwd=tmp_path).returncode == 0
    before = snapshot(taken)
    assert {"metrics.json", "model.pt", ".hydra/config.yaml"} <= before.keys()
    result = acexp(*TINY, "seed=7", f"hydra.run.dir={taken}", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == (
        f"acexp: error: {taken} already holds another run; choose another directory, or "
        f"continue it with: python -m acexp resume={taken}"
    )
    assert snapshot(taken) == before
    # a sweep pointed at an earlier sweep's directory likewise
    sweep = tmp_path / "sweep"
    assert acexp("-m", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path).returncode == 0
    before = snapshot(sweep)
    result = acexp("-m", "seed=2,3", *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith(f"acexp: error: {sweep} already holds a sweep; ")
    assert snapshot(sweep) == before


def test_a_second_process_on_a_live_runs_directory_is_refused(tmp_path: Path) -> None:
    live = tmp_path / "live"
    proc = start(*LONG, f"hydra.run.dir={live}", cwd=tmp_path)
    try:
        wait_for(lambda: any(live.glob("checkpoints/step_*.pt")), "checkpoint", proc)
        in_use = f"acexp: error: {live} is in use by another acexp process"
        again = acexp(*TINY, f"hydra.run.dir={live}", cwd=tmp_path)
        resumed = acexp(f"resume={live}", cwd=tmp_path)
        for result in (again, resumed):
            assert result.returncode == 2
            assert one_line(result).startswith(in_use)
        assert proc.poll() is None  # the live run goes on, untouched
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert json.loads((live / "metrics.json").read_text())["status"] == "interrupted"
    assert len((live / "acexp.log").read_text().splitlines()) >= 1
    assert "resume" not in (live / ".hydra" / "overrides.yaml").read_text()


def _descendants(pid: int) -> set[int]:
    """The processes under `pid`, by their parent links in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def assert_all_gone(pids: set[int], within: float = 10) -> None:
    """None of `pids` is alive `within` seconds from now."""
    deadline = time.monotonic() + within
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)], "a process of the sweep outlived it"


def test_sigkill_to_a_batched_sweep_leaves_no_process_and_every_member_resumable(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "acexp", "-m", "seed=0,1,2,3", *LONG, "hydra/launcher=batched",
           "hydra.launcher.max_batch_size=2", "hydra.launcher.n_jobs=2",
           f"hydra.sweep.dir={out}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: len(list(out.glob("*/checkpoints/step_*.pt"))) >= 4, "checkpoints", proc)
    sweep = _descendants(proc.pid)  # the fork server, the workers, multiprocessing's helpers
    assert len(sweep) >= 3
    proc.kill()
    proc.wait(timeout=10)
    assert_all_gone(sweep)
    stdout, stderr = proc.communicate(timeout=10)  # every writer to its pipes has gone
    assert "Traceback" not in stdout + stderr and "Error" not in stderr, stderr
    jobs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == [f"seed={seed}" for seed in range(4)]
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == "interrupted" and metrics["signal"] == "SIGTERM"
        run_dir, _, checkpoint = load_run(str(job))  # what resume= starts from
        assert run_dir == job and checkpoint["env_steps"] == metrics["env_steps"]


@pytest.mark.parametrize("to_group", [False, True], ids=["sweep-process", "process-group"])
def test_ctrl_c_to_a_joblib_sweep_stops_its_workers_and_names_each_job_in_one_line(
    tmp_path: Path, to_group: bool
) -> None:
    """SIGINT to the sweep's process alone: joblib kills its workers, rather than the sweep
    exiting and leaving them to train out their budgets. SIGINT to its process group (a
    terminal's Ctrl-C): each worker stops its job silently, with a checkpoint, unless joblib
    kills it first. Either way the sweep's process alone speaks, naming the jobs that continue
    from their checkpoints."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "acexp", "-m", "seed=0,1", *LONG, "hydra/launcher=joblib",
           f"hydra.sweep.dir={out}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    jobs = [out / "seed=0", out / "seed=1"]
    wait_for(lambda: all(list(j.glob("checkpoints/step_*.pt")) for j in jobs), "checkpoints", proc)
    sweep = _descendants(proc.pid)  # joblib's workers and its resource trackers
    assert len(sweep) >= 2
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert stderr.strip().splitlines() == [
        "acexp: sweep stopped by SIGINT; continue each of its 2 interrupted jobs with: "
        f"python -m acexp resume=<job dir>, e.g. {resume_command(jobs[0])}"
    ]
    assert_all_gone(sweep)
    for job in jobs:
        metrics = job / "metrics.json"  # a killed worker's job has none: nothing looks ended
        status = json.loads(metrics.read_text())["status"] if metrics.exists() else None
        assert status in (("interrupted", None) if to_group else (None,))
        assert not (job / "model.pt").exists()


def test_ctrl_c_to_a_joblib_sweep_before_any_checkpoint_says_to_run_it_again(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep"
    no_checkpoint = ("total_steps=2000000", "stop_on_solve=false",
                     "checkpoint.every_steps=1000000", "log.progress=false")  # fmt: skip
    cmd = [sys.executable, "-m", "acexp", "-m", "seed=0,1", *no_checkpoint,
           "hydra/launcher=joblib", f"hydra.sweep.dir={out}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: all((out / f"seed={s}" / "acexp.log").exists() for s in (0, 1)), "jobs", proc)
    sweep = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert stderr.strip().splitlines() == [
        "acexp: sweep stopped by SIGINT before any of its jobs saved a checkpoint; "
        "run the sweep again"
    ]
    assert_all_gone(sweep)
    assert not list(out.glob("*/checkpoints/step_*.pt"))
