"""What runs around an algorithm: checkpoints, signals, evaluation, episode stats, objectives."""
