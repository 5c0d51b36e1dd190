"""Bad input and faults through the real CLI: one line on stderr, a non-zero exit, no traceback,
and nothing saved lost (a full disk while writing a checkpoint, simulated and real)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import torch

from acexp.runtime.checkpoint import list_checkpoints, load_checkpoint
from tests.conftest import ROOT, acexp

RUN = ("total_steps=3000", "checkpoint.every_steps=1000", "stop_on_solve=false",
       "log.progress=false")  # fmt: skip


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["device=cuda"], "acexp: error: device=cuda: CUDA is not available ("),
        (["+optim.foo=1"], "acexp: error: +optim.foo=1: acexp does not read optim.foo"),
        (["-m", "seed=0,1", "+optim.foo=1"], "+optim.foo=1: acexp does not read optim.foo"),
        (["log.progress=maybe"], "log.progress='maybe' is invalid; expected auto, true or false"),
    ],
    ids=["cuda", "added-key", "added-key-sweep", "progress"],
)
def test_bad_input_is_one_line_exit_2_and_no_run_directory(
    tmp_path: Path, args: list[str], message: str
) -> None:
    if "cuda" in args[0] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = acexp(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_line(result)
    assert not (tmp_path / "outputs").exists()


def test_keys_acexp_reads_with_a_default_may_be_added(tmp_path: Path) -> None:
    result = acexp("+optim.alpha=0.9", "+env.kwargs.max_episode_steps=50", "--cfg", "job",
                   cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_resuming_a_cuda_run_without_cuda_is_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("device: cuda\n")  # trained on a GPU
    result = acexp(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith("acexp: error: device=cuda: CUDA is not available")


# A full disk, simulated: the second checkpoint's write stops half-way with ENOSPC, as a write
# into a full file system does (torch.save is given the open temporary file).
FULL_DISK = """
import errno, torch
save, checkpoints = torch.save, []
def full_disk(obj, handle, *args, **kwargs):
    if isinstance(obj, dict) and "env_steps" in obj:
        checkpoints.append(obj["env_steps"])
        if len(checkpoints) == 2:
            handle.write(b"\\0" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")
    return save(obj, handle, *args, **kwargs)
torch.save = full_disk
import runpy
runpy.run_module("acexp", run_name="__main__", alter_sys=True)  # as python -m acexp
"""


def test_a_full_disk_while_checkpointing_loses_nothing_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", FULL_DISK, *RUN, f"hydra.run.dir={run_dir}"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 1
    (kept,) = list_checkpoints(run_dir / "checkpoints")  # the first; the second never landed
    assert re.fullmatch(
        re.escape(f"acexp: error: cannot write {run_dir}/checkpoints/step_")
        + r"\d{9}\.pt"
        + re.escape(
            f": No space left on device; the last checkpoint, {kept.name}, is intact; free some "
            f"space, then continue with: python -m acexp resume={run_dir}"
        ),
        one_line(result),
    )
    assert not list(run_dir.rglob("*.tmp"))  # the half-written file is gone
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]
    assert load_checkpoint(kept)["env_steps"] >= 1000
    resumed = acexp(f"resume={run_dir}", cwd=tmp_path)  # the message's own command
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["env_steps"] >= 3000


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"]  # fmt: skip
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def test_a_real_full_disk_while_checkpointing(tmp_path: Path) -> None:
    """A 32 MiB tmpfs in a private mount namespace, filled while the run trains."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not _can_mount_tmpfs(mount):
        pytest.skip("no user namespaces here to mount a tmpfs in (the simulated test runs)")
    script = (f"mount -t tmpfs -o size=32m tmpfs {mount} && "
              f"exec {sys.executable} -m tests.full_disk {mount}")  # fmt: skip
    cmd = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    run_dir = seen["run_dir"]
    assert seen["returncode"] == 1
    lines = seen["stderr"].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in seen["stderr"], seen["stderr"]
    assert lines[0].startswith(f"acexp: error: cannot write {run_dir}/")
    assert "No space left on device; the last checkpoint, step_" in lines[0]
    assert lines[0].endswith(f"is intact; free some space, then continue with: "
                             f"python -m acexp resume={run_dir}")  # fmt: skip
    # nothing saved lost: every checkpoint left is one that was whole before the disk filled
    after, before = seen["checkpoints_after"], seen["checkpoints_before"]
    assert after and all(before.get(name) == digest for name, digest in after.items())
    assert max(after) in lines[0] and not seen["tmp_files"]
    assert seen["metrics"]["status"] == "failed"
    assert "No space left on device" in seen["metrics"]["error"]
    assert seen["resume_returncode"] == 0, seen["resume_stderr"]
    assert seen["resumed_metrics"]["status"] == "completed"
    assert seen["resumed_metrics"]["env_steps"] >= 12000


def _maps_torch(pid: int) -> bool:
    """Whether process `pid` has mapped torch's library: it is importing torch, or has."""
    with suppress(OSError):
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    return False


# Each phase of a start, by what shows it from outside: torch's library mapped (the command
# line's checks import torch), Hydra's saved config (the run is being built), an event file
# (the run's logger exists: training has started).
PHASES = {
    "importing-torch": lambda proc, run_dir: _maps_torch(proc.pid),
    "building": lambda proc, run_dir: (run_dir / ".hydra" / "config.yaml").exists(),
    "training": lambda proc, run_dir: any(run_dir.glob("events.out.tfevents.*")),
}


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_while_starting_is_one_line(phase: str, tmp_path: Path) -> None:
    """A SIGINT while `python -m acexp` imports torch, checks the command line or builds the
    run (before the run's own handler takes it) ends it with one line and 130, as a SIGINT
    while training does. The signal goes when the phase shows (on a fast machine the next
    phase may have begun)."""
    if phase == "importing-torch" and not Path("/proc/self/maps").exists():
        pytest.skip("no /proc to see torch's import in")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "acexp", "total_steps=20000", "log.progress=false",
           f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not PHASES[phase](proc, run_dir):
            assert proc.poll() is None and time.monotonic() < deadline, f"never {phase}"
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == 130, stderr
    (line,) = stderr.splitlines()
    assert re.fullmatch(r"acexp: interrupted (\(SIGINT\) before a checkpoint|at env step) .*", line)
