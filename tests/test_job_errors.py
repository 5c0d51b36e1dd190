"""A bug that raises in one job of a sweep, through the real CLI: that job is recorded as failed
with its error, the jobs after it still run, and the sweep ends in one line with exit status 1."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# `python -m acexp` with a bug injected into the training loop of the job with seed=1: its
# third safe point raises an error that no acexp code expects.
BUGGY = """
import runpy
from pathlib import Path
from hydra.core.hydra_config import HydraConfig
from acexp.algos.base import Trainer
finished = Trainer.finished
def buggy(self, *args, **kwargs):
    self.calls = getattr(self, "calls", 0) + 1
    job = Path(HydraConfig.get().runtime.output_dir).name
    if job == "seed=1" and self.calls == 3:
        raise RuntimeError("an injected bug")
    return finished(self, *args, **kwargs)
Trainer.finished = buggy
runpy.run_module("acexp", run_name="__main__", alter_sys=True)
"""


def test_an_unexpected_exception_fails_its_job_alone(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-c", BUGGY, "-m", "seed=0,1,2", "total_steps=1000",
           "log.progress=false", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "acexp: sweep of 3 job(s): 2 completed, 1 failed: seed=1 (RuntimeError: an injected "
        f"bug); report: python -m acexp.report {sweep}; curves: tensorboard --logdir {sweep}"
    )
    metrics = {s: json.loads((sweep / f"seed={s}" / "metrics.json").read_text()) for s in range(3)}
    assert metrics[1]["status"] == "failed"
    assert metrics[1]["error"] == "RuntimeError: an injected bug"
    assert 0 < metrics[1]["env_steps"] < 1000  # its figures up to the bug are kept
    assert not (sweep / "seed=1" / "model.pt").exists()  # no final model from a failed run
    for seed in (0, 2):  # before and after the failed job
        assert metrics[seed]["status"] == "completed" and metrics[seed]["env_steps"] >= 1000
        assert (sweep / f"seed={seed}" / "model.pt").is_file()
    log = (sweep / "seed=1" / "acexp.log").read_text()
    assert "failed: RuntimeError: an injected bug" in log
