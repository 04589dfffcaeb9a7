"""`carellm finetune`: LoRA on the thinker's language model (see `carellm.finetune`).

``finetune/lora.py`` runs the same parser and `run` function.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags; each maps to one field of `carellm.finetune.FinetuneOptions`."""
    a = parser.add_argument
    a("--model", required=True, help="base model: folder, hub id, 3b/7b or tiny")
    a("--data", type=Path, required=True, help="CareLLM records JSONL (carellm data convert)")
    a("--out", type=Path, required=True, help="folder for the adapter, card and checkpoints")
    a("--eval-data", type=Path, default=None, help="held-out records (default: a fraction)")
    a("--eval-fraction", type=float, default=0.1, help="share of --data held out (0.1)")
    a("--epochs", type=float, default=1.0, help="passes over the data (ignored with --max-steps)")
    a("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    a("--lr", type=float, default=2e-4, help="peak learning rate (2e-4)")
    a("--warmup-steps", type=int, default=0, help="linear warm-up steps (0)")
    a("--rank", type=int, default=16, help="LoRA rank (16)")
    a("--alpha", type=float, default=32.0, help="LoRA alpha (32)")
    a("--dropout", type=float, default=0.05, help="LoRA dropout (0.05)")
    a("--targets", default="q_proj,k_proj,v_proj,o_proj", help="comma-separated projections")
    a("--max-length", type=int, default=2048, help="tokens per dialogue (2048)")
    a("--batch-size", type=int, default=1, help="dialogues per micro-batch (1)")
    a("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (1)")
    a("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    a("--bf16", action="store_true", help="load the model in bfloat16 (GPU)")
    a("--eval-every", type=int, default=0, help="steps between eval losses (0: at the end)")
    a("--save-every", type=int, default=0, help="steps between checkpoints (0: none)")
    a("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    a("--seed", type=int, default=0, help="random seed (0)")
    a("--persona", default="counselor", help="system prompt persona (counselor)")
    a("--device", default=None, help="cuda, cpu, mps (default: best available)")
    a("--no-speech-check", action="store_true", help="skip the spoken turn after training")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("finetune", help="train a LoRA adapter on chat records")
    add_arguments(parser)
    parser.set_defaults(func=run)


def options_from(args: argparse.Namespace):
    from carellm.finetune import FinetuneOptions

    return FinetuneOptions(
        model=args.model, data=args.data, out=args.out, eval_data=args.eval_data,
        eval_fraction=args.eval_fraction, epochs=args.epochs, max_steps=args.max_steps,
        lr=args.lr, warmup_steps=args.warmup_steps, rank=args.rank, alpha=args.alpha,
        dropout=args.dropout, targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        max_length=args.max_length, batch_size=args.batch_size, grad_accum=args.grad_accum,
        gradient_checkpointing=args.gradient_checkpointing, bf16=args.bf16,
        eval_every=args.eval_every, save_every=args.save_every, resume=args.resume,
        seed=args.seed, persona=args.persona, device=args.device,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from carellm.finetune import speech_check, train

    options = options_from(args)
    result = train(options)
    final_eval = result.eval_losses[-1][1] if result.eval_losses else None
    print(f"adapter: {result.adapter}  steps: {result.steps} (from {result.start_step})")
    print(f"train loss: {result.losses[0][1]:.4f} -> {result.final_train_loss:.4f}")
    print(f"eval loss: {'n/a' if final_eval is None else f'{final_eval:.4f}'}")
    if not args.no_speech_check:
        check = speech_check(args.model, result.adapter, device=args.device)
        print(
            f"speech check: {check['audio_seconds']:.2f} s of audio ({json.dumps(check['reply'])})"
        )
    return 0
