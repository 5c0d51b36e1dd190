"""The Nature DQN convolutional encoder (Mnih et al. 2015) for image observations."""

import gymnasium as gym
import torch
from torch import nn

from acexp.models.member_layers import MemberConv2d
from acexp.models.normalization import normalize_observation


class NatureCNN(nn.Module):
    """uint8 frames [members, batch, ...] -> [0, 1] -> three ReLU convolutions -> flat features.

    Accepts (H, W), (C, H, W) (e.g. stacked grayscale frames) or (H, W, C) (raw RGB, the last
    axis being the smallest) images; the output width is found by a dry run.
    """

    def __init__(self, space: gym.spaces.Box, members: int = 1) -> None:
        super().__init__()
        self.space = space
        shape = space.shape
        self.layout = "hw" if len(shape) == 2 else ("hwc" if shape[-1] < shape[0] else "chw")
        channels = 1 if self.layout == "hw" else (shape[-1] if self.layout == "hwc" else shape[0])
        self.net = nn.Sequential(
            MemberConv2d(channels, 32, 8, 4, members),
            nn.ReLU(),
            MemberConv2d(32, 64, 4, 2, members),
            nn.ReLU(),
            MemberConv2d(64, 64, 3, 1, members),
            nn.ReLU(),
        )
        with torch.no_grad():
            dry_run = torch.zeros((members, 1, *shape), dtype=torch.uint8)
            self.out_dim = int(self(dry_run).shape[-1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        members, batch = obs.shape[:2]
        if self.layout == "hw":
            obs = obs.unsqueeze(2)
        elif self.layout == "hwc":
            obs = obs.permute(0, 1, 4, 2, 3)
        # members side by side along the channels: [batch, members * C, H, W] (a view for one)
        obs = obs.transpose(0, 1).flatten(1, 2)
        obs = obs.contiguous(memory_format=torch.channels_last)  # on uint8: a quarter the bytes
        features = self.net(normalize_observation(obs, self.space))  # the one place images scale
        return features.reshape(batch, members, -1).transpose(0, 1)
