"""Optimizers: the joint and separate modes, gradient clipping, flat parameter buffers."""
