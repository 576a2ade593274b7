"""sloscope: the Dagster code location and the Dagster-free SLO domain library (``pipelines.slo``)."""
