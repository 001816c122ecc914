"""The model-free ``lite`` descriptors, on frames of real clips and on synthetic audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediamesh.features.descriptors import (
    AUDIO_DIM,
    N_MELS,
    VIDEO_DIM,
    audio_descriptor,
    frame_descriptor,
    frame_descriptors,
    log_mel,
    mel_filterbank,
)
from mediamesh.features.encoders import decode_frames

DATA = Path(__file__).resolve().parents[1] / "data"
SR = 16000


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    """A few frames of three different clips, decoded from the originals."""
    out: dict[str, np.ndarray] = {}
    for name in ["testvideo.mp4", "bigbuckbunny.mp4", "fades.mp4"]:
        out[name] = np.stack([rgb for _, rgb in decode_frames(DATA / name, {10, 60, 110})])
    return out


def blocks(descriptor: np.ndarray) -> list[np.ndarray]:
    hsv, edges = 8 * 4 * 4, 16
    return [descriptor[:hsv], descriptor[hsv : hsv + edges], descriptor[hsv + edges :]]


def test_frame_descriptor_has_a_fixed_size_and_three_unit_blocks(frames: dict[str, np.ndarray]) -> None:
    for clip in frames.values():
        for frame in clip:
            descriptor = frame_descriptor(frame)
            assert descriptor.shape == (VIDEO_DIM,) == (208,)
            assert descriptor.dtype == np.float32
            for block in blocks(descriptor):
                assert np.linalg.norm(block) == pytest.approx(1.0, abs=1e-5)


def test_frame_descriptor_is_deterministic_and_size_independent_in_length(frames: dict[str, np.ndarray]) -> None:
    frame = frames["testvideo.mp4"][0]
    assert np.array_equal(frame_descriptor(frame), frame_descriptor(frame.copy()))
    assert frame_descriptor(frame[::2, ::2].copy()).shape == (VIDEO_DIM,)
    batch = frame_descriptors(frames["testvideo.mp4"])
    assert batch.shape == (3, VIDEO_DIM)
    assert np.array_equal(batch[0], frame_descriptor(frame))
    assert frame_descriptors(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, VIDEO_DIM)


def test_frame_descriptors_differ_between_clips(frames: dict[str, np.ndarray]) -> None:
    means = {name: frame_descriptors(clip).mean(axis=0) for name, clip in frames.items()}
    names = sorted(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cosine = means[a] @ means[b] / np.linalg.norm(means[a]) / np.linalg.norm(means[b])
            assert cosine < 0.98, f"{a} and {b} look the same ({cosine:.3f})"


def test_a_black_frame_has_a_zero_layout_block() -> None:
    descriptor = frame_descriptor(np.zeros((36, 64, 3), np.uint8))
    hsv, edges, dct = blocks(descriptor)
    assert not dct.any()
    assert hsv[0] == pytest.approx(1.0)  # every pixel in the first hue/saturation/value bin
    assert edges[0] == pytest.approx(1.0)  # and no edge anywhere


def test_frame_descriptor_rejects_what_is_not_an_rgb_frame() -> None:
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB frame, got \(4, 4\) uint8"):
        frame_descriptor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        frame_descriptor(np.zeros((4, 4, 3), np.float32))


def test_mel_filterbank() -> None:
    filters = mel_filterbank()
    assert filters.shape == (N_MELS, 257)
    assert (filters.max(axis=1) > 0).all()  # no empty band
    centres = filters.argmax(axis=1)
    assert (np.diff(centres) >= 0).all()


def test_audio_descriptor_is_band_means_then_deviations() -> None:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    descriptor = audio_descriptor(tone)
    assert descriptor.shape == (AUDIO_DIM,) == (80,)
    assert descriptor.dtype == np.float32
    mel = log_mel(tone)
    assert mel.shape == (98, N_MELS)  # 25 ms windows every 10 ms over one second
    np.testing.assert_allclose(descriptor[:N_MELS], mel.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(descriptor[N_MELS:], mel.std(axis=0), rtol=1e-3, atol=1e-3)
    loudest = int(np.argmax(descriptor[:N_MELS]))
    band_of_440 = int(np.argmax(mel_filterbank()[:, round(440 * 512 / SR)]))
    assert abs(loudest - band_of_440) <= 1


def test_audio_descriptor_is_deterministic_and_tells_sounds_apart() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR).astype(np.float32) * 0.1
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert np.array_equal(audio_descriptor(noise), audio_descriptor(noise.copy()))
    assert not np.allclose(audio_descriptor(noise), audio_descriptor(tone), atol=1.0)


def test_silence_and_very_short_audio_have_finite_descriptors() -> None:
    for samples in [np.zeros(SR, np.float32), np.zeros(0, np.float32), np.full(10, 0.3, np.float32)]:
        descriptor = audio_descriptor(samples)
        assert descriptor.shape == (AUDIO_DIM,)
        assert np.isfinite(descriptor).all()
    silence = audio_descriptor(np.zeros(SR, np.float32))
    assert not silence[N_MELS:].any()  # no variation in silence


def test_long_audio_is_described_in_blocks_without_changing_the_result() -> None:
    rng = np.random.default_rng(1)
    samples = rng.standard_normal(SR * 50).astype(np.float32)  # 5,000 frames: two blocks
    mel = log_mel(samples)
    assert len(mel) == 4998
    descriptor = audio_descriptor(samples)
    np.testing.assert_allclose(descriptor[:N_MELS], mel.mean(axis=0), rtol=1e-4)


def test_audio_descriptor_takes_16_khz_only() -> None:
    with pytest.raises(ValueError, match="audio descriptors take 16000 Hz audio, got 44100 Hz"):
        audio_descriptor(np.zeros(100, np.float32), sample_rate=44100)
