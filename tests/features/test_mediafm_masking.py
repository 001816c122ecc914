"""Which shots masked shot modeling hides, and the cosine loss on them."""

from __future__ import annotations

import pytest
import torch

from mediamesh.features.mediafm import choose_masked, mask_count, masked_cosine_loss


def test_each_sequence_masks_its_share_of_real_shots_and_never_padding() -> None:
    lengths = [1, 2, 3, 7, 10, 33, 100]
    masked = choose_masked(lengths, 100, 0.2, torch.Generator().manual_seed(0))
    assert masked.shape == (7, 100)
    assert masked.dtype == torch.bool
    for row, length in enumerate(lengths):
        assert int(masked[row].sum()) == max(1, round(0.2 * length)) == mask_count(length)
        assert not masked[row, length:].any()
    assert [mask_count(n) for n in (1, 2, 3, 7, 10, 33, 100)] == [1, 1, 1, 1, 2, 7, 20]


def test_masks_are_reproducible_with_a_seeded_generator_and_vary_without_one() -> None:
    lengths = [50, 40, 30]
    first = choose_masked(lengths, 50, generator=torch.Generator().manual_seed(7))
    again = choose_masked(lengths, 50, generator=torch.Generator().manual_seed(7))
    other = choose_masked(lengths, 50, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_masking_refuses_empty_or_overlong_sequences_and_bad_ratios() -> None:
    with pytest.raises(ValueError, match="sequence 1 has 0 shots"):
        choose_masked([3, 0], 5)
    with pytest.raises(ValueError, match="sequence 0 has 6 shots; expected 1 to 5"):
        choose_masked([6], 5)
    with pytest.raises(ValueError, match="ratio must be in"):
        choose_masked([3], 5, ratio=0.0)


def test_the_loss_is_the_mean_cosine_distance_over_masked_positions_only() -> None:
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    reconstruction = torch.tensor([[[2.0, 0.0], [0.0, -1.0], [-5.0, 3.0]]])
    masked = torch.tensor([[True, True, False]])
    # Position 0 is parallel (distance 0), position 1 opposite (distance 2); position 2 is not masked.
    assert masked_cosine_loss(reconstruction, target, masked).item() == pytest.approx(1.0)
    assert masked_cosine_loss(reconstruction, target, torch.tensor([[True, False, False]])).item() == pytest.approx(0)


def test_the_loss_needs_a_masked_position() -> None:
    with pytest.raises(ValueError, match="no position is masked"):
        masked_cosine_loss(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.zeros(1, 2, dtype=torch.bool))
