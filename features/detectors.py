"""Shot-boundary detection on a video's own frames, at their own presentation times.

One decoding pass of the original (PyAV, small frames) feeds the chosen detectors. Every time is a
frame's presentation timestamp, never a frame index over a nominal rate, so variable-frame-rate
sources are timed right. Times are seconds from the first decoded frame.

Detectors, named alone or joined with ``+``:

- ``content``: PySceneDetect's ContentDetector (``threshold``, ``min_scene_len``) on frames whose longer
  side is 256 pixels, as PySceneDetect downscales by default;
- ``adaptive``: PySceneDetect's AdaptiveDetector (``adaptive_threshold``, ``min_content_val``,
  ``min_scene_len``) on the same frames;
- ``transnetv2``: the TransNetV2 network (:mod:`.transnet`, ``transnet_threshold``): a run of at most
  ``transnet_cut_frames`` frames over the threshold is a hard cut, a longer run a gradual transition.

In a combination the PySceneDetect detector gives the hard cuts and TransNetV2 the gradual transitions
(those that contain no hard cut).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mediamesh.features import transnet
from mediamesh.features.errors import InputFileError, MediaError

if TYPE_CHECKING:
    import av
    from scenedetect import FrameTimecode, SceneDetector

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detection", "DetectorParams", "detect", "detector_resources"]

DETECTORS: tuple[str, ...] = ("content", "adaptive", "transnetv2", "content+transnetv2", "adaptive+transnetv2")
# Fast enough for every ingest (a decode at 256 pixels wide) and exact on the reference cuts.
DEFAULT_DETECTOR = "content"

# The width (or height, for portrait video) PySceneDetect downscales frames to by default.
_DETECTION_SIDE = 256


@dataclass(frozen=True)
class Detection:
    """What a detector found on a video, in seconds from its first frame."""

    fps: float
    frames: int
    cuts: tuple[float, ...]
    gradual: tuple[tuple[float, float], ...]
    #: The first frame's time from the container's start, which ffmpeg counts the encode's frames from.
    start: float = 0.0


@dataclass(frozen=True)
class DetectorParams:
    """Every detector's thresholds; each detector reads only its own."""

    threshold: float = 27.0
    min_scene_len: int = 15
    adaptive_threshold: float = 3.0
    min_content_val: float = 15.0
    transnet_threshold: float = 0.5
    transnet_cut_frames: int = 2


def detect(path: Path, detector: str = DEFAULT_DETECTOR, **params: Any) -> Detection:
    """Hard cuts and gradual transitions of the video at ``path``, found by ``detector`` (one of
    :data:`DETECTORS`) with ``params`` (fields of :class:`DetectorParams`)."""
    import av
    import av.error
    import cv2

    parts = _parts(detector)
    known = [f.name for f in fields(DetectorParams)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"detect: no param(s) {unknown}; the params are {', '.join(known)}")
    options = DetectorParams(**params)
    if not path.is_file():
        raise InputFileError(f"video {path.name!r} does not exist ({path})")
    scene = _scene_detector(parts[0], options) if parts[0] != "transnetv2" else None
    times: list[Fraction] = []
    small: list[np.ndarray[Any, Any]] = []
    cuts: list[Fraction] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path.name!r} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = Fraction(stream.time_base or Fraction(1, 90000))
            rate = stream.average_rate or stream.guessed_rate or Fraction(24)
            offset = Fraction(container.start_time or 0, av.time_base)
            size = _detection_size(stream.codec_context.width, stream.codec_context.height)
            for time, frame in _timed_frames(container, stream, rate):
                times.append(time)
                if scene is not None:
                    # PySceneDetect's own scaling (cv2, bilinear, from the full frame): a filtered
                    # downscale (swscale's) scores fast motion higher and adds cuts on testvideo.mp4.
                    image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_LINEAR)
                    cuts += [_seconds(tc) for tc in scene.process_frame(_timecode(time, base, rate), image)]
                if "transnetv2" in parts:
                    small.append(frame.reformat(*transnet.FRAME_SIZE, format="rgb24").to_ndarray())
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot decode {path.name!r}: {exc}") from exc
    if not times:
        raise MediaError(f"{path.name!r} has no decodable video frames")
    if scene is not None:
        cuts += [_seconds(tc) for tc in scene.post_process(_timecode(times[-1], base, rate))]
    gradual: list[tuple[Fraction, Fraction]] = []
    if small:
        single, many = transnet.predict(np.stack(small))
        hard, gradual = _transnet_events(single, many, times, options)
        if scene is None:
            cuts = hard
        else:
            gradual = [(a, b) for a, b in gradual if not any(a <= c <= b for c in cuts)]
    first = times[0]
    return Detection(
        fps=float(rate),
        frames=len(times),
        cuts=tuple(sorted({float(c - first) for c in cuts if c > first})),
        gradual=tuple((float(a - first), float(b - first)) for a, b in gradual if a > first),
        start=float(first - offset),
    )


def detector_resources(detector: str) -> Literal["cpu", "gpu"]:
    """The work pool a detector runs best on: the GPU pool for TransNetV2 (a neural network), else the CPU."""
    return "gpu" if "transnetv2" in detector.split("+") else "cpu"


def _parts(detector: str) -> tuple[str, ...]:
    if detector not in DETECTORS:
        raise ValueError(f"unknown shot detector {detector!r}; the detectors are {', '.join(DETECTORS)}")
    return tuple(detector.split("+"))


def _scene_detector(name: str, options: DetectorParams) -> SceneDetector:
    from scenedetect import AdaptiveDetector, ContentDetector

    if name == "content":
        return ContentDetector(threshold=options.threshold, min_scene_len=options.min_scene_len)
    return AdaptiveDetector(
        adaptive_threshold=options.adaptive_threshold,
        min_content_val=options.min_content_val,
        min_scene_len=options.min_scene_len,
    )


def _detection_size(width: int, height: int) -> tuple[int, int]:
    """The stored frame scaled so its longer side is 256 pixels (never up), as PySceneDetect does."""
    scale = max(width, height) / _DETECTION_SIDE
    if scale <= 1:
        return width, height
    return max(1, round(width / scale)), max(1, round(height / scale))


def _timed_frames(container: Any, stream: Any, rate: Fraction) -> Iterator[tuple[Fraction, av.VideoFrame]]:
    """Each decoded frame with its presentation time (s); a frame without one follows its predecessor."""
    previous: Fraction | None = None
    for frame in container.decode(stream):
        if frame.pts is not None and frame.time_base is not None:
            time = frame.pts * Fraction(frame.time_base)
        else:
            time = previous + 1 / rate if previous is not None else Fraction(0)
        if previous is not None and time <= previous:
            continue
        previous = time
        yield time, frame


def _timecode(time: Fraction, base: Fraction, rate: Fraction) -> FrameTimecode:
    """``time`` in the stream's own time base, so the detector's cuts come back as exact frame times."""
    from scenedetect import FrameTimecode
    from scenedetect.common import Timecode

    return FrameTimecode(Timecode(pts=round(time / base), time_base=base), fps=rate)


def _seconds(timecode: FrameTimecode) -> Fraction:
    return Fraction(timecode.pts) * Fraction(timecode.time_base)


def _transnet_events(
    single: np.ndarray[Any, Any], many: np.ndarray[Any, Any], times: list[Fraction], options: DetectorParams
) -> tuple[list[Fraction], list[tuple[Fraction, Fraction]]]:
    """Hard cuts and gradual transitions from TransNetV2's two heads.

    Each run of frames over the threshold on the single-frame head is one transition. The many-hot head
    marks every frame of a transition: when its run around the single-frame run spans more than
    ``transnet_cut_frames`` frames the transition is gradual, ``[its first frame, the frame after its
    last)``; otherwise it is a hard cut, the new shot starting at the frame after the single-frame run.
    """
    threshold = options.transnet_threshold
    spans = transnet.transitions(many, threshold)
    cuts: list[Fraction] = []
    gradual: list[tuple[Fraction, Fraction]] = []
    for first, last in transnet.transitions(single, threshold):
        around = [(a, b) for a, b in spans if a <= last and b >= first]
        if around and around[0][1] - around[0][0] + 1 > options.transnet_cut_frames:
            a, b = around[0][0], around[-1][1]
            if not gradual or times[a] >= gradual[-1][1]:
                gradual.append((times[a], times[min(b + 1, len(times) - 1)]))
        else:
            cuts.append(times[min(last + 1, len(times) - 1)])
    return cuts, gradual
