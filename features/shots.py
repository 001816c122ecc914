"""Shot boundaries, found on the original's own frames and placed on the standardized encode's frames."""

from __future__ import annotations

from fractions import Fraction

from mediamesh.features import transnet
from mediamesh.features.detectors import (
    DEFAULT_DETECTOR,
    DETECTORS,
    Detection,
    DetectorParams,
    detect,
    detector_resources,
)
from mediamesh.features.errors import InputFileError
from mediamesh.features.spec import feature
from mediamesh.features.values import EncodedMedia, ShotTable, SourceMedia, Transition

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detection", "DetectorParams", "detect", "encode_frame", "shots"]


# TransNetV2 goes to the GPU pool; the PySceneDetect detectors stay on the CPU one.
@feature(version="2", resources=lambda params: detector_resources(str(params["detector"])), model=transnet.fingerprint)
def shots(
    source: SourceMedia,
    encode: EncodedMedia,
    *,
    detector: str = DEFAULT_DETECTOR,
    threshold: float = 27.0,
    min_scene_len: int = 15,
    adaptive_threshold: float = 3.0,
    min_content_val: float = 15.0,
    transnet_threshold: float = 0.5,
    transnet_cut_frames: int = 2,
) -> ShotTable:
    """The shots of the standardized encode, as ``detector`` finds them on the original's frames.

    Detection runs on the original at its own frame times (:func:`detect`; ``min_scene_len`` counts
    frames of the original). A shot starting at time ``t`` of the original starts on the encode at
    :func:`encode_frame` of ``t``, the first encode frame that shows the original's frame at ``t`` or a
    later one, and ends where the next shot starts (or at the last frame): ``[start, end)`` covers every
    encode frame once. A gradual transition's frames belong to the shot it leads into, which starts
    at the transition's first frame. The model fingerprint is the TransNetV2 weights', whichever
    detector is chosen (a feature's fingerprint cannot depend on its params).
    """
    if not encode.path.is_file():
        raise InputFileError(f"encode {encode.path.name!r} does not exist ({encode.path})")
    found = detect(
        source.path,
        detector,
        threshold=threshold,
        min_scene_len=min_scene_len,
        adaptive_threshold=adaptive_threshold,
        min_content_val=min_content_val,
        transnet_threshold=transnet_threshold,
        transnet_cut_frames=transnet_cut_frames,
    )
    starts = shot_starts(found, encode.fps, encode.frame_count)
    bounds = shot_bounds(list(starts), encode.frame_count)
    return ShotTable.from_frames(encode.fps, bounds, [starts[start] for start, _ in bounds[1:]])


def encode_frame(time: float, fps: float, start: float = 0.0) -> int:
    """The first frame of a constant-``fps`` encode showing the original's frame at ``time`` (seconds
    from the original's first frame, which is ``start`` seconds after the container's start) or a later one.

    ffmpeg's fps filter gives an original frame at ``s`` seconds the output slot ``round(s * fps)``
    (half away from zero) and fills each slot with the last frame given it or an earlier slot; the encode
    counts slots from the first frame's. So the frames from ``time`` on first show at
    ``round((start + time) * fps) - round(start * fps)``.
    """
    rate = Fraction(fps).limit_denominator(1001)
    return _round_half_up((start + time) * rate) - _round_half_up(start * rate)


def shot_starts(found: Detection, fps: float, frame_count: int) -> dict[int, Transition]:
    """The encode frames where a shot starts (after the first), with how each begins; a hard cut wins
    over a gradual transition that lands on the same frame."""
    starts: dict[int, Transition] = {}
    for a, b in found.gradual:
        starts[encode_frame(a, fps, found.start)] = ("gradual", encode_frame(b, fps, found.start))
    for cut in found.cuts:
        starts[encode_frame(cut, fps, found.start)] = ("cut", None)
    return {frame: starts[frame] for frame in sorted(starts) if 0 < frame < frame_count}


def shot_bounds(cuts: list[int], frame_count: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame pairs covering ``[0, frame_count)``: one shot when there is no cut."""
    starts = [0, *sorted({c for c in cuts if 0 < c < frame_count})]
    return list(zip(starts, [*starts[1:], frame_count], strict=True))


def _round_half_up(value: Fraction | float) -> int:
    # A float time is a frame's exact time within 1e-9 s; the slack keeps a tie (x.5) rounding up.
    return int(Fraction(value) + Fraction(1, 2) + Fraction(1, 10**6)) if value >= 0 else -_round_half_up(-value)
