"""What fine-tuning writes to ``out`` besides the final adapter weights, and how it resumes.

`save_checkpoint` writes ``out/checkpoints/step-NNNNNN/`` atomically (adapter,
``trainer_state.pt`` with optimizer, scheduler and RNG state, ``state.json`` with the
losses and a fingerprint of data and LoRA settings) and prunes old ones; `resume_checkpoint`
restores the newest one when the fingerprint still matches; `write_card` writes
``carellm_adapter.json`` and ``README.md`` beside the final adapter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from carellm.errors import CareLLMError

if TYPE_CHECKING:
    from carellm.finetune.train import FinetuneOptions, FinetuneResult

logger = logging.getLogger(__name__)

CARD_JSON = "carellm_adapter.json"
CHECKPOINTS = "checkpoints"


@dataclass
class TrainState:
    """Progress of a training run: what a checkpoint saves and `resume_checkpoint` restores."""

    step: int = 0
    losses: list = field(default_factory=list)
    eval_losses: list = field(default_factory=list)


def file_hash(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rng_state() -> dict:
    state = {"python": list(random.getstate()[1]), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), None))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fingerprint(options: FinetuneOptions) -> dict:
    """What must match for a checkpoint to be resumed."""
    return {
        "data_sha256": file_hash(options.data), "rank": options.rank, "alpha": options.alpha,
        "targets": list(options.targets), "batch_size": options.batch_size,
        "grad_accum": options.grad_accum, "seed": options.seed,
    }  # fmt: skip


def save_checkpoint(options, peft_model, optimizer, scheduler, state: TrainState) -> Path:
    """Write out/checkpoints/step-NNNNNN atomically; prune old ones."""
    root = Path(options.out) / CHECKPOINTS
    final = root / f"step-{state.step:06d}"
    tmp = root / f".tmp-step-{state.step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(str(tmp))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
         "rng": _rng_state()},
        tmp / "trainer_state.pt",
    )  # fmt: skip
    info = {"step": state.step, "losses": state.losses, "eval_losses": state.eval_losses}
    info["fingerprint"] = _fingerprint(options)
    (tmp / "state.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(options.out)[: -max(1, options.keep_checkpoints)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints in ``out``, oldest first."""
    root = Path(out) / CHECKPOINTS
    found = [p for p in root.glob("step-*") if (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def resume_checkpoint(options, peft_model, optimizer, scheduler) -> TrainState:
    """Load the newest checkpoint in ``options.out`` into the model, optimizer and RNGs."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = list_checkpoints(options.out)
    if not found:
        logger.warning("--resume: no checkpoint in %s; starting at step 0", options.out)
        return TrainState()
    folder = found[-1]
    info = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    now = _fingerprint(options)
    changed = [k for k, v in now.items() if info["fingerprint"].get(k) != v]
    if changed:
        raise CareLLMError(
            f"cannot resume from {folder}: {', '.join(changed)} changed since it was saved; "
            "use the same data and LoRA settings, or a new --out"
        )
    weights = load_file(str(folder / "adapter_model.safetensors"))
    set_peft_model_state_dict(peft_model, weights)
    trainer = torch.load(folder / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    _set_rng_state(trainer["rng"])
    logger.info("resumed from %s (step %d)", folder, info["step"])
    return TrainState(
        step=info["step"],
        losses=[tuple(x) for x in info["losses"]],
        eval_losses=[tuple(x) for x in info["eval_losses"]],
    )


def write_card(options: FinetuneOptions, result: FinetuneResult, n_train: int, n_eval: int):
    """``carellm_adapter.json`` and ``README.md`` beside the adapter."""
    hyper = {k: v for k, v in asdict(options).items() if k not in ("out", "progress", "resume")}
    hyper = {k: str(v) if isinstance(v, Path) else v for k, v in hyper.items()}
    card = {
        "base_model": options.model, "data": str(options.data),
        "data_sha256": file_hash(options.data), "train_records": n_train,
        "eval_records": n_eval, "hyperparameters": hyper, "steps": result.steps,
        "final_train_loss": result.final_train_loss,
        "final_eval_loss": result.eval_losses[-1][1] if result.eval_losses else None,
        "first_train_loss": result.losses[0][1] if result.losses else None,
    }  # fmt: skip
    out = Path(options.out)
    (out / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(f"| {k} | {v} |" for k, v in hyper.items())
    eval_text = "n/a" if card["final_eval_loss"] is None else f"{card['final_eval_loss']:.4f}"
    (out / "README.md").write_text(
        f"# CareLLM LoRA adapter\n\nBase model: `{options.model}` (thinker language model "
        f"only; talker untouched).\n\nData: `{options.data}` (sha256 `{card['data_sha256']}`),"
        f" {n_train} train / {n_eval} eval records.\n\nSteps: {result.steps}. Final train loss "
        f"(mean of last ≤10 steps): {result.final_train_loss:.4f}. Final eval loss: "
        f"{eval_text}.\n\nLoad: `carellm.adapters.apply_adapter(engine.model, '{out}')`.\n\n"
        f"| hyper-parameter | value |\n|---|---|\n{rows}\n",
        encoding="utf-8",
    )
