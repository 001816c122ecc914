"""A mediamesh plugin: ``brightness``, the mean luma of the middle frame of each shot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import av

from mediamesh.features import EncodedMedia, JsonValue, MediaError, ShotTable, feature


@dataclass(frozen=True)
class ShotBrightness(JsonValue):
    """Mean luma (0 black to 255 white) of each shot's middle frame, in shot order."""

    luma: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"luma": list(self.luma)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(tuple(float(v) for v in data["luma"]))


@feature(version="1")
def brightness(encode: EncodedMedia, shots: ShotTable) -> ShotBrightness:
    """Mean luma of the middle frame of each shot of the standardized encode."""
    middles = [(shot.start_frame + shot.end_frame - 1) // 2 for shot in shots.shots]
    luma = _frame_luma(encode, set(middles))
    return ShotBrightness(tuple(round(luma[i], 3) for i in middles))


def _frame_luma(encode: EncodedMedia, wanted: set[int]) -> dict[int, float]:
    """Mean luma of the wanted frames, by index, in one pass (the encode has a constant frame rate)."""
    found: dict[int, float] = {}
    last = max(wanted, default=-1)
    with av.open(str(encode.path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                found[index] = float(frame.to_ndarray(format="gray").mean())
            if index >= last:
                break
    if missing := wanted - set(found):
        raise MediaError(f"the encode ends before frame {min(missing)} of its shots")
    return found
