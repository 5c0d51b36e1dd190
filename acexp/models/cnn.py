"""The Nature DQN convolutional encoder (Mnih et al. 2015) for image observations."""

import gymnasium as gym
import torch
from torch import nn

from acexp.normalization import normalize_observation


class NatureCNN(nn.Module):
    """uint8 frames -> [0, 1] -> three ReLU convolutions -> flat features.

    Accepts (H, W), (C, H, W) (e.g. stacked grayscale frames) or (H, W, C) (raw RGB, the last
    axis being the smallest) images; the output width is found by a dry run.
    """

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.space = space
        shape = space.shape
        self.layout = "hw" if len(shape) == 2 else ("hwc" if shape[-1] < shape[0] else "chw")
        channels = 1 if self.layout == "hw" else (shape[-1] if self.layout == "hwc" else shape[0])
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        # oneDNN's CPU convolutions train faster on channels-last (NHWC) memory (measured with
        # benchmarks.ppo_throughput --envs pong and benchmarks.breakdown pong).
        self.net.to(memory_format=torch.channels_last)
        with torch.no_grad():
            self.out_dim = int(self(torch.zeros((1, *shape), dtype=torch.uint8)).shape[1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.layout == "hw":
            obs = obs.unsqueeze(1)
        elif self.layout == "hwc":
            obs = obs.permute(0, 3, 1, 2)
        obs = obs.contiguous(memory_format=torch.channels_last)  # on uint8: a quarter the bytes
        return self.net(normalize_observation(obs, self.space))  # the one place images are scaled
