"""Who a UI request acts as: a signed session cookie made at sign-in, or a bearer key.

The sign-in form takes an API key (``keys.py``); the cookie keeps the key's sha256 (never
the key), the time it was issued and an HMAC over both with the server's secret
(``PROMPTLAKE_UI_SECRET``, else a random one per process: a restart signs everyone out).
Each request looks the hash up again with ``promptlake_api_key`` (the same SECURITY
DEFINER function the API uses), so a revoked key, or a principal that lost its role, stops
working at once. The cookie is HttpOnly, SameSite=Strict, Secure over https; forms that
write also carry a token derived from the cookie (``csrf_token``), so another site cannot
post with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from ..keys import KEY_PREFIX, Authenticated, AuthError, authenticate, bearer_key, hash_key

if TYPE_CHECKING:
    from starlette.requests import Request

    from ...client import Lake

COOKIE = "promptlake_session"
MAX_AGE_SECONDS = 12 * 3600


class Signer:
    """Makes and checks session cookie values (``v1.<hash>.<issued>.<mac>``)."""

    def __init__(self, secret: bytes | None = None) -> None:
        configured = os.environ.get("PROMPTLAKE_UI_SECRET")
        self.secret = secret or (configured.encode() if configured else secrets.token_bytes(32))

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def make(self, key: str, now: float | None = None) -> str:
        payload = f"v1.{hash_key(key).hex()}.{int(now if now is not None else time.time())}"
        return f"{payload}.{self._mac(payload)}"

    def key_hash(self, value: str | None, now: float | None = None) -> bytes | None:
        """The key hash of a valid, unexpired cookie value, else None."""
        if not value or value.count(".") != 3:
            return None
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        _, digest, issued = payload.split(".")
        try:
            age = (now if now is not None else time.time()) - int(issued)
            return bytes.fromhex(digest) if 0 <= age <= MAX_AGE_SECONDS else None
        except ValueError:
            return None

    def csrf_token(self, value: str) -> str:
        return self._mac("csrf." + value)


def authenticate_hash(lake: Lake, digest: bytes) -> Authenticated:
    """As :func:`..keys.authenticate`, from the key's hash (what the cookie holds)."""
    with lake.engine.connect() as conn:
        row: Any = conn.exec_driver_sql(
            "SELECT key_id, project_id, project_name, principal, role, member_role, revoked,"
            " rate_per_second FROM promptlake_api_key(%(hash)s)",
            {"hash": digest},
        ).fetchone()
        conn.rollback()
    if row is None:
        raise AuthError("unknown API key")
    key_id, project_id, project_name, principal, role, member_role, revoked, rate = row
    if revoked:
        raise AuthError("this API key was revoked: sign in with another")
    if member_role != role:
        raise AuthError(f"{principal!r} is no longer {role} in {project_name!r}")
    return Authenticated(key_id, project_id, project_name, principal, role, rate)


def sign_in(lake: Lake, key: str) -> Authenticated:
    """Check a key typed into the sign-in form."""
    key = key.strip()
    if not key.startswith(KEY_PREFIX):
        raise AuthError(f"an API key starts with {KEY_PREFIX} (promptlake keys create)")
    return authenticate(lake, key)


def from_request(lake: Lake, signer: Signer, request: Request) -> tuple[Authenticated, bool]:
    """``(who, by_cookie)``, or :class:`AuthError` (no credentials, or bad ones)."""
    header = request.headers.get("authorization")
    if header:
        return authenticate(lake, bearer_key(header)), False
    digest = signer.key_hash(request.cookies.get(COOKIE))
    if digest is None:
        raise AuthError("not signed in")
    return authenticate_hash(lake, digest), True
