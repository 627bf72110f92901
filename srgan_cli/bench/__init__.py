"""Benchmarking: the paper's quality protocol and speed measurements."""
