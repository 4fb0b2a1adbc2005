"""`python -m framework.cli`: the same as the `framework` command."""

import sys

from .main import main

sys.exit(main())
