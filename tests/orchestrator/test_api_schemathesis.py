"""Schemathesis over the API's own OpenAPI schema, in process: no input it generates gets a 5xx.

The app runs over a real store holding one computed asset (cheap features, one of them per-shot with a
NaN in it) and a real S3 landing bucket, and the generated requests are steered part of the time to that
asset, its features and the landing bucket, so that the fuzzer reaches the code behind the 404s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import SecretStr
from schemathesis.engine import StopReason
from schemathesis.engine.events import EngineFinished, FatalError, NonFatalError, ScenarioFinished
from schemathesis.schemas import BaseSchema

from mediamesh.features import Registry, ShotEmbeddings, ShotTable, SourceMedia, feature
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings
from tests.orchestrator.resources import counting_features as cf
from tests.services import S3Endpoint

TOKEN = "schemathesis-token"
SEED = 20240501
MAX_EXAMPLES = 100


@feature(version="1")
def cuts(source: SourceMedia) -> ShotTable:
    """Three one-second shots at 24 fps, whatever the bytes."""
    return ShotTable.from_frames(24.0, [(0, 24), (24, 48), (48, 72)])


@feature(version="1")
def vectors(cuts: ShotTable) -> ShotEmbeddings:
    """A vector per shot; the last holds a NaN, which JSON has no number for."""
    data = np.arange(len(cuts) * 4, dtype=np.float32).reshape(len(cuts), 4)
    data[-1, 0] = np.nan
    return ShotEmbeddings(data=data, meta={"made_by": "test"})


@pytest.fixture
def api_schema(local_store: Store, seaweed: S3Endpoint, tmp_path: Path, prefect_api: str) -> Iterator[BaseSchema]:
    registry = Registry([cf.size, cf.doubled, cuts, vectors])
    mesh = Mesh(local_store, registry, home=tmp_path)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"schemathesis clip")
    [result] = mesh.ingest([clip])
    assert result.ok, result.errors
    asset = result.asset
    assert asset is not None
    landing = f"landing-{uuid.uuid4().hex[:12]}"
    seaweed.client().make_bucket(landing)
    store_settings = StoreSettings(
        s3_endpoint=seaweed.endpoint, s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key
    )
    app = create_app(
        lambda: mesh, ApiSettings(token=SecretStr(TOKEN), landing_buckets=[landing]), store_settings=store_settings
    )
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    refs = [asset, asset[:8], str(clip.resolve())]

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        options = [path_parameters]
        if "asset" in path_parameters:
            options += [{**path_parameters, "asset": ref} for ref in refs]
        if "feature" in path_parameters:
            options += [{**option, "feature": name} for option in options[1:] for name in registry]
        return st.sampled_from(options)

    @schema.hook
    def map_body(context: Any, body: Any) -> Any:
        # Every other record announces a new object in the landing bucket, so that it is looked up there.
        if isinstance(body, dict) and isinstance(body.get("Records"), list):
            for record in body["Records"][::2]:
                bucket = record.get("s3", {}).get("bucket") if isinstance(record, dict) else None
                if isinstance(bucket, dict):
                    bucket["name"] = landing
                    record["eventName"] = "s3:ObjectCreated:Put"
        return body

    # Hypothesis keeps caches under ./.hypothesis unless told otherwise; keep the working tree clean.
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    try:
        yield schema
    finally:
        set_hypothesis_home_dir(None)


# Schemathesis's own strategies sometimes draw from `random`, which Hypothesis warns about; not ours to fix.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_input_makes_the_api_fail(api_schema: BaseSchema) -> None:
    events = list(schemathesis.engine.from_schema(api_schema).execute())
    errors = [e for e in events if isinstance(e, NonFatalError | FatalError)]
    assert not errors, [(e.label, repr(e.value)) if isinstance(e, NonFatalError) else e.exception for e in errors]
    finished = events[-1]
    assert isinstance(finished, EngineFinished)
    assert finished.stop_reason == StopReason.COMPLETED
    assert finished.failures == [], "\n\n".join(f"{f.operation}: {f.title}\n{f.message}" for f in finished.failures)
    scenarios = [e for e in events if isinstance(e, ScenarioFinished)]
    operations = {e.recorder.label for e in scenarios}
    assert len(operations) == 12, operations
