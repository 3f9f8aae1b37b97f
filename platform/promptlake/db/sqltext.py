"""``:name`` parameters in user SQL, found the way PostgreSQL reads the text.

``lake.sql()``, ``lake.query()`` and ``promptlake sql`` bind ``:name`` placeholders to the
parameters given. SQLAlchemy's ``text()`` finds them with a regular expression that does
not know SQL: the ``:1`` in ``SELECT '{"a":1}'::jsonb`` became a parameter nobody passed, and
a backslash before a colon inside a literal was eaten. Here the query is scanned as
PostgreSQL's lexer would: string literals (``'...'``, ``E'...'``, dollar-quoted
``$tag$...$tag$``), quoted identifiers, comments and ``::`` casts are left alone; every other
``:name`` (a letter or underscore first, not right after a word character) is a
placeholder, also right before a cast (``:n::int``). A placeholder without a value is a
:class:`~promptlake.errors.ValidationError` naming it, before anything reaches the database.

The query is then sent in psycopg's ``%(name)s`` form with every ``%`` doubled (psycopg
reads ``%`` wherever parameters are passed, and SQLAlchemy always passes them), so no
other layer rewrites it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import Problem, ValidationError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def placeholders(query: str) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of each ``:name`` placeholder in ``query``."""
    found: list[tuple[int, int, str]] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch == "'":
            escapes = i > 0 and query[i - 1] in "eE" and not _word_before(query, i - 1)
            i = _skip_quoted(query, i, "'", backslash=escapes)
        elif ch == '"':
            i = _skip_quoted(query, i, '"', backslash=False)
        elif ch == "-" and query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and query.startswith("/*", i):
            i = _skip_block_comment(query, i)
        elif ch == "$" and not _word_before(query, i):
            tag = _DOLLAR_TAG.match(query, i)
            if tag is None:
                i += 1
            else:
                end = query.find(tag.group(), tag.end())
                i = n if end < 0 else end + len(tag.group())
        elif ch == ":":
            if query.startswith("::", i):
                i += 2
                continue
            name = _NAME.match(query, i + 1)
            if name is not None and not _word_before(query, i):
                found.append((i, name.end(), name.group()))
                i = name.end()
            else:
                i += 1
        else:
            i += 1
    return found


def _word_before(query: str, i: int) -> bool:
    return i > 0 and (query[i - 1].isalnum() or query[i - 1] in "_$")


def _skip_quoted(query: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(query):
        ch = query[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if query.startswith(quote * 2, j):  # a doubled quote stands for itself
                j += 2
                continue
            return j + 1
        j += 1
    return len(query)


def _skip_block_comment(query: str, i: int) -> int:
    depth, j = 0, i
    while j < len(query):
        if query.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif query.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(query)


def to_driver(query: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``query`` in psycopg's parameter style and the parameters it uses (for
    ``exec_driver_sql``). Raises :class:`ValidationError` for a placeholder with no value."""
    params = dict(params or {})
    found = placeholders(query)
    missing = sorted({name for _, _, name in found if name not in params})
    if missing:
        raise ValidationError(
            [
                Problem(
                    "query",
                    f":{name} has no value; pass it as a parameter"
                    f" (promptlake sql --param {name}=VALUE), or write '::' for a cast",
                )
                for name in missing
            ]
        )
    parts, last = [], 0
    for start, end, name in found:
        parts.append(query[last:start].replace("%", "%%"))
        parts.append(f"%({name})s")
        last = end
    parts.append(query[last:].replace("%", "%%"))
    return "".join(parts), {name: params[name] for _, _, name in found}
