"""What the search tests share: subtitle cues in two languages, a query frame cut from an original, and a
tokenizer for the tiny CLIP (so its text tower can encode a query)."""

from __future__ import annotations

import io
import json
import shutil
import string
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from tests.models import save_tiny_clip

ENGLISH = """1
00:00:00,200 --> 00:00:00,900
The lighthouse keeper waved goodbye.

2
00:00:07,000 --> 00:00:09,000
Nobody expected the purple elephant.
"""

FRENCH = """1
00:00:01,000 --> 00:00:02,500
Le boulanger chante sous la pluie.
"""


def query_frame(original: Path, seconds: float, *, width: int = 480, quality: int = 70) -> bytes:
    """The original's frame at ``seconds``, rescaled to ``width`` px wide and JPEG-compressed at ``quality``."""
    png = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-ss",
            f"{seconds:.3f}",
            "-i",
            str(original),
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-vcodec",
            "png",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        scaled = rgb.resize((width, max(2, round(rgb.height * width / rgb.width))), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    scaled.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def save_tiny_clip_with_tokenizer(path: Path, *, seed: int) -> Path:
    """The tiny CLIP of ``tests/models.py`` plus a character-level CLIP tokenizer (74 ids of its 99)."""
    save_tiny_clip(path, seed=seed)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in string.ascii_lowercase + string.digits:
            vocab[char + suffix] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    config = {"tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>", "model_max_length": 32, **special}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def copy_with_sidecar(data: Path, name: str, folder: Path, language: str, cues: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / name
    shutil.copyfile(data / name, video)
    video.with_suffix(f".{language}.srt").write_text(cues)
    return video


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)
