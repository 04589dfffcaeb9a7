"""LoRA fine-tuning of Qwen2.5-Omni's thinker for CareLLM (same flags as `carellm finetune`).

    python finetune/lora.py --model Qwen/Qwen2.5-Omni-3B --data train.jsonl --out runs/r16 \
        --bf16 --gradient-checkpointing --grad-accum 16 --save-every 200

See finetune/README.md for recipes and memory estimates.
"""

from __future__ import annotations

import sys

from carellm.cli import run_script
from carellm.cli.finetune import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    return run_script(add_arguments, run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
