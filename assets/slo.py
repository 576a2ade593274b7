"""Group ``slo``: the OpenSLO definitions, loaded and validated."""

from dagster import Failure, MaterializeResult, MetadataValue, asset

from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.spec import SpecError
from pipelines.workflows import store_objectives


@asset(pool=DUCKDB_POOL, group_name="slo", kinds={"duckdb"})
def slo_definitions(sloscope: SloscopeResource) -> MaterializeResult:
    """SLO objectives from the OpenSLO YAML files (table slo_objectives); invalid files fail the run."""
    try:
        slos = sloscope.load_slos()
    except SpecError as exc:
        raise Failure(description="invalid SLO files:\n" + "\n".join(exc.problems)) from exc
    with sloscope.connect() as con:
        objectives = store_objectives(con, slos)
    rows = [
        (s.name, s.service, o.name, f"{float(o.target) * 100:g}%", s.window_text, s.budgeting_method)
        for s in slos
        for o in s.objectives
    ]
    return MaterializeResult(
        metadata={
            "slos": len(slos),
            "objectives": objectives,
            "dagster/row_count": objectives,
            "definitions": MetadataValue.md(
                markdown_table(("SLO", "service", "objective", "target", "window", "budgeting"), rows)
            ),
        }
    )
