"""The tutorial reference (benchmarks/tutorial_reference.py): its update on a hand-made episode,
a short real run, the sweep-like directory its CLI writes for acexp's report, and acexp's
episodic trainer playing the reference's very episodes from the same weights and generator."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from acexp.algos.episodic import EpisodicTrainer
from acexp.analysis.report import find_runs
from benchmarks import tutorial_reference as ref
from tests.conftest import make_cfg

METRIC_KEYS = {
    "status", "solved", "episodes_to_solve", "steps_to_solve", "episodes", "env_steps",
    "final_return", "wall_seconds",
}  # fmt: skip


def smooth_l1(d: float) -> float:
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


def test_finish_episode_is_the_tutorial_loss_by_hand() -> None:
    model = ref.Policy()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    log_probs = [-0.2, -1.1, -0.7]
    values = [0.3, -2.0, 0.9]  # -2.0: past smooth L1's bend, on its linear part
    leaves = [
        (torch.tensor(lp, requires_grad=True), torch.tensor([v], requires_grad=True))
        for lp, v in zip(log_probs, values, strict=True)
    ]
    model.saved_actions.extend(ref.SavedAction(lp, v) for lp, v in leaves)
    model.rewards.extend([1.0, 1.0, 1.0])

    loss = ref.finish_episode(model, optimizer, gamma=0.99)

    returns = np.array([1 + 0.99 + 0.99**2, 1 + 0.99, 1.0])
    eps = float(np.finfo(np.float32).eps)
    assert ref.eps == eps == 2.0**-23
    normed = (returns - returns.mean()) / (returns.std(ddof=1) + eps)  # torch's std: unbiased
    advantages = normed - np.array(values)
    expected = sum(-lp * a for lp, a in zip(log_probs, advantages, strict=True))
    expected += sum(smooth_l1(v - r) for v, r in zip(values, normed, strict=True))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # the advantage is a number (value.item()): the value gets smooth L1's gradient only
    for (lp, v), a, r in zip(leaves, advantages, normed, strict=True):
        assert float(lp.grad) == pytest.approx(-a, rel=1e-5)
        assert float(v.grad[0]) == pytest.approx(float(np.clip(v.item() - r, -1, 1)), rel=1e-5)
    assert model.saved_actions == [] and model.rewards == []


def test_unshared_policy_has_its_own_critic_tower() -> None:
    torch.manual_seed(0)
    shared = ref.Policy()
    torch.manual_seed(0)
    unshared = ref.Policy(shared=False)
    # the actor draws the same initial weights in both
    assert torch.equal(shared.affine1.weight, unshared.affine1.weight)
    assert torch.equal(shared.action_head.bias, unshared.action_head.bias)
    n = sum(p.numel() for p in shared.parameters())
    assert sum(p.numel() for p in unshared.parameters()) == n + 4 * 128 + 128


def test_short_run_returns_acexps_metrics() -> None:
    metrics = ref.train(seed=0, max_episodes=5)
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["status"] == "completed" and metrics["episodes"] == 5
    assert not metrics["solved"] and metrics["episodes_to_solve"] is None
    assert metrics["env_steps"] >= 5 * 8  # a CartPole episode lasts at least 8 steps
    assert math.isfinite(metrics["final_return"])
    assert metrics == ref.train(seed=0, max_episodes=5) | {
        k: metrics[k] for k in ("wall_seconds", "sps")
    }  # seeded: the same run again, but for its timing


# the reference's layers under acexp's names, per architecture
ACEXP_NAMES = {
    "shared": {"affine1": "trunk.1.layers.0"},
    "unshared": {"affine1": "actor.1.layers.0", "critic_affine": "critic.1.layers.0"},
}
HEADS = {"action_head": "actor_head.logits", "value_head": "critic_head"}


@pytest.mark.parametrize("arch", ["shared", "unshared"])
def test_acexp_episodic_plays_the_references_episodes(arch, tmp_path, monkeypatch) -> None:
    """From the reference's initial weights and torch generator state, acexp's per-episode
    trainer samples the same actions and makes the same updates: the same episodes, step for
    step. (acexp draws the same initial numbers, placed in the transposed order, so its own
    runs differ from the reference's seed by seed; float rounding of its batched kernels makes
    the two drift apart after some 80 episodes.)"""
    seed, episodes = 3, 25
    lengths: list[int] = []
    finish = ref.finish_episode

    def recording_finish(model, optimizer, gamma=ref.GAMMA):
        lengths.append(len(model.rewards))
        return finish(model, optimizer, gamma)

    monkeypatch.setattr(ref, "finish_episode", recording_finish)
    ref.train(seed, max_episodes=episodes, shared=arch == "shared")

    torch.manual_seed(seed)
    policy = ref.Policy(shared=arch == "shared")
    generator = torch.get_rng_state()  # as the reference's first action finds it
    names = ACEXP_NAMES[arch] | HEADS
    weights = {}
    for key, value in policy.state_dict().items():
        layer, kind = key.split(".")
        weights[f"{names[layer]}.{kind}"] = value

    acexp_lengths: list[int] = []

    class Recording(EpisodicTrainer):
        def end_episode(self, k: int, episode_return: float, length: int) -> None:
            acexp_lengths.append(length)
            super().end_episode(k, episode_return, length)

    cfg = make_cfg(
        "algo=episodic", f"arch={arch}", f"seed={seed}", f"algo.max_episodes={episodes}",
        "log.progress=false", "stop_on_solve=false",
    )  # fmt: skip
    trainer = Recording([cfg], [tmp_path])
    trainer.model.load_member_state_dict(0, weights)
    torch.set_rng_state(generator)
    trainer.learn()
    trainer.end_all("completed")
    trainer.close()
    assert len(lengths) == episodes and acexp_lengths == lengths


def test_parse_seeds() -> None:
    assert ref.parse_seeds("0..3") == [0, 1, 2, 3]
    assert ref.parse_seeds("0..1,7, 9") == [0, 1, 7, 9]


def test_cli_writes_a_sweep_the_report_reads(tmp_path, capsys) -> None:
    ref.main(["--seeds", "0..1", "--max-episodes", "3", "--out", str(tmp_path)])
    runs = find_runs(tmp_path)
    assert [r.path.name for r in runs] == ["seed=0", "seed=1"]
    assert all(r.status == "completed" and r.metrics["episodes"] == 3 for r in runs)
    assert runs[0].overrides[:2] == ["seed=0", "impl=tutorial"]
    assert ref.in_group(runs[0].overrides, ["arch=shared", "optim.lr=3e-2"])
    assert "0 of 2 runs solved" in capsys.readouterr().out
    # a second call keeps the runs it finds
    before = (tmp_path / "seed=1" / "metrics.json").read_text()
    ref.main(["--seeds", "1", "--max-episodes", "3", "--out", str(tmp_path)])
    assert (tmp_path / "seed=1" / "metrics.json").read_text() == before


def fake_acexp_sweep(root, episodes: list[int | None], cap: int = 50) -> None:
    """acexp-like job dirs: None for a run that never solved (censored at `cap`)."""
    for seed, solve in enumerate(episodes):
        job = root / f"arch=shared,optim.lr=0.03,seed={seed}"
        (job / ".hydra").mkdir(parents=True)
        overrides = ["+experiment=tutorial_sweep", "arch=shared", "optim.lr=3e-2", f"seed={seed}"]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        metrics = {
            "status": "completed",
            "solved": solve is not None,
            "episodes_to_solve": solve,
            "steps_to_solve": None if solve is None else solve * 100,
            "episodes": cap if solve is None else solve,
            "env_steps": (cap if solve is None else solve) * 100,
        }
        (job / "metrics.json").write_text(json.dumps(metrics))
    other = root / "arch=unshared,optim.lr=0.03,seed=0"  # another group: left out
    (other / ".hydra").mkdir(parents=True)
    (other / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["arch=unshared", "seed=0"]))


def test_compare_prints_the_tests_and_draws_the_curves(tmp_path, capsys) -> None:
    reference, sweep = tmp_path / "reference", tmp_path / "sweep"
    fake_acexp_sweep(reference, [10, 20, 30, None])
    for job in reference.iterdir():  # the reference side as the CLI names its runs
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        overrides = [o.replace("optim.lr=3e-2", "optim.lr=0.03") for o in overrides]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    fake_acexp_sweep(sweep, [12, 25, None, None])
    out = tmp_path / "out"
    ref.main(["compare", str(reference), str(sweep), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "log-rank p" in printed and "Fisher's exact p" in printed
    result = json.loads((out / "fidelity.json").read_text())
    assert result["sides"]["tutorial"]["runs"] == 4 and result["sides"]["tutorial"]["solved"] == 3
    assert result["sides"]["acexp"]["solved"] == 2
    assert result["fisher_p_solved"] == pytest.approx(1.0)
    # Log-rank by hand: solves at 10 (tutorial; 4 v 4 at risk), 12 (acexp; 3 v 4), 20 (t; 3 v 3),
    # 25 (a; 2 v 3), 30 (t; 2 v 2), the rest censored at 50. The tutorial's observed 3 against
    # expected 4/8 + 3/7 + 3/6 + 2/5 + 2/4 = 2.3286, variance sum of n_t n_a / n^2 = 1.2349:
    # z = 0.6714 / 1.1113 = 0.6042, two-sided p = 0.5457; steps (100 per episode) rank alike
    assert result["logrank_p_episodes"] == pytest.approx(0.5457, abs=1e-4)
    assert result["logrank_p_steps"] == pytest.approx(0.5457, abs=1e-4)
    assert (out / "fidelity.png").stat().st_size > 0 and (out / "fidelity.pdf").is_file()
