"""Atari on ale-py's own vector env: what the wrapper path gives, faster; raw episode returns."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from moviepy import VideoFileClip

import acexp.envs.make
from acexp.envs.make import make_vector_env, vectorization
from acexp.errors import ConfigError
from acexp.models.build import build_model
from acexp.models.normalization import normalize_observation
from acexp.run import run
from tests.conftest import acexp as acexp_cli
from tests.conftest import make_cfg
from tests.test_cli import scalars
from tests.test_resume import run_in, stop_at_first_checkpoint

# A small Pong run: tiny CNN head, 2 envs, a rollout of 32 steps.
TINY = ("env=pong", "arch.hidden_sizes=[16]", "algo.num_envs=2", "algo.n_steps=32")


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        ((), "ale"),
        (("env.frame_stack=0",), "sync"),  # ale-py's vector env always stacks
        (("env.id=ALE/Pong-v5", "env.atari=false"), "sync"),  # skips frames itself
        (("+env.kwargs.obs_type=ram",), "sync"),
        (("+env.kwargs.repeat_action_probability=0.25",), "ale"),
        (("env.vectorization=async",), "async"),
    ],
)
def test_auto_takes_ale_vector_env_for_the_atari_ids_it_covers(overrides, mode) -> None:
    assert vectorization(make_cfg("env=pong", *overrides).env) == mode


def test_ale_on_an_env_it_does_not_cover_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="env.vectorization=ale needs an ALE id"):
        vectorization(make_cfg("env.vectorization=ale").env)
    result = acexp_cli("env.vectorization=ale", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("acexp: error: env.vectorization=ale needs an ALE id")
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_ale_vector_env_gives_the_wrapper_paths_observations_rewards_and_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No-op starts draw from each path's own generator; without them the two are the same
    # emulator under the same preprocessing, frame for frame, through episode ends.
    monkeypatch.setattr(acexp.envs.make, "ATARI_NOOP_MAX", 0)
    ale = make_vector_env(make_cfg("env=pong").env, 2, seed=0)
    wrapped = make_vector_env(make_cfg("env=pong", "env.vectorization=sync").env, 2, seed=0)
    first_ale, first_wrapped = ale.reset(seed=0)[0], wrapped.reset(seed=0)[0]
    assert first_ale.shape == (2, 4, 84, 84) and first_ale.dtype == np.uint8
    assert np.array_equal(first_ale, first_wrapped)
    assert not first_ale[:, :3].any() and first_ale[:, 3].any()  # zero-padded stack
    rng, ended = np.random.default_rng(0), np.zeros(2, dtype=bool)
    for _ in range(1500):
        actions = rng.integers(0, 6, size=2).tolist()
        (*from_ale, ale_info), (*from_wrapped, wrapped_info) = (
            ale.step(actions),
            wrapped.step(actions),
        )
        for a, w in zip(from_ale, from_wrapped, strict=True):  # obs, reward, terminated, truncated
            assert np.array_equal(a, w) and a.dtype == w.dtype
        assert ("_episode" in ale_info) == ("_episode" in wrapped_info)
        if "_episode" in ale_info:
            assert np.array_equal(ale_info["_episode"], wrapped_info["_episode"])
            for key in ("r", "l"):
                assert np.array_equal(ale_info["episode"][key], wrapped_info["episode"][key])
            ended |= ale_info["_episode"]
        if ended.all():
            break
    assert ended.all()  # both envs went through an episode end and its reset step
    ale.close(), wrapped.close()


def test_episode_returns_are_raw_while_training_rewards_are_clipped() -> None:
    envs = make_vector_env(make_cfg("env=pong", "env.clip_reward=0.5").env, 1, seed=3)
    rng, rewards = np.random.default_rng(3), []
    for _ in range(3000):
        _, reward, _, _, info = envs.step(rng.integers(0, 6, size=1).tolist())
        rewards.append(float(reward[0]))
        if "_episode" in info:
            break
    assert "_episode" in info, "a random Pong player loses within 3,000 steps"
    assert set(rewards) <= {-0.5, 0.0, 0.5} and -0.5 in rewards
    raw_return = float(info["episode"]["r"][0])
    assert raw_return == 2 * sum(rewards) and raw_return <= -5  # Pong scores +-1 a point
    assert int(info["episode"]["l"][0]) == len(rewards)
    envs.close()


def test_frames_reach_the_network_as_stacked_pixels_in_0_1() -> None:
    cfg = make_cfg(*TINY)
    envs = make_vector_env(cfg.env, 2, seed=0)
    obs = envs.step([0, 0])[0]
    scaled = normalize_observation(torch.from_numpy(obs), envs.single_observation_space)
    assert scaled.dtype == torch.float32 and scaled.min() >= 0 and scaled.max() <= 1
    assert torch.equal(scaled * 255, torch.from_numpy(obs).float())
    model = build_model(cfg, envs.single_observation_space, envs.single_action_space)
    action, value, _ = model.act(torch.from_numpy(obs)[None], False)
    assert action.shape == (1, 2) and value.shape == (1, 2)
    envs.close()


@pytest.fixture(scope="module", params=["shared", "unshared"])
def pong_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred steps of the Pong preset through the CLI (a small head, 4 envs)."""
    out = tmp_path_factory.mktemp(request.param)
    result = acexp_cli(
        "+experiment=pong_ppo", f"arch={request.param}", "arch.hidden_sizes=[32]",
        "algo.num_envs=4", "algo.n_steps=64", "total_steps=512", "eval.every_steps=0",
        "log.every_steps=128", f"hydra.run.dir={out / 'run'}", cwd=out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out / "run"


def test_pong_ppo_trains_end_to_end(pong_run: Path) -> None:
    metrics = json.loads((pong_run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["env_steps"] == 512
    tags = scalars(pong_run)
    assert [s for s, _ in tags["losses/actor"]] == [256, 512]  # two PPO updates
    assert all(np.isfinite(v) for _, v in tags["losses/critic"])


@pytest.mark.parametrize("pong_run", ["shared"], indirect=True)
def test_video_of_a_pong_run_is_one_playable_mp4(pong_run: Path) -> None:
    played = acexp_cli(str(pong_run), "--video", "--episodes=1", cwd=pong_run,
                       module="acexp.evaluate")  # fmt: skip
    assert played.returncode == 0, played.stderr
    (video,) = (pong_run / "videos").glob("*.mp4")
    clip = VideoFileClip(str(video))  # decodes: the file plays
    assert clip.size == [160, 210] and clip.get_frame(1.0).shape == (210, 160, 3)
    assert clip.duration > 10  # a whole game in the emulator's frames, even a lost one


def test_resume_restarts_the_episodes_of_ale_vector_envs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulators' state is not saved: a resumed run starts new episodes, yet it goes on
    from its checkpoint (one update of 2 envs x 32 steps) and ends at the budget, each of its
    4 updates logged once."""
    common = (*TINY, "total_steps=256", "checkpoint.every_steps=64", "log.every_steps=64",
              "log.progress=false")  # fmt: skip
    with monkeypatch.context() as patch:
        stop_at_first_checkpoint(patch)
        cut = run_in(tmp_path / "cut", *common)
    assert (cut["status"], cut["env_steps"]) == ("interrupted", 64)
    metrics = run(make_cfg(f"resume={tmp_path / 'cut'}"))
    assert metrics["status"] == "completed" and metrics["env_steps"] == 256
    # started again from step 0, the run would log the update at step 64 twice
    assert [s for s, _ in scalars(tmp_path / "cut")["losses/actor"]] == [64, 128, 192, 256]
