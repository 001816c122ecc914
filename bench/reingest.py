"""Re-ingesting bytes the mesh already holds, under a new name, against hashing the same file.

Ingesting known bytes must cost little more than proving they are known: one SHA-256 pass over the file.
The asset is a real 1080p video of about 256 MiB whose built-in features (encode, shots) are computed
once and stored before timing, so the measured ingest plans, finds everything stored and computes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

from bench.context import Context
from bench.harness import BenchError, Figure, side_by_side
from mediamesh.features import SOURCE, SUBTITLES, TITLE, FileValue, default_registry
from mediamesh.features.media import ffmpeg_exe
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import NewValue, Store, hash_file

__all__ = ["run"]

TARGET_BYTES = 256 << 20
SECONDS = 10
MiB = 1 << 20


def run(ctx: Context) -> list[Figure]:
    store = ctx.open_store()
    # The model-free encoders: no weights can be downloaded here, and the figure is about re-ingest, not models.
    previous = os.environ.get("MEDIAMESH_ENCODERS")
    os.environ["MEDIAMESH_ENCODERS"] = "lite"
    ctx.stack.callback(_restore_env, "MEDIAMESH_ENCODERS", previous)
    registry = default_registry()
    targets = Mesh(store, registry, home=ctx.workdir / "home").default_targets()
    # --quick: a quarter of the bytes in 4 s of video, which the set-up (a first ingest's features) computes faster.
    size, seconds = ctx.repeats(TARGET_BYTES, TARGET_BYTES // 4), ctx.repeats(SECONDS, 4)
    original = make_video(ctx.workdir / "original.mp4", size, seconds)
    asset, _ = store.register_asset(original, name=str(original))
    first = plan(store, registry, [asset.id], targets)
    compute_and_store(store, first, ctx.stack)
    if plan(store, registry, [asset.id], targets).missing:
        raise BenchError("values are still missing after the first ingest")

    # The same bytes under another name; reading them once puts both sides on the page cache.
    copy = ctx.workdir / "copy.mp4"
    shutil.copyfile(original, copy)
    original.unlink()
    hash_file(copy)
    mesh = Mesh(store, registry, home=ctx.workdir / "home")
    names = count()
    current: list[Path] = []

    def new_name() -> None:
        # A hard link: a new path for every run (so each ingest records a new alias), the same inode.
        path = ctx.workdir / f"renamed-{next(names)}.mp4"
        os.link(copy, path)
        current[:] = [path]

    def reingest() -> None:
        [result] = mesh.ingest(current)
        if result.asset != asset.id or result.computed or result.failed or not result.ok:
            raise BenchError(f"re-ingest of known bytes did work or failed: {result.to_json()}")

    def hash_only() -> None:
        hash_file(current[0])

    samples = side_by_side(reingest, hash_only, repeats=ctx.repeats(21, 3), before_each=new_name)
    size = copy.stat().st_size
    return [
        Figure(
            name="reingest",
            description=f"Mesh.ingest of a {size / MiB:.0f} MiB video already stored, under a new name",
            target_label="Mesh.ingest([renamed copy]) -> computed == 0",
            baseline_label="store.hash_file(renamed copy)",
            samples=samples,
            max_ratio=1.3,
            notes={"bytes": size, "features": list(registry.order), "aliases": len(store.asset(asset.id).names)},
        )
    ]


def make_video(path: Path, size: int, seconds: int) -> Path:
    """A 1080p test pattern of about ``size`` bytes: constant bit rate with filler, so it is quick to make."""
    bitrate = size * 8 // seconds
    command = [
        ffmpeg_exe(),
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        *("-b:v", str(bitrate), "-minrate", str(bitrate), "-maxrate", str(bitrate), "-bufsize", str(bitrate)),
        *("-x264-params", "nal-hrd=cbr", str(path)),
    ]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"ffmpeg could not make the test video: {done.stderr.decode(errors='replace').strip()}")
    return path


def compute_and_store(store: Store, the_plan: Plan, until: ExitStack) -> None:
    """Compute the plan's missing values by calling the features directly and store them as the engine does.

    This is the first ingest without Prefect: it is setup, not measured, and a Prefect server would cost more
    than the whole benchmark. The files of file values are removed when ``until`` closes.
    """
    computed: dict[str, object] = {}
    for planned in the_plan.missing:
        roots = {SOURCE: store.source, SUBTITLES: store.subtitles, TITLE: store.title_metadata}
        args = [roots[name](planned.asset) if name in roots else computed[key] for name, key in planned.inputs]
        started = datetime.now(UTC)
        value = planned.spec(*args, **planned.spec.params)
        finished = datetime.now(UTC)
        if isinstance(value, FileValue):
            until.callback(shutil.rmtree, value.path.parent, ignore_errors=True)
        store.put_value(
            NewValue(
                key=planned.key,
                asset_id=planned.asset,
                feature=planned.feature,
                version=planned.spec.version,
                params=dict(planned.spec.params),
                model_fingerprint=planned.model_fingerprint,
                code_fingerprint=planned.spec.fingerprint,
                inputs=planned.inputs,
                started_at=started,
                finished_at=finished,
                worker="bench",
                device="cpu",
            ),
            value,
        )
        computed[planned.key] = value


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
