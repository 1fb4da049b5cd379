"""``python -m sdaudit``; see ``sdaudit.cli``."""

import sys

from sdaudit.cli import main

sys.exit(main())
