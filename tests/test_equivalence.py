"""Runs that must give the same numbers: a batched PPO member and its single run, the same
config and seed twice (a Gaussian PPO run, a batched sweep), and a run stopped by SIGTERM and
resumed against the run that was never stopped (docs/survive.md: exact resume, determinism)."""

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from acexp.algos.on_policy import OnPolicyTrainer
from acexp.algos.ppo import PPOTrainer
from acexp.run import run, train_members
from tests.conftest import acexp, make_cfg
from tests.test_resume import curves, learning_figures, start, wait_for_checkpoint

QUIET = ("stop_on_solve=false", "log.progress=false")
# PPO on CartPole (numpy-native vector env: exact resume) with everything a checkpoint must
# carry beyond the weights: running observation statistics, evaluation envs, early stopping
PPO = ("algo=ppo", "algo.num_envs=4", "algo.n_steps=64", "total_steps=2000",
       "checkpoint.every_steps=600", "log.every_steps=256", *QUIET)  # fmt: skip
TARGET_KL = 0.0005  # below the first updates' KL (~1e-3 at lr 3e-4), above the last ones'
PPO_EXACT = (*PPO, "env.obs_norm=running", f"algo.target_kl={TARGET_KL}",
             "eval.every_steps=500", "eval.episodes=2")  # fmt: skip
# a Gaussian head: exact resume for the per-episode trainer on any env; an evaluation (every
# 200-step episode) before the first checkpoint (at 400), however soon the SIGTERM lands after it
EPISODIC_GAUSSIAN = ("algo=episodic", "env.id=Pendulum-v1", "env.obs_norm=running",
                     "total_steps=1200", "checkpoint.every_steps=300", "eval.every_steps=200",
                     "eval.episodes=1", "log.every_steps=200", *QUIET)  # fmt: skip
# a Gaussian head on gymnasium's sync vector envs: deterministic, resumable, not exact
PPO_GAUSSIAN = ("algo=ppo", "env.id=Pendulum-v1", "env.obs_norm=running", "algo.num_envs=2",
                "algo.n_steps=128", "total_steps=1024", "checkpoint.every_steps=300",
                "log.every_steps=256", *QUIET)  # fmt: skip
SWEEP_LRS = ("0.0003", "0.001")  # the batched sweep's members, by optim.lr
SWEEP = ("-m", "optim.lr=3e-4,1e-3", *PPO, "hydra/launcher=batched", "hydra.launcher.n_jobs=1")


def side_by_side(tmp: Path, first: tuple, second: tuple, *args: str) -> tuple[Path, Path]:
    """`python -m acexp args` twice at once, into the directories `first` and `second` name
    (key, path), both of which must succeed; the two directories."""
    procs = [start(*args, f"{key}={out}", cwd=tmp) for key, out in (first, second)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    return first[1], second[1]


def interrupt_at_first_checkpoint(cut: Path, *args: str, watch: Path | None = None) -> int:
    """Start `python -m acexp args` into `cut`, send SIGTERM as soon as a checkpoint is on
    disk (in `watch`, default `cut`), and check that it stopped there; its exit status."""
    proc = start(*args, cwd=cut.parent)
    wait_for_checkpoint(proc, watch or cut, after=0)
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=120)


def interrupted_then_resumed(tmp: Path, *overrides: str) -> tuple[Path, dict]:
    """A run stopped by a real SIGTERM at its first checkpoint, then resumed to its end by
    `python -m acexp resume=`; its directory and the metrics it was stopped with."""
    cut = tmp / "cut"
    assert interrupt_at_first_checkpoint(cut, *overrides, f"hydra.run.dir={cut}") == 143
    stopped = json.loads((cut / "metrics.json").read_text())
    assert stopped["status"] == "interrupted", stopped
    resumed = acexp(f"resume={cut}", cwd=tmp)
    assert resumed.returncode == 0, resumed.stderr
    return cut, stopped


def assert_same_run(ours: Path, reference: Path) -> None:
    """Identical learning figures and TensorBoard scalars, point for point."""
    assert learning_figures(ours) == learning_figures(reference)
    assert curves(ours) == curves(reference)


# -- determinism ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaussian_ppo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The Gaussian PPO run twice through the command line."""
    tmp = tmp_path_factory.mktemp("gaussian_ppo")
    return side_by_side(tmp, *(("hydra.run.dir", tmp / name) for name in "ab"), *PPO_GAUSSIAN)


def test_gaussian_ppo_gives_the_same_numbers_for_the_same_seed(gaussian_ppo: tuple) -> None:
    first, second = gaussian_ppo
    assert_same_run(second, first)
    assert len(curves(first)["charts/episodic_return"]) >= 2  # 200-step episodes ended
    first_model, second_model = (torch.load(run / "model.pt") for run in gaussian_ppo)
    assert "log_std" in " ".join(first_model)  # the Gaussian head
    assert all(torch.equal(first_model[name], second_model[name]) for name in first_model)


@pytest.fixture(scope="module")
def batched_sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The batched sweep of two PPO members (optim.lr) twice through the command line."""
    tmp = tmp_path_factory.mktemp("batched")
    return side_by_side(tmp, *(("hydra.sweep.dir", tmp / name) for name in "ab"), *SWEEP)


def test_a_batched_sweep_gives_the_same_numbers_twice(batched_sweeps: tuple) -> None:
    first, second = batched_sweeps
    for lr in SWEEP_LRS:
        assert_same_run(second / f"optim.lr={lr}", first / f"optim.lr={lr}")
    # two members, not one run twice
    returns = [curves(first / f"optim.lr={lr}")["charts/episodic_return"] for lr in SWEEP_LRS]
    assert returns[0] != returns[1]


def test_each_batched_member_steps_at_its_own_learning_rate(batched_sweeps: tuple) -> None:
    """PPO anneals each member's rate from its own configured one (lr times the fraction of
    the budget left before the rollout), in its logs and in the checkpoint that resumes it."""
    rollout = 4 * 64
    for lr in map(float, SWEEP_LRS):
        member = batched_sweeps[0] / f"optim.lr={lr:g}"
        (step, rate), *_ = curves(member)["train/lr"]
        assert lr * (1 - step / 2000) * (1 - 1e-6) <= rate <= lr * (1 + 1e-6)
        checkpoint = torch.load(min((member / "checkpoints").glob("step_*.pt")))
        ((group,),) = [state["param_groups"] for state in checkpoint["optimizers"].values()]
        step = checkpoint["env_steps"]
        assert lr * (1 - step / 2000) <= group["lr"] <= lr * (1 - (step - rollout) / 2000)


# -- exact resume -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [PPO_EXACT, EPISODIC_GAUSSIAN],
    ids=["ppo-obs_norm-target_kl-eval", "episodic-gaussian-obs_norm-eval"],
)
def test_sigterm_then_resume_ends_as_the_uninterrupted_run(
    tmp_path: Path, overrides: tuple[str, ...]
) -> None:
    run(make_cfg(*overrides), tmp_path / "whole")  # determinism makes it the reference
    cut, stopped = interrupted_then_resumed(tmp_path, *overrides)
    assert 0 < stopped["env_steps"] < learning_figures(tmp_path / "whole")["env_steps"]
    assert learning_figures(cut)["status"] == "completed"
    assert_same_run(cut, tmp_path / "whole")
    # what the resumed part had to carry over is in play: evaluations on both sides of the
    # interruption, running statistics of every observation (resets included)
    evaluations = [step for step, _ in curves(cut)["eval/return"]]
    assert min(evaluations) <= stopped["env_steps"] < max(evaluations)
    state = torch.load(cut / "model.pt")
    assert state["obs_norm.count"].item() >= learning_figures(cut)["env_steps"]
    if "algo=ppo" in overrides:  # early stopping did stop some updates' epochs
        assert any(kl > TARGET_KL for _, kl in curves(cut)["losses/approx_kl"])


def test_gaussian_ppo_on_sync_envs_resumes_to_its_budget(
    tmp_path: Path, gaussian_ppo: tuple
) -> None:
    """Not exact (sub-envs restart their episodes), but the budget is honoured, the curves go
    on without a duplicated step, and the running observation statistics carry over."""
    cut, stopped = interrupted_then_resumed(tmp_path, *PPO_GAUSSIAN)
    metrics = learning_figures(cut)
    assert metrics["status"] == "completed" and 1024 <= metrics["env_steps"] < 1024 + 256
    for tag, points in curves(cut).items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), tag
    resumed, whole = (torch.load(run / "model.pt") for run in (cut, gaussian_ppo[0]))
    rollouts = resumed["obs_norm.count"].item() / 256  # every observation of every rollout
    assert rollouts == pytest.approx(whole["obs_norm.count"].item() / 256, abs=1.01)
    assert rollouts * 256 >= metrics["env_steps"] > stopped["env_steps"]


def test_a_batched_member_resumes_as_a_single_run(tmp_path: Path, batched_sweeps: tuple) -> None:
    """SIGTERM to the sweep at a member's first checkpoint; `resume=<member dir>` completes it
    as a single run, whose curves up to the checkpoint are the uninterrupted member's."""
    sweep = tmp_path / "sweep"
    member = sweep / f"optim.lr={SWEEP_LRS[1]}"
    status = interrupt_at_first_checkpoint(sweep, *SWEEP, f"hydra.sweep.dir={sweep}", watch=member)
    assert status == 143
    stopped = json.loads((member / "metrics.json").read_text())
    assert stopped["status"] == "interrupted"
    saved = max(int(p.stem.split("_")[1]) for p in (member / "checkpoints").glob("step_*.pt"))
    assert saved == stopped["env_steps"] < 2000
    resumed = acexp(f"resume={member}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    metrics = learning_figures(member)
    assert metrics["status"] == "completed" and 2000 <= metrics["env_steps"] < 2000 + 256
    whole = curves(batched_sweeps[0] / member.name)
    for tag, points in curves(member).items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)) and steps[-1] > saved, tag
        assert [p for p in points if p[0] <= saved] == [p for p in whole[tag] if p[0] <= saved]


# -- batched PPO members and their single runs ------------------------------------------------

ROLLOUT = ("obs", "actions", "values", "log_probs", "rewards", "terminated", "done", "valid")


def test_batched_ppo_members_update_as_their_single_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member of a PPO batch, replayed alone on the rollouts and minibatch orders it got
    in the batch (a batch draws its actions and shuffles from a stream of its own, so its
    episodes are not its single run's), ends with the single run's weights and logs the
    single run's update scalars. The members differ in seed, rate, clip range, gradient bound,
    gamma and entropy bonus; their episodes end at different steps, so their minibatches are
    masked apart."""
    members = [("seed=0", "optim.lr=3e-4"),
               ("seed=1", "optim.lr=1e-3", "algo.clip_range=0.1", "optim.max_grad_norm=0.05"),
               ("seed=2", "optim.lr=3e-4", "algo.gamma=0.9", "algo.ent_coef=0.05")]  # fmt: skip
    common = ("algo=ppo", "algo.num_envs=4", "algo.n_steps=32", "total_steps=1200",
              "log.every_steps=1", *QUIET)  # fmt: skip
    cfgs = [make_cfg(*common, *member) for member in members]
    recorded: list[dict] = []  # per rollout: the batch's rollout, next values and shuffle keys
    collect, rand = OnPolicyTrainer.collect, torch.rand

    def recording_collect(self: OnPolicyTrainer, *args: np.ndarray) -> tuple:
        active, out = self.active.copy(), collect(self, *args)
        rollout = {name: getattr(self, name).copy() for name in ROLLOUT}
        recorded.append({**rollout, "active": active, "env_steps": self.env_steps.copy(),
                         "next_value": out[2].copy(), "keys": []})  # fmt: skip
        return out

    def recording_rand(*args: int, **kwargs: object) -> torch.Tensor:
        keys = rand(*args, **kwargs)  # only PPO's minibatch shuffle draws from torch.rand
        recorded[-1]["keys"].append(keys.clone())
        return keys

    with monkeypatch.context() as patch:
        patch.setattr(OnPolicyTrainer, "collect", recording_collect)
        patch.setattr(torch, "rand", recording_rand)
        batch = train_members(cfgs, [tmp_path / f"member{k}" for k in range(len(cfgs))])
    assert [m["status"] for m in batch.results] == ["completed"] * 3

    for k, cfg in enumerate(cfgs):
        feed = iter([r for r in recorded if r["active"][k]])
        keys: list[torch.Tensor] = []

        def replayed_collect(self: OnPolicyTrainer, next_obs, prev_done, k=k, feed=feed, keys=keys):
            rollout = next(feed)
            for name in ROLLOUT:
                getattr(self, name)[:] = rollout[name][:, k : k + 1]
            self.env_steps[0] = rollout["env_steps"][k]
            keys.extend(key[k : k + 1] for key in rollout["keys"])
            return next_obs, prev_done, rollout["next_value"][k : k + 1]

        single_dir = tmp_path / f"single{k}"
        with monkeypatch.context() as patch:
            patch.setattr(OnPolicyTrainer, "collect", replayed_collect)
            patch.setattr(torch, "rand", lambda *args, keys=keys, **kwargs: keys.pop(0))
            single = PPOTrainer([cfg], [single_dir])
            single.model.load_member_state_dict(0, batch.members[k].initial_weights)
            single.learn()
            single.end_all("completed")
            single.close()
        assert not keys and next(feed, None) is None  # every rollout and shuffle replayed
        member_dir = tmp_path / f"member{k}"
        steps = [learning_figures(d)["env_steps"] for d in (single_dir, member_dir)]
        assert steps[0] == steps[1]
        # Adam moves each weight by about lr per step whatever its gradient, so an update too
        # many or too few, or another member's rate, moves weights by ~lr; the rounding of
        # batched and single matmuls stays far below lr / 30 over these updates
        lr = cfg.optim.lr
        member, alone = (torch.load(d / "model.pt") for d in (member_dir, single_dir))
        for name, value in alone.items():
            torch.testing.assert_close(member[name], value, rtol=0, atol=lr / 30, msg=name)
        batched, replayed = curves(member_dir), curves(single_dir)
        for tag in ("losses/actor", "losses/critic", "losses/entropy", "train/lr",
                    "train/grad_norm_before_clip", "train/grad_norm_after_clip"):  # fmt: skip
            logged_at, values = zip(*replayed[tag], strict=True)
            assert [s for s, _ in batched[tag]] == list(logged_at), tag
            assert [v for _, v in batched[tag]] == pytest.approx(values, rel=1e-3, abs=1e-5), tag
