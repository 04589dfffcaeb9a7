"""The CareLLM counseling demo in the browser; same flags as `carellm demo`.

python demos/counseling_demo.py --model tiny          # plumbing check, random replies
python demos/counseling_demo.py --model auto --port 7860
"""

from __future__ import annotations

import sys

from carellm.cli import run_script
from carellm.cli.demo import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    return run_script(add_arguments, run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
