"""Per-shot embeddings of the three modalities: frames of the shot, its audio, and its timed text.

Each encoder loads the model :mod:`features.models` resolves for its role (or, with
``MEDIAMESH_ENCODERS=lite``, the model-free descriptors of :mod:`features.descriptors` for video and
audio), computes one vector per unique shot of the dedup map, and gives every duplicate an exact copy
of its representative's row. How many frames, clips or texts go in a batch is an execution setting
(``MEDIAMESH_VIDEO_BATCH`` and the like, read at run time), not a param: it cannot change a value.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mediamesh.features import frames as shared
from mediamesh.features.batching import Batcher, batcher
from mediamesh.features.descriptors import AUDIO_DIM, audio_descriptor, frame_descriptors
from mediamesh.features.errors import ExecutionError, InputFileError, MediaError
from mediamesh.features.models import (
    ModelRef,
    audio_width,
    batch_size,
    device,
    load_audio_model,
    load_image_model,
    load_text_model,
    model_fingerprint,
    resolve_model,
    text_dimension,
    text_width,
)
from mediamesh.features.spec import feature
from mediamesh.features.values import DedupMap, EncodedMedia, Shot, ShotEmbeddings, ShotTable, TimedText

__all__ = [
    "audio_embedding",
    "decode_audio",
    "decode_frames",
    "frame_batches",
    "frame_embedder",
    "loaded_device",
    "sample_frames",
    "text_embedding",
    "video_embedding",
]

Array = np.ndarray[Any, Any]
T = TypeVar("T")

SAMPLE_RATE = 16000
#: wav2vec2's receptive field: a shot with less audio is zero-padded to it.
MIN_AUDIO_SAMPLES = 400
#: On an accelerator, one forward pass of the video encoder takes up to this many callers' batches.
GPU_PASS_BATCHES = 4

#: Audio longer than this is embedded in equal windows of at most this many samples, and their frames
#: pooled together, so attention over a ten-minute shot never needs its (frames x frames) matrix.
MAX_WINDOW_SAMPLES = 30 * SAMPLE_RATE


@feature(version="2", resources="gpu", model=lambda: model_fingerprint("video"))
def video_embedding(
    encode: EncodedMedia,
    shots: ShotTable,
    dedup: DedupMap,
    *,
    frames_per_shot: int = 4,
) -> ShotEmbeddings:
    """Per shot, the mean of unit-normed image embeddings of frames sampled uniformly inside it, unit-normed."""
    _check_positive(frames_per_shot=frames_per_shot)
    roots = _representatives(shots, dedup)
    unique = sorted(set(roots))
    ref = resolve_model("video")
    embed, where = frame_embedder(ref)
    samples = {shot: sample_frames(shots.shots[shot], frames_per_shot, encode.frame_count) for shot in unique}
    vectors = _pool_frames(encode, samples, embed, batch_size=batch_size("video"))
    return ShotEmbeddings(
        _share(vectors, unique, roots),
        _meta(
            ref,
            where,
            frames_per_shot=frames_per_shot,
            frames=sum(len(indices) for indices in samples.values()),
            unique_shots=len(unique),
            dedup=dedup.method,
        ),
    )


@shared.hint("video_embedding")
def _video_frames(encode: EncodedMedia, shots: ShotTable, params: Mapping[str, Any]) -> set[int]:
    count = int(params.get("frames_per_shot", 4))
    return {i for shot in shots.shots for i in sample_frames(shot, max(count, 1), encode.frame_count)}


@feature(version="2", resources="gpu", model=lambda: model_fingerprint("audio"))
def audio_embedding(encode: EncodedMedia, shots: ShotTable, dedup: DedupMap) -> ShotEmbeddings:
    """Per shot, the mean of wav2vec2's last hidden state over its 16 kHz audio; zeros when the title has no audio."""
    roots = _representatives(shots, dedup)
    unique = sorted(set(roots))
    ref = resolve_model("audio")
    size = batch_size("audio")
    # Without an audio stream the zeros need the model's width and device, not the model.
    known = None if encode.has_audio else _clip_width(ref)
    if known is None:
        embed, dim, where = _clip_embedder(ref, size)
        audio = decode_audio(encode)
    else:
        (dim, where), audio = known, None
    meta = _meta(ref, where, sample_rate=SAMPLE_RATE, unique_shots=len(unique), dedup=dedup.method)
    if audio is None:
        return ShotEmbeddings(np.zeros((len(shots), dim), np.float32), {**meta, "audio": "absent"})
    clips = [_shot_audio(audio, shots.shots[shot]) for shot in unique]
    vectors = embed(clips) if clips else np.zeros((0, dim), np.float32)
    return ShotEmbeddings(
        _share(vectors, unique, roots), {**meta, "audio": "present", "audio_seconds": len(audio) / SAMPLE_RATE}
    )


@feature(version="2", resources="gpu", model=lambda: model_fingerprint("text"))
def text_embedding(timed_text: TimedText) -> ShotEmbeddings:
    """Per shot, the sentence embedding of the timed text overlapping it; zeros for shots without text."""
    ref = resolve_model("text")
    # Line breaks inside a cue are layout, not meaning; shots showing the same text share one encoding.
    texts = [" ".join(timed_text.shot_text(shot).split()) for shot in range(len(timed_text.per_shot))]
    distinct = list(dict.fromkeys(text for text in texts if text))
    # Without any text the zeros need the model's width and device, not the model.
    width = None if distinct else text_width(ref)
    if width is None:
        model = load_text_model(ref)
        width, where = text_dimension(model), str(model.device)
    else:
        model, where = None, _loaded_device()
    data = np.zeros((len(texts), width), np.float32)
    if distinct:
        encoded = model.encode(
            distinct,
            batch_size=batch_size("text"),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rows = dict(zip(distinct, np.asarray(encoded, np.float32), strict=True))
        for shot, text in enumerate(texts):
            if text:
                data[shot] = rows[text]
    return ShotEmbeddings(
        np.ascontiguousarray(data),
        _meta(
            ref,
            where,
            shots_with_text=sum(1 for text in texts if text),
            distinct_texts=len(distinct),
            origin=timed_text.origin,
            language=timed_text.language,
        ),
    )


def sample_frames(shot: Shot, count: int, frame_count: int) -> list[int]:
    """Up to ``count`` frame indices spread uniformly inside ``[start_frame, end_frame)``: the middles of
    ``count`` equal parts, each frame at most once (a 1-frame shot gives its one frame). A shot with
    ``end_frame <= start_frame`` gives its start frame; indices are kept inside ``[0, frame_count)``.
    """
    last = max(frame_count - 1, 0)
    length = shot.end_frame - shot.start_frame
    if length <= 0:
        return [min(max(shot.start_frame, 0), last)]
    picks = (shot.start_frame + int((k + 0.5) * length / count) for k in range(count))
    return sorted({min(max(index, 0), last) for index in picks})


def decode_frames(path: Path, wanted: set[int]) -> Iterator[tuple[int, Array]]:
    """``(index, RGB frame)`` for each wanted frame index, in order, from one decoding pass (or none: see
    :mod:`features.frames`).

    Wanted indices past the last frame the decoder gives (a frame count that overstates the stream) get
    the last frame.
    """
    if not wanted:
        return
    _check_file(path)
    yield from shared.read(path, wanted, "rgb24", late=True)


def decode_audio(encode: EncodedMedia) -> Array | None:
    """The encode's audio as 16 kHz mono float32, decoded once; None when it has no audio stream."""
    import av
    import av.error

    if not encode.has_audio:
        return None
    _check_file(encode.path)
    chunks: list[Array] = []
    start: float | None = None
    try:
        with av.open(str(encode.path)) as container:
            if not container.streams.audio:
                return None
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                if start is None and frame.time is not None:
                    start = frame.time
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot decode the audio of {encode.path.name!r}: {exc}") from exc
    # Samples are placed by the first frame's timestamp, so shot times index them directly.
    lead = np.zeros(round(max(start or 0.0, 0.0) * SAMPLE_RATE), np.float32)
    return np.concatenate([lead, *chunks]).astype(np.float32, copy=False)


def frame_embedder(ref: ModelRef) -> tuple[Batcher[Any], str]:
    """What turns a batch of RGB frames into unit-normed rows, and the device it runs on: the process's
    batcher for the model (:mod:`features.batching`), which joins the frames of callers that wait at once."""
    rows = batch_size("video")
    wait_s = float(os.environ.get("MEDIAMESH_BATCH_WAIT_MS", "10")) / 1000
    if ref.kind == "lite":

        def lite() -> Batcher[Any]:
            return Batcher(frame_descriptors, lambda parts: _unit_rows(np.concatenate(list(parts))), rows, wait_s)

        return batcher(("video", ref.fingerprint, "cpu", str(rows), str(wait_s)), lite), "cpu"
    model = load_image_model(ref)
    # On an accelerator a pass takes several callers' batches; on the CPU, one caller's batch at most.
    limit = rows * (GPU_PASS_BATCHES if model.device != "cpu" else 1)
    key = ("video", ref.fingerprint, model.device, str(limit), str(wait_s))
    return batcher(key, lambda: Batcher(model.prepare, model.forward, limit, wait_s)), model.device


def _pool_frames(
    encode: EncodedMedia,
    samples: dict[int, list[int]],
    embed: Batcher[Any],
    *,
    batch_size: int,
) -> Array:
    """Per shot of ``samples`` (in key order), the unit-normed mean of its frames' rows.

    Frames are decoded in a thread of their own while the previous batch is embedded.
    """
    owners: dict[int, list[int]] = defaultdict(list)
    for position, indices in enumerate(samples.values()):
        for index in indices:
            owners[index].append(position)
    sums: list[Array | None] = [None] * len(samples)
    with embed.caller():
        for indices, frames in _prefetch(frame_batches(decode_frames(encode.path, set(owners)), batch_size)):
            for index, row in zip(indices, embed(frames), strict=True):
                for position in owners[index]:
                    current = sums[position]
                    sums[position] = row.astype(np.float64) if current is None else current + row
    if not sums:  # no shot at all: the rows still need their width
        return np.zeros((0, embed(np.zeros((1, 32, 32, 3), np.uint8)).shape[1]), np.float32)
    means = []
    for total, indices in zip(sums, samples.values(), strict=True):
        if total is None:
            raise MediaError(f"frames {indices} of {encode.path.name!r} were never decoded")
        means.append(total / len(indices))
    return _unit_rows(np.stack(means))


def frame_batches(frames: Iterator[tuple[int, Array]], size: int) -> Iterator[tuple[list[int], Array]]:
    indices: list[int] = []
    batch: list[Array] = []
    for index, rgb in frames:
        indices.append(index)
        batch.append(rgb)
        if len(batch) == size:
            yield indices, np.stack(batch)
            indices, batch = [], []
    if batch:
        yield indices, np.stack(batch)


@dataclass
class _Failed:
    error: BaseException


_DONE = object()


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced in a background thread up to ``depth`` ahead; its errors are raised here."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:
            offer(_Failed(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="mediamesh-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def _clip_embedder(ref: ModelRef, batch_size: int) -> tuple[Callable[[list[Array]], Array], int, str]:
    """What turns shot audio clips into one row each, the row length, and the device it runs on."""
    if ref.kind == "lite":
        return lambda clips: np.stack([audio_descriptor(clip) for clip in clips]), AUDIO_DIM, "cpu"
    model = load_audio_model(ref)

    def embed(clips: list[Array]) -> Array:
        # Long clips are cut into near-equal windows; the longest go first so a batch pads little.
        windows = [(shot, window) for shot, clip in enumerate(clips) for window in _windows(clip)]
        order = sorted(range(len(windows)), key=lambda w: -len(windows[w][1]))
        sums = np.zeros((len(windows), model.hidden_size), np.float64)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            sums[chosen] = model.hidden_sums([windows[w][1] for w in chosen])
        frames = model.output_lengths([len(window) for _, window in windows])
        totals = np.zeros((len(clips), model.hidden_size), np.float64)
        counts = np.zeros(len(clips), np.float64)
        for w, (shot, _) in enumerate(windows):
            totals[shot] += sums[w]
            counts[shot] += frames[w]
        return (totals / counts[:, None]).astype(np.float32)

    return embed, model.hidden_size, model.device


def _clip_width(ref: ModelRef) -> tuple[int, str] | None:
    """The row length of the audio encoder and the device it would run on, without loading its model; None
    when only the loaded model can tell."""
    if ref.kind == "lite":
        return AUDIO_DIM, "cpu"
    width = audio_width(ref)
    return (width, device()) if width is not None else None


def loaded_device() -> str:
    """Where the text model would sit once loaded, as the loaded model names it (``cuda:0``, not ``cuda``)."""
    where = device()
    if where != "cuda":
        return where
    import torch

    return str(torch.device("cuda", torch.cuda.current_device()))


def _windows(clip: Array) -> list[Array]:
    if len(clip) < MIN_AUDIO_SAMPLES:
        clip = np.pad(clip, (0, MIN_AUDIO_SAMPLES - len(clip)))
    return np.array_split(clip, math.ceil(len(clip) / MAX_WINDOW_SAMPLES))


def _shot_audio(audio: Array, shot: Shot) -> Array:
    start = max(round(shot.start_time * SAMPLE_RATE), 0)
    end = max(round(shot.end_time * SAMPLE_RATE), start)
    return audio[start:end]


def _representatives(shots: ShotTable, dedup: DedupMap) -> list[int]:
    """Per shot, the unique shot whose row it gets (chains of duplicates followed to their start)."""
    if len(dedup.representative) != len(shots):
        raise ExecutionError(
            f"the dedup map covers {len(dedup.representative)} shots but the shot table has {len(shots)}"
        )
    roots: list[int] = []
    for shot, representative in enumerate(dedup.representative):
        if not 0 <= representative <= shot:
            raise ExecutionError(f"the dedup map says shot {shot} repeats shot {representative}, not an earlier shot")
        roots.append(shot if representative == shot else roots[representative])
    return roots


def _share(vectors: Array, unique: list[int], roots: list[int]) -> Array:
    """Rows for every shot: each an exact copy of its representative's row in ``vectors`` (one per unique)."""
    position = {shot: i for i, shot in enumerate(unique)}
    rows = np.asarray(vectors, np.float32)[[position[root] for root in roots]]
    return np.ascontiguousarray(rows.reshape(len(roots), np.asarray(vectors).shape[1]), dtype=np.float32)


def _unit_rows(rows: Array) -> Array:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: Array = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return unit.astype(np.float32)


def _meta(ref: ModelRef, where: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": ref.role,
        "kind": ref.kind,
        "model": ref.source,
        "fingerprint": ref.fingerprint,
        "device": where,
        **extra,
    }


def _check_positive(**params: int) -> None:
    for name, value in params.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputFileError(f"encode {path.name!r} does not exist ({path})")


# The name text_embedding's body calls (its code fingerprint is its source).
_loaded_device = loaded_device
