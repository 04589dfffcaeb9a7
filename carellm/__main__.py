import sys

from carellm.cli import main

sys.exit(main())
