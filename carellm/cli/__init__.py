"""The `carellm` command line: one subcommand module per group, each mapping flags to
one library call. ``python -m carellm`` and the ``carellm`` script both land in `main`."""

from __future__ import annotations

import argparse
import importlib
import sys

from carellm.errors import CareLLMError

# Each module defines `register(subparsers)`; the parser it adds sets `func`.
_COMMAND_MODULES = ("chat", "tiny", "plan", "demo", "eval", "data", "finetune", "serve")


def build_parser() -> argparse.ArgumentParser:
    from carellm import __version__

    parser = argparse.ArgumentParser(
        prog="carellm",
        description="CareLLM: multimodal counseling research on Qwen2.5-Omni (text, voice, "
        "image, video in; empathetic text, speech and an emotion report out). A research "
        "tool, not a therapist.",
    )
    parser.add_argument("--version", action="version", version=f"carellm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"carellm.cli.{name}").register(subparsers)
    return parser


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # Gradio's startup probes log every request at INFO; transformers' warnings are
        # about its own defaults (see carellm.loading), not something a user can act on.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("transformers").setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
        except ImportError:
            pass


def _call(func, args) -> int:
    """Run a command; a CareLLMError becomes one line on stderr and exit code 2."""
    try:
        return int(func(args) or 0)
    except CareLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return _call(args.func, args)


def run_script(add_arguments, run, description: str, argv: list[str] | None = None) -> int:
    """``main`` of a standalone script (demos/, finetune/) sharing a command's flags."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return _call(run, args)
