"""``python -m sdaudit``; see ``sdaudit.cli.commands``.

The command's work is done (its store closed, its files renamed into place) when ``main`` returns;
the process then ends at once, without the interpreter's teardown: under load, a native library's
worker threads met during teardown sometimes aborted a finished command ("terminate called without
an active exception") and turned a clean refusal's exit status 2 into a crash."""

import os
import sys

from sdaudit.cli.commands import main

status = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
