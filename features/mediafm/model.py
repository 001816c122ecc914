"""The MediaFM encoder: a pre-LN Transformer over ``[CLS] [GLOBAL] shot_1 ... shot_N``.

Each shot enters as its fused tri-modal vector projected to the hidden width (or the learnable ``[MASK]``
when masked); ``[GLOBAL]`` is the projected title-metadata embedding, or a learned null token for a title
without one. The output projection maps every shot's contextual state back to the fused space, where
masked shot modeling scores it against the true fused vector.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PRESETS", "MediaFM", "MediaFMConfig", "MediaFMOutput", "autocast", "config_preset", "eval_mode"]

#: Positions before the first shot: ``[CLS]`` at 0 and ``[GLOBAL]`` at 1.
SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class MediaFMConfig:
    """The shape of a MediaFM model; ``fused_dim`` and ``title_dim`` come from the data it is trained on."""

    fused_dim: int
    title_dim: int
    hidden: int
    layers: int
    heads: int
    ff: int
    max_shots: int = 512
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("fused_dim", "title_dim", "hidden", "layers", "heads", "ff", "max_shots"):
            if getattr(self, name) < 1:
                raise ValueError(f"MediaFMConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"MediaFMConfig: hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MediaFMConfig.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaFMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"MediaFMConfig.from_dict: unknown keys {unknown}")
        return cls(**data)


#: Named model shapes: ``small`` trains on a CPU in minutes, ``base`` is BERT-base sized, for a GPU.
PRESETS: dict[str, dict[str, int]] = {
    "small": {"hidden": 128, "layers": 2, "heads": 4, "ff": 256},
    "base": {"hidden": 768, "layers": 12, "heads": 12, "ff": 3072},
}


def config_preset(name: str, fused_dim: int, title_dim: int, **overrides: Any) -> MediaFMConfig:
    """The preset ``name`` (``small`` or ``base``) for data of these widths; ``overrides`` replace any field."""
    if name not in PRESETS:
        raise ValueError(f"unknown MediaFM preset {name!r}: expected one of {sorted(PRESETS)}")
    return MediaFMConfig(**{"fused_dim": fused_dim, "title_dim": title_dim, **PRESETS[name], **overrides})


class MediaFMOutput(NamedTuple):
    """``hidden`` (B, N, H) and ``reconstruction`` (B, N, F) at shot positions; ``cls`` (B, H)."""

    hidden: Tensor
    reconstruction: Tensor
    cls: Tensor


class MediaFM(nn.Module):
    """A BERT-style encoder of a title's fused shot sequence, trained by masked shot modeling."""

    def __init__(self, config: MediaFMConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden
        self.input_proj = nn.Linear(config.fused_dim, hidden)
        self.title_proj = nn.Linear(config.title_dim, hidden)
        self.cls_token = nn.Parameter(torch.zeros(hidden))
        self.null_global = nn.Parameter(torch.zeros(hidden))
        self.mask_token = nn.Parameter(torch.zeros(hidden))
        self.positions = nn.Parameter(torch.zeros(config.max_shots + SPECIAL_TOKENS, hidden))
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(hidden, config.heads, config.ff, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.output_proj = nn.Linear(hidden, config.fused_dim)
        self._init_weights()

    def forward(
        self,
        fused: Tensor,
        title: Tensor | None = None,
        title_present: Tensor | None = None,
        padding: Tensor | None = None,
        masked: Tensor | None = None,
    ) -> MediaFMOutput:
        """Encode ``fused`` (B, N, F). ``title`` (B, T) with ``title_present`` (B,) bool (all present when
        omitted); ``padding`` (B, N) True at padded shots; ``masked`` (B, N) True where ``[MASK]`` replaces
        the shot."""
        batch, shots, _ = self._check(fused, title, title_present, padding, masked)
        x = self.input_proj(fused)
        if masked is not None:
            x = torch.where(masked.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        null = self.null_global.to(x.dtype).expand(batch, -1)
        if title is None:
            global_token = null
        else:
            projected = self.title_proj(title)
            present = title_present
            if present is None:
                present = torch.ones(batch, dtype=torch.bool, device=fused.device)
            global_token = torch.where(present.unsqueeze(-1), projected, null.to(projected.dtype))
        cls = self.cls_token.to(global_token.dtype).expand(batch, -1)
        x = torch.cat([cls.unsqueeze(1), global_token.unsqueeze(1), x.to(global_token.dtype)], dim=1)
        x = self.embed_dropout(x + self.positions[: shots + SPECIAL_TOKENS].to(x.dtype))
        attend = None
        if padding is not None:
            keep = torch.cat([padding.new_zeros(batch, SPECIAL_TOKENS), padding], dim=1).logical_not()
            attend = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, attend)
        x = self.norm(x)
        states = x[:, SPECIAL_TOKENS:]
        return MediaFMOutput(hidden=states, reconstruction=self.output_proj(states), cls=x[:, 0])

    def _check(
        self,
        fused: Tensor,
        title: Tensor | None,
        title_present: Tensor | None,
        padding: Tensor | None,
        masked: Tensor | None,
    ) -> tuple[int, int, int]:
        config = self.config
        if fused.ndim != 3 or fused.shape[2] != config.fused_dim:
            raise ValueError(f"MediaFM: fused must be (batch, shots, {config.fused_dim}), got {tuple(fused.shape)}")
        batch, shots, width = fused.shape
        if not 1 <= shots <= config.max_shots:
            raise ValueError(f"MediaFM: a sequence holds 1 to {config.max_shots} shots, got {shots}")
        if title is not None and tuple(title.shape) != (batch, config.title_dim):
            raise ValueError(f"MediaFM: title must be ({batch}, {config.title_dim}), got {tuple(title.shape)}")
        if title_present is not None and tuple(title_present.shape) != (batch,):
            raise ValueError(f"MediaFM: title_present must be ({batch},), got {tuple(title_present.shape)}")
        for name, flags in (("padding", padding), ("masked", masked)):
            if flags is not None and (tuple(flags.shape) != (batch, shots) or flags.dtype != torch.bool):
                raise ValueError(f"MediaFM: {name} must be a bool ({batch}, {shots}) tensor, got {tuple(flags.shape)}")
        return batch, shots, width

    def _init_weights(self) -> None:
        # BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm gains.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for token in (self.cls_token, self.null_global, self.mask_token, self.positions):
            nn.init.normal_(token, std=0.02)


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; a no-op anywhere else, where the model runs in float32."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside, in its former mode after (untouched when already in eval mode: switching
    walks every submodule, a cost a 10 ms forward pass notices)."""
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


class Block(nn.Module):
    """A pre-LN Transformer block with separate query, key and value matrices (each one Muon matrix)."""

    def __init__(self, hidden: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(hidden)
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.ff_norm = nn.LayerNorm(hidden)
        self.ff_in = nn.Linear(hidden, ff)
        self.ff_out = nn.Linear(ff, hidden)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, attend: Tensor | None) -> Tensor:
        """``x`` (B, L, H); ``attend`` (B, 1, 1, L) True at keys that may be attended to, or None for all."""
        x = x + self.residual_dropout(self.attn_out(self._attention(self.attn_norm(x), attend)))
        out: Tensor = x + self.residual_dropout(self.ff_out(F.gelu(self.ff_in(self.ff_norm(x)))))
        return out

    def _attention(self, x: Tensor, attend: Tensor | None) -> Tensor:
        batch, length, hidden = x.shape
        head_dim = hidden // self.heads

        def split(t: Tensor) -> Tensor:
            return t.view(batch, length, self.heads, head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)),
            split(self.key(x)),
            split(self.value(x)),
            attn_mask=attend,
            dropout_p=self.dropout if self.training else 0.0,
            scale=1.0 / math.sqrt(head_dim),
        )
        return out.transpose(1, 2).reshape(batch, length, hidden)
