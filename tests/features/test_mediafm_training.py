"""Training MediaFM: the optimiser split, the loss falling on a catalogue with scene structure, Muon against
AdamW, checkpoints and resuming."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from torch import nn

from mediamesh.features.errors import DefinitionError
from mediamesh.features.mediafm import (
    DEFAULT_STEPS,
    Checkpoint,
    MediaFM,
    MediaFMConfig,
    StepReport,
    TitleSequence,
    TrainOptions,
    TrainResult,
    embed_title,
    make_optimizers,
    split_parameters,
    synthetic_catalogue,
    train,
)

MICRO = MediaFMConfig(fused_dim=16, title_dim=4, hidden=32, layers=2, heads=2, ff=64, max_shots=32)


@pytest.fixture(scope="module")
def micro_titles() -> list[TitleSequence]:
    # Some titles longer than MICRO.max_shots, so training crops them.
    return synthetic_catalogue(8, 16, seed=3, shots=(20, 50), title_dim=4)


# the optimiser split


def test_muon_gets_exactly_the_hidden_matrices_of_the_blocks() -> None:
    model = MediaFM(MICRO)
    muon, adamw = split_parameters(model)
    names = {id(p): name for name, p in model.named_parameters()}
    expected = {
        f"blocks.{layer}.{part}.weight"
        for layer in range(MICRO.layers)
        for part in ("query", "key", "value", "attn_out", "ff_in", "ff_out")
    }
    assert {names[id(p)] for p in muon} == expected
    assert all(p.ndim == 2 for p in muon)
    adamw_names = {names[id(p)] for p in adamw}
    for name in ("input_proj.weight", "output_proj.weight", "title_proj.weight", "title_proj.bias", "positions"):
        assert name in adamw_names
    for name in (
        "cls_token",
        "null_global",
        "mask_token",
        "norm.weight",
        "blocks.0.query.bias",
        "blocks.1.ff_norm.bias",
    ):
        assert name in adamw_names
    every = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(id(p) for p in muon + adamw) == sorted(every)
    assert len(muon) + len(adamw) == len(every)


def test_the_optimizers_hold_every_trainable_parameter_once() -> None:
    model = MediaFM(MICRO)
    muon, adamw = make_optimizers(model, TrainOptions(optimizer="muon", lr=1e-3, muon_lr=0.02, weight_decay=0.1))
    assert isinstance(muon, torch.optim.Muon)
    assert isinstance(adamw, torch.optim.AdamW)
    in_muon = [id(p) for group in muon.param_groups for p in group["params"]]
    in_adamw = [id(p) for group in adamw.param_groups for p in group["params"]]
    assert sorted(in_muon) == sorted(id(p) for p in split_parameters(model)[0])
    assert sorted(in_muon + in_adamw) == sorted(id(p) for p in model.parameters())
    # AdamW decays the linear layers outside the blocks, never a norm, bias, special token or position.
    decayed = {id(p) for group in adamw.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert decayed == {id(model.input_proj.weight), id(model.output_proj.weight), id(model.title_proj.weight)}
    assert muon.param_groups[0]["lr"] == pytest.approx(0.02)


def test_the_adamw_ablation_gives_everything_to_adamw() -> None:
    model = MediaFM(MICRO)
    (adamw,) = make_optimizers(model, TrainOptions(optimizer="adamw"))
    assert isinstance(adamw, torch.optim.AdamW)
    held = [id(p) for group in adamw.param_groups for p in group["params"]]
    assert sorted(held) == sorted(id(p) for p in model.parameters())
    decayed = {id(p) for group in adamw.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert decayed == {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}


# training


def test_the_loss_falls_on_a_catalogue_with_scene_structure(tiny_mediafm_runs: dict[str, TrainResult]) -> None:
    result = tiny_mediafm_runs["muon"]
    first, last = result.history[0], result.history[-1]
    assert first.step == 0 and last.step == 200
    assert first.val_loss is not None and last.val_loss is not None and last.train_loss is not None
    assert last.val_loss < 0.7 * first.val_loss
    assert last.train_loss < result.history[1].train_loss  # type: ignore[operator]
    assert result.metrics["val_loss"] == last.val_loss
    assert result.metrics["initial_val_loss"] == first.val_loss
    assert not result.model.training


def test_muon_and_the_adamw_ablation_both_train(tiny_mediafm_runs: dict[str, TrainResult]) -> None:
    for kind, result in tiny_mediafm_runs.items():
        initial, final = result.metrics["initial_val_loss"], result.metrics["val_loss"]
        assert final < 0.9 * initial, f"{kind}: validation loss {initial:.3f} -> {final:.3f}"
        assert result.checkpoint.optimizer == kind


def test_training_is_deterministic_on_cpu(micro_titles: list[TitleSequence]) -> None:
    options = TrainOptions(steps=4, batch_size=3, seed=5)
    a = train(micro_titles, micro_titles[:2], MICRO, options, device="cpu")
    b = train(micro_titles, micro_titles[:2], MICRO, options, device="cpu")
    c = train(micro_titles, micro_titles[:2], MICRO, replace(options, seed=6), device="cpu")
    for name, value in a.checkpoint.model_state.items():
        assert torch.equal(value, b.checkpoint.model_state[name]), name
    assert not torch.equal(a.checkpoint.model_state["input_proj.weight"], c.checkpoint.model_state["input_proj.weight"])
    assert [p.val_loss for p in a.history] == [p.val_loss for p in b.history]


def test_the_learning_rate_warms_up_then_decays(micro_titles: list[TitleSequence]) -> None:
    reports: list[StepReport] = []
    options = TrainOptions(steps=20, warmup=5, batch_size=4, lr=1e-3)
    train(micro_titles, [], MICRO, options, device="cpu", on_step=reports.append)
    lrs = [r.lr for r in reports]
    assert [r.step for r in reports] == list(range(1, 21))
    assert lrs[3] == pytest.approx(1e-3)  # after 4 steps: warm-up step 5 of 5
    assert lrs[:4] == sorted(lrs[:4]) and lrs[0] < lrs[3]
    assert lrs[4:] == sorted(lrs[4:], reverse=True) and lrs[-1] == pytest.approx(1e-4)
    assert all(r.val_loss is None for r in reports)
    assert all(0 < r.shots <= 4 * MICRO.max_shots for r in reports)


def test_epochs_count_passes_over_the_titles(micro_titles: list[TitleSequence]) -> None:
    result = train(micro_titles, [], MICRO, TrainOptions(epochs=2, batch_size=3), device="cpu")
    assert result.checkpoint.step == 2 * 3  # 8 titles in batches of 3: 3 steps an epoch
    assert TrainOptions().total_steps(3) == DEFAULT_STEPS == 300


def test_bad_options_are_definition_errors_naming_the_option() -> None:
    with pytest.raises(DefinitionError, match="at most one of steps and epochs, got steps=2, epochs=1"):
        TrainOptions(steps=2, epochs=1)
    with pytest.raises(DefinitionError, match="optimizer must be 'muon' or 'adamw', got 'sgd'"):
        TrainOptions(optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="batch_size must be at least 1, got 0"):
        replace(TrainOptions(), batch_size=0)
    with pytest.raises(DefinitionError, match="steps must be at least 1, got 0"):
        TrainOptions(steps=0)
    with pytest.raises(DefinitionError, match="warmup must be at least 0, got -1"):
        TrainOptions(warmup=-1)
    with pytest.raises(DefinitionError, match="eval_every must be at least 1, got 0"):
        TrainOptions(eval_every=0)
    with pytest.raises(DefinitionError, match=r"mask_ratio must be in \(0, 1\], got 1.5"):
        TrainOptions(mask_ratio=1.5)
    with pytest.raises(DefinitionError, match="lr and muon_lr must be positive"):
        TrainOptions(lr=0.0)
    assert all(field.metadata["help"] for field in fields(TrainOptions))


def test_titles_of_the_wrong_shape_are_named(micro_titles: list[TitleSequence]) -> None:
    wrong = TitleSequence("odd-one", np.zeros((5, 15), np.float32))
    # A training title is checked when a batch draws it: one batch of all nine draws every one.
    with pytest.raises(ValueError, match=r"train title 'odd-one': fused must be \(shots >= 1, 16\)"):
        train([*micro_titles, wrong], [], MICRO, TrainOptions(steps=1, batch_size=9))
    untitled = TitleSequence("short-title", np.ones((5, 16), np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"validation title 'short-title': title must be \(4,\)"):
        train(micro_titles, [untitled], MICRO, TrainOptions(steps=1))


# checkpoints


def test_a_reloaded_checkpoint_gives_identical_embeddings(micro_titles: list[TitleSequence]) -> None:
    result = train(micro_titles, [], MICRO, TrainOptions(steps=5, batch_size=4), device="cpu")
    data = result.checkpoint.to_bytes()
    loaded = Checkpoint.from_bytes(data)
    assert loaded.sha256 == result.checkpoint.sha256
    assert loaded.config == MICRO and loaded.step == 5 and loaded.optimizer == "muon"
    model = loaded.model()
    assert not model.training
    for title in micro_titles[:3]:
        expected = embed_title(result.model, title.fused, title.title)
        assert np.array_equal(embed_title(model, title.fused, title.title), expected)


def test_garbage_is_not_a_checkpoint() -> None:
    with pytest.raises(ValueError, match="not a MediaFM checkpoint"):
        Checkpoint.from_bytes(b"not a checkpoint")


def test_resuming_continues_the_step_count_and_the_optimizer_state(micro_titles: list[TitleSequence]) -> None:
    snapshots: dict[int, Checkpoint] = {}

    def keep(report: StepReport) -> None:
        if report.step == 6:
            snapshots[6] = report.checkpoint()

    options = TrainOptions(steps=10, batch_size=3)
    whole = train(micro_titles, micro_titles[:2], MICRO, options, device="cpu", on_step=keep)
    saved = Checkpoint.from_bytes(snapshots[6].to_bytes())
    assert saved.step == 6
    reports: list[StepReport] = []
    resumed = train(
        micro_titles,
        micro_titles[:2],
        MICRO,
        options,
        device="cpu",
        resume=saved,
        on_step=reports.append,
    )
    assert [r.step for r in reports] == [7, 8, 9, 10]
    assert resumed.history[0].step == 6 and resumed.history[-1].step == 10
    assert resumed.checkpoint.step == 10
    adamw_state = resumed.checkpoint.optimizer_states[1]["state"]
    assert {int(state["step"]) for state in adamw_state.values()} == {10}
    # The resumed run takes exactly the steps the uninterrupted run took.
    for name, value in whole.checkpoint.model_state.items():
        assert torch.equal(value, resumed.checkpoint.model_state[name]), name


def test_resuming_refuses_another_model_or_optimizer(micro_titles: list[TitleSequence]) -> None:
    checkpoint = train(micro_titles, [], MICRO, TrainOptions(steps=2), device="cpu").checkpoint
    four = TrainOptions(steps=4)
    with pytest.raises(ValueError, match=r"config .* differs"):
        train(micro_titles, [], MediaFMConfig(**{**MICRO.to_dict(), "layers": 1}), four, resume=checkpoint)
    with pytest.raises(ValueError, match="trained with 'muon', not 'adamw'"):
        train(micro_titles, [], MICRO, replace(four, optimizer="adamw"), resume=checkpoint)
    with pytest.raises(ValueError, match="at step 2, past the requested 1 steps"):
        train(micro_titles, [], MICRO, TrainOptions(steps=1), resume=checkpoint)
