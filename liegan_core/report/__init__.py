"""Aggregation of run results into tables (pandas) and figures (seaborn)."""
