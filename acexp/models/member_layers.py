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
    """A linear layer per member: weight [members, out, in], bias [members, out].

    Input [members, batch, in] -> [members, batch, out], one batched matmul for all members.
    Each member's slice is initialised as `nn.Linear` initialises its weights.
    """

    def __init__(self, in_dim: int, out_dim: int, members: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(members, out_dim))
        bound = 1 / math.sqrt(in_dim)
        for member in range(members):  # nn.Linear's own initialisation, per member
            nn.init.kaiming_uniform_(self.weight.data[member], a=math.sqrt(5))
            nn.init.uniform_(self.bias.data[member], -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.flatten(0, 1)  # a view for one member; a copy for several
        weight = weight.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, weight, self.bias.flatten(), self.stride, groups=self.members)
