"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from acexp.config.overrides import CONF

ROOT = Path(__file__).resolve().parents[1]


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


def acexp_without(
    modules: list[str], *args: str, cwd: Path, module: str = "acexp"
) -> subprocess.CompletedProcess[str]:
    """`acexp(*args)` with `modules` unimportable (None in sys.modules, set before anything
    loads them), as on an install without the extra that brings them."""
    code = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({modules!r})); "
        f"sys.argv = [{module!r}, *{list(args)!r}]; "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@contextmanager
def tensorboard(
    logdir: Path, log: Path, expect_runs: set[str], flags: tuple[str, ...] = ()
) -> Iterator[str]:
    """A real TensorBoard on 127.0.0.1 (a free port) over `logdir`, with `flags`, once it lists
    `expect_runs`; yields its base URL and is always stopped."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), *flags,
           "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            runs: set[str] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not runs >= expect_runs:
                time.sleep(0.5)
                with suppress(OSError):  # not listening yet
                    runs = set(http_json(f"{base}/data/runs"))
            assert runs >= expect_runs, log.read_text()
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def http_json(url: str, body: dict | None = None) -> Any:
    """GET (or POST `body` as JSON to) a TensorBoard endpoint; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
