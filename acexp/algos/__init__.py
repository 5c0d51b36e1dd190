"""Algorithms: the registry, the on-policy engine, A2C, PPO, the per-episode trainer, losses."""
