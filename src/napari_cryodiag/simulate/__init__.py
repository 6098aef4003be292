"""Simulated cryo-EM data with known truth: sample data, tests and benchmarks."""
