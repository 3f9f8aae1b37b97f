"""Principal logins: the database role a principal's own SQL runs as.

Row-level security decides by the principal, and a principal named in a setting can be
renamed by any SQL in the same session. So SQL that a person writes (``promptlake sql``,
``Lake.sql``/``query``, ``psql "$(promptlake db url --principal P)"``) never runs on the
application's connections: it runs on a connection whose *login* is the principal's own
role, made by the database function ``promptlake_login`` (migration 0008) with no
superuser, role-creation or server-file rights. The policies read that login
(``session_user``), which SQL cannot change.

The login's password is derived from the master key (HMAC), so every process that holds
the key (and only those) can open the login, and nothing new has to be stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import psycopg
import sqlalchemy as sa


def login_password(master: bytes, principal: str) -> str:
    """The password of ``principal``'s login (stable for one master key)."""
    digest = hmac.new(master, f"promptlake/login/{principal}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def ensure_login(conn: psycopg.Connection, password: str) -> str:
    """Make or refresh the login of the principal of ``conn``'s transaction (an
    application connection with ``promptlake.principal`` set); return its role name."""
    row = conn.execute("SELECT promptlake_login(%s)", (password,)).fetchone()
    assert row is not None
    return str(row[0])


def login_url(url: str, rolname: str, password: str) -> str:
    """``url`` with the login replaced by ``rolname``."""
    return (
        sa.engine.make_url(url)
        .set(username=rolname, password=password)
        .render_as_string(hide_password=False)
    )
