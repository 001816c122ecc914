"""The shot browser's costs: the ``thumbnails`` feature against bare ffmpeg extracting and scaling the same
frames to JPEG, and the server-side render of a synthetic 2,000-shot title's page against serializing its shot
table as JSON (what the API's read of it does).

The page figure renders the title template from values built in memory (no store): it measures what grows
with the shots, the grid of 2,000 sprite tiles, and must stay well under a second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.context import Context
from bench.harness import BenchError, Figure, side_by_side
from mediamesh.features.dedup import dedup
from mediamesh.features.encode import encode
from mediamesh.features.encoders import sample_frames
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.shots import shots
from mediamesh.features.thumbnails import thumbnails
from mediamesh.features.values import DedupMap, EncodedMedia, ShotTable, ShotThumbnails, SourceMedia
from mediamesh.orchestrator.interfaces import pictures
from mediamesh.orchestrator.interfaces.web.routes import Title, _templates
from mediamesh.store import AssetRecord

__all__ = ["run"]

VIDEO = Path(__file__).resolve().parent.parent / "tests" / "data" / "big_buck_bunny_0_30.webm"
SHOTS = 2000
#: thumbnails decodes in Python (PyAV) and resizes with Pillow; bare ffmpeg does both in C.
MAX_RATIO = 3.0
MAX_PAGE_SECONDS = 1.0


def run(ctx: Context) -> list[Figure]:
    return [_thumbnails(ctx), _page(ctx)]


def _thumbnails(ctx: Context) -> Figure:
    source = SourceMedia(asset="bench", path=VIDEO, name=VIDEO.name)
    encoded = encode(source)
    ctx.stack.callback(shutil.rmtree, encoded.path.parent, ignore_errors=True)
    table = shots(source, encoded)
    groups = dedup(encoded, table)
    frames = sorted({sample_frames(table.shots[i], 1, encoded.frame_count)[0] for i in groups.unique})
    out = ctx.workdir / "bare"
    out.mkdir()

    def target() -> None:
        value = thumbnails(encoded, table, groups)
        shutil.rmtree(value.path.parent, ignore_errors=True)

    def bare() -> None:
        _ffmpeg_frames(encoded, frames, out)

    pair = side_by_side(target, bare, repeats=ctx.repeats(9, 2))
    return Figure(
        name="thumbnails",
        description=f"thumbnails of {VIDEO.name}'s {len(table)} shots ({len(frames)} unique frames, one sprite)",
        target_label="features.thumbnails.thumbnails(encode, shots, dedup)",
        baseline_label="ffmpeg -vf select=...,scale=160:-2 -> one JPEG per frame",
        samples=pair,
        max_ratio=MAX_RATIO,
        notes={"shots": len(table), "frames": len(frames), "encode": f"{encoded.width}x{encoded.height}"},
    )


def _page(ctx: Context) -> Figure:
    title = _synthetic_title(SHOTS)
    template = _templates.get_template("title.html")
    rendered: list[int] = []

    def target() -> None:
        rendered.append(len(template.render(t=title, margin=pictures.TIMELINE_MARGIN)))

    def baseline() -> None:
        json.dumps(title.shots.records() if title.shots is not None else [])

    pair = side_by_side(target, baseline, repeats=ctx.repeats(21, 3))
    if not rendered or rendered[-1] < SHOTS * 100:
        raise BenchError(f"the page of {SHOTS} shots rendered only {rendered[-1] if rendered else 0} characters")
    return Figure(
        name="browser-title-page",
        description=f"render the title page of a synthetic {SHOTS}-shot title (server side, tiles from one sprite)",
        target_label="templates/title.html rendered",
        baseline_label="json.dumps(shot table records)",
        samples=pair,
        max_seconds=MAX_PAGE_SECONDS,
        notes={"shots": SHOTS, "html_bytes": rendered[-1]},
    )


def _synthetic_title(count: int) -> Title:
    """A title of ``count`` two-second shots, every tenth a repeat, with a sprite layout (no file behind it)."""
    fps = 24.0
    table = ShotTable.from_frames(fps, [(48 * i, 48 * (i + 1)) for i in range(count)])
    groups = DedupMap(representative=tuple(i - 1 if i % 10 == 9 else i for i in range(count)), method="synthetic")
    unique = groups.unique
    tile_of = {shot: tile for tile, shot in enumerate(unique)}
    layout = ShotThumbnails(
        path=Path("sprite.jpg"),
        tile_width=160,
        tile_height=90,
        columns=48,
        tiles=tuple(tile_of[r] for r in groups.representative),
    )
    asset = AssetRecord(id="f" * 64, size=0, blob_key="", created_at=datetime.now(UTC), names=("synthetic.mp4",))
    encoded = EncodedMedia(
        path=Path("encode.mp4"),
        width=640,
        height=360,
        fps=fps,
        frame_count=48 * count,
        duration=2.0 * count,
        has_audio=False,
    )
    return Title(asset, encode=encoded, shots=table, dedup=groups, thumbs=layout)


def _ffmpeg_frames(encoded: EncodedMedia, frames: list[int], out: Path) -> None:
    """The given frames of the encode, scaled to 160 px wide, one JPEG each, by ffmpeg alone."""
    select = "+".join(f"eq(n\\,{f})" for f in frames)
    command = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(encoded.path), "-an"]
    command += ["-vf", f"select={select},scale=160:-2", "-fps_mode", "passthrough", str(out / "%04d.jpg")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"ffmpeg could not extract the frames: {done.stderr.strip()}")
