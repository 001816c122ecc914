"""When and where mediamesh computes: planner, Prefect execution, the CLI.

Python users start here::

    from mediamesh.orchestrator import Mesh

    with Mesh.open() as mesh:
        [result] = mesh.ingest(["movie.mp4"])
        record, shots = mesh.read(result.asset, "shots")
"""

from mediamesh.orchestrator.execution.engine import AssetReport, RunReport, execute
from mediamesh.orchestrator.execution.planner import Plan, PlannedValue, plan
from mediamesh.orchestrator.mesh import FeatureState, IngestResult, Mesh

__all__ = [
    "AssetReport",
    "FeatureState",
    "IngestResult",
    "Mesh",
    "Plan",
    "PlannedValue",
    "RunReport",
    "execute",
    "plan",
]
