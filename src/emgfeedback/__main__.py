"""``python -m emgfeedback``: the same as the ``emgfeedback`` console script."""

import gc
import sys

gc.disable()  # start-up imports: main() starts the collector again (emgfeedback.cli._start_up)

from emgfeedback.cli import main  # noqa: E402

sys.exit(main())
