"""The CareLLM counseling demo in the browser; same flags as `carellm demo`.

python demos/counseling_demo.py --model tiny          # plumbing check, random replies
python demos/counseling_demo.py --model auto --port 7860
"""

from __future__ import annotations

import argparse
import logging
import sys

from carellm.cli.demo import add_arguments, run
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
