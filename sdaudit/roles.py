"""Who may do what when sdaudit is hosted for a team.

Three ways to run, chosen by the settings:

- **Sign-in** (``sign_in_provider`` finds an OpenID Connect provider: a Hugging Face Space with
  ``hf_oauth: true``, or ``SDAUDIT_OIDC_*``): every person signs in; the accounts named in
  ``SDAUDIT_ADMINS`` are admins, every other signed-in account rates under its own name
  (``rater_name``), which nobody can type or change; ``SDAUDIT_RATERS``, when set, is the only
  accounts that may rate. Streamlit's ``st.login`` does the protocol; ``auth_secrets`` is its
  ``[auth]`` section, handed to the server in memory (never written to a file), with a cookie
  secret drawn once and kept in the data home (mode 0600).
- **Password** (``SDAUDIT_ADMIN_PASSWORD`` and no sign-in): the admin actions need the password;
  raters type their names, so it suits a small team that trusts each other, not strangers.
- **Alone** (neither): a one-person tool; everything is open.

``AdminGate`` checks the admin password: in constant time, and with a lockout kept **per source**
(one browser session): ``MAX_WRONG`` wrong passwords within ``WINDOW_S`` seconds from one source
lock that source out for ``LOCKOUT_S`` seconds, and no other. (Not per IP address: behind a
Space's proxy every visitor may share one, and one source's guesses would lock the admin out
again.) An unlocked session keeps a signed, expiring token (``token``) in its server-side state
only, never in the address: a reload or a shared link asks again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sdaudit.config import setting

WRONG_PASSWORD = "That is not the admin password."
LOCKED_OUT = ("Too many wrong admin passwords from this browser: the password is refused here until {until} UTC "
              "(in {seconds} s). Try again then.")
MAX_WRONG = 5  # wrong passwords allowed per WINDOW_S from one source
WINDOW_S = 60.0
LOCKOUT_S = 60.0
TOKEN_S = 8 * 3600  # how long an unlocked session stays unlocked
SOURCES_KEPT = 10_000  # sources remembered at once; the oldest quiet ones are forgotten first


@dataclass(frozen=True)
class Verdict:
    """The gate's answer to one password: ``unlocked``, or the ``message`` to show instead."""

    unlocked: bool
    message: str | None = None


@dataclass
class _Tries:
    wrong: deque
    locked_until: float = 0.0


class AdminGate:
    """Checks the admin password and the tokens of unlocked sessions; ``required`` is False when
    no password is configured. ``clock`` gives seconds since the epoch (tests pass their own)."""

    def __init__(self, password: str | None = None, *, clock=time.time, secret: bytes | None = None):
        configured = setting("admin_password") if password is None else password
        self._digest = hashlib.sha256(configured.encode()).digest() if configured else None
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._sources: dict[str, _Tries] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return self._digest is not None

    def check(self, given: str, *, source: str) -> Verdict:
        """Unlocked for the right password (or when none is required), unless ``source`` (one
        browser session) is locked out by its own wrong passwords; other sources are untouched."""
        if self._digest is None:
            return Verdict(True)
        matches = hmac.compare_digest(hashlib.sha256((given or "").encode()).digest(), self._digest)
        with self._lock:
            now = self._clock()
            tries = self._sources.pop(source, None) or _Tries(deque())
            self._sources[source] = tries  # most recent last: the first ones are the quietest
            while len(self._sources) > SOURCES_KEPT:
                del self._sources[next(iter(self._sources))]
            if now < tries.locked_until:
                return Verdict(False, self._locked_out(tries, now))
            if matches:
                tries.wrong.clear()
                return Verdict(True)
            tries.wrong.append(now)
            while tries.wrong and tries.wrong[0] <= now - WINDOW_S:
                tries.wrong.popleft()
            if len(tries.wrong) >= MAX_WRONG:
                tries.wrong.clear()
                tries.locked_until = now + LOCKOUT_S
                return Verdict(False, self._locked_out(tries, now))
            return Verdict(False, WRONG_PASSWORD)

    @staticmethod
    def _locked_out(tries: _Tries, now: float) -> str:
        until = datetime.fromtimestamp(tries.locked_until, UTC)
        return LOCKED_OUT.format(until=f"{until:%H:%M:%S}", seconds=max(1, round(tries.locked_until - now)))

    # -- tokens for unlocked sessions ---------------------------------------------------------

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


# -- sign-in ------------------------------------------------------------------------------------

HF_VARIABLES = ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OPENID_PROVIDER_URL")  # a Space with hf_oauth: true
WELL_KNOWN = "/.well-known/openid-configuration"
COOKIE_SECRET_FILE = "sign-in-cookie-secret"  # in the data home, mode 0600
HALF_CONFIGURED = ("sign-in needs all three of SDAUDIT_OIDC_CLIENT_ID, SDAUDIT_OIDC_CLIENT_SECRET and "
                   "SDAUDIT_OIDC_PROVIDER_URL, but only {given} are set.")


@dataclass(frozen=True)
class SignInProvider:
    """An OpenID Connect provider to sign in with; ``label`` is the button's text."""

    client_id: str
    client_secret: str
    metadata_url: str
    redirect_uri: str
    scope: str
    label: str


def sign_in_provider(environ: Mapping[str, str] | None = None) -> SignInProvider | None:
    """The provider from the settings (``SDAUDIT_OIDC_*``, else a Space's ``OAUTH_*``), or None when
    sign-in is not configured. Half the ``SDAUDIT_OIDC_*`` settings is a ``ValueError`` naming them."""
    env = os.environ if environ is None else environ
    own = {name: setting(name) for name in ("oidc_client_id", "oidc_client_secret", "oidc_provider_url")}
    if any(own.values()):
        if not all(own.values()):
            raise ValueError(HALF_CONFIGURED.format(given=", ".join(f"SDAUDIT_{name.upper()}" for name, value
                                                                     in own.items() if value)))
        client_id, client_secret, provider_url = own.values()
        scope, label = "openid profile email", "Sign in"
    elif all(env.get(name) for name in HF_VARIABLES):
        client_id, client_secret, provider_url = (env[name] for name in HF_VARIABLES)
        scope, label = env.get("OAUTH_SCOPES") or "openid profile", "Sign in with Hugging Face"
    else:
        return None
    metadata_url = provider_url.rstrip("/")
    if not metadata_url.endswith(WELL_KNOWN):
        metadata_url += WELL_KNOWN
    return SignInProvider(client_id, client_secret, metadata_url, public_url(env).rstrip("/") + "/oauth2callback",
                          scope, label)


def public_url(environ: Mapping[str, str]) -> str:
    """The address browsers reach the app at: ``SDAUDIT_PUBLIC_URL``, a Space's own, or the local default."""
    if given := setting("public_url"):
        return given
    if space_host := environ.get("SPACE_HOST", "").split(",")[0].strip():  # a Space with a custom domain has two
        return f"https://{space_host}"
    return "http://localhost:8501"


def cookie_secret(home: str | os.PathLike) -> str:
    """The secret that signs the identity cookie: drawn once, kept in the data home readable by its
    owner only (so sign-ins outlive a restart), never printed."""
    path = Path(home) / COOKIE_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process drew it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def auth_secrets(provider: SignInProvider, home: str | os.PathLike) -> dict[str, dict[str, object]]:
    """Streamlit's ``[auth]`` secrets for ``provider``, as ``st.App(secrets=...)`` takes them."""
    return {"auth": {"redirect_uri": provider.redirect_uri, "cookie_secret": cookie_secret(home),
                     "client_id": provider.client_id, "client_secret": provider.client_secret,
                     "server_metadata_url": provider.metadata_url,
                     "client_kwargs": {"scope": provider.scope}}}


# -- roles --------------------------------------------------------------------------------------

NAME_CLAIMS = ("preferred_username", "email", "sub")  # the rater's name: the first the account has


@dataclass(frozen=True)
class Identity:
    """A signed-in account: the ``name`` it rates under, and what it may do."""

    name: str
    admin: bool
    may_rate: bool


def accounts(text: str) -> frozenset[str]:
    """A comma-separated list of user names or e-mail addresses, compared without case."""
    return frozenset(part.strip().casefold() for part in text.split(",") if part.strip())


def _trusted(claims: Mapping[str, object]) -> dict[str, str]:
    """The claims that name an account, stripped; an e-mail the provider says it has not verified
    (``email_verified: false``) is left out: anyone could have typed it."""
    trusted = {claim: str(claims.get(claim) or "").strip() for claim in NAME_CLAIMS}
    if claims.get("email_verified") is False:
        trusted["email"] = ""
    return trusted


def rater_name(claims: Mapping[str, object]) -> str:
    """The name an account rates under: its user name (``preferred_username``; a Hugging Face
    account's handle), else its (verified) e-mail, else its subject id."""
    return next((value for value in _trusted(claims).values() if value), "")


def identity(claims: Mapping[str, object], *, admins: str | None = None, raters: str | None = None) -> Identity:
    """The role of a signed-in account, from ``SDAUDIT_ADMINS`` and ``SDAUDIT_RATERS`` (or the
    given lists): an admin when its user name or (verified) e-mail is listed; it may rate when it is an admin,
    when no rater list is set, or when it is on it."""
    admin_list = accounts(setting("admins") if admins is None else admins)
    rater_list = accounts(setting("raters") if raters is None else raters)
    trusted = _trusted(claims)
    names = {trusted[claim].casefold() for claim in ("preferred_username", "email")} - {""}
    admin = bool(names & admin_list)
    return Identity(rater_name(claims), admin, admin or not rater_list or bool(names & rater_list))
