"""The gradient norms a run logs are the norms its optimizers really stepped with."""

from pathlib import Path

import pytest
import torch

from acexp.run import run
from tests.conftest import make_cfg
from tests.test_cli import scalars

OPTIMIZERS = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}


@pytest.mark.parametrize(("name", "bound"), [("rmsprop", 0.05), ("adam", 0.05), ("rmsprop", None)])
def test_logged_norms_after_clipping_are_the_stepped_gradients_norms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, bound: float | None
) -> None:
    """Every optimizer step's gradient is measured as the optimizer sees it: its norm is at most
    `max_grad_norm`, and it is the norm logged as after clipping; the norm before is larger
    where clipping acted (so clipping was exercised), and equal without a bound."""
    stepped: dict[int, list[float]] = {}
    kind = OPTIMIZERS[name]
    step = kind.step

    def measured_step(self: torch.optim.Optimizer, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"]]
        norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads if g is not None]))
        stepped.setdefault(id(self), []).append(norm.item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(kind, "step", measured_step)
    clip = "optim.max_grad_norm=" + ("null" if bound is None else str(bound))
    cfg = make_cfg("optim=separate", f"optim.name={name}", clip, "total_steps=2000",
                   "log.every_steps=1", "log.progress=false")  # fmt: skip
    run(cfg, tmp_path)
    tags = scalars(tmp_path)
    actor, critic = stepped.values()  # made in this order
    for net, norms in (("actor", actor), ("critic", critic)):
        before = [v for _, v in tags[f"train/grad_norm_before_clip_{net}"]]
        after = [v for _, v in tags[f"train/grad_norm_after_clip_{net}"]]
        assert len(after) == len(norms) >= 2000 // 160  # every update (32 envs x 5 steps)
        assert after == pytest.approx(norms, rel=1e-4)
        if bound is None:
            assert before == pytest.approx(norms, rel=1e-4)
        else:
            assert max(norms) <= bound * (1 + 1e-5)
            clipped = [b > bound for b in before]
            assert any(clipped), f"no {net} gradient above {bound}: clipping untested"
            assert all(a < b for a, b, c in zip(after, before, clipped, strict=True) if c)
