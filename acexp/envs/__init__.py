"""Environments: making (vector) envs from the env group, and their state for exact resume."""
