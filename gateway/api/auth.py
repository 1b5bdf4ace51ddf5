"""Who may read and change what: the API bearer token, dashboard session cookies and one-time sign-in codes.

The token lives in a 0600 file (``[api] token_file``, by default ``api-token`` beside the database) and is created
on first start. People sign in on ``/login`` with the token, or follow a one-time link, and get a session cookie
signed with a key derived from the token, so replacing the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from pathlib import Path

from gateway.broker import read_secret, write_secret

SESSION_COOKIE = "campusgw_session"
SESSION_TTL_S = 12 * 3600
SIGNIN_CODE_TTL_S = 15 * 60


def ensure_token(path: Path) -> str:
    """Read the API token, creating it (0600) if the file does not exist; tightens loose permissions."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        token = read_secret(path)
        if len(token) >= 16:
            return token
    token = secrets.token_urlsafe(32)
    write_secret(path, token)
    return token


def token_matches(expected: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())


class SessionSigner:
    """Issues and checks ``expires.signature`` session cookies."""

    def __init__(self, token: str) -> None:
        self._key = hashlib.sha256(b"campusgw-session|" + token.encode()).digest()

    def _sign(self, expires: int) -> str:
        return hmac.new(self._key, str(expires).encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float, ttl: float = SESSION_TTL_S) -> str:
        expires = int(now + ttl)
        return f"{expires}.{self._sign(expires)}"

    def valid(self, cookie: str | None, now: float) -> bool:
        if not cookie or "." not in cookie:
            return False
        expires_text, signature = cookie.split(".", 1)
        if not expires_text.isdigit() or int(expires_text) < now:
            return False
        return hmac.compare_digest(self._sign(int(expires_text)), signature)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_signin_code(conn: sqlite3.Connection, now: float, ttl: float = SIGNIN_CODE_TTL_S) -> str:
    """A one-time sign-in code; only its hash is stored. Runs as a writer command."""
    code = secrets.token_urlsafe(24)
    conn.execute("DELETE FROM signin_codes WHERE expires < ?", (now,))
    conn.execute("INSERT INTO signin_codes (code_hash, expires) VALUES (?, ?)", (_hash(code), now + ttl))
    return code


def consume_signin_code(conn: sqlite3.Connection, code: str, now: float) -> bool:
    """True once for a valid, unexpired code, which is then gone. Runs as a writer command."""
    cursor = conn.execute("DELETE FROM signin_codes WHERE code_hash = ? AND expires >= ?", (_hash(code), now))
    return cursor.rowcount == 1
