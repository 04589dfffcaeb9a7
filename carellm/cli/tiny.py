"""`carellm tiny PATH`: write the tiny random Qwen2.5-Omni used by tests and demos."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("tiny", help="write a tiny random Qwen2.5-Omni to a folder")
    p.add_argument("path", help="folder to write (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed (deterministic output)")
    p.set_defaults(func=run)


def run(args) -> int:
    from carellm.tiny import build_tiny_model

    folder = build_tiny_model(args.path, seed=args.seed)
    print(
        f"wrote a tiny RANDOM Qwen2.5-Omni to {folder} (its replies are noise; for plumbing checks)"
    )
    return 0
