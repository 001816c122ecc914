"""One decoding pass of an encode for every feature of a run that reads its frames.

Features read an encode's frames through :func:`read`, in the pixel format each asks for (converted from the
decoded frames as a pass of their own would, so values are bit for bit the same). Before a reader runs, the engine calls
:func:`expect` with the frames that the run's other pending readers of the same encode will want: each such
feature registers a :func:`hint` (a superset of its frames, from the encode and the shot table alone). A pass
keeps the expected frames it goes by, decoding on to the last of them, while the kept frames fit in
``MEDIAMESH_FRAME_CACHE_MB`` (512 by default; a 360p frame is about 0.35 MB); a reader whose frames are all
kept decodes nothing. What does not fit is decoded again by the reader that needs it: a long title costs
more passes, never more memory. The engine calls :func:`forget` when its run ends.

``PASSES`` counts decoding passes per file name: how tests and benchmarks see that sharing happened.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.values import EncodedMedia, ShotTable

if TYPE_CHECKING:
    import av

__all__ = ["PASSES", "Hint", "expect", "forget", "hint", "hint_of", "read"]

#: The frames a feature will read of an encode, given the encode, the shot table and its params.
Hint = Callable[[EncodedMedia, ShotTable, Mapping[str, Any]], set[int]]
Array = np.ndarray[Any, Any]

PASSES: Counter[str] = Counter()

_hints: dict[str, Hint] = {}
_lock = threading.Lock()
_converting = threading.Lock()


@dataclass
class _Kept:
    expected: set[int] = field(default_factory=set)
    frames: dict[int, av.VideoFrame] = field(default_factory=dict)
    bytes: int = 0
    last: int | None = None  # the stream's last frame index, once a pass reached the end
    final: av.VideoFrame | None = None  # and that frame


_kept: dict[tuple[int, int, int, int], _Kept] = {}


def hint(name: str) -> Callable[[Hint], Hint]:
    """Register the frames feature ``name`` reads (a superset is fine: the shots its dedup would drop too)."""

    def register(fn: Hint) -> Hint:
        _hints[name] = fn
        return fn

    return register


def hint_of(name: str) -> Hint | None:
    return _hints.get(name)


def budget_bytes() -> int:
    return int(float(os.environ.get("MEDIAMESH_FRAME_CACHE_MB", "512")) * 2**20)


def expect(path: Path, indices: Iterable[int]) -> None:
    """Frames of ``path`` that readers still to come will want: a pass going by them keeps them."""
    identity = _identity(path)
    if identity is None:
        return
    with _lock:
        _kept.setdefault(identity, _Kept()).expected.update(indices)


def forget(path: Path) -> None:
    """Drop what is kept of ``path`` (the run that expected it is over)."""
    identity = _identity(path)
    with _lock:
        if identity is not None:
            _kept.pop(identity, None)


def read(path: Path, wanted: set[int], fmt: str, *, late: bool = False) -> Iterator[tuple[int, Array]]:
    """``(index, frame as an array in pixel format fmt)`` for each wanted frame index, in order, from one pass at
    most (none when every wanted frame is kept). Indices past the stream's last frame get its last frame when
    ``late``, else nothing (the caller decides what a short stream means).

    A kept frame may be read by several threads at once, and PyAV converts a frame with a scaler of the frame's
    own (released from the GIL while it runs): kept frames are converted one at a time."""
    if not wanted:
        return
    if not path.is_file():
        raise InputFileError(f"encode {path.name!r} does not exist ({path})")
    identity = _identity(path)
    with _lock:
        kept = _kept.get(identity) if identity is not None else None
        served = _served(kept, wanted, late) if kept is not None else None
    if served is not None:
        for index, frame in served:
            yield index, _converted(frame, fmt, shared=True)
        return
    for index, frame, shared in _pass(path, wanted, kept, late):
        yield index, _converted(frame, fmt, shared=shared)


def _served(kept: _Kept, wanted: set[int], late: bool) -> list[tuple[int, av.VideoFrame]] | None:
    """The wanted frames from what is kept, or None when a pass is needed."""
    out: list[tuple[int, av.VideoFrame]] = []
    for index in sorted(wanted):
        if index in kept.frames:
            out.append((index, kept.frames[index]))
        elif kept.last is None or index <= kept.last or (late and kept.final is None):
            return None
        elif late and kept.final is not None:
            out.append((index, kept.final))
    return out


def _converted(frame: av.VideoFrame, fmt: str, *, shared: bool) -> Array:
    if not shared:
        return frame.to_ndarray(format=fmt)
    with _converting:
        return frame.to_ndarray(format=fmt)


def _pass(path: Path, wanted: set[int], kept: _Kept | None, late: bool) -> Iterator[tuple[int, av.VideoFrame, bool]]:
    """The wanted frames from one decoding pass, each with whether it is kept (shared with other readers)."""
    import av
    import av.error

    budget = budget_bytes()
    with _lock:
        keep = set(kept.expected) - set(kept.frames) if kept is not None else set()
    stop = max(wanted | keep)
    PASSES[path.name] += 1
    index = -1
    frame: av.VideoFrame | None = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                shared = False
                if index in keep and kept is not None:
                    with _lock:
                        size = sum(plane.buffer_size for plane in frame.planes)
                        if kept.bytes + size <= budget:
                            kept.frames[index] = frame
                            kept.bytes += size
                            shared = True
                        else:  # full: nothing more is kept, and the pass ends with what this reader wants
                            keep.clear()
                            stop = max(wanted)
                if index in wanted:
                    yield index, frame, shared
                if index >= stop:
                    return
    except (av.error.FFmpegError, IndexError) as exc:
        raise MediaError(f"cannot decode the video of {path.name!r}: {exc}") from exc
    if frame is None:
        raise MediaError(f"no video frame could be decoded from {path.name!r}")
    if kept is not None:
        with _lock:
            kept.last, kept.final = index, frame
    if late:
        for index_past in sorted(i for i in wanted if i > index):
            yield index_past, frame, kept is not None


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns
