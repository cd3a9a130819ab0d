"""Benchmarking with genai-bench: tokenizers, runs, and what the runs measured."""
