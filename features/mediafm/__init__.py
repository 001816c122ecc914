"""MediaFM: contextual shot embeddings from a title's fused shot vectors, trained by masked shot modeling.

Pure PyTorch and NumPy: the model (:mod:`.model`), masking and loss (:mod:`.masking`), training
options (:mod:`.options`), batches (:mod:`.data`), training (:mod:`.training`), checkpoints
(:mod:`.checkpoint`), whole-title inference in overlapping windows (:mod:`.inference`),
evaluation (:mod:`.evaluation`) and a synthetic catalogue with scene structure (:mod:`.synthetic`).
"""

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
