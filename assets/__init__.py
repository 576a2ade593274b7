"""Dagster assets and asset checks, one module per group. Thin: domain logic is in ``pipelines``."""
