"""The Pong preset against CleanRL's ppo_atari.py on the same inputs, where the two agree.

CleanRL's side is written out here from its definitions (its Atari wrappers, its Agent, its
loss, its GAE loop and its learning-rate schedule), so that each test compares acexp's own
code with that reference on identical frames, weights, minibatches and rollouts. Where the
two differ by design, the test says so and compares what remains: no-op starts and the fire
reset are left out of the frame comparison, the first stacks of an episode are padded
differently (zeros against the first frame repeated), and acexp's value loss has no 1/2.
"""

import copy
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical

import acexp.algos.ppo
import acexp.envs.make
from acexp.algos.losses import batch_mean, gae, normalize, total_loss
from acexp.algos.ppo import clipped_surrogate_loss, clipped_value_loss
from acexp.envs.make import make_vector_env
from acexp.evaluate import load_policy
from acexp.models.build import build_model
from acexp.optim.modes import apply_update, build_optimizers
from acexp.run import run
from benchmarks.cleanrl_pong import view
from tests.conftest import make_cfg
from tests.test_cli import scalars

# CleanRL's ppo_atari.py defaults (its Args), which the preset copies.
CLEANRL = {
    "num_envs": 8, "n_steps": 128, "num_minibatches": 4, "n_epochs": 4, "gamma": 0.99,
    "gae_lambda": 0.95, "ent_coef": 0.01, "clip_range": 0.1, "clip_range_vf": 0.1,
    "normalize_advantage": True, "anneal_lr": True, "target_kl": None,
}  # fmt: skip
CLEANRL_OPTIM = {"name": "adam", "lr": 2.5e-4, "eps": 1e-5, "max_grad_norm": 0.5}
CLEANRL_VF_COEF = 0.5  # times the 1/2 inside CleanRL's value loss
PONG_OBS = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
PONG_ACTIONS = gym.spaces.Discrete(6)
# The most a frame differs: CleanRL max-pools the two last RGB frames and then converts to
# gray, ale-py converts to gray and then max-pools; a paddle's moving edge comes out 16 apart.
POOL_ORDER_GRAY_LEVELS = 16


def test_the_pong_preset_has_cleanrls_hyperparameters() -> None:
    cfg = make_cfg("+experiment=pong_ppo")
    assert {key: cfg.algo[key] for key in CLEANRL} == CLEANRL
    assert {key: cfg.optim[key] for key in CLEANRL_OPTIM} == CLEANRL_OPTIM
    # CleanRL's nominal 0.5 on acexp's unhalved squared error: rl-baselines3-zoo's weight,
    # twice CleanRL's, as the preset and docs/envs.md say
    assert cfg.algo.vf_coef == CLEANRL_VF_COEF
    assert cfg.optim.mode == "joint" and cfg.arch.name == "shared"
    assert list(cfg.arch.hidden_sizes) == [512] and cfg.arch.activation == "relu"
    assert cfg.arch.init == "orthogonal" and cfg.env.clip_reward == 1
    assert cfg.env.atari and cfg.env.frame_stack == 4 and cfg.env.id == "PongNoFrameskip-v4"


class CleanRLPong(gym.Wrapper):
    """CleanRL's Pong preprocessing without its no-op starts and fire reset: the action
    repeated 4 times, rewards summed and clipped to their sign, the last two RGB frames
    max-pooled, resized to 84x84 (area interpolation), made gray, the last 4 stacked (the
    first frame repeated at a reset). Its life-loss wrapper does nothing here: Pong has none.
    """

    def __init__(self) -> None:
        super().__init__(gym.make("PongNoFrameskip-v4"))

    def _frame(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        small = cv2.resize(rgb, (84, 84), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.frames = [self._frame(obs)] * 4
        return np.stack(self.frames), info

    def step(self, action: int):
        total, last_two = 0.0, []
        for _ in range(4):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            last_two = [*last_two[-1:], obs]
            if terminated or truncated:
                break
        self.frames = [*self.frames[1:], self._frame(np.maximum(*last_two))]
        return np.stack(self.frames), float(np.sign(total)), terminated, truncated, info


def test_pong_frames_rewards_and_ends_match_cleanrls(monkeypatch: pytest.MonkeyPatch) -> None:
    # no-op starts draw from each side's own generator: without them, the same emulator
    monkeypatch.setattr(acexp.envs.make, "ATARI_NOOP_MAX", 0)
    envs = make_vector_env(make_cfg("+experiment=pong_ppo").env, 1, seed=0)
    reference = CleanRLPong()
    ours, theirs = envs.reset(seed=0)[0][0], reference.reset(seed=0)[0]
    assert reference.unwrapped.ale.lives() == 0  # CleanRL's life-loss terminal never fires
    # the first frame itself, but for rounding: CleanRL resizes RGB, then makes it gray
    assert np.abs(ours[3].astype(int) - theirs[3]).max() <= 1
    rng, scored = np.random.default_rng(0), 0
    for step in range(300):
        action = int(rng.integers(6))
        obs, reward, terminated, truncated, _ = envs.step([action])
        frames, their_reward, their_terminated, their_truncated, _ = reference.step(action)
        assert (reward[0], terminated[0], truncated[0]) == (
            their_reward,
            their_terminated,
            their_truncated,
        )
        scored += reward[0] != 0
        newest = np.abs(obs[0, 3].astype(int) - frames[3])
        assert newest.max() <= POOL_ORDER_GRAY_LEVELS and (newest > 0).mean() < 0.03
        if step >= 3:  # past the padding (acexp: zeros; CleanRL: the first frame), the stack
            assert np.abs(obs[0].astype(int) - frames).max() <= POOL_ORDER_GRAY_LEVELS
    assert scored >= 2  # the comparison went through points won or lost, not only rallies
    envs.close(), reference.close()


class CleanRLAgent(nn.Module):
    """CleanRL's Agent: Nature CNN on frames / 255, a 512-unit layer, two linear heads."""

    def __init__(self) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, 512),
            nn.ReLU(),
        )  # fmt: skip
        self.actor, self.critic = nn.Linear(512, 6), nn.Linear(512, 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor):
        hidden = self.network(obs / 255.0)
        dist = Categorical(logits=self.actor(hidden))
        return dist.log_prob(actions), dist.entropy(), self.critic(hidden).view(-1)


@pytest.fixture(scope="module")
def pong_pair() -> tuple[torch.nn.Module, CleanRLAgent]:
    """The preset's model and a CleanRL Agent holding the very same weights (built once:
    orthogonal initialisation of the 3136 x 512 layer takes a while; tests that step them
    take copies)."""
    torch.manual_seed(0)
    model = build_model(make_cfg("+experiment=pong_ppo"), PONG_OBS, PONG_ACTIONS)
    agent = CleanRLAgent()
    theirs = [m for m in agent.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    ours = [(k, v[0]) for k, v in model.state_dict().items()]  # registration order, one member
    weights = [(k, v) for k, v in ours if k.endswith("weight")]
    assert [tuple(v.shape) for _, v in weights] == [tuple(m.weight.shape) for m in theirs]
    biases = dict(ours)
    with torch.no_grad():
        for module, (key, weight) in zip(theirs, weights, strict=True):
            module.weight.copy_(weight)
            module.bias.copy_(biases[key.removesuffix("weight") + "bias"])
    return model, agent


def test_pong_network_is_cleanrls_agent_with_its_initialisation(pong_pair) -> None:
    model, agent = pong_pair
    gains = [2**0.5] * 4 + [0.01, 1.0]  # three convolutions, the 512 layer; policy, value
    for module, gain in zip(
        [m for m in agent.modules() if isinstance(m, nn.Conv2d | nn.Linear)], gains, strict=True
    ):
        rows = module.weight.flatten(1)  # fewer rows than inputs: orthonormal rows times gain
        gram = rows @ rows.T
        assert torch.allclose(gram, gain**2 * torch.eye(len(rows)), atol=1e-5 * gain**2)
        assert not module.bias.any()
    obs = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 6, (16,))
    with torch.no_grad():  # same flatten order, widths, scaling and heads: the same numbers
        ours = model.evaluate_actions(obs, actions)
        theirs = agent(obs.float(), actions)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_minibatch_step_is_cleanrls_with_its_value_loss_halving(pong_pair) -> None:
    """acexp's value loss is the plain squared error; CleanRL's has a 1/2 in front, so its
    vf_coef 0.5 is acexp's 0.25. With that, one clipped Adam step moves both alike."""
    cfg = make_cfg("+experiment=pong_ppo")
    model, agent = (copy.deepcopy(m) for m in pong_pair)
    g = torch.Generator().manual_seed(1)
    size = 32
    obs = torch.randint(0, 256, (size, 4, 84, 84), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (size,), generator=g)
    with torch.no_grad():
        acted_log_prob, _, acted_value = agent(obs.float(), actions)
    old_log_prob = acted_log_prob + 0.1 * torch.randn(size, generator=g)
    old_value = acted_value + 0.2 * torch.randn(size, generator=g)
    advantages = 3 * torch.randn(size, generator=g) + 1
    returns = torch.randn(size, generator=g)
    clip, ent_coef = cfg.algo.clip_range, cfg.algo.ent_coef

    # CleanRL's minibatch loss, as its update loop writes it
    log_prob, entropy, value = agent(obs.float(), actions)
    ratio = (log_prob - old_log_prob).exp()
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
    clipped = old_value + torch.clamp(value - old_value, -clip, clip)
    v_loss = 0.5 * torch.max((value - returns) ** 2, (clipped - returns) ** 2).mean()
    their_loss = pg_loss - ent_coef * entropy.mean() + CLEANRL_VF_COEF * v_loss
    their_loss.backward()
    nn.utils.clip_grad_norm_(agent.parameters(), CLEANRL_OPTIM["max_grad_norm"])
    torch.optim.Adam(agent.parameters(), lr=CLEANRL_OPTIM["lr"], eps=CLEANRL_OPTIM["eps"]).step()

    optimizers = build_optimizers(model, cfg.optim)
    log_prob, entropy, value = model.evaluate_actions(obs, actions)
    bounds = (1 - clip, 1 + clip)
    actor, _ = clipped_surrogate_loss(log_prob, old_log_prob, normalize(advantages), bounds)
    critic = clipped_value_loss(value, old_value, returns, cfg.algo.clip_range_vf)
    assert critic.item() == pytest.approx(2 * v_loss.item(), rel=1e-5)
    loss = total_loss(actor, critic, batch_mean(entropy), CLEANRL_VF_COEF / 2, ent_coef)
    assert loss.item() == pytest.approx(their_loss.item(), rel=1e-5)
    apply_update(loss, optimizers, cfg.optim.max_grad_norm)
    moved = [(k, v[0]) for k, v in model.state_dict().items() if k.endswith("weight")]
    theirs = [m.weight for m in agent.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    for (_, ours), their in zip(moved, theirs, strict=True):
        assert torch.allclose(ours, their, atol=1e-6)


def test_gae_is_cleanrls_recursion_on_a_rollout_with_episode_ends() -> None:
    """CleanRL flags dones[t] when obs[t] starts a new episode (and next_done after the
    rollout); acexp flags the step that ended it. Same rollout, same advantages."""
    rng = np.random.default_rng(0)
    steps, envs, gamma, lam = 16, 3, 0.99, 0.95
    rewards = rng.choice([-1.0, 0.0, 1.0], size=(steps, envs)).astype(np.float32)
    values = rng.normal(size=(steps, envs)).astype(np.float32)
    next_value = rng.normal(size=envs).astype(np.float32)
    starts = rng.random((steps + 1, envs)) < 0.15  # dones of CleanRL's rollout, then next_done
    theirs, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(steps)):
        nonterminal = 1.0 - starts[t + 1]
        following = next_value if t == steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * following * nonterminal - values[t]
        theirs[t] = last = delta + gamma * lam * nonterminal * last
    ended = starts[1:]  # the step that ended an episode, as acexp records it
    next_values = np.concatenate((values[1:], next_value[None]))
    ours, returns = gae(rewards, values, next_values, ended, ended, gamma, lam)
    assert np.allclose(ours.numpy(), theirs, atol=1e-5)
    assert np.allclose(returns.numpy(), theirs + values, atol=1e-5)


def test_lr_annealing_and_the_minibatch_loop_follow_cleanrl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without episode ends (Pendulum with a long time limit) every rollout step counts:
    the learning rate of update i is lr * (1 - (i - 1) / updates), CleanRL's; each epoch
    visits the whole batch once, in a new order, in num_minibatches equal parts."""
    minibatches = []
    original = acexp.algos.ppo.clipped_surrogate_loss

    def record(new, old, *args):
        minibatches.append(old.detach().reshape(-1).clone())
        return original(new, old, *args)

    monkeypatch.setattr(acexp.algos.ppo, "clipped_surrogate_loss", record)
    envs, n_steps, parts, epochs, updates = 2, 32, 4, 3, 4
    batch = envs * n_steps
    cfg = make_cfg(
        "algo=ppo", "env.id=Pendulum-v1", "+env.kwargs.max_episode_steps=100000",
        f"algo.num_envs={envs}", f"algo.n_steps={n_steps}", f"algo.num_minibatches={parts}",
        f"algo.n_epochs={epochs}", f"total_steps={updates * batch}", f"log.every_steps={batch}",
        "stop_on_solve=false", "arch.hidden_sizes=[8]", "log.progress=false",
    )  # fmt: skip
    run(cfg, out_dir=tmp_path)
    lrs = scalars(tmp_path)["train/lr"]
    expected = [cfg.optim.lr * (1 - (i - 1) / updates) for i in range(1, updates + 1)]
    assert [step for step, _ in lrs] == [i * batch for i in range(1, updates + 1)]
    assert [lr for _, lr in lrs] == pytest.approx(expected, rel=1e-6)
    assert len(minibatches) == updates * epochs * parts
    assert all(len(m) == batch // parts for m in minibatches)
    per_epoch = [torch.cat(minibatches[i : i + parts]) for i in range(0, len(minibatches), parts)]
    for update in range(updates):
        epoch_orders = per_epoch[update * epochs : (update + 1) * epochs]
        whole = epoch_orders[0].sort().values
        assert len(whole.unique()) == batch  # distinct log-probs: each transition once
        for order in epoch_orders:
            assert torch.equal(order.sort().values, whole)  # the whole batch, once
        assert not torch.equal(epoch_orders[0], epoch_orders[1])  # reshuffled each epoch


def test_cleanrls_saved_agent_in_a_run_directory_plays_as_cleanrls_agent(tmp_path: Path) -> None:
    """benchmarks/cleanrl_pong.py's `view`: the state dict CleanRL's script leaves, put into an
    acexp run directory, is loaded by `acexp.evaluate` into a model that acts as that agent."""
    cfg = make_cfg("+experiment=pong_ppo")
    torch.manual_seed(0)
    template = tmp_path / "pong_run"
    (template / ".hydra").mkdir(parents=True)
    torch.save(build_model(cfg, PONG_OBS, PONG_ACTIONS).member_state_dict(0), template / "model.pt")
    agent = CleanRLAgent()  # PyTorch's initialisation: weights unlike the preset's
    cleanrl_run = tmp_path / "cleanrl_run"
    cleanrl_run.mkdir()
    torch.save(agent.state_dict(), cleanrl_run / "agent.pt")
    view(cleanrl_run, template, tmp_path / "view")
    spaces = SimpleNamespace(observation_space=PONG_OBS, action_space=PONG_ACTIONS)
    model, source = load_policy(tmp_path / "view", cfg, None, spaces)
    assert source == tmp_path / "view" / "model.pt"
    obs = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 6, (16,))
    with torch.no_grad():
        ours, theirs = model.evaluate_actions(obs, actions), agent(obs.float(), actions)
    for a, b in zip(ours, theirs, strict=True):  # log-probabilities, entropies, values
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(SystemExit, match="exists"):  # never writes over a directory
        view(cleanrl_run, template, tmp_path / "view")
