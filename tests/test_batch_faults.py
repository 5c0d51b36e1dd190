"""Faults in a batched sweep, through the real CLI: an exception in one member's environment, a
worker process killed, SIGTERM to a batch of several members, and a second SIGTERM while the
members checkpoint. Signals go when a marker on disk shows the phase, never after a sleep.

Worker processes fork from a fork server that imports `WORKER_IMPORTS`; the sweep runs under
`INJECT`, which adds this module to them, so that the workers know `FaultyCartPole-v0` and, when
`HOLD` is set, pause at a member's end as a slow checkpoint write would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv
from omegaconf import OmegaConf

from acexp.config.resume import load_run
from acexp.runtime.checkpoint import list_checkpoints
from acexp.runtime.job_end import resume_command
from tests.conftest import ROOT
from tests.test_ownership import _descendants, assert_all_gone, wait_for

BATCHED = ("hydra/launcher=batched", "hydra.launcher.n_jobs=2", "stop_on_solve=false",
           "log.progress=false")  # fmt: skip
LONG = ("total_steps=2000000", "checkpoint.every_steps=500")  # stopped by the test, not its end
HOLD = "ACEXP_TEST_HOLD_END"

INJECT = """
import runpy
from hydra_plugins.acexp_batched_launcher import _batches
import tests.test_batch_faults
_batches.WORKER_IMPORTS.insert(0, "tests.test_batch_faults")
runpy.run_module("acexp", run_name="__main__", alter_sys=True)
"""


class FaultyCartPole(CartPoleEnv):
    """CartPole whose step raises once it has stepped `fail_after` times, in the sub-env reset
    with seed `fail_seed` (sub-env i of a member with seed s is reset with s + i)."""

    def __init__(self, fail_seed: int = -1, fail_after: int = 50, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.fail_seed, self.fail_after, self.first_seed, self.steps = (
            fail_seed,
            fail_after,
            None,
            0,
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        self.first_seed = seed if self.first_seed is None else self.first_seed
        return super().reset(seed=seed, options=options)

    def step(self, action):  # noqa: ANN001, ANN201
        self.steps += 1
        if self.first_seed == self.fail_seed and self.steps > self.fail_after:
            raise ZeroDivisionError("injected env fault")
        return super().step(action)


gym.register("FaultyCartPole-v0", entry_point=FaultyCartPole, max_episode_steps=500)


def _hold_the_first_interrupted_end() -> None:
    """In each process, the first member that ends interrupted waits (up to 60 s) after writing
    its metrics.json, as a slow checkpoint of the next members would: a second signal meets the
    batch in the middle of its members' ends."""
    from acexp.runtime.member import Member

    write_end, held = Member.write_end, []

    def holding(self, metrics, weights, stop_signal) -> None:  # noqa: ANN001
        write_end(self, metrics, weights, stop_signal)
        if self.status == "interrupted" and not held:
            held.append(self)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.01)  # a second signal ends this wait

    Member.write_end = holding


if os.environ.get(HOLD) == "1":
    _hold_the_first_interrupted_end()


def sweep(out: Path, *args: str, hold: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), HOLD: "1" if hold else "0"}
    cmd = [sys.executable, "-c", INJECT, "-m", *args, *BATCHED, f"hydra.sweep.dir={out}"]
    return subprocess.Popen(cmd, cwd=out.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def finish(proc: subprocess.Popen, pids: set[int]) -> str:
    """The sweep's stderr once it has ended, after checking that none of `pids` outlives it."""
    _, stderr = proc.communicate(timeout=120)
    assert_all_gone(pids)
    assert "Traceback" not in stderr, stderr
    return stderr


def assert_stopped_by_sigterm(proc: subprocess.Popen, pids: set[int], jobs: list[Path]) -> None:
    """The sweep ended on SIGTERM with its one line, naming how to continue its jobs."""
    stderr = finish(proc, pids)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines() == [
        f"acexp: sweep stopped by SIGTERM; continue each of its {len(jobs)} interrupted jobs "
        f"with: python -m acexp resume=<job dir>, e.g. {resume_command(jobs[0])}"
    ]


def holder(lock: Path) -> int:
    """The process that holds `lock` open: the worker training that member."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(lock) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    raise AssertionError(f"no process holds {lock}")


def resume_to_completion(jobs: list[Path], steps_more: int = 1000) -> None:
    """`python -m acexp resume=<job>` for each job, side by side, with its saved budget cut to
    `steps_more` past its checkpoint so that it completes soon; each must complete."""
    procs = []
    for job in jobs:
        _, _, state = load_run(str(job))
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        config.total_steps = int(state["env_steps"]) + steps_more
        OmegaConf.save(config, job / ".hydra" / "config.yaml")
        cmd = [sys.executable, "-m", "acexp", f"resume={job}"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen(cmd, cwd=job, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    for job, proc in zip(jobs, procs, strict=True):
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        done = metrics(job)
        assert done["status"] == "completed", (job, done)
        assert done["env_steps"] >= OmegaConf.load(job / ".hydra" / "config.yaml").total_steps


def test_an_exception_in_a_members_env_fails_that_member_alone(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = sweep(out, "env.id=FaultyCartPole-v0", "+env.kwargs.fail_seed=100", "seed=0,100,200",
                 "total_steps=4000", "checkpoint.every_steps=1000")  # fmt: skip
    wait_for(lambda: list(out.glob("*/checkpoints/step_*.pt")), "checkpoint", proc)
    stderr = finish(proc, _descendants(proc.pid))
    assert proc.returncode == 1, stderr
    assert stderr.strip().splitlines() == [  # the summary line alone, naming the member
        "acexp: sweep of 3 job(s): 2 completed, 1 failed: seed=100 (ZeroDivisionError: injected "
        f"env fault); report: python -m acexp.report {out}; curves: tensorboard --logdir {out}"
    ]
    failed = out / "seed=100"
    assert metrics(failed)["status"] == "failed"
    assert metrics(failed)["error"] == "ZeroDivisionError: injected env fault"
    assert 50 * 32 < metrics(failed)["env_steps"] < 4000  # its figures up to the fault
    assert not (failed / "model.pt").exists()  # no final model of a run that did not finish
    log = (failed / "acexp.log").read_text()  # its traceback, down to the env's step
    assert "Traceback (most recent call last)" in log
    assert "in step\n    raise ZeroDivisionError" in log
    for seed in (0, 200):  # its batch-mate (seed=0) and the other batch: unharmed
        assert metrics(out / f"seed={seed}")["status"] == "completed"
        assert metrics(out / f"seed={seed}")["env_steps"] >= 4000
        assert (out / f"seed={seed}" / "model.pt").is_file()
        assert "Traceback" not in (out / f"seed={seed}" / "acexp.log").read_text()


def test_a_killed_worker_fails_its_members_alone_and_they_resume(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # jobs in this order: the two long runs make one batch, the two short ones the other
    proc = sweep(out, "total_steps=2000000,3000", "seed=0,1", "checkpoint.every_steps=500")
    long = [out / f"seed={seed},total_steps=2000000" for seed in (0, 1)]
    short = [out / f"seed={seed},total_steps=3000" for seed in (0, 1)]
    wait_for(lambda: all(list_checkpoints(j / "checkpoints") for j in long), "checkpoints", proc)
    pids = _descendants(proc.pid)
    worker = holder(long[0] / ".acexp.lock")
    assert worker in pids and worker == holder(long[1] / ".acexp.lock")
    os.kill(worker, signal.SIGKILL)
    stderr = finish(proc, pids)
    assert proc.returncode == 1, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(
        "acexp: sweep of 4 job(s): 2 completed, 2 failed: seed=0,total_steps=2000000 (its "
        "batch's worker process was killed by SIGKILL; its last checkpoint is step_"
    )
    # the resume command whole, not cut off with the error
    assert (
        "; continue each from its checkpoint with: python -m acexp resume=<job dir>, "
        f"e.g. {resume_command(long[0])}; report: "
    ) in line
    for job in long:
        (*_, last) = list_checkpoints(job / "checkpoints")
        assert metrics(job) == {
            "status": "failed",
            "error": f"its batch's worker process was killed by SIGKILL; its last checkpoint "
            f"is {last.name}",
            "resume": resume_command(job),
        }
        assert not (job / "model.pt").exists()
    for job in short:  # the other worker's members
        assert metrics(job)["status"] == "completed" and metrics(job)["env_steps"] >= 3000
    resume_to_completion(long[:1])  # the other is alike


def test_sigterm_checkpoints_every_member_of_a_batch_and_each_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # no checkpoint before the signal: each one the members have is written as they stop
    proc = sweep(out, "seed=0,1,2,3,4", "hydra.launcher.max_batch_size=3", "total_steps=2000000",
                 "checkpoint.every_steps=1000000", "log.console_every_seconds=0.1")  # fmt: skip
    jobs = [out / f"seed={seed}" for seed in range(5)]  # batches seed=0,1,2 and seed=3,4

    def training(job: Path) -> bool:  # its batch's progress line: an update has been made
        log = job / "acexp.log"
        return log.is_file() and "batch of " in log.read_text()

    wait_for(lambda: all(map(training, jobs)), "training", proc)
    assert len({holder(job / ".acexp.lock") for job in jobs[:3]}) == 1  # one worker, 3 members
    pids = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert_stopped_by_sigterm(proc, pids, jobs)
    for job in jobs:
        stopped = metrics(job)
        assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM"
        _, _, state = load_run(str(job))  # what resume= continues from: the stop itself
        assert state["env_steps"] == stopped["env_steps"] < 2000000
        assert not (job / "model.pt").exists()
    resume_to_completion(jobs[:3])  # the 3-member batch; the others are alike


def test_a_second_sigterm_while_members_checkpoint_stops_at_once(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = sweep(out, "seed=0,1,2", *LONG, hold=True)  # batches seed=0,1 and seed=2
    jobs = [out / f"seed={seed}" for seed in range(3)]
    wait_for(lambda: all(list_checkpoints(j / "checkpoints") for j in jobs), "checkpoints", proc)
    pids = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)

    def ended(job: Path) -> bool:
        return (job / "metrics.json").exists() and metrics(job)["status"] == "interrupted"

    # each worker's first member has ended with its checkpoint; the worker is held there
    wait_for(lambda: ended(jobs[0]) and ended(jobs[2]), "the first members' ends", proc)
    before = list_checkpoints(jobs[1] / "checkpoints")
    proc.send_signal(signal.SIGTERM)
    assert_stopped_by_sigterm(proc, pids, jobs)
    for job in (jobs[0], jobs[2]):  # ended before the second signal: a checkpoint at the stop
        assert load_run(str(job))[2]["env_steps"] == metrics(job)["env_steps"]
    # stopped at once: no checkpoint of a state that may be mid-update, and no figures of it
    assert list_checkpoints(jobs[1] / "checkpoints") == before
    assert metrics(jobs[1]) == {
        "status": "interrupted",
        "note": "stopped at once by a second signal, without a checkpoint at the stop",
        "signal": "SIGTERM",
    }
    resume_to_completion([jobs[1]])
