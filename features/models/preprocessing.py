"""CLIP-style image pre-processing, read from a model's ``preprocessor_config.json`` and done in torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["ImagePreprocessing"]

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImagePreprocessing:
    """CLIP-style image pre-processing, read from ``preprocessor_config.json``, done in torch.

    The same steps as ``CLIPImageProcessor`` (shortest edge resized bicubic with antialiasing, centre
    crop, rescale, normalise), batched on the model's device, with neither PIL nor torchvision.
    """

    shortest_edge: int | None
    resize_to: tuple[int, int] | None
    crop: tuple[int, int] | None
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_dir(cls, path: Path, image_size: int) -> ImagePreprocessing:
        config_file = path / "preprocessor_config.json"
        config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.is_file() else {}
        size = config.get("size", {"shortest_edge": image_size})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = config.get("crop_size", {"height": image_size, "width": image_size})
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        do_resize = config.get("do_resize", True)
        return cls(
            shortest_edge=int(size["shortest_edge"]) if do_resize and "shortest_edge" in size else None,
            resize_to=(int(size["height"]), int(size["width"])) if do_resize and "height" in size else None,
            crop=(int(crop["height"]), int(crop["width"])) if config.get("do_center_crop", True) else None,
            rescale_factor=float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0,
            mean=_triple(config.get("image_mean", _CLIP_MEAN)) if config.get("do_normalize", True) else (0, 0, 0),
            std=_triple(config.get("image_std", _CLIP_STD)) if config.get("do_normalize", True) else (1, 1, 1),
        )

    def __call__(self, frames: np.ndarray[Any, Any], device: str) -> torch.Tensor:
        """``frames`` (N, H, W, 3) uint8 RGB -> pixel values (N, 3, h, w) float32 on ``device``."""
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)  # channels-last strides, no copy
        height, width = pixels.shape[-2:]
        size = self.resize_to or (self._shortest_edge_size(height, width) if self.shortest_edge else None)
        if size is not None and size != (height, width):
            # As torchvision resizes a uint8 image: natively in uint8 on the CPU (several times faster),
            # elsewhere in float, rounded back to 0..255.
            if pixels.device.type == "cpu":
                pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False)
            else:
                pixels = F.interpolate(pixels.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
                pixels = pixels.round_().clamp_(0, 255)
        pixels = pixels.float()
        if self.crop is not None:
            pixels = _center_crop(pixels, self.crop)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (pixels * self.rescale_factor - mean) / std

    def _shortest_edge_size(self, height: int, width: int) -> tuple[int, int]:
        edge = cast(int, self.shortest_edge)
        short, long = sorted((height, width))
        scaled = int(edge * long / short)
        return (scaled, edge) if height >= width else (edge, scaled)


def _center_crop(pixels: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    height, width = pixels.shape[-2:]
    crop_h, crop_w = crop
    if crop_h > height or crop_w > width:  # as torchvision: pad with zeros, then crop
        pad_h, pad_w = max(0, crop_h - height), max(0, crop_w - width)
        pixels = F.pad(pixels, [pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2])
        height, width = pixels.shape[-2:]
    top = round((height - crop_h) / 2.0)
    left = round((width - crop_w) / 2.0)
    return pixels[..., top : top + crop_h, left : left + crop_w]


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, int | float):
        return (float(values),) * 3
    first, second, third = (float(v) for v in values)
    return first, second, third
