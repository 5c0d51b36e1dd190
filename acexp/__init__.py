"""acexp: Hydra-configured experiments for actor-critic reinforcement learning."""

__version__ = "0.1.0"
