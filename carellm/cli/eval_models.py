"""`carellm eval emotion|replies|latency`: evaluations that run the model.

Each flag maps to one field of the options dataclass of `carellm.evaluation.emotion`,
`carellm.evaluation.replies` or `carellm.evaluation.latency`. With ``--out`` a rerun
resumes: items already in ``OUT/items.jsonl`` are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _common(parser: argparse.ArgumentParser, *, data: bool = True) -> None:
    parser.add_argument("--model", required=True, help="model folder, hub id, 3b/7b or tiny")
    if data:
        parser.add_argument("--data", type=Path, required=True, help="dataset file or folder")
        parser.add_argument("--limit", type=int, default=None, help="first N items only")
    parser.add_argument("--out", type=Path, default=None, help="results folder (resumable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--device", default=None, help="cuda, cpu, mps (default: best)")


def register_emotion(eval_subparsers: argparse._SubParsersAction) -> None:
    parser = eval_subparsers.add_parser(
        "emotion", help="label accuracy/F1: the model chooses among the dataset's labels"
    )
    _common(parser)
    parser.add_argument(
        "--format", required=True,
        choices=("goemotions", "empathetic_dialogues", "meld", "records"), help="dataset format",
    )  # fmt: skip
    parser.add_argument(
        "--labels", default=None,
        help="label set: goemotions, ekman, sentiment, ed32, meld7 (default: the format's)",
    )  # fmt: skip
    parser.add_argument(
        "--mode", default="text", choices=("text", "audio", "video"),
        help="MELD: transcript only, + clip audio, or + clip video with its audio",
    )  # fmt: skip
    parser.set_defaults(func=_run_emotion)


def register_replies(eval_subparsers: argparse._SubParsersAction) -> None:
    parser = eval_subparsers.add_parser(
        "replies", help="distinct-n, BLEU, chrF, safety escalation of generated replies"
    )
    _common(parser)
    parser.add_argument("--persona", default="counselor", help="persona (counselor)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="per reply (256)")
    parser.set_defaults(func=_run_replies)


def register_latency(eval_subparsers: argparse._SubParsersAction) -> None:
    parser = eval_subparsers.add_parser(
        "latency", help="time to first audio, tokens/s and speech speed of spoken turns"
    )
    _common(parser, data=False)
    parser.add_argument("--turns", type=int, default=5, help="user turns (5)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="per reply (128)")
    parser.set_defaults(func=_run_latency)


def _run_emotion(args: argparse.Namespace) -> int:
    from carellm.evaluation.emotion import EmotionEvalOptions, format_emotion, run_emotion

    metrics = run_emotion(
        EmotionEvalOptions(
            model=args.model,
            data=args.data,
            format=args.format,
            labels=args.labels,
            mode=args.mode,
            out=args.out,
            limit=args.limit,
            seed=args.seed,
            device=args.device,
        )  # fmt: skip
    )
    print(format_emotion(metrics))
    if args.out is not None:
        print(f"wrote {args.out}/metrics.json, confusion.png, items.jsonl")
    return 0


def _run_replies(args: argparse.Namespace) -> int:
    from carellm.evaluation.replies import RepliesEvalOptions, format_replies, run_replies

    metrics = run_replies(
        RepliesEvalOptions(
            model=args.model,
            data=args.data,
            out=args.out,
            limit=args.limit,
            persona=args.persona,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            device=args.device,
        )  # fmt: skip
    )
    print(format_replies(metrics))
    if args.out is not None:
        print(f"wrote {args.out}/report.md, metrics.json, replies.png, items.jsonl")
    return 0


def _run_latency(args: argparse.Namespace) -> int:
    from carellm.evaluation.latency import LatencyOptions, format_latency, run_latency

    result = run_latency(
        LatencyOptions(
            model=args.model,
            turns=args.turns,
            out=args.out,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            device=args.device,
        )  # fmt: skip
    )
    print(format_latency(result))
    return 0
