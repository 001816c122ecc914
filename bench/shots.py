"""The ``shots`` feature against bare PySceneDetect on the same standardized encode."""

from __future__ import annotations

import shutil
from pathlib import Path

import scenedetect
from scenedetect import ContentDetector

from bench.context import Context
from bench.harness import BenchError, Figure, side_by_side
from mediamesh.features.encode import encode
from mediamesh.features.shots import shots
from mediamesh.features.values import SourceMedia

__all__ = ["run"]

VIDEO = Path(__file__).resolve().parent.parent / "tests" / "data" / "testvideo.mp4"


def run(ctx: Context) -> list[Figure]:
    encoded = encode(SourceMedia(asset="x", path=VIDEO, name=VIDEO.name))
    ctx.stack.callback(shutil.rmtree, encoded.path.parent, ignore_errors=True)
    found: list[int] = []
    found_bare: list[int] = []

    def feature() -> None:
        found.append(len(shots(encoded)))

    def bare() -> None:
        found_bare.append(len(scenedetect.detect(str(encoded.path), ContentDetector())))

    samples = side_by_side(feature, bare, repeats=ctx.repeats(21, 3))
    if len(set(found)) != 1 or len(set(found_bare)) != 1:
        raise BenchError(f"shot counts differ between runs: feature {set(found)}, bare {set(found_bare)}")
    return [
        Figure(
            name="shots",
            description=f"shots feature on the encode of {VIDEO.name} ({encoded.frame_count} frames, "
            f"{encoded.width}x{encoded.height})",
            target_label="features.shots.shots(encoded)",
            baseline_label="scenedetect.detect(encode path, ContentDetector())",
            samples=samples,
            max_ratio=1.1,
            notes={
                "frames": encoded.frame_count,
                "size": f"{encoded.width}x{encoded.height}",
                "shots_feature": found[0],
                # PySceneDetect returns no scenes for a video without a cut; the feature returns one shot.
                "scenes_bare": found_bare[0],
            },
        )
    ]
