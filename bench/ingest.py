"""A warm first ingest of a real clip with the lite encoders, against its unavoidable work: encode and shots.

Issue 16: a first ingest of ``issue-195-aspect-ratio.mp4`` (25 s, 704x576 SAR 16:11, AAC) with
``MEDIAMESH_ENCODERS=lite`` costs at most twice the bare encode plus shot detection, in wall time and in CPU time.

- **mesh**: ``Mesh.ingest([clip])`` in this process, every default target, on a store with a database and blob
  folder of its own each round (made and migrated before the clock starts, dropped after), so nothing computed
  before is reused. "Warm": imports done, the managed Prefect server up, models loaded (the lite encoders have
  none), and one untimed round of each side first.
- **bare**: the very ffmpeg command the ``encode`` feature runs (captured from one call of the feature, not
  rebuilt here), then ``scenedetect.detect(clip, ContentDetector(...))`` with the ``shots`` feature's default
  detector params, on the original.

CPU time is this process's and its waited-for children's (ffmpeg), plus the Prefect server's and the embedded
Postgres's process trees, read around each run on both sides: the server and the database do work for the
ingest in other processes, and an idle server's background work lands on both sides alike.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import scenedetect
from scenedetect import ContentDetector

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, cpu_seconds, interleaved_costs
from mediamesh.features import SourceMedia, default_registry, processes
from mediamesh.features.encode import encode
from mediamesh.orchestrator.mesh import Mesh

__all__ = ["CLIP", "bare_encode_command", "run"]

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "issue-195-aspect-ratio.mp4"
MAX_RATIO = 2.0
LITE = {"MEDIAMESH_ENCODERS": "lite", "MEDIAMESH_DEVICE": "cpu", "MEDIAMESH_EXECUTION": "local"}


def run(ctx: Context) -> list[Figure]:
    ctx.environment(**LITE, MEDIAMESH_CONFIG=str(ctx.workdir / "no-config.toml"), PREFECT_API_URL=None)
    registry = default_registry()
    shots = registry["shots"]
    if shots.params["detector"] != "content":
        raise BenchError(f"the shots feature's default detector is {shots.params['detector']!r}, not 'content'")
    detector_params = {"threshold": shots.params["threshold"], "min_scene_len": shots.params["min_scene_len"]}
    prefect = ctx.services.prefect()
    ctx.services.postgres()
    postgres_pid = ctx.services.postgres_pid
    command = bare_encode_command(CLIP, ctx.workdir / "bare-encode.mp4")

    rounds = ExitStack()
    ctx.stack.callback(rounds.close)
    meshes: list[Mesh] = []
    assets: list[str] = []
    computed: list[int] = []
    stored: list[list[str]] = []

    def fresh_store() -> None:
        # A new database and blob folder once the last one has been ingested into (not before the bare runs).
        if meshes and not assets:
            return
        record()
        assets.clear()
        rounds.close()
        meshes[:] = [Mesh(ctx.open_store(until=rounds), registry, home=prefect.home)]

    def record() -> None:
        if assets:
            stored[:] = [sorted(f"{r.feature}@{r.version}" for r in meshes[0].store.values_for(assets[0]))]

    def ingest() -> None:
        [result] = meshes[0].ingest([CLIP])
        if not result.ok or result.failed or result.reused or result.asset is None:
            raise BenchError(f"the first ingest of {CLIP.name} failed or reused values: {result.to_json()}")
        assets[:] = [result.asset]
        computed.append(result.computed)

    def bare() -> None:
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"the bare ffmpeg encode failed: {done.stderr.decode(errors='replace').strip()}")
        scenedetect.detect(str(CLIP), ContentDetector(**detector_params))

    def cpu() -> float:
        return cpu_seconds(prefect.pid, postgres_pid)

    repeats = ctx.repeats(5, 2)
    (mesh_wall, bare_wall), (mesh_cpu, bare_cpu) = interleaved_costs(
        [ingest, bare], repeats=repeats, before_each=fresh_store, cpu=cpu
    )
    targets = meshes[0].default_targets()
    record()
    if len(set(computed)) != 1 or len(stored[0]) != computed[0]:
        raise BenchError(f"rounds computed different numbers of values: {computed}, stored {stored}")
    notes: dict[str, Any] = {
        "clip": CLIP.name,
        "default_targets": targets,
        "values_computed": stored[0],
        "encode_command": command,
        "detector_params": detector_params,
        "mesh_cpu_s": mesh_cpu,
        "bare_cpu_s": bare_cpu,
        "prefect_server_pid": prefect.pid,
    }
    what = f"first ingest of {CLIP.name} ({computed[0]} values, lite encoders, warm, a fresh store each round)"
    target_label = "Mesh.ingest([clip]) with every default target, in this process"
    baseline_label = (
        "the encode feature's own ffmpeg command, then scenedetect.detect(clip, ContentDetector(...shots' defaults))"
    )
    return [
        Figure(
            name="ingest-wall",
            description=f"wall time of a {what}",
            target_label=target_label,
            baseline_label=baseline_label,
            samples=Samples(mesh_wall, bare_wall),
            max_ratio=MAX_RATIO,
            notes=notes,
        ),
        Figure(
            name="ingest-cpu",
            description=f"CPU time (this process + ffmpeg children + Prefect server + Postgres) of a {what}",
            target_label=target_label + ": CPU seconds",
            baseline_label=baseline_label + ": CPU seconds",
            samples=Samples(mesh_cpu, bare_cpu),
            max_ratio=MAX_RATIO,
            notes={"clip": CLIP.name},
        ),
    ]


def bare_encode_command(clip: Path, out: Path) -> list[str]:
    """The ffmpeg command the ``encode`` feature runs on ``clip`` with its default params, writing to ``out``.

    Taken from one call of the feature (which has no separate argument builder), so the baseline can never
    drift from what the feature does.
    """
    with _recorded_runs() as commands:
        encoded = encode(SourceMedia(asset="0" * 64, path=clip, name=clip.name))
    shutil.rmtree(encoded.path.parent, ignore_errors=True)
    [command] = [c for c in commands if "-i" in c]
    written = [i for i, arg in enumerate(command) if arg.endswith("encode.mp4")]
    if len(written) != 1:
        raise BenchError(f"cannot find the output path in the encode command {command}")
    command[written[0]] = str(out)
    return command


@contextmanager
def _recorded_runs() -> Iterator[list[list[str]]]:
    """Record the commands ``features.processes.run`` runs while the block runs."""
    commands: list[list[str]] = []
    original = processes.run

    def recording(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        commands.append(list(args))
        return original(args)

    processes.run = recording
    try:
        yield commands
    finally:
        processes.run = original
