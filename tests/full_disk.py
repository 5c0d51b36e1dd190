"""Fill a real disk under a training run; report what the run did, as JSON on stdout.

`python -m tests.full_disk DIR`, with DIR a small tmpfs that this process may fill (tests/
test_faults.py mounts one in a private mount namespace with `unshare`). A run trains in DIR/run;
once its first checkpoint is written, the run is paused while a filler file takes all but half
a checkpoint of the free space, so a later checkpoint meets a full disk. Then the filler is
removed and the run resumed.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def digests(run_dir: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run_dir / "checkpoints").glob("step_*.pt"))
    }


def main(mount: Path) -> dict:
    run_dir = mount / "run"
    args = ["total_steps=12000", "checkpoint.every_steps=4000", "stop_on_solve=false",
            "arch.hidden_sizes=[256,256]", "log.progress=false"]  # fmt: skip
    cmd = [sys.executable, "-m", "acexp", *args, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not digests(run_dir):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"no checkpoint: {proc.communicate(timeout=60)[1]}")
        time.sleep(0.002)
    # The run stays paused while the disk fills, so the filler always lands between its
    # first checkpoint and the next, however slow this machine is.
    proc.send_signal(signal.SIGSTOP)
    first = next(iter(digests(run_dir)))
    stat = os.statvfs(mount)
    keep = (run_dir / "checkpoints" / first).stat().st_size // 2
    with (mount / "filler").open("wb") as filler:  # tmpfs takes the space as it is written
        filler.write(b"\0" * max(stat.f_bavail * stat.f_frsize - keep, 0))
    before = digests(run_dir)
    proc.send_signal(signal.SIGCONT)
    _, stderr = proc.communicate(timeout=300)
    after = digests(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    leftovers = [p.name for p in run_dir.rglob("*.tmp")]
    (mount / "filler").unlink()
    resumed = subprocess.run(
        [sys.executable, "-m", "acexp", f"resume={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {
        "returncode": proc.returncode,
        "stderr": stderr,
        "run_dir": str(run_dir),
        "checkpoints_before": before,
        "checkpoints_after": after,
        "metrics": metrics,
        "tmp_files": leftovers,
        "resume_returncode": resumed.returncode,
        "resume_stderr": resumed.stderr,
        "resumed_metrics": json.loads((run_dir / "metrics.json").read_text()),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
