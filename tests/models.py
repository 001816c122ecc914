"""Small real models for the tests, made on the spot: randomly initialised, saved like checkpoints.

Nothing is downloaded. The CLIP and wav2vec2 models are tiny (hidden size 32, two layers) so every test
runs on a CPU in milliseconds; the text model is the all-MiniLM-L6-v2 shipped as a Python package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Written by hand, as CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
# saves it: CLIPImageProcessor itself needs PIL and torchvision, which mediamesh does without.
TINY_CLIP_PREPROCESSOR = {
    "image_processor_type": "CLIPImageProcessor",
    "do_resize": True,
    "size": {"shortest_edge": 32},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": 32, "width": 32},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True,
}


@dataclass(frozen=True)
class TinyModels:
    """Directories of the test models, as MEDIAMESH_*_MODEL would name them."""

    clip: Path
    clip_other: Path
    wav2vec2: Path
    wav2vec2_group: Path
    minilm: Path


def save_tiny_clip(path: Path, *, seed: int) -> Path:
    """A CLIP with a 32x32 image tower of two layers and 16-dimensional embeddings, saved to ``path``."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    text = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 99,
        "max_position_embeddings": 32,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(TINY_CLIP_PREPROCESSOR, indent=2))
    return path


def save_tiny_wav2vec2(path: Path, *, seed: int, layer_norm: bool = True) -> Path:
    """A two-layer wav2vec2 with hidden size 32, saved with its feature extractor.

    ``layer_norm``: a front end normalised per frame that takes an attention mask (as wav2vec2-large-lv60),
    so shots are batched; otherwise group-normalised, as wav2vec2-base, and shots go one at a time.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        # wav2vec2's own front end, narrower: 20 ms frames, a receptive field of 400 samples.
        conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=32,
        feat_extract_norm="layer" if layer_norm else "group",
        do_stable_layer_norm=layer_norm,
    )
    Wav2Vec2Model(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=layer_norm).save_pretrained(path)
    return path
