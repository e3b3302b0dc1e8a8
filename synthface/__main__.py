"""`python -m synthface ...` is `synthface ...`."""

import sys

from synthface.cli.main import main

sys.exit(main())
