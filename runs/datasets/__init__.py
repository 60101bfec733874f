"""Runs as a dataset: which runs (selection), how they are written (shards), the service (export)."""
