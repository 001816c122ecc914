"""Model-free descriptors, the ``lite`` encoder set: fixed sizes, deterministic, cheap on one CPU core.

A frame is described by its colour (HSV histogram), its texture (histogram of Sobel edge magnitudes)
and its layout (the low-frequency 8x8 DCT of the 32x32 grey frame); audio by the mean and standard
deviation of 40 log-mel bands. The encoders pool these exactly as they pool model embeddings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "AUDIO_DIM",
    "N_MELS",
    "SAMPLE_RATE",
    "VIDEO_DIM",
    "audio_descriptor",
    "frame_descriptor",
    "frame_descriptors",
    "log_mel",
    "mel_filterbank",
]

HSV_BINS = (8, 4, 4)
EDGE_BINS = 16
DCT_SIZE = 32
DCT_KEEP = 8
#: The length of a frame descriptor: HSV histogram, edge histogram, low-frequency DCT.
VIDEO_DIM = HSV_BINS[0] * HSV_BINS[1] * HSV_BINS[2] + EDGE_BINS + DCT_KEEP * DCT_KEEP

SAMPLE_RATE = 16000
N_MELS = 40
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
#: The length of an audio descriptor: per mel band, the mean and then the standard deviation.
AUDIO_DIM = 2 * N_MELS

Array = np.ndarray[Any, Any]

# Histograms are taken on a fixed-size copy of the frame, so that a descriptor means the same at any
# resolution and costs the same for a 4K frame as for a 360p one.
_WORK_SIZE = (128, 128)
# log1p of the largest 3x3 Sobel magnitude of an 8-bit image, 4 * 255 * sqrt(2).
_EDGE_RANGE = (0.0, float(np.log1p(4 * 255 * np.sqrt(2))))
_LOG_FLOOR = 1e-10
_FRAMES_PER_BLOCK = 4096


def frame_descriptor(rgb: Array) -> Array:
    """The descriptor (VIDEO_DIM,) float32 of one (H, W, 3) uint8 RGB frame: three blocks, each unit-normed.

    The histograms are square-rooted (Hellinger), so their blocks have unit norm and compare by cosine;
    the DCT block is divided by its norm (a flat black frame has a zero DCT block).
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    small = cv2.resize(rgb, _WORK_SIZE, interpolation=cv2.INTER_AREA)
    return np.concatenate([_hsv_histogram(small), _edge_histogram(small), _low_dct(rgb)]).astype(np.float32)


def frame_descriptors(frames: Array) -> Array:
    """Descriptors (N, VIDEO_DIM) float32 of (N, H, W, 3) uint8 RGB frames."""
    if len(frames) == 0:
        return np.zeros((0, VIDEO_DIM), np.float32)
    return np.stack([frame_descriptor(frame) for frame in frames])


def audio_descriptor(samples: Array, sample_rate: int = SAMPLE_RATE) -> Array:
    """Mean and standard deviation over time of 40 log-mel bands (AUDIO_DIM,) float32 of mono ``samples``.

    Audio shorter than one 25 ms window is zero-padded to it, so every clip has a descriptor; silence
    gives the log floor, finite.
    """
    # Blocks are merged with Chan's parallel update: exact where sums of squares would cancel.
    mean = np.zeros(N_MELS, np.float64)
    spread = np.zeros(N_MELS, np.float64)
    count = 0
    for block in _log_mel_blocks(samples, sample_rate):
        block_mean = block.mean(axis=0, dtype=np.float64)
        block_spread = np.square(block - block_mean).sum(axis=0)
        merged = count + len(block)
        delta = block_mean - mean
        mean += delta * len(block) / merged
        spread += block_spread + np.square(delta) * count * len(block) / merged
        count = merged
    return np.concatenate([mean, np.sqrt(spread / count)]).astype(np.float32)


def log_mel(samples: Array, sample_rate: int = SAMPLE_RATE) -> Array:
    """Natural-log mel power spectrogram (frames, N_MELS) float32: 25 ms Hann windows every 10 ms."""
    return np.concatenate(list(_log_mel_blocks(samples, sample_rate)))


@functools.cache
def mel_filterbank(n_fft: int = N_FFT, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> Array:
    """Triangular filters (n_mels, n_fft // 2 + 1) on the HTK mel scale, from 0 Hz to Nyquist."""
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges_mel = np.linspace(0.0, _hz_to_mel(sample_rate / 2), n_mels + 2)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    left, centre, right = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - left) / (centre - left)
    falling = (right - bin_hz[None, :]) / (right - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    filters.setflags(write=False)
    return filters


def _hsv_histogram(small: Array) -> Array:
    import cv2

    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)  # 8-bit hue is 0..179
    hist: Array = cv2.calcHist([hsv], [0, 1, 2], None, list(HSV_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return np.sqrt(hist / max(float(hist.sum()), 1.0))


def _edge_histogram(small: Array) -> Array:
    import cv2

    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    # Log-spaced bins: most pixels of a frame sit in flat areas, and linear bins would put them all in one.
    hist, _ = np.histogram(np.log1p(magnitude), bins=EDGE_BINS, range=_EDGE_RANGE)
    return np.sqrt(hist / max(float(hist.sum()), 1.0))


def _low_dct(rgb: Array) -> Array:
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    tiny = cv2.resize(grey, (DCT_SIZE, DCT_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    coefficients: Array = cv2.dct(tiny)[:DCT_KEEP, :DCT_KEEP].ravel()
    norm = float(np.linalg.norm(coefficients))
    return coefficients / norm if norm > 0 else coefficients


def _log_mel_blocks(samples: Array, sample_rate: int) -> Iterator[Array]:
    """Log-mel frames in blocks of at most ``_FRAMES_PER_BLOCK``, so a long shot never needs its whole STFT."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"audio descriptors take {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    audio = np.asarray(samples, dtype=np.float32).ravel()
    if len(audio) < WINDOW:
        audio = np.pad(audio, (0, WINDOW - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, WINDOW)[::HOP]
    window = np.hanning(WINDOW + 1)[:-1].astype(np.float32)  # periodic Hann
    filters = mel_filterbank()
    for start in range(0, len(frames), _FRAMES_PER_BLOCK):
        spectrum = np.fft.rfft(frames[start : start + _FRAMES_PER_BLOCK] * window, n=N_FFT)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        yield np.log(np.maximum(power @ filters.T, _LOG_FLOOR))


def _hz_to_mel(hz: float) -> float:
    return float(2595.0 * np.log10(1.0 + hz / 700.0))
