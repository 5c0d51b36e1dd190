"""One contiguous buffer for an optimizer's parameters, and one for their gradients.

At RL sizes (a few 64-wide layers) every per-tensor call of an optimizer step or of gradient
clipping costs more than its arithmetic. With the parameters laid out in one buffer the
optimizer steps one tensor and clipping scales one gradient: about 30 % off a PPO minibatch
update on HalfCheetah (`python -m benchmarks.breakdown halfcheetah`).

The buffer is member-major: [members, P], row k holding all of member k's parameters (see
models/member_layers), so each member's gradient norm is one row's norm and its clipping
scales one row.

The parameters stay ordinary leaf `nn.Parameter`s with their own names and state_dict
entries; only their storage moves. Loading weights copies into them in place, so the
buffer follows.

The optimizer steps `step_params`: the flat parameter for a single run; in a batch, one row
per member, so that torch.optim keeps each member's state (Adam's step count too) apart and
can step some members and not others (a member whose row has no gradient is skipped).
"""

import warnings

import torch
from torch import nn

# A member's parameter is a strided view of its row (see above); backward accumulates into
# its .grad view in place, which autograd flags as a layout mismatch, harmlessly.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")


def _is_dense(tensor: torch.Tensor) -> bool:
    """Whether the tensor fills numel() consecutive slots: contiguous, or a channels-last
    4-d conv weight (the layouts `_views` can lay out again)."""
    return tensor.is_contiguous() or (
        tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last)
    )


def _views(buffer: torch.Tensor, params: list[nn.Parameter], row: int) -> list[torch.Tensor]:
    """Views of `buffer` with each parameter's shape; member k's slice of each parameter
    lies in row k (`row` elements), with the member slice's own strides (channels-last
    stays so)."""
    views, offset = [], 0
    for param in params:
        member = param[0]
        views.append(
            buffer.as_strided(
                param.shape, (row, *member.stride()), buffer.storage_offset() + offset
            )
        )
        offset += member.numel()
    return views


class FlatParameters:
    """Moves `params` (each [members, ...]) into one flat parameter (`flat`) whose `.grad`
    holds all their gradients; `rows(tensor)` sees a flat tensor as [members, P].

    Backward accumulates into each parameter's `.grad`, a view of `flat.grad`, in place; so
    gradients are zeroed with `zero_grad()`, never set to None. A parameter outside the loss's
    graph therefore gets a zero gradient rather than none (every acexp loss reaches them all).
    """

    def __init__(self, params: list[nn.Parameter]) -> None:
        if len({(p.device, p.dtype) for p in params}) > 1:
            raise ValueError("flat parameters need one device and one dtype")
        if len({p.shape[0] for p in params}) > 1:
            raise ValueError("flat parameters need the same leading member dimension")
        if not all(_is_dense(p[0]) for p in params):
            raise ValueError("flat parameters need dense (contiguous or channels-last) members")
        self.params = params
        self.members = params[0].shape[0]
        self.row = sum(p[0].numel() for p in params)
        template = params[0]
        self.flat = nn.Parameter(
            torch.empty(self.members * self.row, device=template.device, dtype=template.dtype)
        )
        self.grad = torch.zeros_like(self.flat)
        with torch.no_grad():
            for param, view in zip(params, _views(self.flat.data, params, self.row), strict=True):
                view.copy_(param)
                param.data = view
        self.grad_views = _views(self.grad, params, self.row)
        if self.members == 1:
            self.step_params, self.step_grads = [self.flat], [self.grad]
        else:  # rows of the buffer with no autograd history: leaves, as torch.optim needs
            self.step_params = list(self.rows(self.flat.data))
            self.step_grads = list(self.rows(self.grad))
        self.zero_grad()

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """A flat tensor (the parameters, their gradient, an optimizer moment) as [members, P]."""
        return tensor.view(self.members, self.row)

    def zero_grad(self) -> None:
        """Zero every gradient and (re)attach the views, in case something set one to None."""
        self.grad.zero_()
        self.attach_grads()

    def attach_grads(self) -> None:
        """Point every parameter's and step parameter's `.grad` at its view of `grad`."""
        self.flat.grad = self.grad
        for param, view in zip(self.params, self.grad_views, strict=True):
            param.grad = view
        for param, grad in zip(self.step_params, self.step_grads, strict=True):
            param.grad = grad

    def flatten_state(self, per_param: list[dict]) -> dict:
        """Optimizer state saved per parameter (by earlier acexp) as the state of `flat`.

        Tensors shaped like their parameter (moments) are laid out as the parameters are;
        anything else (the step count) is the same for every parameter and taken once.
        """
        state = {}
        for key, first in per_param[0].items():
            if not (torch.is_tensor(first) and first.numel() == self.params[0][0].numel() > 1):
                state[key] = first
                continue
            buffer = torch.empty_like(self.flat.data)
            for view, entry in zip(_views(buffer, self.params, self.row), per_param, strict=True):
                view.copy_(entry[key])
            state[key] = buffer
        return state
