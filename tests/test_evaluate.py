"""`python -m acexp.evaluate`: a trained run's policy played again, with and without video."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from omegaconf import OmegaConf

from acexp.errors import MissingExtraError
from acexp.evaluate import evaluate
from acexp.models import ActorCritic
from acexp.run import run
from acexp.runtime.checkpoint import list_checkpoints
from acexp.runtime.evaluation import play_episodes
from tests.conftest import ROOT, acexp, make_cfg


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    cfg = make_cfg("total_steps=1000", "checkpoint.every_steps=400", "log.progress=false")
    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    run(cfg, out)
    return out


def test_cli_prints_mean_and_std_and_writes_eval_json(run_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acexp.evaluate", str(run_dir), "--episodes", "2"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / "eval.json").read_text())
    returns = torch.tensor(report["returns"])
    assert len(returns) == 2 and report["weights"] == str(run_dir / "model.pt")
    assert report["mean_return"] == pytest.approx(returns.mean().item())
    assert report["std_return"] == pytest.approx(returns.std(unbiased=False).item())
    assert f"2 episodes: return {report['mean_return']:.2f} +- " in result.stdout


def test_checkpoint_and_deterministic_play_repeat_exactly(run_dir: Path, tmp_path) -> None:
    first = list_checkpoints(run_dir / "checkpoints")[0]
    one = evaluate(run_dir, episodes=2, deterministic=True, checkpoint=first, seed=5)
    two = evaluate(run_dir, episodes=2, deterministic=True, checkpoint=first, seed=5)
    assert one["returns"] == two["returns"] and one["weights"] == str(first)
    # the checkpoint's weights are played, whatever model.pt holds
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "model.pt").write_bytes(b"not weights")
    played = evaluate(
        copy, episodes=2, deterministic=True, checkpoint=copy / first.relative_to(run_dir), seed=5
    )
    assert played["returns"] == one["returns"]


class Fixed(ActorCritic):
    """Logits that favour action 1; sampling would sometimes pick 0, the mode never does."""

    def __init__(self) -> None:
        super().__init__(gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), [], "relu", "none")

    def build(self, *spaces_and_arch: object) -> None:
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, obs: torch.Tensor):  # type: ignore[override]
        batch = obs.shape[:-1]  # [members, batch]: one member here
        logits = torch.tensor([0.0, 0.5]).expand(*batch, 2)
        return torch.distributions.Categorical(logits=logits), torch.zeros(batch)


class Counter:
    """A one-step env that records actions."""

    def __init__(self) -> None:
        self.actions: list[int] = []

    def reset(self, seed: int | None = None) -> tuple:
        return [0.0], {}

    def step(self, action) -> tuple:  # noqa: ANN001
        self.actions.append(int(action))
        return [0.0], float(action), True, False, {}


def test_deterministic_takes_the_mode_and_stochastic_samples() -> None:
    env = Counter()
    assert play_episodes(Fixed(), env, 30, deterministic=True, seed=0) == [1.0] * 30
    torch.manual_seed(0)
    assert 0 < sum(play_episodes(Fixed(), env, 30, deterministic=False, seed=0)) < 30


def test_video_records_one_mp4_per_episode(run_dir: Path) -> None:
    report = evaluate(run_dir, episodes=1, video=True)
    videos = list(Path(report["videos"][0]).parent.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert report["videos"] == [str(videos[0])]
    suffix = Path(report["file"]).stem.removeprefix("eval")  # its videos are named as its file
    assert videos[0].parent == run_dir / f"videos{suffix}"


def test_a_second_evaluation_keeps_the_first(tmp_path: Path, run_dir: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("eval*.json", "videos*"))
    first = evaluate(copy, episodes=1, seed=1)
    saved = (copy / "eval.json").read_bytes()
    second = acexp(
        str(copy), "--episodes", "2", "--seed", "2", cwd=tmp_path, module="acexp.evaluate"
    )
    assert second.returncode == 0, second.stderr
    assert first["file"] == str(copy / "eval.json") and (copy / "eval.json").read_bytes() == saved
    assert second.stdout.strip().endswith(f"; wrote {copy / 'eval-1.json'}")
    assert json.loads((copy / "eval-1.json").read_text())["episodes"] == 2
    (copy / "eval.json").unlink()  # a name freed is used again; eval-1.json stays
    assert evaluate(copy, episodes=1)["file"] == str(copy / "eval.json")
    assert json.loads((copy / "eval-1.json").read_text())["seed"] == 2


def test_video_without_moviepy_names_the_extra(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "moviepy", None)  # makes `import moviepy` fail
    with pytest.raises(MissingExtraError, match=r"pip install 'acexp\[video\]'"):
        evaluate(run_dir, episodes=1, video=True)


def run_with_weights(run_dir: Path, dest: Path, weights: dict) -> Path:
    """A copy of the trained run's config with other weights in its model.pt."""
    (dest / ".hydra").mkdir(parents=True)
    (dest / ".hydra" / "config.yaml").write_text((run_dir / ".hydra/config.yaml").read_text())
    torch.save(weights, dest / "model.pt")
    return dest


def test_weights_saved_in_the_old_sequential_layout_still_load(run_dir: Path, tmp_path) -> None:
    """Runs written before the MLP module stored Sequential(Linear, act, ...) keys: body.0, .2"""
    weights = torch.load(run_dir / "model.pt", weights_only=True)
    old = {}
    for key, value in weights.items():
        head, sep, rest = key.partition(".layers.")
        if sep:
            index, name = rest.split(".")
            key = f"{head}.{2 * int(index)}.{name}"
        old[key] = value
    assert old.keys() != weights.keys()
    legacy = run_with_weights(run_dir, tmp_path / "legacy", old)
    assert (
        evaluate(legacy, episodes=1, seed=3)["returns"]
        == evaluate(run_dir, episodes=1, seed=3)["returns"]
    )


def test_weights_of_another_model_fail_in_one_line(run_dir: Path, tmp_path) -> None:
    other = run_with_weights(run_dir, tmp_path / "other", {"something.else": torch.zeros(3)})
    result = acexp(str(other), "--episodes", "1", cwd=tmp_path, module="acexp.evaluate")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.pt does not fit this run's model" in lines[0]
    assert "Traceback" not in result.stderr
