"""The MediaFM encoder: shapes, the special tokens, padding, and its configuration."""

from __future__ import annotations

import pytest
import torch

from mediamesh.features.mediafm import PRESETS, MediaFM, MediaFMConfig, config_preset

CONFIG = MediaFMConfig(fused_dim=12, title_dim=5, hidden=16, layers=2, heads=2, ff=32, max_shots=20, dropout=0.0)


@pytest.fixture
def model() -> MediaFM:
    torch.manual_seed(0)
    return MediaFM(CONFIG).eval()


def test_forward_gives_shot_states_reconstructions_and_cls(model: MediaFM) -> None:
    out = model(torch.randn(3, 7, 12), torch.randn(3, 5), torch.tensor([True, False, True]))
    assert out.hidden.shape == (3, 7, 16)
    assert out.reconstruction.shape == (3, 7, 12)
    assert out.cls.shape == (3, 16)
    assert torch.isfinite(out.reconstruction).all()


def test_a_masked_shot_is_replaced_whatever_it_held(model: MediaFM) -> None:
    fused = torch.randn(1, 6, 12)
    changed = fused.clone()
    changed[0, 2] = torch.randn(12) * 10
    masked = torch.zeros(1, 6, dtype=torch.bool)
    masked[0, 2] = True
    with torch.no_grad():
        torch.testing.assert_close(model(fused, masked=masked).hidden, model(changed, masked=masked).hidden)
        assert not torch.allclose(model(fused).hidden, model(changed).hidden)


def test_padding_changes_nothing_at_real_shots(model: MediaFM) -> None:
    real = torch.randn(1, 5, 12)
    padded = torch.cat([real, torch.randn(1, 3, 12) * 100], dim=1)
    padding = torch.tensor([[False] * 5 + [True] * 3])
    with torch.no_grad():
        alone = model(real).hidden
        together = model(padded, padding=padding).hidden[:, :5]
        unmasked = model(padded).hidden[:, :5]
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmasked, alone, atol=1e-3)


def test_the_global_token_is_the_title_or_the_null_token(model: MediaFM) -> None:
    fused = torch.randn(1, 4, 12).repeat(2, 1, 1)
    title = torch.randn(2, 5)
    with torch.no_grad():
        none = model(fused).hidden
        absent = model(fused, title, torch.tensor([False, False])).hidden
        present = model(fused, title, torch.tensor([True, False])).hidden
    torch.testing.assert_close(absent, none)
    torch.testing.assert_close(present[1], none[1])
    assert not torch.allclose(present[0], none[0])


def test_bad_inputs_are_refused(model: MediaFM) -> None:
    with pytest.raises(ValueError, match=r"fused must be \(batch, shots, 12\)"):
        model(torch.randn(1, 4, 11))
    with pytest.raises(ValueError, match="1 to 20 shots"):
        model(torch.randn(1, 21, 12))
    with pytest.raises(ValueError, match=r"title must be \(1, 5\)"):
        model(torch.randn(1, 4, 12), torch.randn(1, 4))
    with pytest.raises(ValueError, match="masked must be a bool"):
        model(torch.randn(1, 4, 12), masked=torch.zeros(1, 4))


def test_config_round_trips_and_presets_fit_the_data() -> None:
    assert MediaFMConfig.from_dict(CONFIG.to_dict()) == CONFIG
    small = config_preset("small", fused_dim=1664, title_dim=384)
    assert (small.hidden, small.layers, small.heads, small.ff, small.max_shots) == (128, 2, 4, 256, 512)
    base = config_preset("base", 1664, 384, dropout=0.0)
    assert (base.hidden, base.layers, base.heads, base.ff, base.dropout) == (768, 12, 12, 3072, 0.0)
    assert set(PRESETS) == {"small", "base"}
    with pytest.raises(ValueError, match="unknown MediaFM preset 'large'"):
        config_preset("large", 8, 8)
    with pytest.raises(ValueError, match="multiple of heads"):
        MediaFMConfig(fused_dim=8, title_dim=8, hidden=10, layers=1, heads=4, ff=8)
    with pytest.raises(ValueError, match=r"unknown keys \['width'\]"):
        MediaFMConfig.from_dict({**CONFIG.to_dict(), "width": 3})
