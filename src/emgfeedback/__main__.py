"""``python -m emgfeedback``: the same as the ``emgfeedback`` console script."""

import sys

from emgfeedback.cli import main

sys.exit(main())
