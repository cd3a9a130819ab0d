"""inference-autotuner: find the fastest launch config of an LLM inference engine under latency SLOs."""

__version__ = "0.1.0"
