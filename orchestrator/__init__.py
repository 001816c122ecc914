"""When and where mediamesh computes: planner, Prefect execution, the CLI.

Python users start here::

    from mediamesh.orchestrator import Mesh

    with Mesh.open() as mesh:
        [result] = mesh.ingest(["movie.mp4"])
        record, shots = mesh.read(result.asset, "shots")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

if TYPE_CHECKING:
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

# Imported on first use: the command line's catalogue reads (``interfaces/cli/quick.py``) import neither Prefect
# nor the store's SQLAlchemy.
__getattr__ = exports(
    __name__,
    {
        "mediamesh.orchestrator.execution.engine": ("AssetReport", "RunReport", "execute"),
        "mediamesh.orchestrator.execution.planner": ("Plan", "PlannedValue", "plan"),
        "mediamesh.orchestrator.mesh": ("FeatureState", "IngestResult", "Mesh"),
    },
)
