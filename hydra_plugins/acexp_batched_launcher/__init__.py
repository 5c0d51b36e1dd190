"""`hydra/launcher=batched`: a sweep's compatible runs train together as batches.

Hydra finds this launcher by scanning the `hydra_plugins` namespace package. The scan imports
every module here whose name does not start with `_`, so those stay light (no torch); the
work is in `_batches.py` and `_held_signals.py`, imported when a sweep launches.
"""
