"""Bad input and faults through the real CLI: one line on stderr, a non-zero exit, no traceback,
and nothing saved lost (a full disk while writing a checkpoint, simulated and real)."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
import torch

from acexp.errors import SaveError
from acexp.runtime.checkpoint import list_checkpoints, load_checkpoint, save_failure, save_torch
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


def ctrl_c_when(
    cmd: list[str], cwd: Path, ready: Callable[[subprocess.Popen], bool], what: str, wait: int = 120
) -> tuple[subprocess.Popen, str]:
    """Start `cmd`, send it SIGINT once `ready(proc)` holds, and return it with its stderr once
    it has ended (within `wait` seconds; killed otherwise)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready(proc):
            assert proc.poll() is None and time.monotonic() < deadline, f"never {what}"
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=wait)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    return proc, stderr


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_while_starting_is_one_line(phase: str, tmp_path: Path) -> None:
    """A SIGINT while `python -m acexp` imports torch, checks the command line or builds the
    run (before the run's own handler takes it) ends it with one line and 130, as a SIGINT
    while training does. The signal goes when the phase shows (on a fast machine the next
    phase may have begun)."""
    if phase == "importing-torch" and not Path("/proc/self/maps").exists():
        pytest.skip("no /proc to see torch's import in")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "acexp", "total_steps=20000", "log.progress=false",
           f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc, stderr = ctrl_c_when(cmd, tmp_path, lambda proc: PHASES[phase](proc, run_dir), phase)
    assert proc.returncode == 130, stderr
    (line,) = stderr.splitlines()
    assert re.fullmatch(r"acexp: interrupted (\(SIGINT\) before a checkpoint|at env step) .*", line)


# The run's close (its envs and event writer) waits once it has begun, until the test's signal.
SLOW_CLOSE = """
import runpy, sys, time
from pathlib import Path
from acexp.algos.base import Trainer
marker, close = Path(sys.argv.pop(1)), Trainer.close
def slow_close(self):
    marker.touch()
    time.sleep(60)
    close(self)
Trainer.close = slow_close
runpy.run_module("acexp", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_a_finished_run_closes_names_its_results(tmp_path: Path) -> None:
    """A SIGINT after the run has ended and saved its results (its own handler gone, the
    process closing) says where they are, not that the run stopped before a checkpoint, and
    leaves them as they were."""
    run_dir, closing = tmp_path / "run", tmp_path / "closing"
    cmd = [sys.executable, "-c", SLOW_CLOSE, str(closing), "total_steps=2000",
           "log.progress=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    # it ends within 30 s, not after the 60 s its close would wait
    proc, stderr = ctrl_c_when(cmd, tmp_path, lambda proc: closing.exists(), "closing", wait=30)
    assert proc.returncode == 130, stderr
    (line,) = stderr.splitlines()
    assert line == (
        "acexp: interrupted (SIGINT) while closing, after the run had ended; its results are in "
        f"{run_dir / 'metrics.json'}"
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["env_steps"] >= 2000
    assert "signal" not in metrics
    weights = torch.load(run_dir / "model.pt", weights_only=True)
    assert weights and all(torch.isfinite(w).all() for w in weights.values())


# An error where no handler expects one: deep in the run's bookkeeping, in a sweep's end, in
# the report's statistics. The CLI runs under a wrapper that breaks the function, as a bug would.
BREAK = """
import importlib, runpy, sys
module, name, command = sys.argv.pop(1), sys.argv.pop(1), sys.argv.pop(1)
owner = importlib.import_module(module.rsplit(":", 1)[0])
if ":" in module:
    owner = getattr(owner, module.rsplit(":", 1)[1])
def broken(*args, **kwargs):
    raise ZeroDivisionError("injected\\nover two lines")
setattr(owner, name, broken)
runpy.run_module(command, run_name="__main__", alter_sys=True)
"""
UNEXPECTED = re.compile(
    r"acexp: error: ZeroDivisionError: injected; over two lines \(traceback in (.+); "
    r"ACEXP_TRACEBACK=1 prints it here\)"
)


def broken_cli(target: str, name: str, command: str, *args: str, cwd: Path,
               **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    cmd = [sys.executable, "-c", BREAK, target, name, command, *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_an_unexpected_error_deep_in_a_run_is_one_line_and_a_traceback_in_its_log(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    result = broken_cli("acexp.runtime.tracking:EpisodeStats", "elapsed", "acexp",
                        *RUN, f"hydra.run.dir={run_dir}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    where = UNEXPECTED.fullmatch(one_line(result))
    assert where, result.stderr
    assert Path(where[1]) == run_dir / "acexp.log"
    log = Path(where[1]).read_text()
    assert "Traceback (most recent call last)" in log and "in broken\nZeroDivisionError" in log
    shown = broken_cli("acexp.runtime.tracking:EpisodeStats", "elapsed", "acexp",
                       *RUN, f"hydra.run.dir={tmp_path / 'shown'}", cwd=tmp_path,
                       ACEXP_TRACEBACK="1")  # fmt: skip
    assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr
    assert UNEXPECTED.fullmatch(shown.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("target", "name", "command", "args"),
    [
        ("acexp.sweeps.multirun", "run_name_overrides", "acexp", ["-m", "seed=0,1", *RUN[:1]]),
        ("acexp.analysis.stats", "group_label", "acexp.report", ["{sweep}"]),
        ("acexp.runtime.evaluation", "play_episodes", "acexp.evaluate", ["{run}"]),
    ],
    ids=["sweep-start", "report", "evaluate"],
)
def test_an_unexpected_error_outside_a_run_names_a_traceback_file(
    tmp_path: Path, target: str, name: str, command: str, args: list[str]
) -> None:
    sweep = tmp_path / "sweep"
    if command != "acexp":
        done = acexp("-m", "seed=0", "total_steps=300", "log.progress=false",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    args = [a.format(sweep=sweep, run=next(sweep.glob("*/.hydra"), sweep).parent) for a in args]
    if command == "acexp":
        args.append(f"hydra.sweep.dir={sweep}")
    result = broken_cli(target, name, command, *args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    where = UNEXPECTED.fullmatch(lines[-1])
    assert where, result.stderr
    assert "in broken\nZeroDivisionError: injected" in Path(where[1]).read_text()


def test_files_have_the_permissions_the_umask_gives(tmp_path: Path) -> None:
    for umask, mode in ((0o022, 0o644), (0o002, 0o664)):
        run_dir = tmp_path / f"run{umask:o}"
        cmd = [sys.executable, "-m", "acexp", *RUN, f"hydra.run.dir={run_dir}"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300, preexec_fn=lambda u=umask: os.umask(u))  # fmt: skip
        assert done.returncode == 0, done.stderr
        written = [run_dir / "metrics.json", run_dir / "model.pt",
                   *list_checkpoints(run_dir / "checkpoints")]  # fmt: skip
        assert [oct(p.stat().st_mode & 0o777) for p in written] == [oct(mode)] * len(written)


def test_the_resume_hint_of_a_path_with_a_space_works_pasted_into_a_shell(tmp_path: Path) -> None:
    run_dir = tmp_path / "my runs" / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "acexp", "total_steps=200000", "stop_on_solve=false",
           "checkpoint.every_steps=1000", "log.progress=false",
           f"hydra.run.dir='{run_dir}'"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list_checkpoints(run_dir / "checkpoints") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    hint = re.fullmatch(r"acexp: interrupted at env step \d+; continue with: (.+)", stderr.strip())
    assert hint and "'" in hint[1], stderr
    # the pasted command, with total_steps cut short through the saved config
    config = run_dir / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("total_steps: 200000", "total_steps: 3000"))
    pasted = hint[1].replace("python", shlex.quote(sys.executable), 1)
    resumed = subprocess.run(["bash", "-c", pasted], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"


def test_a_skipped_damaged_checkpoint_is_warned_about_on_stderr(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", FULL_DISK, *RUN, f"hydra.run.dir={run_dir}"]
    subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    (kept,) = list_checkpoints(run_dir / "checkpoints")
    damaged = kept.with_name("step_999999999.pt")  # newer than any: tried first
    damaged.write_bytes(kept.read_bytes()[:1000])
    resumed = acexp(f"resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipping {damaged} is truncated or corrupted" in resumed.stderr
    assert "skipping" not in resumed.stdout


@pytest.mark.parametrize(
    ("errno_name", "advice"),
    [
        ("ENOSPC", "free some space"),
        ("EROFS", "make the file system writable"),
        ("EACCES", "give yourself write permission there"),
    ],  # fmt: skip
)
def test_the_advice_for_a_refused_write_matches_its_cause(
    tmp_path: Path, errno_name: str, advice: str
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    save_torch({"env_steps": 1}, run_dir / "checkpoints" / "step_000000001.pt")
    refused = OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))
    try:
        try:
            raise refused
        except OSError as exc:
            raise SaveError(f"cannot write {run_dir}/metrics.json: {exc.strerror}") from exc
    except SaveError as error:
        line = save_failure(error, run_dir)
    assert line == (
        f"cannot write {run_dir}/metrics.json: {refused.strerror}; the last checkpoint, "
        f"step_000000001.pt, is intact; {advice}"
        + ("" if errno_name != "EROFS" else " (it is mounted read-only)")
        + f", then continue with: python -m acexp resume={run_dir}"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["seed=4294967296"],
            "acexp: error: seed=4294967296 is invalid; expected an integer in [0, 2**32)",
        ),  # fmt: skip
        (
            ["hydra.run.dir={file}/run"],
            "acexp: error: cannot make {file}/run: {file} is a file, not a directory",
        ),  # fmt: skip
        (
            ["resume={bad}"],
            "acexp: error: cannot read the run's saved config {bad}/.hydra/"
            "config.yaml: while parsing a flow sequence",
        ),  # fmt: skip
    ],
    ids=["seed-2**32", "file-in-the-way", "bad-saved-yaml"],
)
def test_faults_a_lab_meets_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    paths = {"file": tmp_path / "file", "bad": tmp_path / "bad"}
    paths["file"].write_text("not a directory")
    (paths["bad"] / ".hydra").mkdir(parents=True)
    (paths["bad"] / ".hydra" / "config.yaml").write_text("seed: [1\n")
    result = acexp(*[a.format(**paths) for a in args], "total_steps=300", cwd=tmp_path)
    if args[0].startswith("resume="):
        result = acexp(args[0].format(**paths), cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith(message.format(**paths))


def test_evaluate_on_a_truncated_model_or_a_file_of_another_kind_is_one_line(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    assert acexp(*RUN, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    (run_dir / "model.pt").write_bytes((run_dir / "model.pt").read_bytes()[:1000])
    truncated = acexp(str(run_dir), cwd=tmp_path, module="acexp.evaluate")
    assert truncated.returncode == 2
    assert one_line(truncated).startswith(
        f"acexp.evaluate: error: {run_dir}/model.pt is truncated or corrupted: "
    )
    for other, why in (("metrics.json", "is not a checkpoint (torch.load cannot read it)"),
                       ("model.pt", "is truncated or corrupted")):  # fmt: skip
        result = acexp(str(run_dir), "--checkpoint", str(run_dir / other), cwd=tmp_path,
                       module="acexp.evaluate")  # fmt: skip
        assert result.returncode == 2
        assert one_line(result).startswith(f"acexp.evaluate: error: {run_dir / other} {why}")
    (run_dir / "weights.pt").write_bytes(b"")
    torch.save({"steps": 1}, run_dir / "weights.pt")
    result = acexp(str(run_dir), "--checkpoint", str(run_dir / "weights.pt"), cwd=tmp_path,
                   module="acexp.evaluate")  # fmt: skip
    assert result.returncode == 2
    assert "is not a checkpoint of an acexp run (it holds no model weights)" in one_line(result)
