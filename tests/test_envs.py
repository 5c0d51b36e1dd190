"""Every supported environment builds its network from its spaces and trains; observation
normalisation, wrappers chosen by config, and the one-line errors for spaces and missing extras."""

import math
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import acexp.algos.components  # noqa: F401
from acexp.algos.registry import MODELS
from acexp.envs.make import make_env, make_vector_env
from acexp.errors import ConfigError, MissingExtraError
from acexp.models.build import build_model
from acexp.models.cnn import NatureCNN
from acexp.models.gaussian import GaussianHead
from acexp.models.normalization import RunningNormalizer, normalize_observation
from acexp.run import run
from acexp.runtime.checkpoint import load_torch
from acexp.runtime.evaluation import evaluate_policy
from tests.conftest import make_cfg

QUIET = ("log.progress=false", "log.every_steps=100")
# (env overrides, steps, envs): Pong is the slowest, so it gets one env and 64 steps.
ENVS = {
    "cartpole": (["env=cartpole"], 300, 2),
    "cliffwalking": (["env=cliffwalking"], 300, 2),
    "lunarlander": (["env=lunarlander"], 300, 2),
    "halfcheetah": (["env=halfcheetah"], 300, 2),
    "pong": (["env=pong"], 64, 1),
    # other gymnasium ids need no new file
    "acrobot": (["env.id=Acrobot-v1"], 200, 2),
    "pendulum": (["env.id=Pendulum-v1"], 200, 2),
}


@pytest.mark.parametrize("arch", ["shared", "unshared"])
@pytest.mark.parametrize("env", list(ENVS))
def test_every_env_trains_under_both_architectures(env: str, arch: str, tmp_path) -> None:
    overrides, steps, num_envs = ENVS[env]
    cfg = make_cfg(
        *overrides, f"arch={arch}", f"total_steps={steps}", f"algo.num_envs={num_envs}", *QUIET
    )
    metrics = run(cfg, out_dir=tmp_path)
    assert metrics["status"] == "completed" and metrics["env_steps"] >= steps
    assert (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("arch", ["shared", "unshared"])
def test_network_shapes_per_space(arch: str) -> None:
    model_cls = MODELS.get(arch)
    cases = [  # observation space, action space, batch of observations
        (gym.spaces.Discrete(48), gym.spaces.Discrete(4), torch.tensor([0, 5, 47])),
        (gym.spaces.Box(-1, 1, (8,)), gym.spaces.Discrete(4), torch.zeros(3, 8)),
        (
            gym.spaces.Box(0, 255, (4, 84, 84), np.uint8),
            gym.spaces.Discrete(6),
            torch.zeros(3, 4, 84, 84, dtype=torch.uint8),
        ),
        (
            gym.spaces.Box(0, 255, (210, 160, 3), np.uint8),
            gym.spaces.Discrete(6),
            torch.zeros(3, 210, 160, 3, dtype=torch.uint8),
        ),
        (gym.spaces.Box(-np.inf, np.inf, (17,)), gym.spaces.Box(-1, 1, (6,)), torch.zeros(3, 17)),
    ]
    for obs_space, act_space, obs in cases:
        model = model_cls(obs_space, act_space, [32], "relu")
        dist, value = model(obs)
        action = dist.sample()
        assert value.shape == (3,)
        assert action.shape == (3, *act_space.shape)
        assert dist.log_prob(action).shape == (3,) and dist.entropy().shape == (3,)


def test_cnn_layout_and_width() -> None:
    stacked = NatureCNN(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    assert stacked.layout == "chw" and stacked.out_dim == 64 * 7 * 7  # Nature CNN: 3136
    assert stacked.net[0].weight.shape == (1, 32, 4, 8, 8)  # [members, out, in, k, k]
    rgb = NatureCNN(gym.spaces.Box(0, 255, (210, 160, 3), np.uint8))
    assert rgb.layout == "hwc" and rgb.net[0].weight.shape[2] == 3


def test_unshared_cnn_is_two_cnns() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = MODELS.get("unshared")(space, gym.spaces.Discrete(6), [512], "relu")
    assert isinstance(model.actor[0], NatureCNN) and isinstance(model.critic[0], NatureCNN)
    assert model.actor[0] is not model.critic[0]


def test_one_hot_encoding() -> None:
    model = MODELS.get("unshared")(gym.spaces.Discrete(5), gym.spaces.Discrete(2), [8], "tanh")
    encoded = model.actor[0](torch.tensor([4, 0, 2]))
    assert encoded.tolist() == [[0, 0, 0, 0, 1], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]


def test_gaussian_log_prob_and_entropy_by_hand() -> None:
    head = GaussianHead(2, gym.spaces.Box(-1, 1, (3,)))
    with torch.no_grad():
        head.log_std.copy_(torch.tensor([[0.0, -1.0, 0.5]]))  # [members, action dims]
    features = torch.tensor([[[0.3, -0.7], [1.0, 2.0]]])  # [members, batch, features]
    dist = head(features, one_member=True)
    mean = head.mean(features)[0].detach()
    std = torch.tensor([1.0, math.exp(-1.0), math.exp(0.5)])
    action = torch.tensor([[0.5, -2.0, 3.0], [0.0, 0.1, -0.4]])
    # log N(a; mu, sigma) = -(a - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2, summed over dims
    by_hand = (
        -((action - mean) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)
    ).sum(-1)
    assert dist.log_prob(action).tolist() == pytest.approx(by_hand.tolist(), rel=1e-5)
    # H = sum(1/2 + log(2 pi)/2 + log sigma) = 3 * 1.4189385 + (0 - 1 + 0.5)
    entropy = 3 * (0.5 + 0.5 * math.log(2 * math.pi)) - 0.5
    assert dist.entropy().tolist() == pytest.approx([entropy, entropy], rel=1e-6)
    # log std is a parameter of its own, independent of the state
    assert [name for name, _ in head.named_parameters()] == ["log_std", "mean.weight", "mean.bias"]


def test_normalize_observation_lunarlander_bounds() -> None:
    space = gym.make("LunarLander-v3").observation_space  # low/high: +-2.5, +-10, +-2pi, 0..1
    obs = torch.tensor([[0.0, 1.25, -5.0, 10.0, math.pi, 0.0, 1.0, 0.0]])
    expected = [0.5, 0.75, 0.25, 1.0, 0.75, 0.5, 1.0, 0.0]
    assert normalize_observation(obs, space)[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_normalize_observation_images_and_the_rest() -> None:
    image = gym.spaces.Box(0, 255, (2, 2), np.uint8)
    pixels = torch.tensor([[0, 51], [255, 102]], dtype=torch.uint8)
    scaled = normalize_observation(pixels, image).flatten().tolist()
    assert scaled == pytest.approx([0, 0.2, 1, 0.4])
    unbounded = gym.spaces.Box(-np.inf, np.inf, (2,))
    obs = torch.tensor([3.0, -7.0])
    assert normalize_observation(obs, unbounded) is obs
    assert normalize_observation(torch.tensor([5]), gym.spaces.Discrete(9)).tolist() == [5]


def test_images_are_scaled_once() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = MODELS.get("shared")(space, gym.spaces.Discrete(6), [8], "relu", obs_norm="bounds")
    seen = []
    model.trunk[0].net[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model(torch.full((1, 4, 84, 84), 255, dtype=torch.uint8))
    assert seen[0].max().item() == 1.0  # 255 / 255, not 1 / 255


def test_running_statistics_match_numpy() -> None:
    norm = RunningNormalizer((2,))
    data = np.random.default_rng(0).normal([3.0, -1.0], [2.0, 0.5], size=(300, 2))
    for batch in np.split(data, 6):
        norm.update(torch.as_tensor(batch)[None])  # [members, batch, 2]
    assert norm.mean[0].tolist() == pytest.approx(data.mean(0).tolist(), rel=1e-6)
    assert norm.var[0].tolist() == pytest.approx(data.var(0).tolist(), rel=1e-6)
    out = norm(torch.as_tensor(data[:1], dtype=torch.float32)[None])
    expected = (data[0] - data.mean(0)) / np.sqrt(data.var(0) + 1e-8)
    assert out[0, 0].tolist() == pytest.approx(expected.tolist(), rel=1e-4)


def test_running_statistics_are_saved_and_frozen_at_evaluation(tmp_path) -> None:
    cfg = make_cfg("env=halfcheetah", "total_steps=300", "algo.num_envs=2", *QUIET)
    assert cfg.env.obs_norm == "running"
    run(cfg, out_dir=tmp_path)
    state = load_torch(tmp_path / "model.pt")
    assert state["obs_norm.count"].item() == pytest.approx(2 * 150, abs=1)
    assert state["obs_norm.mean"].abs().sum() > 0
    env = gym.make("HalfCheetah-v5")
    model = build_model(cfg, env.observation_space, env.action_space)
    model.load_member_state_dict(0, state)
    returns = evaluate_policy(model, cfg, episodes=1, deterministic=True, seed=0)
    assert len(returns) == 1 and math.isfinite(returns[0])
    assert torch.equal(model.obs_norm.mean[0], state["obs_norm.mean"])  # not updated by evaluation


def test_logged_returns_stay_raw_under_reward_wrappers(tmp_path) -> None:
    from tests.test_cli import scalars

    cfg = make_cfg("env.normalize_reward=true", "env.clip_reward=0.01", "total_steps=600", *QUIET)
    run(cfg, out_dir=tmp_path)
    tags = scalars(tmp_path)
    returns = [v for _, v in tags["charts/episodic_return"]]
    lengths = [v for _, v in tags["charts/episodic_length"]]
    assert returns and returns == lengths  # CartPole pays 1 per step: raw return = length


def test_box_actions_are_clipped_only_when_stepping(monkeypatch) -> None:
    """The action an env receives is clipped to its bounds (Pendulum's torque: +-2), in the
    vector env of the on-policy trainers and the single env of the per-episode trainer and
    evaluation. Read where Pendulum receives it: Pendulum clips the torque itself, so its
    next observation would be the same with or without acexp's clipping."""
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    received = []
    step = PendulumEnv.step
    monkeypatch.setattr(
        PendulumEnv, "step", lambda self, u: received.append(np.array(u)) or step(self, u)
    )
    cfg = make_cfg("env.id=Pendulum-v1").env
    make_vector_env(cfg, 1, seed=3).step(np.array([[7.5]], dtype=np.float32))
    make_env(cfg, seed=3).step(np.array([-7.5], dtype=np.float32))
    make_env(cfg, seed=3).step(np.array([1.25], dtype=np.float32))  # inside: as it is
    assert [u.tolist() for u in received] == [[2.0], [-2.0], [1.25]]


def test_atari_preprocessing_and_frame_stack_by_config() -> None:
    envs = make_vector_env(make_cfg("env=pong").env, 1, seed=0)
    space = envs.single_observation_space
    assert space.shape == (4, 84, 84) and space.dtype == np.uint8
    envs.close()


def test_evaluation_is_deterministic_for_a_seed() -> None:
    cfg = make_cfg()
    env = gym.make("CartPole-v1")
    model = build_model(cfg, env.observation_space, env.action_space)
    first = evaluate_policy(model, cfg, episodes=2, deterministic=True, seed=5)
    assert first == evaluate_policy(model, cfg.env, episodes=2, deterministic=True, seed=5)
    assert len(first) == 2 and all(r >= 1 for r in first)


@pytest.mark.parametrize(
    ("obs_space", "act_space", "message"),
    [
        (
            gym.spaces.Dict({"x": gym.spaces.Discrete(2)}),
            gym.spaces.Discrete(2),
            "unsupported observation space Dict",
        ),
        (gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiBinary(4), "unsupported action space Multi"),
    ],
)
def test_unsupported_spaces_name_the_space_and_what_is_supported(
    obs_space, act_space, message
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        MODELS.get("shared")(obs_space, act_space, [8], "tanh")
    assert "supported: " in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "module", "extra"),
    [
        ("halfcheetah", "mujoco", "mujoco"),
        ("lunarlander", "Box2D", "box2d"),
        ("pong", "ale_py", "atari"),
    ],
)
def test_missing_extra_names_the_pip_extra(env: str, module: str, extra: str, monkeypatch) -> None:
    # Simulate the module not being installed: None in sys.modules makes `import` fail, and
    # gymnasium's env modules that already imported it are dropped so they import again.
    monkeypatch.setitem(sys.modules, module, None)
    for name in [
        n for n in sys.modules if n.startswith(("gymnasium.envs.mujoco", "gymnasium.envs.box2d"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    cfg = make_cfg(f"env={env}").env
    with pytest.raises(MissingExtraError, match=rf"pip install 'acexp\[{extra}\]'"):
        make_vector_env(cfg, 1, seed=0)


def test_cli_unsupported_space_is_one_line(tmp_path) -> None:
    from tests.test_cli import acexp

    result = acexp("env.id=Blackjack-v1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("acexp: error: unsupported observation space Tuple(")
    assert "supported: Discrete" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_missing_mujoco_names_the_extra(tmp_path) -> None:
    from tests.conftest import acexp_without

    # mujoco made unimportable before anything loads it, then `python -m acexp`
    result = acexp_without(
        ["mujoco"], "env=halfcheetah", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "acexp: error: env.id=HalfCheetah-v5 needs an optional dependency: "
        "pip install 'acexp[mujoco]'"
    )


def test_episodic_trainer_updates_running_statistics(tmp_path) -> None:
    cfg = make_cfg("algo=episodic", "env.obs_norm=running", "total_steps=50", *QUIET)
    metrics = run(cfg, out_dir=tmp_path)
    assert load_torch(tmp_path / "model.pt")["obs_norm.count"].item() == pytest.approx(
        metrics["env_steps"], abs=1e-6
    )


def test_async_vector_envs_train_as_sync_ones_do(tmp_path, monkeypatch) -> None:
    """Each sub-env in its own process (env.vectorization=async) sees the same seeds and
    actions as in this one (sync): the same episodes, so the same run to the last number."""
    from tests.test_resume import curves, learning_figures

    waited = []  # the steps that async sub-envs answered
    step_wait = gym.vector.AsyncVectorEnv.step_wait
    monkeypatch.setattr(
        gym.vector.AsyncVectorEnv,
        "step_wait",
        lambda self, *a, **k: waited.append(1) or step_wait(self, *a, **k),
    )
    common = ("algo.num_envs=4", "total_steps=1500", "stop_on_solve=false", *QUIET)
    for mode in ("sync", "async"):
        cfg = make_cfg(f"env.vectorization={mode}", *common)
        assert run(cfg, out_dir=tmp_path / mode)["status"] == "completed"
    assert learning_figures(tmp_path / "async") == learning_figures(tmp_path / "sync")
    assert curves(tmp_path / "async") == curves(tmp_path / "sync")
    assert len(waited) >= 1500 // 4  # the async run stepped its sub-env processes
    assert learning_figures(tmp_path / "sync")["episodes"] > 4  # episodes ended and restarted
