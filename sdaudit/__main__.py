"""``python -m sdaudit``; see ``sdaudit.cli.commands``."""

import sys

from sdaudit.cli.commands import main

sys.exit(main())
