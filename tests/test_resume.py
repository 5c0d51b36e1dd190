"""Killed, interrupted and resumed runs end where an uninterrupted run ends, curves included."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from acexp.algos.base import Trainer
from acexp.run import run
from acexp.runtime.checkpoint import list_checkpoints
from tests.conftest import ROOT, make_cfg
from tests.test_cli import scalars

# Wall-clock figures differ from run to run; everything else must not.
WALL_CLOCK = {"wall_seconds", "sps", "seconds_to_solve", "signal"}
WALL_TAGS = {"perf/sps", "result/wall_seconds", "result/sps", "result/seconds_to_solve"}
RUN = (  # long enough that the kill -9 below lands mid-run even on a fast machine
    "total_steps=30000",
    "checkpoint.every_steps=3000",
    "checkpoint.keep=2",
    "stop_on_solve=false",
    "log.every_steps=500",
    "log.progress=false",
)


def learning_figures(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in WALL_CLOCK}


def curves(run_dir: Path) -> dict:
    return {tag: v for tag, v in scalars(run_dir).items() if tag not in WALL_TAGS}


def start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "acexp", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, after: int) -> int:
    """Block until a checkpoint newer than step `after` exists; return its step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = [int(p.stem.split("_")[1]) for p in (run_dir / "checkpoints").glob("step_*.pt")]
        if steps and max(steps) > after:
            return max(steps)
        assert proc.poll() is None, f"run ended before a checkpoint: {proc.stderr.read()}"
        time.sleep(0.02)
    raise AssertionError("no checkpoint within 120 s")


def wait_for_event_after(proc: subprocess.Popen, run_dir: Path, step: int) -> None:
    """Block until the run's event files hold a scalar logged after env step `step`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for events in run_dir.glob("events.out.tfevents.*"):
            with suppress(Exception):  # a record half-written as it is read
                if any(e.step > step for e in EventFileLoader(str(events)).Load()):
                    return
        assert proc.poll() is None, f"run ended before it logged: {proc.stderr.read()}"
        time.sleep(0.02)
    raise AssertionError(f"no event past step {step} within 120 s")


def test_sigterm_then_kill_9_then_resume_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(make_cfg(*RUN), whole)  # the same config in-process: determinism makes it the reference

    # SIGTERM (SLURM preemption): a checkpoint, status interrupted, exit 128 + 15.
    proc = start(*RUN, f"hydra.run.dir={cut}", cwd=tmp_path)
    wait_for_checkpoint(proc, cut, after=0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and f"resume={cut}" in stderr
    metrics = json.loads((cut / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["signal"] == "SIGTERM"
    stopped_at = metrics["env_steps"]
    assert (cut / "checkpoints" / f"step_{stopped_at:09d}.pt").is_file()

    # Resume, then kill -9 once events past the next checkpoint are on disk: they are orphans.
    proc = start(f"resume={cut}", cwd=tmp_path)
    saved = wait_for_checkpoint(proc, cut, after=stopped_at)
    wait_for_event_after(proc, cut, saved)
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"
    # a kill -9 writes nothing: metrics.json is still the one of the SIGTERM above
    assert json.loads((cut / "metrics.json").read_text())["env_steps"] == stopped_at

    proc = start(f"resume={cut}", cwd=tmp_path)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert learning_figures(cut) == learning_figures(whole)  # env_steps included: same end
    assert learning_figures(cut)["status"] == "completed"
    resumed, reference = curves(cut), curves(whole)
    assert resumed.keys() == reference.keys()
    for tag, points in reference.items():  # same steps: none duplicated, none missing
        assert resumed[tag] == points, f"{tag} differs from the uninterrupted run"
    losses = [s for s, _ in resumed["losses/actor"]]  # one point per logged update
    assert losses == sorted(set(losses)) and stopped_at < losses[-1]
    assert len(list((cut / "checkpoints").glob("step_*.pt"))) == 2  # checkpoint.keep
    assert not list(cut.rglob("*.tmp"))


def stop_at_first_checkpoint(monkeypatch: pytest.MonkeyPatch, count: int = 1) -> None:
    """As if SIGTERM arrived just after checkpoint number `count` (the real signal is above)."""
    save = Trainer.save_checkpoint
    saved: list[int] = []

    def save_then_stop(self: Trainer, k: int = 0) -> None:
        save(self, k)
        saved.append(self.env_steps[k])
        if len(saved) >= count:
            self.request_stop(signal.SIGTERM)

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_stop)


def run_in(out: Path, *overrides: str) -> dict:
    cfg = make_cfg(*overrides)
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what Hydra saves for a CLI run
    return run(cfg, out)


@pytest.mark.parametrize(
    "overrides",
    [
        ("algo=episodic", "total_steps=1200", "checkpoint.every_steps=500"),
        ("arch=unshared", "optim=separate", "total_steps=4000", "checkpoint.every_steps=1500"),
        # annealed learning rates: the optimizer's lr moves every rollout and is saved
        ("algo=ppo", "algo.n_steps=64", "total_steps=4096", "checkpoint.every_steps=1500"),
    ],
    ids=["episodic", "a2c-separate", "ppo-annealed"],
)
def test_resume_in_process_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: tuple[str, ...]
) -> None:
    common = (*overrides, "stop_on_solve=false", "log.every_steps=200", "log.progress=false")
    run_in(tmp_path / "whole", *common)
    with monkeypatch.context() as patch:
        stop_at_first_checkpoint(patch)
        assert run_in(tmp_path / "cut", *common)["status"] == "interrupted"
    assert run(make_cfg(f"resume={tmp_path / 'cut'}"))["status"] == "completed"
    assert learning_figures(tmp_path / "cut") == learning_figures(tmp_path / "whole")
    assert curves(tmp_path / "cut") == curves(tmp_path / "whole")


def test_a_corrupted_newest_checkpoint_resumes_from_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ("total_steps=3000", "checkpoint.every_steps=1000", "checkpoint.keep=3")
    common += ("stop_on_solve=false", "log.every_steps=200", "log.progress=false")
    run_in(tmp_path / "whole", *common)
    with monkeypatch.context() as patch:
        stop_at_first_checkpoint(patch, count=2)
        run_in(tmp_path / "cut", *common)
    older, newest = list_checkpoints(tmp_path / "cut" / "checkpoints")
    newest.write_bytes(newest.read_bytes()[:1000])  # as a full disk would leave it
    assert run(make_cfg(f"resume={tmp_path / 'cut'}"))["status"] == "completed"
    assert learning_figures(tmp_path / "cut") == learning_figures(tmp_path / "whole")
    assert curves(tmp_path / "cut") == curves(tmp_path / "whole")


def test_resume_of_sync_vector_envs_restarts_episodes_but_ends_at_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sub-env state is not saved: the resumed run differs, yet stays whole and consistent."""
    common = ("env.vectorization=sync", "algo.num_envs=4", "total_steps=3000")
    common += ("checkpoint.every_steps=1000", "stop_on_solve=false", "log.progress=false")
    with monkeypatch.context() as patch:
        stop_at_first_checkpoint(patch)
        stopped = run_in(tmp_path / "cut", *common)["env_steps"]
    metrics = run(make_cfg(f"resume={tmp_path / 'cut'}"))
    assert metrics["status"] == "completed" and 3000 <= metrics["env_steps"] < 3000 + 4 * 5
    returns = scalars(tmp_path / "cut")["charts/episodic_return"]
    steps = [s for s, _ in returns]
    assert steps == sorted(steps) and any(s > stopped for s in steps)
    assert scalars(tmp_path / "cut")["charts/episodes"][-1][1] == metrics["episodes"]
    losses = [s for s, _ in scalars(tmp_path / "cut")["losses/actor"]]
    assert losses == sorted(set(losses))


def test_same_seed_gives_identical_results(tmp_path: Path) -> None:
    common = ("total_steps=3000", "stop_on_solve=false", "log.every_steps=200")
    for name in ("a", "b"):
        run(make_cfg(*common, "log.progress=false"), tmp_path / name)
    assert learning_figures(tmp_path / "a") == learning_figures(tmp_path / "b")
    assert curves(tmp_path / "a") == curves(tmp_path / "b")
    run(make_cfg(*common, "seed=1", "log.progress=false"), tmp_path / "c")
    assert curves(tmp_path / "c") != curves(tmp_path / "a")


def test_resuming_a_completed_run_is_refused(tmp_path: Path) -> None:
    run_in(tmp_path / "done", "total_steps=300", "log.progress=false")
    from acexp.errors import ConfigError

    with pytest.raises(ConfigError, match="has completed; nothing to resume"):
        run(make_cfg(f"resume={tmp_path / 'done'}"))
