"""Sweeps: batching a sweep's runs, run names and the line a sweep ends with."""
