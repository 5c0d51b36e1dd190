"""PPO's losses against numbers computed by hand; a real PPO run through the CLI."""

import json
import math
from pathlib import Path

import pytest
import torch

from acexp.algos.losses import explained_variance
from acexp.algos.ppo import clipped_surrogate_loss, clipped_value_loss, policy_shift
from acexp.run import run
from tests.conftest import make_cfg
from tests.test_cli import acexp, scalars

RATIOS = [1.5, 0.5, 1.0, 1.1]
ADVANTAGES = [1.0, 1.0, -1.0, -2.0]


def test_clipped_surrogate_by_hand() -> None:
    old = torch.tensor([-1.0, -2.0, -0.5, -1.5])
    log_prob = (old + torch.tensor(RATIOS).log()).requires_grad_()
    loss, log_ratio = clipped_surrogate_loss(
        log_prob, old, torch.tensor(ADVANTAGES), ratio_bounds=(0.8, 1.2)
    )
    approx_kl, clipfrac = policy_shift(log_ratio, clip_range=0.2)
    # per sample max(-A r, -A clip(r, 0.8, 1.2)):
    #   r=1.5, A=1: max(-1.5, -1.2) = -1.2    r=0.5, A=1: max(-0.5, -0.8) = -0.5
    #   r=1.0, A=-1: 1.0                      r=1.1, A=-2: max(2.2, 2.2) = 2.2
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.0 + 2.2) / 4)
    assert clipfrac.item() == pytest.approx(0.5)  # |r - 1| > 0.2 for 1.5 and 0.5
    kl = sum((r - 1) - math.log(r) for r in RATIOS) / 4  # 0.0730930
    assert approx_kl.item() == pytest.approx(kl, rel=1e-5)
    loss.backward()
    # the clipped sample (r=1.5, A>0) gets no gradient; r=0.5 gets d(-A r)/dlogp / 4 = -0.125
    assert log_prob.grad[0].item() == 0.0
    assert log_prob.grad[1].item() == pytest.approx(-0.125)
    assert log_prob.grad[3].item() == pytest.approx(2.0 * 1.1 / 4)


def test_clipped_value_loss_by_hand() -> None:
    value, old = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.5])
    target = torch.tensor([2.0, 2.0])
    assert clipped_value_loss(value, old, target, None).item() == pytest.approx(1.0)
    # clipped predictions 0 + 0.2 and 2.5 + 0.2: errors max(1, 3.24) and max(1, 0.49)
    assert clipped_value_loss(value, old, target, 0.2).item() == pytest.approx((3.24 + 1.0) / 2)


def test_explained_variance_by_hand() -> None:
    # Var([1, 2, 4]) = 14/9, Var(residual [0, 0, 1]) = 2/9: 1 - 1/7
    ev = explained_variance(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    assert ev.item() == pytest.approx(6 / 7)
    assert explained_variance(torch.zeros(3), torch.ones(3)).item() == 0.0


def test_ppo_cli_run_logs_its_diagnostics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = acexp(
        "algo=ppo",
        "algo.num_envs=4",
        "algo.n_steps=32",
        "algo.clip_range_vf=0.2",
        "total_steps=1024",
        "log.every_steps=128",
        "log.progress=false",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["env_steps"] >= 1024
    tags = scalars(out)
    for tag in [
        "charts/episodic_return",
        "losses/actor",
        "losses/critic",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "train/lr",
        "train/grad_norm_before_clip",
        "perf/sps",
    ]:
        assert tag in tags, f"missing {tag}; have {sorted(tags)}"
    kls = [v for _, v in tags["losses/approx_kl"]]
    assert all(v >= 0 for v in kls) and any(v > 0 for v in kls)  # k3 is never negative
    lrs = [v for _, v in tags["train/lr"]]
    assert lrs[0] == pytest.approx(3e-4) and lrs[-1] < lrs[0]  # starts at PPO's lr, annealed
    assert lrs == sorted(lrs, reverse=True)


def test_target_kl_stops_the_epochs_early(tmp_path: Path, monkeypatch) -> None:
    import acexp.algos.ppo as ppo

    steps = []
    original = ppo.apply_update
    monkeypatch.setattr(ppo, "apply_update", lambda *a: steps.append(1) or original(*a))
    cfg = make_cfg(
        "algo=ppo",
        "algo.n_epochs=10",
        "algo.target_kl=1e-9",
        "total_steps=500",
        "log.progress=false",
    )
    run(cfg, out_dir=tmp_path)
    # one rollout (8 x 128); the first epoch's 4 minibatches move KL above 1e-9, not 10 x 4
    assert len(steps) == 4


def test_a2c_logs_explained_variance(tmp_path: Path, monkeypatch) -> None:
    """What is logged is 1 - Var(G - V) / Var(G) of the very values and targets that the
    critic's loss of that update regresses, worked out here from them."""
    import acexp.algos.a2c as a2c

    regressed, logged = [], []

    def copy(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.clone()

    critic_loss = a2c.critic_loss
    monkeypatch.setattr(
        a2c,
        "critic_loss",
        lambda value, target, *a, **k: (
            regressed.append((value.detach().clone(), target.clone(), copy(k.get("mask"))))
            or critic_loss(value, target, *a, **k)
        ),
    )
    explained = a2c.explained_variance
    monkeypatch.setattr(
        a2c,
        "explained_variance",
        # copies: the mask is a view of the rollout's buffer, which the next rollout refills
        lambda p, t, mask: (
            logged.append((p.clone(), t.clone(), copy(mask))) or explained(p, t, mask)
        ),
    )
    run(make_cfg("total_steps=1000", "log.every_steps=200", "log.progress=false"), tmp_path)
    values = [v for _, v in scalars(tmp_path)["losses/explained_variance"]]
    assert len(values) == len(logged) >= 4
    for value, (prediction, target, mask) in zip(values, logged, strict=True):
        same = [k for k, (v, *_) in enumerate(regressed) if torch.equal(v, prediction)]
        assert same and torch.equal(regressed[same[0]][1], target)
        critic_mask = regressed[same[0]][2]  # the transitions the critic learns on
        assert (critic_mask is None and mask is None) or torch.equal(critic_mask, mask)
        keep = torch.ones_like(target, dtype=torch.bool) if mask is None else mask.bool()
        p, t = prediction[keep].double(), target[keep].double()
        by_hand = 1 - (t - p).var(unbiased=False) / t.var(unbiased=False)
        assert value == pytest.approx(by_hand.item(), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("env", ["cartpole", "halfcheetah"])
def test_stored_log_probs_are_the_acting_policys(tmp_path: Path, monkeypatch, env: str) -> None:
    """Before PPO's first step the ratio is 1: the old log-probs (stored while acting, or for
    running observation statistics recomputed) match a fresh evaluation of the same valid
    (obs, action) pairs, in the same order."""
    import acexp.algos.ppo as ppo

    pairs = []
    original = ppo.clipped_surrogate_loss
    monkeypatch.setattr(
        ppo,
        "clipped_surrogate_loss",
        lambda new, old, *a: pairs.append((new, old)) or original(new, old, *a),
    )
    cfg = make_cfg(
        "algo=ppo", f"env={env}", "algo.n_steps=64", "total_steps=500", "log.progress=false"
    )
    run(cfg, out_dir=tmp_path)
    new, old = pairs[0]
    assert new.shape == old.shape and new.numel() > 0
    assert torch.allclose(new.detach(), old, atol=1e-5)
    assert not torch.allclose(*(p.detach() for p in pairs[-1]), atol=1e-5)  # later, it moved
