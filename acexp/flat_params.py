"""One contiguous buffer for an optimizer's parameters, and one for their gradients.

At RL sizes (a few 64-wide layers) every per-tensor call of an optimizer step or of gradient
clipping costs more than its arithmetic. With the parameters laid out in one buffer the
optimizer steps one tensor and clipping scales one gradient: about 30 % off a PPO minibatch
update on HalfCheetah (`python -m benchmarks.breakdown halfcheetah`).

The parameters stay ordinary leaf `nn.Parameter`s with their own names and state_dict
entries; only their storage moves. Loading weights copies into them in place, so the
buffer follows.
"""

import torch
from torch import nn


def _is_dense(tensor: torch.Tensor) -> bool:
    """Whether the tensor fills numel() consecutive slots: contiguous, or a channels-last
    4-d conv weight (the layouts `_views` can lay out again)."""
    return tensor.is_contiguous() or (
        tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last)
    )


def _views(buffer: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    """Views of `buffer` with each parameter's shape and strides (channels-last stays so)."""
    views, offset = [], 0
    for param in params:
        views.append(buffer.as_strided(param.shape, param.stride(), offset))
        offset += param.numel()
    return views


class FlatParameters:
    """Moves `params` into one flat parameter (`flat`) whose `.grad` holds all their gradients.

    Backward accumulates into each parameter's `.grad`, a view of `flat.grad`, in place; so
    gradients are zeroed with `zero_grad()`, never set to None. A parameter outside the loss's
    graph therefore gets a zero gradient rather than none (every acexp loss reaches them all).
    """

    def __init__(self, params: list[nn.Parameter]) -> None:
        if len({(p.device, p.dtype) for p in params}) > 1:
            raise ValueError("flat parameters need one device and one dtype")
        if not all(_is_dense(p) for p in params):
            raise ValueError("flat parameters need dense (contiguous or channels-last) tensors")
        self.params = params
        total = sum(p.numel() for p in params)
        template = params[0]
        self.flat = nn.Parameter(torch.empty(total, device=template.device, dtype=template.dtype))
        self.grad = torch.zeros_like(self.flat)
        with torch.no_grad():
            for param, view in zip(params, _views(self.flat.data, params), strict=True):
                view.copy_(param)
                param.data = view
        self.grad_views = _views(self.grad, params)
        self.zero_grad()

    def zero_grad(self) -> None:
        """Zero every gradient and (re)attach the views, in case something set one to None."""
        self.grad.zero_()
        self.flat.grad = self.grad
        for param, view in zip(self.params, self.grad_views, strict=True):
            param.grad = view

    def flatten_state(self, per_param: list[dict]) -> dict:
        """Optimizer state saved per parameter (by earlier acexp) as the state of `flat`.

        Tensors shaped like their parameter (moments) are laid out as the parameters are;
        anything else (the step count) is the same for every parameter and taken once.
        """
        state = {}
        for key, first in per_param[0].items():
            if not (torch.is_tensor(first) and first.shape == self.params[0].shape):
                state[key] = first
                continue
            buffer = torch.empty_like(self.flat.data)
            for view, entry in zip(_views(buffer, self.params), per_param, strict=True):
                view.copy_(entry[key])
            state[key] = buffer
        return state
