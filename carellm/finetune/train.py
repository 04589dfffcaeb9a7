"""LoRA fine-tuning of the thinker on chat records, with checkpoints and a speech check.

records (`carellm.data.read_records`) → `encode_record` (chat template with CareLLM's
persona system prompt; labels on assistant tokens only) → `collate` (right padding) →
`train` (AdamW, linear warm-up/decay, gradient accumulation, periodic eval loss,
checkpoints every N steps, ``resume``) → adapter + card in ``out`` → `speech_check`.

Layout of ``out``: the final adapter (``adapter_config.json``,
``adapter_model.safetensors``), ``README.md`` and ``carellm_adapter.json`` (the card), and
``checkpoints/step-000200/`` (adapter + ``trainer_state.pt`` + ``state.json``). The card,
checkpoints and resume are written and read by `carellm.finetune.checkpoints`.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from carellm.adapters import lora_config
from carellm.errors import CareLLMError, InputError
from carellm.finetune.checkpoints import (
    TrainState,
    list_checkpoints,
    resume_checkpoint,
    save_checkpoint,
    write_card,
)
from carellm.generation import seed_everything

logger = logging.getLogger(__name__)

IGNORE = -100  # label of tokens the loss skips (torch cross-entropy's ignore_index)
_SPECIAL = re.compile(r"<\|[^|<>]{1,32}\|>")  # Qwen special-token syntax inside data text
_ASSISTANT = "<|im_start|>assistant\n"
_END = "<|im_end|>"


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything `train` needs; the CLI maps one flag to each field."""

    model: str  # base model: folder, hub id or "tiny"
    data: Path  # CareLLM records JSONL (carellm data convert)
    out: Path  # adapter, card and checkpoints go here
    eval_data: Path | None = None  # held-out records; else `eval_fraction` of `data`
    eval_fraction: float = 0.1  # share of `data` held out when no eval_data
    epochs: float = 1.0  # passes over the training split (ignored when max_steps is set)
    max_steps: int | None = None  # optimizer steps; overrides epochs
    lr: float = 2e-4  # peak learning rate
    warmup_steps: int = 0  # linear warm-up, then linear decay to 0 at the last step
    rank: int = 16  # LoRA rank r
    alpha: float = 32.0  # LoRA alpha (scale alpha / r)
    dropout: float = 0.05  # LoRA dropout
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 2048  # tokens per dialogue; longer ones are cut at the end
    batch_size: int = 1  # dialogues per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    gradient_checkpointing: bool = False  # recompute activations: less memory, ~30% slower
    bf16: bool = False  # load the model in bfloat16 (GPU); else float32
    eval_every: int = 0  # steps between eval losses (0: only at the end)
    save_every: int = 0  # steps between checkpoints (0: none)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    resume: bool = False  # continue from the newest checkpoint in out/checkpoints
    seed: int = 0  # data order, LoRA init, dropout
    persona: str = "counselor"  # system prompt the dialogues are rendered with
    device: str | None = None  # None: cuda, mps or cpu
    progress: bool = True  # tqdm bar

    def validate(self) -> None:
        checks = {
            "lr": self.lr > 0, "rank": self.rank >= 1, "alpha": self.alpha > 0,
            "max_length": self.max_length >= 16, "batch_size": self.batch_size >= 1,
            "grad_accum": self.grad_accum >= 1, "epochs": self.epochs > 0,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "eval_fraction": 0 <= self.eval_fraction < 1, "dropout": 0 <= self.dropout < 1,
            "eval_every": self.eval_every >= 0, "save_every": self.save_every >= 0,
        }  # fmt: skip
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(bad[0], f"invalid value {getattr(self, bad[0])!r}")


@dataclass(frozen=True)
class Example:
    """One tokenised dialogue. ``labels[i]`` is ``input_ids[i]`` or IGNORE."""

    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class FinetuneResult:
    adapter: Path  # folder with the final adapter and its card
    steps: int  # optimizer steps done in total
    start_step: int  # step this run started from (> 0 after resume)
    losses: tuple[tuple[int, float], ...]  # (step, train loss), every step since step 1
    eval_losses: tuple[tuple[int, float], ...]  # (step, eval loss)
    seconds: float  # wall time of this run

    @property
    def final_train_loss(self) -> float:
        tail = [loss for _, loss in self.losses[-10:]]
        return sum(tail) / len(tail)


# ------------------------------------------------------------------ data


def render(record, processor, system: str) -> tuple[str, list[tuple[int, int]]]:
    """Chat text of a record and the character spans the loss covers.

    Each assistant message's content plus its ``<|im_end|>`` is a span (so the model
    learns to stop). Media parts are dropped (text-only training); a record's own
    system message is appended to CareLLM's.
    """
    from carellm.data.records import text_of

    extra = [text_of(m["content"]) for m in record.messages if m["role"] == "system"]
    messages = [{"role": "system", "content": "\n".join([system, *extra])}]
    for m in record.messages:
        if m["role"] != "system":
            text = _SPECIAL.sub(" ", text_of(m["content"])).strip()
            messages.append({"role": m["role"], "content": text})
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    spans, cursor = [], 0
    for m in messages[1:]:
        if m["role"] != "assistant":
            continue
        start = text.index(_ASSISTANT, cursor) + len(_ASSISTANT)
        cursor = text.index(_END, start) + len(_END)
        spans.append((start, cursor))
    return text, spans


def encode_record(record, processor, system: str, max_length: int) -> Example | None:
    """Tokenise a record; None when it has no assistant token within ``max_length``."""
    text, spans = render(record, processor, system)
    enc = processor.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"][:max_length]
    labels = [
        token if any(a < e and b > s for s, e in spans) else IGNORE
        for token, (a, b) in zip(ids, enc["offset_mapping"])
    ]
    if all(label == IGNORE for label in labels[1:]):
        return None
    return Example(record.id, ids, labels)


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask``/``labels``, each [B, T_max]."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def split_records(options: FinetuneOptions) -> tuple[list, list]:
    """(train, eval) records: ``eval_data`` or a seeded ``eval_fraction`` of ``data``."""
    from carellm.data import read_records

    records = list(read_records(options.data))
    if not records:
        raise InputError("data", f"{options.data} holds no usable records")
    if options.eval_data is not None:
        return records, list(read_records(options.eval_data))
    n_eval = 0
    if options.eval_fraction > 0 and len(records) >= 2:
        n_eval = min(len(records) - 1, max(1, round(len(records) * options.eval_fraction)))
    order = list(range(len(records)))
    random.Random(options.seed).shuffle(order)
    held = set(order[:n_eval])
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [records[i] for i in sorted(held)]


def _encode_all(records, processor, options) -> list[Example]:
    from carellm.prompts import get_persona, system_prompt

    system = system_prompt(get_persona(options.persona))
    examples = [encode_record(r, processor, system, options.max_length) for r in records]
    dropped = sum(e is None for e in examples)
    if dropped:
        logger.warning("%d record(s) have no assistant turn within max_length: skipped", dropped)
    return [e for e in examples if e is not None]


def micro_batch(examples: list[Example], index: int, batch_size: int, seed: int) -> list[Example]:
    """Micro-batch ``index`` of an endless stream of seeded per-epoch shuffles.

    A pure function of ``index``, so a resumed run sees exactly the data it would have.
    """
    n, out = len(examples), []
    for position in range(index * batch_size, (index + 1) * batch_size):
        epoch, offset = divmod(position, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        out.append(examples[int(order[offset])])
    return out


# ------------------------------------------------------------------ training


def _load_for_training(options: FinetuneOptions):
    """(engine, peft model) on the thinker; no talker is loaded."""
    from peft import get_peft_model

    import carellm

    dtype = torch.bfloat16 if options.bf16 else torch.float32
    engine = carellm.load(options.model, speech=False, device=options.device, dtype=dtype)
    thinker = engine.thinker
    torch.manual_seed(options.seed)  # LoRA's A matrices are initialised randomly
    config = lora_config(
        rank=options.rank, alpha=options.alpha, dropout=options.dropout, targets=options.targets
    )
    if options.gradient_checkpointing:
        thinker.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        thinker.config.use_cache = False
    peft_model = get_peft_model(thinker, config)
    peft_model.train()
    return engine, peft_model


def _schedule(options: FinetuneOptions, total: int):
    warm = options.warmup_steps

    def factor(step: int) -> float:  # multiplier of lr before optimizer step `step + 1`
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


@torch.no_grad()
def eval_loss(peft_model, examples: list[Example], pad_id: int, device) -> float | None:
    """Mean loss per assistant token over ``examples`` (None when there are none)."""
    if not examples:
        return None
    was_training = peft_model.training
    peft_model.eval()
    total = tokens = 0.0
    for e in examples:
        batch = {k: v.to(device) for k, v in collate([e], pad_id).items()}
        n = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(peft_model(**batch).loss) * n
        tokens += n
    peft_model.train(was_training)
    return total / max(tokens, 1)


def train(options: FinetuneOptions) -> FinetuneResult:
    """Train a LoRA adapter and save it with its card in ``options.out``."""
    from tqdm.auto import tqdm

    options.validate()
    started = time.perf_counter()
    seed_everything(options.seed)
    train_records, eval_records = split_records(options)
    engine, peft_model = _load_for_training(options)
    train_set = _encode_all(train_records, engine.processor, options)
    eval_set = _encode_all(eval_records, engine.processor, options)
    if not train_set:
        raise InputError("data", f"{options.data}: no record has an assistant message to learn")
    pad_id = engine.tokenizer.pad_token_id
    pad_id = engine.endoftext if pad_id is None else pad_id
    per_step = options.batch_size * options.grad_accum
    total = options.max_steps or math.ceil(options.epochs * len(train_set) / per_step)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(options, total))
    state = TrainState()
    if options.resume:
        state = resume_checkpoint(options, peft_model, optimizer, scheduler)
    start_step = state.step
    device = engine.device
    bar = tqdm(total=total, initial=state.step, desc="lora", disable=not options.progress)
    while state.step < total:
        loss = _optimizer_step(peft_model, train_set, state.step, options, pad_id, device)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.losses.append((state.step, loss))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        if options.eval_every and state.step % options.eval_every == 0 and state.step < total:
            _record_eval(state, peft_model, eval_set, pad_id, device)
        if options.save_every and state.step % options.save_every == 0:
            save_checkpoint(options, peft_model, optimizer, scheduler, state)
    bar.close()
    if not state.eval_losses or state.eval_losses[-1][0] != state.step:
        _record_eval(state, peft_model, eval_set, pad_id, device)
    result = FinetuneResult(
        adapter=Path(options.out), steps=state.step, start_step=start_step,
        losses=tuple(state.losses), eval_losses=tuple(state.eval_losses),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    peft_model.save_pretrained(str(options.out))
    write_card(options, result, len(train_set), len(eval_set))
    return result


def _optimizer_step(peft_model, train_set, step, options, pad_id, device) -> float:
    """Forward/backward ``grad_accum`` micro-batches; the mean loss."""
    total = 0.0
    for k in range(options.grad_accum):
        index = step * options.grad_accum + k
        examples = micro_batch(train_set, index, options.batch_size, options.seed)
        batch = {key: v.to(device) for key, v in collate(examples, pad_id).items()}
        loss = peft_model(**batch).loss / options.grad_accum
        loss.backward()
        total += float(loss.detach())
    return total


def _record_eval(state: TrainState, peft_model, eval_set, pad_id, device) -> None:
    loss = eval_loss(peft_model, eval_set, pad_id, device)
    if loss is not None:
        state.eval_losses.append((state.step, loss))
        logger.info("step %d: eval loss %.4f", state.step, loss)


# ------------------------------------------------------------------ speech check


def speech_check(
    model_path: str, adapter_path: str | Path, *, text: str = "I feel lonely tonight.",
    device: str | None = None, max_new_tokens: int = 24,
) -> dict:  # fmt: skip
    """Load the model WITH the talker, apply the adapter, run one spoken turn.

    Returns ``{"audio_seconds", "reply", "seconds"}``; raises CareLLMError when the
    turn produced no audio (the adapter broke the thinker → talker hand-off).
    """
    import carellm

    started = time.perf_counter()
    engine = carellm.load(model_path, speech=True, device=device, adapter=str(adapter_path))
    session = engine.session(speech=True, seed=0, max_new_tokens=max_new_tokens)
    reply = session.respond(carellm.Turn(text=text), report=False)
    seconds = 0.0 if reply.audio is None else reply.audio.size / reply.sample_rate
    if seconds <= 0:
        raise CareLLMError(
            f"speech check failed: the adapter in {adapter_path} produced no audio "
            f"(reply {reply.model_text[:60]!r}); do not ship it"
        )
    return {
        "audio_seconds": seconds,
        "reply": reply.model_text,
        "seconds": time.perf_counter() - started,
    }


__all__ = [
    "Example", "FinetuneOptions", "FinetuneResult", "collate", "encode_record", "eval_loss",
    "list_checkpoints", "render", "speech_check", "train",
]  # fmt: skip
