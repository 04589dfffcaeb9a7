"""`carellm eval ...`: offline evaluations, one nested subcommand per component.

``carellm eval safety [--data FILE] [--json OUT] [--out FILE]`` scores the crisis-safety
rules (``--model M`` adds the model's scored risk, see `carellm.evaluation.safety_model`);
``eval emotion|replies|latency`` run the model (see `carellm.cli.eval_models`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` group and its subcommands to the top-level parser."""
    parser = subparsers.add_parser("eval", help="evaluate a component on a labelled set")
    eval_subparsers = parser.add_subparsers(dest="eval_command", required=True)
    register_safety(eval_subparsers)
    # Other evaluations plug in here, each as `register_<name>(eval_subparsers)` that adds
    # one subparser and sets `func`.
    from carellm.cli.eval_models import register_emotion, register_latency, register_replies

    register_emotion(eval_subparsers)
    register_replies(eval_subparsers)
    register_latency(eval_subparsers)


def register_safety(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add `eval safety`: precision/recall of `carellm.safety.assess` on a JSONL set."""
    parser = eval_subparsers.add_parser(
        "safety", help="score the crisis-safety rules (precision, recall, crisis recall)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="JSONL file of {id, text, lang, level, categories} (default: the packaged set)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the result as JSON"
    )
    parser.add_argument(
        "--out", type=Path, default=None,
        help="write the item-level table here (TSV file; with --model: a folder)",
    )  # fmt: skip
    parser.add_argument(
        "--model", default=None,
        help="also run each item as a one-turn session of this model (folder, hub id, tiny)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="with --model: cuda, cpu, mps")
    parser.set_defaults(func=_run_safety)


def _run_safety(args: argparse.Namespace) -> int:
    from carellm.evaluation.safety import evaluate, format_eval, write_items

    if args.model is not None:
        return _run_safety_model(args)
    result = evaluate(args.data)
    _print_table(format_eval(result))
    if args.out is not None:
        write_items(result.items, args.out)
        print(f"wrote {args.out}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.json}")
    return 0


def _run_safety_model(args: argparse.Namespace) -> int:
    from carellm.evaluation.safety import evaluate
    from carellm.evaluation.safety_model import (
        evaluate_with_model,
        format_model_eval,
        write_model_eval,
    )

    data = args.data if args.data is not None else evaluate().path  # the packaged set
    result = evaluate_with_model(data, args.model, device=args.device)
    _print_table(format_model_eval(result))
    if args.out is not None:
        out = write_model_eval(result, args.out)
        print(f"wrote {out}/items.tsv, {out}/summary.txt")
    if args.json is not None:
        args.json.write_text(
            json.dumps(dataclasses.asdict(result), ensure_ascii=False, indent=2) + "\n",
            encoding="utf-8",
        )
        print(f"wrote {args.json}")
    return 0


def _print_table(text: str) -> None:
    try:
        from rich.console import Console
    except ImportError:
        print(text)
        return
    # Plain text through rich: no markup parsing, no wrapping of the fixed-width table.
    Console(soft_wrap=True).print(text, markup=False, highlight=False)
