"""The video and audio embeddings, on real encodes, with tiny real models."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features import encoders
from mediamesh.features.encode import encode
from mediamesh.features.encoders import audio_embedding, decode_frames, sample_frames, video_embedding
from mediamesh.features.errors import ExecutionError, InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.models import ModelUnavailableError, load_audio_model, load_image_model, resolve_model
from mediamesh.features.shots import shots
from mediamesh.features.spec import spec_of
from mediamesh.features.values import (
    DedupMap,
    EncodedMedia,
    Shot,
    ShotEmbeddings,
    ShotTable,
    SourceMedia,
)
from tests.features.embeddings import assert_unit_rows, assert_value
from tests.models import TinyModels

DATA = Path(__file__).resolve().parents[1] / "data"

Clip = tuple[EncodedMedia, ShotTable]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Clip]]:
    """``clips(name)``: the default encode of ``tests/data/name`` (or of ``silent.mp4``, made here) and its shots."""
    made = tmp_path_factory.mktemp("clips")
    cache: dict[str, Clip] = {}

    def get(name: str) -> Clip:
        if name not in cache:
            path = _silent_clip(made / name) if name == "silent.mp4" else DATA / name
            original = SourceMedia(asset=name, path=path, name=name)
            value = encode(original)
            cache[name] = (value, shots(original, value))
        return cache[name]

    yield get
    for value, _ in cache.values():
        shutil.rmtree(value.path.parent, ignore_errors=True)


def _silent_clip(path: Path) -> Path:
    """Two seconds of a test pattern over digital silence."""
    subprocess.run(
        [
            ffmpeg_exe(),
            *("-nostdin", "-hide_banner", "-loglevel", "error"),
            *("-f", "lavfi", "-i", "testsrc=size=160x120:rate=24:duration=2"),
            *("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"),
            *("-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)),
        ],
        check=True,
    )
    return path


def no_dups(table: ShotTable) -> DedupMap:
    return DedupMap(tuple(range(len(table))), method="none")


# video


def test_video_embedding_is_one_unit_vector_per_shot(tiny_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("testvideo.mp4")
    value = video_embedding(media, table, no_dups(table))
    assert_value(value, (4, 16))
    assert_unit_rows(value.data)
    assert value.meta == {
        "role": "video",
        "kind": "clip",
        "model": str(tiny_encoders.clip),
        "fingerprint": resolve_model("video").fingerprint,
        "device": "cpu",
        "frames_per_shot": 4,
        "frames": 16,
        "unique_shots": 4,
        "dedup": "none",
    }


def test_video_duplicates_copy_their_representative_row_exactly(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip]
) -> None:
    media, table = clips("testvideo.mp4")
    # Shot 3 repeats shot 2, which repeats shot 0: a chain ends at the shot that is computed.
    value = video_embedding(media, table, DedupMap((0, 1, 0, 2), method="test"))
    data = value.data
    assert value.meta["unique_shots"] == 2
    assert value.meta["frames"] == 8
    for shot, source in [(2, 0), (3, 0)]:
        assert np.array_equal(data[shot], data[source])
    alone = video_embedding(media, table, no_dups(table)).data
    np.testing.assert_allclose(data[[0, 1]], alone[[0, 1]], atol=1e-6)
    assert not np.allclose(data[2], alone[2])


def test_video_batched_equals_one_frame_at_a_time(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    media, table = clips("testvideo.mp4")
    batched = video_embedding(media, table, no_dups(table)).data
    monkeypatch.setenv("MEDIAMESH_VIDEO_BATCH", "1")
    single = video_embedding(media, table, no_dups(table)).data
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_video_one_frame_shot_is_that_frame_and_an_empty_shot_uses_its_start(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip]
) -> None:
    media, _ = clips("testvideo.mp4")
    table = ShotTable(
        fps=24.0,
        shots=(
            Shot(0, 0, 100, 0.0, 100 / 24),
            Shot(1, 100, 101, 100 / 24, 101 / 24),
            Shot(2, 101, 101, 101 / 24, 101 / 24),
            Shot(3, 101, media.frame_count, 101 / 24, media.frame_count / 24),
        ),
    )
    data = video_embedding(media, table, no_dups(table)).data
    assert_unit_rows(data)
    frames = dict(decode_frames(media.path, {100, 101}))
    model = load_image_model(resolve_model("video"))
    np.testing.assert_allclose(data[1], model.embed(frames[100][None])[0], atol=1e-5)
    np.testing.assert_allclose(data[2], model.embed(frames[101][None])[0], atol=1e-5)


def test_frames_are_sampled_uniformly_inside_the_shot() -> None:
    def shot(start: int, end: int) -> Shot:
        return Shot(0, start, end, start / 24, end / 24)

    assert sample_frames(shot(0, 100), 4, 577) == [12, 37, 62, 87]
    assert sample_frames(shot(10, 14), 4, 577) == [10, 11, 12, 13]
    assert sample_frames(shot(10, 12), 4, 577) == [10, 11]
    assert sample_frames(shot(10, 11), 4, 577) == [10]
    assert sample_frames(shot(10, 10), 4, 577) == [10]
    assert sample_frames(shot(9, 3), 4, 577) == [9]
    assert sample_frames(shot(0, 100), 1, 577) == [50]
    assert sample_frames(shot(570, 600), 2, 577) == [576]  # a table that overstates the frames


def test_video_on_the_lite_descriptors(lite_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("testvideo.mp4")
    value = video_embedding(media, table, no_dups(table))
    assert_value(value, (4, 208))
    assert_unit_rows(value.data)
    assert (value.meta["kind"], value.meta["fingerprint"], value.meta["device"]) == ("lite", "lite-video-v1", "cpu")
    assert np.array_equal(value.data, video_embedding(media, table, no_dups(table)).data)
    other, other_table = clips("bigbuckbunny.mp4")
    bunny = video_embedding(other, other_table, no_dups(other_table)).data[0]
    assert float(np.max(value.data @ bunny)) < 0.95


def test_swapping_the_video_model_changes_values_and_fingerprint(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    media, table = clips("bigbuckbunny.mp4")
    spec = spec_of(video_embedding)
    assert spec is not None
    before, fingerprint = video_embedding(media, table, no_dups(table)).data, spec.model_fingerprint()
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", str(tiny_encoders.clip_other))
    after = video_embedding(media, table, no_dups(table))
    assert spec.model_fingerprint() != fingerprint
    assert after.meta["fingerprint"] == spec.model_fingerprint()
    assert not np.allclose(before, after.data)


def test_video_of_a_missing_encode(tiny_encoders: TinyModels, tmp_path: Path) -> None:
    gone = EncodedMedia(path=tmp_path / "encode.mp4", width=64, height=36, fps=24.0, frame_count=24, duration=1.0,
                        has_audio=False)  # fmt: skip
    table = ShotTable.from_frames(24.0, [(0, 24)])
    with pytest.raises(InputFileError, match=r"encode 'encode\.mp4' does not exist"):
        video_embedding(gone, table, no_dups(table))


def test_video_of_an_encode_that_cannot_be_decoded(tiny_encoders: TinyModels, tmp_path: Path) -> None:
    broken = tmp_path / "encode.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    media = EncodedMedia(path=broken, width=64, height=36, fps=24.0, frame_count=24, duration=1.0, has_audio=True)
    table = ShotTable.from_frames(24.0, [(0, 24)])
    with pytest.raises(MediaError, match=r"cannot decode the video of 'encode\.mp4': "):
        video_embedding(media, table, no_dups(table))
    with pytest.raises(MediaError, match=r"cannot decode the audio of 'encode\.mp4': "):
        audio_embedding(media, table, no_dups(table))


def test_a_dedup_map_of_another_shot_table_is_an_error(tiny_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("testvideo.mp4")
    with pytest.raises(ExecutionError, match="the dedup map covers 3 shots but the shot table has 4"):
        video_embedding(media, table, DedupMap((0, 1, 2), method="test"))
    with pytest.raises(ExecutionError, match="says shot 1 repeats shot 3, not an earlier shot"):
        video_embedding(media, table, DedupMap((0, 3, 2, 3), method="test"))


def test_params_and_batch_sizes_must_be_positive(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    media, table = clips("testvideo.mp4")
    with pytest.raises(ValueError, match="frames_per_shot must be at least 1, got 0"):
        video_embedding(media, table, no_dups(table), frames_per_shot=0)
    monkeypatch.setenv("MEDIAMESH_AUDIO_BATCH", "0")
    with pytest.raises(ValueError, match="MEDIAMESH_AUDIO_BATCH must be a whole number at least 1, got '0'"):
        audio_embedding(media, table, no_dups(table))


# audio


def test_audio_embedding_is_the_mean_hidden_state_per_shot(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip]
) -> None:
    media, table = clips("issue-134-rotate.mp4")
    value = audio_embedding(media, table, no_dups(table))
    assert_value(value, (3, 32))
    assert np.abs(value.data).sum(axis=1).min() > 0
    assert (value.meta["audio"], value.meta["kind"], value.meta["sample_rate"]) == ("present", "wav2vec2", 16000)
    assert value.meta["audio_seconds"] == pytest.approx(10.0, abs=0.1)


def test_audio_of_a_title_without_audio_is_zeros(tiny_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("testvideo.mp4")
    assert not media.has_audio
    value = audio_embedding(media, table, no_dups(table))
    assert_value(value, (4, 32))
    assert not value.data.any()
    assert value.meta["audio"] == "absent"


def test_audio_of_a_title_without_audio_needs_no_model(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    media, table = clips("testvideo.mp4")
    loaded = audio_embedding(media, table, no_dups(table))
    # The model's configuration without its weights: nothing can load it, and nothing needs to.
    (tmp_path / "wav2vec2").mkdir()
    shutil.copyfile(tiny_encoders.wav2vec2 / "config.json", tmp_path / "wav2vec2" / "config.json")
    monkeypatch.setenv("MEDIAMESH_AUDIO_MODEL", str(tmp_path / "wav2vec2"))
    ref = resolve_model("audio")
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        load_audio_model(ref)
    value = audio_embedding(media, table, no_dups(table))
    assert (value.data.shape, value.data.dtype, value.data.any()) == ((4, 32), np.float32, False)
    assert value.meta == {**loaded.meta, "model": str(tmp_path / "wav2vec2"), "fingerprint": ref.fingerprint}
    assert (value.meta["audio"], value.meta["device"]) == ("absent", "cpu")
    with_audio, shots_with_audio = clips("issue-134-rotate.mp4")
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        audio_embedding(with_audio, shots_with_audio, no_dups(shots_with_audio))


def test_audio_batched_equals_one_shot_at_a_time(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    media, table = clips("issue-134-rotate.mp4")
    batched = audio_embedding(media, table, no_dups(table)).data
    monkeypatch.setenv("MEDIAMESH_AUDIO_BATCH", "1")
    single = audio_embedding(media, table, no_dups(table)).data
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_group_normalised_wav2vec2_takes_one_shot_at_a_time(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    # wav2vec2-base normalises its first layer over the whole clip, so padding would change a shot's vector.
    monkeypatch.setenv("MEDIAMESH_AUDIO_MODEL", str(tiny_encoders.wav2vec2_group))
    media, table = clips("issue-134-rotate.mp4")
    batched = audio_embedding(media, table, no_dups(table)).data
    assert_value(audio_embedding(media, table, no_dups(table)), (3, 32))
    monkeypatch.setenv("MEDIAMESH_AUDIO_BATCH", "1")
    single = audio_embedding(media, table, no_dups(table)).data
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_silent_shots_give_finite_vectors(tiny_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("silent.mp4")
    assert media.has_audio
    assert_value(audio_embedding(media, table, no_dups(table)), (len(table), 32))


def test_audio_shorter_than_the_receptive_field_is_padded(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip]
) -> None:
    media, _ = clips("bigbuckbunny.mp4")
    # An empty shot has no audio at all and a 1-frame shot 667 samples; both get a vector.
    table = ShotTable(
        fps=24.0,
        shots=(
            Shot(0, 0, 0, 0.0, 0.0),
            Shot(1, 0, 1, 0.0, 1 / 24),
            Shot(2, 1, media.frame_count, 1 / 24, media.frame_count / 24),
        ),
    )
    value = audio_embedding(media, table, no_dups(table))
    assert_value(value, (3, 32))
    assert np.abs(value.data).sum(axis=1).min() > 0


def test_long_audio_is_embedded_in_windows(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    media, table = clips("bigbuckbunny.mp4")
    whole = audio_embedding(media, table, no_dups(table)).data
    monkeypatch.setattr(encoders, "MAX_WINDOW_SAMPLES", 16000)
    windowed = audio_embedding(media, table, no_dups(table)).data
    assert_value(ShotEmbeddings(windowed, {}), (1, 32))
    cosine = float(whole[0] @ windowed[0] / np.linalg.norm(whole[0]) / np.linalg.norm(windowed[0]))
    assert cosine > 0.9


def test_audio_duplicates_copy_their_representative_row_exactly(
    tiny_encoders: TinyModels, clips: Callable[[str], Clip]
) -> None:
    media, table = clips("issue-134-rotate.mp4")
    value = audio_embedding(media, table, DedupMap((0, 1, 0), method="test"))
    assert value.meta["unique_shots"] == 2
    assert np.array_equal(value.data[2], value.data[0])


def test_audio_on_the_lite_descriptors(lite_encoders: TinyModels, clips: Callable[[str], Clip]) -> None:
    media, table = clips("issue-134-rotate.mp4")
    value = audio_embedding(media, table, no_dups(table))
    assert_value(value, (3, 80))
    assert (value.meta["kind"], value.meta["fingerprint"]) == ("lite", "lite-audio-v1")
    silent, silent_table = clips("silent.mp4")
    assert_value(audio_embedding(silent, silent_table, no_dups(silent_table)), (len(silent_table), 80))
    mute, mute_table = clips("testvideo.mp4")
    absent = audio_embedding(mute, mute_table, no_dups(mute_table))
    assert absent.data.shape == (4, 80)
    assert not absent.data.any()
    assert absent.meta["audio"] == "absent"
