"""LoRA fine-tuning of Qwen2.5-Omni's thinker for CareLLM (same flags as `carellm finetune`).

    python finetune/lora.py --model Qwen/Qwen2.5-Omni-3B --data train.jsonl --out runs/r16 \
        --bf16 --gradient-checkpointing --grad-accum 16 --save-every 200

See finetune/README.md for recipes and memory estimates.
"""

from __future__ import annotations

import argparse
import logging
import sys

from carellm.cli.finetune import add_arguments, run
from carellm.errors import CareLLMError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except CareLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
