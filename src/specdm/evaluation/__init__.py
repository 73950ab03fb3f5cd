"""Evaluation: metrics over data sets (evaluate) and downstream benchmarks."""
