"""Logging: TensorBoard scalars, HParams and console progress."""
