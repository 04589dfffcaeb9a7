"""Flags shared by every command that loads a model (chat, demo), mapped 1:1 to
`carellm.load` keywords."""

from __future__ import annotations

import argparse


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="auto", help="hub id, local folder, 'tiny', 'tiny-lite' or 'auto'"
    )
    p.add_argument(
        "--no-speech",
        dest="speech",
        action="store_false",
        help="text replies only (no talker loaded)",
    )
    p.add_argument(
        "--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available)"
    )
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"longest reply, in tokens (default {REPLY_TOKENS}; {TINY_REPLY_TOKENS} for tiny models)")  # fmt: skip
    p.add_argument("--adapter", default=None, help="LoRA folder from `carellm finetune`")
    p.add_argument("--backend", choices=("local", "openai"), default="local",
                   help="openai: drive an OpenAI-compatible server (vLLM, carellm serve)")  # fmt: skip
    p.add_argument("--base-url", default=None, help="server URL for --backend openai")
    p.add_argument("--api-key", default=None, help="API key for --backend openai")


REPLY_TOKENS = 256  # a spoken counseling reply is a few sentences
TINY_REPLY_TOKENS = 32  # the tiny model's replies are noise: keep its turns quick


def reply_tokens(args: argparse.Namespace, engine) -> int:
    """--max-new-tokens, or the default for this engine."""
    if args.max_new_tokens is not None:
        return args.max_new_tokens
    return TINY_REPLY_TOKENS if engine.info.tiny else REPLY_TOKENS


def load_engine(args: argparse.Namespace):
    import carellm

    return carellm.load(
        args.model, device=args.device, speech=args.speech, adapter=args.adapter,
        backend=args.backend, base_url=args.base_url, api_key=args.api_key,
    )  # fmt: skip
