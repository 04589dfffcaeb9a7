"""LoRA fine-tuning of the thinker (`carellm finetune`): ``train`` runs it, ``checkpoints``
saves, resumes and describes runs."""

from carellm.finetune.checkpoints import (
    CARD_JSON,
    CHECKPOINTS,
    TrainState,
    file_hash,
    list_checkpoints,
    resume_checkpoint,
)
from carellm.finetune.train import (
    IGNORE,
    Example,
    FinetuneOptions,
    FinetuneResult,
    collate,
    encode_record,
    eval_loss,
    micro_batch,
    render,
    speech_check,
    split_records,
    train,
)

__all__ = [
    "CARD_JSON", "CHECKPOINTS", "IGNORE", "Example", "FinetuneOptions", "FinetuneResult",
    "TrainState", "collate", "encode_record", "eval_loss", "file_hash", "list_checkpoints",
    "micro_batch", "render", "resume_checkpoint", "speech_check", "split_records", "train",
]  # fmt: skip
