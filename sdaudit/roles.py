"""Who may do what when sdaudit is hosted for a team.

With ``SDAUDIT_ADMIN_PASSWORD`` set (a Space secret), generating, importing, snapshots and
restores need the admin password; everyone can annotate and view results. Without it, a
researcher alone on a laptop finds everything open. Passwords are compared in constant time and
wrong attempts are slowed down, more with each one, for the whole process.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

from sdaudit.config import setting

WRONG_PASSWORD = "That is not the admin password."
MAX_DELAY = 8.0  # seconds


class AdminGate:
    """Checks the admin password; ``required`` is False when none is configured."""

    def __init__(self, password: str | None = None, *, sleep=time.sleep):
        configured = setting("admin_password") if password is None else password
        self._digest = hashlib.sha256(configured.encode()).digest() if configured else None
        self._failures = 0
        self._lock = threading.Lock()
        self._sleep = sleep

    @property
    def required(self) -> bool:
        return self._digest is not None

    def check(self, given: str) -> bool:
        """True for the right password (or when none is required); a wrong one waits first."""
        if self._digest is None:
            return True
        matches = hmac.compare_digest(hashlib.sha256((given or "").encode()).digest(), self._digest)
        with self._lock:
            if matches:
                self._failures = 0
                return True
            self._failures += 1
            delay = min(MAX_DELAY, 0.25 * 2 ** (self._failures - 1))
        self._sleep(delay)
        return False
