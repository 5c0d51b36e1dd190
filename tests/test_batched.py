"""Batched runs: each member of a batch is its own run, exactly.

A batch of K members must update each member's weights as K single models updated apart
would; each member writes its own run directory, ends on its own (solved, budget, failure),
and resumes as a single run.
"""

import json
import math
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from acexp.algos.base import Trainer
from acexp.algos.episodic import Episodes, EpisodicTrainer
from acexp.algos.losses import actor_loss, batch_mean, critic_loss, normalize
from acexp.models import SharedActorCritic, UnsharedActorCritic
from acexp.models.actor_critic import stack_members
from acexp.models.build import build_member_model, build_model
from acexp.optim.modes import apply_update, build_optimizers
from acexp.run import run, train_members
from acexp.sweeps.batch import batch_key, group_batches, member_keys, run_batch
from tests.conftest import make_cfg
from tests.test_cli import scalars

OBS, ACT = gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)
QUIET = ("log.progress=false",)


def optim_cfg(name: str, mode: str, lr: float, max_grad_norm: float | None):
    return OmegaConf.create(
        {"mode": mode, "name": name, "lr": lr, "actor_lr": lr, "critic_lr": 2 * lr,
         "max_grad_norm": max_grad_norm, "eps": 1e-5, "momentum": 0.9}
    )  # fmt: skip


def a2c_loss(model: torch.nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """An A2C-like loss per member ([members]) on fixed data [members, batch, ...]."""
    log_prob, entropy, value = model.evaluate_actions(obs, actions)
    advantage, target = obs[..., 0], obs[..., 1] * 3
    return (
        actor_loss(log_prob, advantage)
        + 0.5 * critic_loss(value, target)
        - 0.01 * batch_mean(entropy)
    )


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("mode", ["joint", "separate"])
@pytest.mark.parametrize("arch", [SharedActorCritic, UnsharedActorCritic])
def test_a_batch_updates_each_member_as_its_single_model(name: str, mode: str, arch) -> None:
    # three members: different learning rates, clipping at two bounds and not at all
    settings = [(1e-2, 0.5), (3e-3, None), (1e-3, 0.05)]
    singles = []
    for seed in range(len(settings)):
        torch.manual_seed(seed)
        singles.append(arch(OBS, ACT, [16, 16], "tanh"))
    batch = stack_members(singles, arch(OBS, ACT, [16, 16], "tanh", members=len(settings)))
    cfgs = [optim_cfg(name, mode, lr, clip) for lr, clip in settings]
    batch_optimizers = build_optimizers(batch, cfgs)
    bounds = torch.tensor([[c or math.inf] for _, c in settings])
    single_optimizers = [
        build_optimizers(model, cfg) for model, cfg in zip(singles, cfgs, strict=True)
    ]
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        obs = torch.randn(len(settings), 32, 4, generator=generator)
        actions = torch.randint(0, 2, (len(settings), 32), generator=generator)
        norms = apply_update(a2c_loss(batch, obs, actions), batch_optimizers, bounds)
        for k, (model, optimizers) in enumerate(zip(singles, single_optimizers, strict=True)):
            single = apply_update(a2c_loss(model, obs[k], actions[k]), optimizers, settings[k][1])
            for opt, norm in single.items():
                assert norms[opt][k].item() == pytest.approx(norm.item(), rel=1e-5)
    for k, model in enumerate(singles):
        member = batch.member_state_dict(k)
        for key, value in model.member_state_dict(0).items():
            # atol: RMSprop divides a near-zero gradient by its eps (1e-5), which magnifies the
            # rounding differences of batched and single matmuls
            torch.testing.assert_close(member[key], value, rtol=1e-5, atol=1e-5, msg=key)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_a_step_leaves_the_members_it_does_not_mark_as_they_were(name: str) -> None:
    """Members that update at their own times (the per-episode trainer's) match single models
    updated only then: Adam's step count, the moments and the weights of a member left out
    of a step do not move."""
    steps_of = [{0, 1, 2, 3, 4, 5}, {1, 3, 5}, {0, 4}]
    singles = []
    for seed in range(len(steps_of)):
        torch.manual_seed(seed)
        singles.append(SharedActorCritic(OBS, ACT, [16], "tanh"))
    batch = stack_members(singles, SharedActorCritic(OBS, ACT, [16], "tanh", members=3))
    cfgs = [optim_cfg(name, "joint", lr, 0.5) for lr in (1e-2, 3e-3, 1e-3)]
    batch_optimizers = build_optimizers(batch, cfgs)
    single_optimizers = [build_optimizers(m, c) for m, c in zip(singles, cfgs, strict=True)]
    generator = torch.Generator().manual_seed(0)
    for step in range(6):
        obs = torch.randn(3, 32, 4, generator=generator)
        actions = torch.randint(0, 2, (3, 32), generator=generator)
        stepping = [step in steps for steps in steps_of]
        apply_update(a2c_loss(batch, obs, actions), batch_optimizers, 0.5, stepping)
        for k in np.flatnonzero(stepping):
            apply_update(a2c_loss(singles[k], obs[k], actions[k]), single_optimizers[k], 0.5)
    (joint,) = batch_optimizers
    for k, model in enumerate(singles):
        member = batch.member_state_dict(k)
        for key, value in model.member_state_dict(0).items():
            torch.testing.assert_close(member[key], value, rtol=1e-5, atol=1e-5, msg=key)
        own, single = joint.member_state_dict(k)["state"][0], single_optimizers[k][0]
        for key, value in single.member_state_dict(0)["state"][0].items():
            torch.testing.assert_close(own[key], value, rtol=1e-5, atol=1e-6, msg=key)
        if name == "adam":
            assert own["step"].item() == len(steps_of[k])


def test_each_member_is_clipped_by_its_own_gradient_norm() -> None:
    """loss_k = c_k * (sum of member k's parameters): each gradient element is c_k, so the
    member's norm is c_k * sqrt(P) and clipping scales it to max_grad_norm."""
    model = SharedActorCritic(OBS, ACT, [8], "tanh", members=2)
    (joint,) = build_optimizers(model, [optim_cfg("sgd", "joint", 1.0, 1.0)] * 2)
    size = joint.flat.row
    coefs = torch.tensor([0.01, 2.0])
    loss = coefs * torch.stack([sum(p[k].sum() for p in model.parameters()) for k in (0, 1)])
    joint.optimizer.param_groups[0]["lr"] = 0.0  # only the clipping is under test
    norms = apply_update(loss, [joint], 1.0)["joint"]
    assert norms.tolist() == pytest.approx((coefs * math.sqrt(size)).tolist(), rel=1e-5)
    grads = joint.flat.rows(joint.flat.grad)
    # member 0 (norm 0.01 sqrt(P) < 1) is left alone; member 1 is scaled to norm 1
    assert grads[0].unique().tolist() == pytest.approx([0.01])
    assert torch.linalg.vector_norm(grads[1]).item() == pytest.approx(1.0, rel=1e-5)


def test_masked_losses_equal_the_losses_of_each_members_own_steps() -> None:
    """A member whose episode was shorter is padded; its losses are those of its own steps."""
    values = torch.tensor([[0.5, -1.0, 2.0, 0.25], [1.0, 3.0, 0.0, 0.0]])
    returns = torch.tensor([[1.0, 0.0, 1.5, 2.0], [2.0, 1.0, 9.0, 9.0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    normalized = normalize(returns, 1e-8, mask)
    for k, n in enumerate((4, 2)):
        own = returns[k, :n]
        torch.testing.assert_close(normalized[k, :n], (own - own.mean()) / (own.std() + 1e-8))
        for reduction in ("mean", "sum"):
            got = critic_loss(values, returns, "smooth_l1", reduction, mask)[k]
            want = critic_loss(values[k, :n], returns[k, :n], "smooth_l1", reduction)
            assert got.item() == pytest.approx(want.item())
    # by hand, member 1: returns (2, 1) normalise to (1/sqrt(2), -1/sqrt(2)) [unbiased std]
    assert normalized[1, :2].tolist() == pytest.approx([2**-0.5, -(2**-0.5)], rel=1e-6)


def test_batch_key_groups_runs_that_differ_only_in_member_keys() -> None:
    runs = [
        make_cfg("seed=0"),
        make_cfg("seed=1", "optim.lr=1e-3", "optim.max_grad_norm=null", "algo.gamma=0.9"),
        make_cfg("arch=unshared"),
        make_cfg("algo.num_envs=8"),
        make_cfg("algo=ppo", "algo.target_kl=0.02"),
        make_cfg("algo=ppo", "algo.target_kl=0.02", "seed=1"),
    ]
    assert batch_key(runs[0]) == batch_key(runs[1])
    assert len({batch_key(cfg) for cfg in runs}) == 5  # target_kl runs train alone
    assert group_batches(runs, 8) == [[0, 1], [2], [3], [4], [5]]
    assert group_batches([runs[0]] * 5, 2) == [[0, 1], [2, 3], [4]]
    # at least one batch per process, where a group is large enough to split
    assert group_batches([runs[0]] * 5, 64, 2) == [[0, 1, 2], [3, 4]]
    assert group_batches(runs[:3], 64, 8) == [[0], [1], [2]]
    # the per-member scalars, as docs/sweeps.md lists them (the schema marks them member=True)
    assert set(member_keys(runs[4])) == {
        "seed", "total_steps", "stop_on_solve", "objective", "optim.lr", "optim.actor_lr",
        "optim.critic_lr", "optim.max_grad_norm", "algo.gamma", "algo.gae_lambda",
        "algo.ent_coef", "algo.vf_coef", "algo.clip_range", "log.every_steps",
        "log.console_every_seconds", "log.progress",
    }  # fmt: skip
    assert set(member_keys(runs[4])) - set(member_keys(runs[0])) == {"algo.clip_range"}  # ppo


def member_dirs(tmp_path: Path, count: int) -> list[Path]:
    return [tmp_path / f"member{k}" for k in range(count)]


@pytest.mark.parametrize(
    "overrides",
    [
        ("algo=a2c", "arch=shared", "optim=joint"),
        ("algo=ppo", "arch=unshared", "optim=separate", "algo.n_steps=32"),
        ("algo=episodic", "arch=unshared", "optim=separate"),
        ("env=cliffwalking", "algo=ppo", "algo.n_steps=32"),  # one-hot observations
        ("env=halfcheetah", "algo=ppo", "algo.num_envs=2", "algo.n_steps=32"),  # Gaussian, running
        ("env=halfcheetah", "algo=episodic", "env.obs_norm=running"),
        ("env=pong", "algo=ppo", "algo.num_envs=2", "algo.n_steps=16", "arch.hidden_sizes=[32]"),
    ],
)
def test_every_trainer_and_space_trains_as_a_batch(tmp_path: Path, overrides) -> None:
    steps = "total_steps=64" if "env=pong" in overrides else "total_steps=400"
    cfgs = [make_cfg(*overrides, steps, f"seed={k}", f"optim.lr={lr}", *QUIET)
            for k, lr in enumerate((3e-4, 1e-3))]  # fmt: skip
    results = run_batch(cfgs, member_dirs(tmp_path, 2))
    for k, metrics in enumerate(results):
        out = tmp_path / f"member{k}"
        assert metrics["status"] == "completed", metrics
        assert metrics["env_steps"] >= cfgs[k].total_steps
        assert json.loads((out / "metrics.json").read_text()) == metrics
        assert (out / "model.pt").is_file() and list((out / "checkpoints").glob("step_*.pt"))
        assert list(out.glob("events.out.tfevents.*"))
    first, second = (torch.load(tmp_path / f"member{k}/model.pt") for k in (0, 1))
    assert any(not torch.equal(first[n], second[n]) for n in first)  # two runs, not one


@pytest.mark.parametrize("arch", ["shared", "unshared"])
def test_a_member_starts_from_the_weights_of_its_single_run(arch: str) -> None:
    """A single run seeds the generators, then draws its weights (acexp.run); member k
    draws exactly those of the single run with its seed."""
    env = gym.make("CartPole-v1")
    spaces = env.observation_space, env.action_space
    cfgs = [make_cfg(f"arch={arch}", f"seed={seed}") for seed in (3, 7, 11)]
    batch = build_member_model(cfgs, *spaces)
    for k, cfg in enumerate(cfgs):
        torch.manual_seed(cfg.seed)
        single = build_model(cfg, *spaces).member_state_dict(0)
        member = batch.member_state_dict(k)
        assert all(torch.equal(member[name], single[name]) for name in single)


def test_episodic_members_update_on_their_own_episodes_as_single_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member of a per-episode batch updates once per episode of its own, on its own
    clock (some updates leave out members still playing, which rounds of one episode each
    would not), and ends with the weights of a single run that updates on the same episodes
    from the same initial weights."""
    played: dict[int, list] = {}  # member -> its episodes: observations, actions, rewards
    left_out = []  # per update: how many members still training it left out
    train = EpisodicTrainer.train

    def recording_train(self: EpisodicTrainer, members: np.ndarray) -> None:
        left_out.append(int((self.active & ~members).sum()))
        for k in np.flatnonzero(members):
            start, rewards = int(self.episodes.start[k]), list(self.episodes.rewards[k])
            observations, actions = self.episodes.since(start)
            episode = observations[k : k + 1, : len(rewards)], actions[k : k + 1, : len(rewards)]
            played.setdefault(int(k), []).append((*episode, rewards))
        train(self, members)

    monkeypatch.setattr(EpisodicTrainer, "train", recording_train)
    cfgs = [make_cfg("algo=episodic", f"seed={k}", f"optim.lr={lr}", "total_steps=2500", *QUIET)
            for k, lr in enumerate((3e-2, 3e-2, 1e-4))]  # fmt: skip
    batch = train_members(cfgs, member_dirs(tmp_path, 3))
    updates = [len(played[k]) for k in range(3)]
    assert sum(left_out) > len(left_out) / 2, left_out
    for k, cfg in enumerate(cfgs):
        lengths = [len(rewards) for *_, rewards in played[k]]
        assert sum(lengths) == batch.env_steps[k] >= 2500
        assert updates[k] - batch.members[k].stats.episodes in (0, 1)  # and the budget's end
        monkeypatch.setattr(EpisodicTrainer, "train", train)
        single = EpisodicTrainer([cfg], [tmp_path / f"single{k}"])
        single.model.load_member_state_dict(0, batch.members[k].initial_weights)
        for observations, actions, rewards in played[k]:
            single.episodes = Episodes(1)
            single.episodes.begin(0, None)
            single.episodes.record(observations, actions)
            single.episodes.rewards[0] = rewards
            single.train(np.ones(1, dtype=bool))
        single.close()
        member, alone = batch.model.member_state_dict(k), single.model.member_state_dict(0)
        for name, value in alone.items():
            # Adam steps each weight by about lr whatever its gradient's size, so the rounding
            # of batched and single matmuls in near-zero gradients grows to ~1e-4 at lr 3e-2;
            # an update too many or too few would move the weights by ~lr: the bound is lr / 30
            lr = cfg.optim.lr
            torch.testing.assert_close(member[name], value, rtol=0, atol=lr / 30, msg=name)
        (joint,) = batch.optimizers
        assert joint.member_state_dict(k)["state"][0]["step"].item() == updates[k]


def test_a_member_that_solves_stops_with_its_own_figures(tmp_path: Path) -> None:
    # pins the floats of the pinned torch build (.ci/run): there seed 0 at lr 4e-3 solves
    # within the budget; on another build a miss here is a different run, not a batching bug
    cfgs = [make_cfg("seed=0", "optim.lr=4e-3", "total_steps=150000", *QUIET),
            make_cfg("seed=0", "optim.lr=1e-6", "total_steps=20000", *QUIET)]  # fmt: skip
    solver, slow = run_batch(cfgs, member_dirs(tmp_path, 2))
    assert solver["solved"] and solver["steps_to_solve"] <= solver["env_steps"]
    assert solver["env_steps"] < solver["steps_to_solve"] + 32 * 5 + 1  # stopped at once
    assert not slow["solved"] and slow["env_steps"] >= 20000
    assert solver["episodes"] != slow["episodes"]


def test_a_member_that_fails_fails_alone(tmp_path: Path) -> None:
    cfgs = [make_cfg("seed=0", "optim.lr=1e30", "total_steps=3000", *QUIET),
            make_cfg("seed=1", "total_steps=3000", *QUIET)]  # fmt: skip
    failed, fine = run_batch(cfgs, member_dirs(tmp_path, 2))
    assert failed["status"] == "failed" and "NonFiniteError" in failed["error"]
    assert not (tmp_path / "member0" / "model.pt").exists()
    assert fine["status"] == "completed" and fine["env_steps"] >= 3000
    assert math.isfinite(fine["final_return"])


@pytest.mark.parametrize("algo", ["a2c", "episodic"])  # episodic: members mid-episode at the signal
def test_sigterm_checkpoints_every_member_and_each_resumes_as_a_single_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algo: str
) -> None:
    save = Trainer.save_checkpoint

    def save_then_stop(self: Trainer, k: int = 0) -> None:
        save(self, k)
        self.request_stop(signal.SIGTERM)  # as if SIGTERM arrived at the first checkpoint

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_stop)
    dirs = member_dirs(tmp_path, 2)
    cfgs = [make_cfg(f"algo={algo}", f"seed={k}", "total_steps=3000", "checkpoint.every_steps=1000",
                     *QUIET) for k in (0, 1)]  # fmt: skip
    for cfg, out in zip(cfgs, dirs, strict=True):
        (out / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what the launcher saves
    stopped = run_batch(cfgs, dirs)
    assert [m["status"] for m in stopped] == ["interrupted"] * 2
    assert all(m["signal"] == "SIGTERM" for m in stopped)
    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    for out, before in zip(dirs, stopped, strict=True):
        assert (out / "checkpoints" / f"step_{before['env_steps']:09d}.pt").is_file()
        resumed = run(make_cfg(f"resume={out}"))
        assert resumed["status"] == "completed" and resumed["env_steps"] >= 3000
        assert resumed["episodes"] > before["episodes"]
        # from the member's checkpoint, not from step 0: each update logged once, in order
        losses = [s for s, _ in scalars(out)["losses/actor"]]
        assert losses == sorted(set(losses)) and losses[-1] == resumed["env_steps"]
        assert any(s <= before["env_steps"] for s in losses)  # the member's own, kept


def test_evaluation_during_training_logs_each_member_and_ends_in_metrics(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfgs = [make_cfg("env=halfcheetah", "algo=ppo", "algo.num_envs=2", "algo.n_steps=50",
                     f"seed={k}", "total_steps=300", "eval.every_steps=100", "eval.episodes=2",
                     "+env.kwargs.max_episode_steps=20", *QUIET)
            for k in (0, 1)]  # fmt: skip
    results = run_batch(cfgs, member_dirs(tmp_path, 2))
    for k, metrics in enumerate(results):
        events = EventAccumulator(str(tmp_path / f"member{k}"))
        events.Reload()
        evaluations = events.Scalars("eval/return")
        steps = [e.step for e in evaluations]  # at the first update at or after each 100 steps
        assert len(steps) == 3 and steps[-1] == metrics["env_steps"]  # the last one final
        assert all(due <= s < due + 100 for due, s in zip((100, 200, 300), steps, strict=True))
        assert metrics["eval_return"] == pytest.approx(evaluations[-1].value)
        std = events.Scalars("eval/return_std")[-1].value
        assert metrics["eval_return_std"] == pytest.approx(std, rel=1e-6)
        # evaluation (3 x 2 episodes of 20 steps) leaves the running observation statistics
        # alone: they count the 4 rollouts of 2 envs x 50 steps, reset steps included
        state = torch.load(tmp_path / f"member{k}" / "model.pt")
        assert state["obs_norm.count"].item() == pytest.approx(400)
