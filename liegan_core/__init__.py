"""liegan_core: a reproducible benchmark suite for symmetry discovery (LieGAN and baselines)."""

__version__ = "0.1.0"
