"""Features for the warm worker tests: a CPU stage and a GPU stage that loads the configured image model.

``image_models`` loads the model through the production loader and returns how many distinct model objects
the process computing it has been handed so far, so a value of 1 on the second asset shows the model was
loaded once across flow runs. On bytes starting ``stall``, ``arrived`` runs ``sleep`` for ten minutes (as the
encode runs ffmpeg) and fails if it ends early; planning it fails while the file ``MEDIAMESH_TEST_BROKEN`` names
exists.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mediamesh.features import MediaError, SourceMedia, feature, processes
from mediamesh.features.models import ImageModel, load_image_model, model_fingerprint, resolve_model
from tests.orchestrator.resources.counting_features import Number

STALL_S = "600.25"
_seen: list[ImageModel] = []
_lock = threading.Lock()


def _reference_model() -> str:
    """The fingerprint of a model that lives elsewhere: planning fails while it cannot be reached."""
    broken = os.environ.get("MEDIAMESH_TEST_BROKEN")
    if broken and Path(broken).exists():
        raise ConnectionError("the model registry is unreachable")
    return "reference-v1"


@feature(version="1", model=_reference_model)
def arrived(source: SourceMedia) -> Number:
    """The asset's size in bytes, after a ten-minute tool for bytes that start with b'stall'."""
    with source.path.open("rb") as data:
        stall = data.read(5) == b"stall"
    # A tool that runs as long as an encode might, started as the encode starts ffmpeg.
    if stall and processes.run(["sleep", STALL_S]).returncode != 0:
        raise MediaError(f"the tool stopped before {source.asset[:12]} was done")
    return Number(source.path.stat().st_size)


@feature(version="1", resources="gpu", model=lambda: model_fingerprint("video"))
def image_models(arrived: Number) -> Number:
    """How many image models this process has loaded: one, however many flow runs asked for it."""
    model = load_image_model(resolve_model("video"))
    with _lock:
        if not any(seen is model for seen in _seen):
            _seen.append(model)
        return Number(len(_seen))
