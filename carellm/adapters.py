"""LoRA adapters on the thinker's language model: which modules they target, and how a
saved adapter is put on a loaded model.

Only ``thinker.model.language_model`` is adapted. The audio and vision encoders keep
their weights (their projections are also called ``q_proj``/``proj``, hence the regular
expression rather than bare names), and the talker is never touched: it reads the
thinker's hidden states, so speech follows whatever the adapter teaches the thinker.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from carellm.errors import InputError, ModelLoadError

logger = logging.getLogger(__name__)

# Linear layers of one Qwen2 decoder layer that LoRA may target.
PROJECTIONS: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)  # fmt: skip
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def target_pattern(targets: tuple[str, ...]) -> str:
    """Regular expression (peft full-match on names relative to the thinker) for the
    chosen projections of the language model's decoder layers only."""
    unknown = [t for t in targets if t not in PROJECTIONS]
    if not targets or unknown:
        raise InputError(
            "targets",
            f"unknown projection(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(PROJECTIONS)}",
        )
    names = "|".join(re.escape(t) for t in targets)
    return rf"model\.language_model\.layers\.\d+\.(self_attn|mlp)\.({names})"


def lora_config(*, rank: int, alpha: float, dropout: float, targets: tuple[str, ...]):
    """A peft `LoraConfig` for the thinker's language model."""
    from peft import LoraConfig

    if rank < 1:
        raise InputError("rank", f"must be at least 1, got {rank}")
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_pattern(tuple(targets)),
        bias="none",
    )


def check_adapter(path: str | Path) -> Path:
    """The adapter folder as a Path; ModelLoadError naming what is missing."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(
            f"adapter folder {folder} does not exist; pass the --out folder of "
            "`carellm finetune` (it holds adapter_config.json and adapter_model.safetensors)"
        )
    missing = [] if (folder / ADAPTER_CONFIG).is_file() else [ADAPTER_CONFIG]
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
        missing.append(" or ".join(ADAPTER_WEIGHTS))
    if missing:
        raise ModelLoadError(
            f"{folder} is not a saved adapter: it lacks {', '.join(missing)}; "
            "pass the --out folder of `carellm finetune` or a checkpoint folder inside it"
        )
    return folder


def apply_adapter(model, path: str | Path, merge: bool = False):
    """Put the LoRA adapter saved in ``path`` on ``model.thinker`` and return ``model``.

    ``merge=True`` folds the LoRA weights into the base weights (no extra cost per token,
    cannot be removed); otherwise the LoRA layers are injected in place, so
    ``model.thinker`` keeps its class and every CareLLM code path runs unchanged.
    """
    from peft import PeftModel

    folder = check_adapter(path)
    try:
        wrapped = PeftModel.from_pretrained(model.thinker, str(folder), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError(
            f"cannot apply the adapter in {folder} ({first}); was it trained on this "
            "model size (3B and 7B adapters are not interchangeable)?"
        ) from e
    if merge:
        model.thinker = wrapped.merge_and_unload()
    logger.info("applied adapter %s (%s)", folder, "merged" if merge else "unmerged")
    return model
