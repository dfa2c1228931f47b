"""Neural network models used by the benchmark tasks."""
