"""Shot boundaries, found by PySceneDetect on the standardized encode."""

from __future__ import annotations

from scenedetect import ContentDetector, SceneManager, VideoOpenFailure, open_video

from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.spec import feature
from mediamesh.features.values import EncodedMedia, ShotTable

__all__ = ["shots"]


@feature(version="1", resources="cpu")
def shots(encode: EncodedMedia, *, threshold: float = 27.0, min_scene_len: int = 15) -> ShotTable:
    """Shot boundaries of the standardized encode (PySceneDetect ContentDetector).

    ``min_scene_len`` counts frames of the original, as PySceneDetect run on the original would, so
    resampling to the encode's frame rate does not change what counts as too short to be a shot.
    """
    cuts = _detect_cuts(encode, threshold=threshold, min_scene_len=_encode_frames(encode, min_scene_len))
    return ShotTable.from_frames(encode.fps, shot_bounds(cuts, encode.frame_count))


def _encode_frames(encode: EncodedMedia, source_frames: int) -> int:
    """``source_frames`` of the original as a number of the encode's frames."""
    if not encode.source_fps:
        return source_frames
    return max(1, round(source_frames * encode.fps / encode.source_fps))


def shot_bounds(cuts: list[int], frame_count: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame pairs covering ``[0, frame_count)``: one shot when there is no cut."""
    starts = [0, *sorted({c for c in cuts if 0 < c < frame_count})]
    return list(zip(starts, [*starts[1:], frame_count], strict=True))


def _detect_cuts(encode: EncodedMedia, *, threshold: float, min_scene_len: int) -> list[int]:
    """Frame numbers where a new shot starts; a single decoding pass, as bare ``scenedetect.detect``."""
    if not encode.path.is_file():
        raise InputFileError(f"encode {encode.path.name!r} does not exist ({encode.path})")
    try:
        video = open_video(str(encode.path))
    except VideoOpenFailure as exc:
        raise MediaError(f"PySceneDetect cannot open {encode.path.name!r}: {exc}") from exc
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_scene_len))
    manager.detect_scenes(video=video)
    return [int(start.frame_num) for start, _ in manager.get_scene_list()]
