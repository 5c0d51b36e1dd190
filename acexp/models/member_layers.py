"""Layers whose weights carry a leading member dimension: one batched op for many runs.

A batch of K runs (members) trains as one model: every parameter is [K, ...], inputs are
[K, batch, ...], and member k's slice of every parameter is exactly the layer a single run
would have. A single run is a batch of one.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class MemberLinear(nn.Module):
    """A linear layer per member: y = x W^T + b for each member's [batch, in] input.

    Input [members, batch, in] -> [members, batch, out], one `baddbmm` for all members. The
    parameters are stored as the matmul reads them, weight [members, in, out] and bias
    [members, 1, out], so that a call costs one op (it is the hot path of a single run too);
    state dicts hold them as `nn.Linear` does, weight [members, out, in] and bias
    [members, out], so each member's slice is a single run's layer. Each member's slice is
    initialised as `nn.Linear` initialises its weights.
    """

    def __init__(self, in_dim: int, out_dim: int, members: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)
        for member in range(members):  # nn.Linear's own initialisation, per member
            nn.init.kaiming_uniform_(self.weight.data[member].mT, a=math.sqrt(5))
            nn.init.uniform_(self.bias.data[member], -bound, bound)

    def weights(self) -> torch.Tensor:
        """The weights as `nn.Linear` holds them, [members, out, in] (a view)."""
        return self.weight.mT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        weight, bias = self.weight.mT, self.bias.squeeze(1)
        destination[prefix + "weight"] = weight if keep_vars else weight.detach()
        destination[prefix + "bias"] = bias if keep_vars else bias.detach()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        weight, bias = state_dict.get(prefix + "weight"), state_dict.get(prefix + "bias")
        if weight is not None and weight.dim() == 3:  # [members, out, in], as saved
            state_dict[prefix + "weight"] = weight.mT
        if bias is not None and bias.dim() == 2:  # [members, out], as saved
            state_dict[prefix + "bias"] = bias.unsqueeze(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class MemberConv2d(nn.Module):
    """A convolution per member, as one grouped convolution over [batch, members * C, H, W].

    The weight is [members, out, in, k, k], each member's slice channels-last (oneDNN's CPU
    convolutions train faster on NHWC memory: benchmarks.breakdown pong), and initialised as
    `nn.Conv2d` initialises its own.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, members: int) -> None:
        super().__init__()
        self.members, self.stride = members, stride
        # [members, out, k, k, in] in memory, seen as [members, out, in, k, k]: channels-last
        weight = torch.empty(members, out_ch, kernel, kernel, in_ch).permute(0, 1, 4, 2, 3)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.empty(members, out_ch))
        bound = 1 / math.sqrt(in_ch * kernel * kernel)
        for member in range(members):  # nn.Conv2d's own initialisation, per member
            nn.init.kaiming_uniform_(self.weight.data[member], a=math.sqrt(5))
            nn.init.uniform_(self.bias.data[member], -bound, bound)

    def weights(self) -> torch.Tensor:
        """The weights, [members, out, in, k, k]."""
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.flatten(0, 1)  # a view for one member; a copy for several
        weight = weight.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, weight, self.bias.flatten(), self.stride, groups=self.members)
