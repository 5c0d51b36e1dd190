"""Trainers: each registered by name and built from the whole config."""
