"""``python -m examples.custom_executor``: run the framework (see :mod:`.scheduler`)."""

import sys

from examples.custom_executor.scheduler import main

sys.exit(main())
