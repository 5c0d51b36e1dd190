"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def make_cfg(*overrides: str) -> DictConfig:
    """Compose conf/config.yaml with overrides, as the CLI would."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def small() -> tuple[str, ...]:
    """Overrides that make any run tiny and quiet."""
    return ("total_steps=400", "log.every_steps=100", "log.progress=false")


def acexp(*args: str, cwd: Path, module: str = "acexp") -> subprocess.CompletedProcess[str]:
    """Run `python -m <module> args...` as a user would, with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
