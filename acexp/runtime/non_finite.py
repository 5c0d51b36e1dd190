"""Finding the members whose weights went non-finite (NaN or Inf), to fail them alone."""

import numpy as np
import torch

from acexp.models import ActorCritic
from acexp.optim.modes import NamedOptimizer


def non_finite_members(
    model: ActorCritic, optimizers: list[NamedOptimizer], candidates: np.ndarray
) -> dict[int, str]:
    """The members `candidates` marks ([members] bool) whose parameters or buffers hold a NaN
    or Inf, each with the first such tensor's name and value; one host sync when all is well
    (the optimizers' flat buffers hold every parameter, one row per member)."""
    members = len(candidates)
    rows = [named.flat.rows(named.flat.flat.detach()) for named in optimizers]
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    finite = [t.isfinite().reshape(members, -1).all(1) for t in rows + buffers]
    bad = np.flatnonzero(~torch.stack(finite).all(0).cpu().numpy() & candidates)
    found: dict[int, str] = {}
    if not bad.size:
        return found
    tensors = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    for k in bad:
        for name, tensor in tensors:
            if not bool(tensor[k].isfinite().all()):
                value = tensor[k][~tensor[k].isfinite()].flatten()[0].item()
                found[int(k)] = f"parameter {name} holds {value}"
                break
    return found
