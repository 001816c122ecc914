"""Each shot detector against bare PySceneDetect ContentDetector on the same original 720p clip, in frames/s.

PySceneDetect-only detectors run on the whole clip. Anything with TransNetV2 (about 20-50 frames/s on a
CPU) runs on the clip's first frames, re-encoded losslessly enough to keep its cuts, with its own
baseline on that same prefix.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import scenedetect
from scenedetect import ContentDetector

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.shots import DETECTORS, detect

__all__ = ["run"]

VIDEO = Path(__file__).resolve().parent.parent / "tests" / "data" / "testvideo.mp4"
BASELINE_LABEL = "scenedetect.detect(path, ContentDetector())"
# The bare ContentDetector is the target for the PySceneDetect detectors, which do its work and no more;
# TransNetV2 runs a network on every frame and has no target, its ratio says what it costs.
MAX_RATIO = {"content": 1.1, "adaptive": 1.2}
QUICK_FRAMES = 240


def run(ctx: Context) -> list[Figure]:
    plain = [d for d in DETECTORS if "transnetv2" not in d]
    # The network's cost dwarfs the rest, so --quick times TransNetV2 alone, not each combination.
    network = [d for d in DETECTORS if "transnetv2" in d] if not ctx.quick else ["transnetv2"]
    # --quick runs the PySceneDetect detectors on a prefix too, which holds two of the three cuts.
    video = _first_frames(VIDEO, ctx.workdir / "quick.mp4", frames=QUICK_FRAMES) if ctx.quick else VIDEO
    figures = _figures(ctx, video, plain, repeats=ctx.repeats(9, 2))
    # TransNetV2 runs at tens of frames/s on two cores: its four figures would take most of a full run's budget.
    prefix = _first_frames(VIDEO, ctx.workdir / "prefix.mp4", frames=ctx.repeats(100, 50))
    return figures + _figures(ctx, prefix, network, repeats=ctx.repeats(3, 2))


def _figures(ctx: Context, video: Path, detectors: list[str], *, repeats: int) -> list[Figure]:
    """Every detector and the bare baseline interleaved on ``video``; a figure per detector."""
    found: dict[str, set[tuple[int, int]]] = {name: set() for name in detectors}
    frames: dict[str, int] = {}
    scenes: set[int] = set()

    def target(name: str) -> Callable[[], None]:
        def call() -> None:
            detection = detect(video, name)
            frames[name] = detection.frames
            found[name].add((len(detection.cuts), len(detection.gradual)))

        return call

    def bare() -> None:
        scenes.add(len(scenedetect.detect(str(video), ContentDetector())))

    calls = [target(name) for name in detectors]
    *times, baseline = interleaved([*calls, bare], repeats=repeats)
    unstable = {name: sorted(counts) for name, counts in found.items() if len(counts) != 1}
    if unstable or len(scenes) != 1:
        raise BenchError(f"detections differ between runs: {unstable or ''} bare scenes {sorted(scenes)}")
    baseline_memory = ctx.memory(bare)
    figures = []
    for name, call, samples in zip(detectors, calls, times, strict=True):
        pair = Samples(samples, baseline)
        (cuts, gradual), count = next(iter(found[name])), frames[name]
        notes: dict[str, Any] = {
            "video": video.name,
            "frames": count,
            "frames_per_s": count / pair.target_median,
            "baseline_frames_per_s": count / pair.baseline_median,
            "cuts": cuts,
            "gradual": gradual,
            # PySceneDetect returns no scenes for a video without a cut; with cuts, one more than cuts.
            "scenes_bare": next(iter(scenes)),
        }
        figures.append(
            Figure(
                name=f"shots-{name}",
                description=f"detect(path, {name!r}) on {video.name} ({count} frames, "
                f"{count / pair.target_median:.0f} frames/s; bare {count / pair.baseline_median:.0f} frames/s)",
                target_label=f"features.shots.detect(path, {name!r})",
                baseline_label=BASELINE_LABEL,
                samples=pair,
                max_ratio=MAX_RATIO.get(name),
                memory_target=ctx.memory(call),
                memory_baseline=baseline_memory,
                notes=notes,
            )
        )
    return figures


def _first_frames(video: Path, out: Path, *, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` as an H.264 file of their own (CRF 12: the cuts survive)."""
    command = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-frames:v", str(frames), "-an"]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "12", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"ffmpeg could not cut the first {frames} frames of {video.name}: {done.stderr.strip()}")
    return out
