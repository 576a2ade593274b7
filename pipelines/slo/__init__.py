"""Dagster-free domain library: OpenSLO specs, ingestion, aggregates, SLO math and report helpers."""
