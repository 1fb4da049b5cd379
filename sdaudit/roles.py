"""Who may do what when sdaudit is hosted for a team.

With ``SDAUDIT_ADMIN_PASSWORD`` set (a Space secret), generating, importing, creating studies,
snapshots and restores need the admin password; everyone can annotate and view results. Without
it, a researcher alone on a laptop finds everything open.

The gate is one per process, shared by every session: passwords are compared in constant time;
after ``MAX_WRONG`` wrong passwords within ``WINDOW_S`` seconds (from any sessions together) it
refuses every password, the right one too, for ``LOCKOUT_S`` seconds. An unlocked browser keeps a
signed, expiring token (``token``), never the password: an HMAC under a secret drawn at random
when the process starts, so a token cannot be forged, outlives neither its expiry nor a restart,
and cannot be used to guess the password offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from sdaudit.config import setting

WRONG_PASSWORD = "That is not the admin password."
LOCKED_OUT = ("Too many wrong admin passwords on this server: every password is refused until {until} UTC "
              "(in {seconds} s). Try again then.")
MAX_WRONG = 5  # wrong passwords allowed per WINDOW_S, all sessions together
WINDOW_S = 60.0
LOCKOUT_S = 60.0
TOKEN_S = 8 * 3600  # how long an unlocked browser stays unlocked


@dataclass(frozen=True)
class Verdict:
    """The gate's answer to one password: ``unlocked``, or the ``message`` to show instead."""

    unlocked: bool
    message: str | None = None


class AdminGate:
    """Checks the admin password and the tokens of unlocked browsers; ``required`` is False when
    no password is configured. ``clock`` gives seconds since the epoch (tests pass their own)."""

    def __init__(self, password: str | None = None, *, clock=time.time, secret: bytes | None = None):
        configured = setting("admin_password") if password is None else password
        self._digest = hashlib.sha256(configured.encode()).digest() if configured else None
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._wrong: deque[float] = deque()
        self._locked_until = 0.0
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return self._digest is not None

    def check(self, given: str) -> Verdict:
        """Unlocked for the right password (or when none is required), unless the process is locked out."""
        if self._digest is None:
            return Verdict(True)
        matches = hmac.compare_digest(hashlib.sha256((given or "").encode()).digest(), self._digest)
        with self._lock:
            now = self._clock()
            if now < self._locked_until:
                return Verdict(False, self._locked_out(now))
            if matches:
                return Verdict(True)
            self._wrong.append(now)
            while self._wrong and self._wrong[0] <= now - WINDOW_S:
                self._wrong.popleft()
            if len(self._wrong) >= MAX_WRONG:
                self._wrong.clear()
                self._locked_until = now + LOCKOUT_S
                return Verdict(False, self._locked_out(now))
            return Verdict(False, WRONG_PASSWORD)

    def _locked_out(self, now: float) -> str:
        until = datetime.fromtimestamp(self._locked_until, UTC)
        return LOCKED_OUT.format(until=f"{until:%H:%M:%S}", seconds=max(1, round(self._locked_until - now)))

    # -- tokens for unlocked browsers ---------------------------------------------------------

    def _signature(self, expiry: int) -> str:
        return hmac.new(self._secret, f"sdaudit-admin:{expiry}".encode(), hashlib.sha256).hexdigest()

    def token(self) -> str:
        """A token that unlocks this process's gate for ``TOKEN_S`` seconds: ``EXPIRY.SIGNATURE``."""
        expiry = int(self._clock()) + TOKEN_S
        return f"{expiry}.{self._signature(expiry)}"

    def token_valid(self, token: str | None) -> bool:
        """True for a token this process signed that has not expired."""
        if self._digest is None:
            return True
        expiry_text, _, signature = (token or "").partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            return False
        expiry = int(expiry_text)
        if not hmac.compare_digest(signature.encode(), self._signature(expiry).encode()):
            return False
        return self._clock() < expiry
