"""MediaFM: contextual shot embeddings from a title's fused shot vectors, trained by masked shot modeling.

Pure PyTorch and NumPy: the model (:mod:`.model`), masking and loss (:mod:`.masking`), training
options (:mod:`.options`), batches (:mod:`.data`), training (:mod:`.training`), checkpoints
(:mod:`.checkpoint`), whole-title inference in overlapping windows (:mod:`.inference`),
evaluation (:mod:`.evaluation`) and a synthetic catalogue with scene structure (:mod:`.synthetic`).

The names below load on first use (PEP 562), so importing the package, or ``options`` alone, does not import
torch: commands that never train or embed start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediamesh.features.mediafm.checkpoint import Checkpoint
    from mediamesh.features.mediafm.data import TitleSequence
    from mediamesh.features.mediafm.evaluation import (
        ProbeMetrics,
        RetrievalMetrics,
        labels_from_rows,
        linear_probe,
        masked_shot_retrieval,
        neighbour_baseline,
    )
    from mediamesh.features.mediafm.inference import embed_title, plan_windows
    from mediamesh.features.mediafm.masking import choose_masked, mask_count, masked_cosine_loss
    from mediamesh.features.mediafm.model import PRESETS, MediaFM, MediaFMConfig, MediaFMOutput, config_preset
    from mediamesh.features.mediafm.options import DEFAULT_STEPS, OPTIMIZERS, OptimizerKind, TrainOptions
    from mediamesh.features.mediafm.synthetic import synthetic_catalogue
    from mediamesh.features.mediafm.training import (
        HistoryPoint,
        StepReport,
        TrainResult,
        make_optimizers,
        split_parameters,
        train,
    )

_MODULE_OF = {
    "Checkpoint": "checkpoint",
    "DEFAULT_STEPS": "options",
    "HistoryPoint": "training",
    "MediaFM": "model",
    "MediaFMConfig": "model",
    "MediaFMOutput": "model",
    "OPTIMIZERS": "options",
    "OptimizerKind": "options",
    "PRESETS": "model",
    "ProbeMetrics": "evaluation",
    "RetrievalMetrics": "evaluation",
    "StepReport": "training",
    "TitleSequence": "data",
    "TrainOptions": "options",
    "TrainResult": "training",
    "choose_masked": "masking",
    "config_preset": "model",
    "embed_title": "inference",
    "labels_from_rows": "evaluation",
    "linear_probe": "evaluation",
    "make_optimizers": "training",
    "mask_count": "masking",
    "masked_cosine_loss": "masking",
    "masked_shot_retrieval": "evaluation",
    "neighbour_baseline": "evaluation",
    "plan_windows": "inference",
    "split_parameters": "training",
    "synthetic_catalogue": "synthetic",
    "train": "training",
}

__all__ = [
    "DEFAULT_STEPS",
    "OPTIMIZERS",
    "PRESETS",
    "Checkpoint",
    "HistoryPoint",
    "MediaFM",
    "MediaFMConfig",
    "MediaFMOutput",
    "OptimizerKind",
    "ProbeMetrics",
    "RetrievalMetrics",
    "StepReport",
    "TitleSequence",
    "TrainOptions",
    "TrainResult",
    "choose_masked",
    "config_preset",
    "embed_title",
    "labels_from_rows",
    "linear_probe",
    "make_optimizers",
    "mask_count",
    "masked_cosine_loss",
    "masked_shot_retrieval",
    "neighbour_baseline",
    "plan_windows",
    "split_parameters",
    "synthetic_catalogue",
    "train",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
