"""Positions of turns within a session (``generations.seq``), taken from the database.

Why it exists. Every process used to number a session's turns itself, so concurrent
writers of one session stored the same positions (issue 15: 240 rows, 68 distinct ``seq``).
Now a row logged into a session without a ``seq`` gets its position from the session's
counter (``sessions.next_seq``, migration 0009) in the transaction that stores it: the
session row stays locked until that transaction commits, so writers of one session take
disjoint ranges, in commit order, and a batch's rows keep their logging order within it.
A ``seq`` the caller sets is kept, and moves the counter past it; the unique index on
``(project_id, session_id, seq)`` refuses a position already taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from .records import GenerationRow

CLAIM_SQL = "SELECT claimed_session, first_seq FROM promptlake_claim_seq(%s, %s, %s)"
TAKEN_SQL = "SELECT promptlake_taken_seq(%s, %s, %s)"
MAX_SEQ = 2_147_483_647


def assign_positions(
    conn: Any, rows: Iterable[GenerationRow], assigned: set[int]
) -> list[GenerationRow]:
    """Give the session rows without a ``seq`` the next positions of their sessions, and
    return the rows whose own ``seq`` is taken (by another generation, or by an earlier row
    of ``rows``): they must not be inserted, since ``ON CONFLICT DO NOTHING`` would skip
    them silently.

    ``rows`` in logging order. ``assigned`` holds ``id()`` of the rows numbered here before
    (by an attempt that did not commit): they are numbered again, and it is updated."""
    need: dict[uuid.UUID, int] = {}
    floor: dict[uuid.UUID, int] = {}
    todo: list[GenerationRow] = []
    explicit: list[GenerationRow] = []
    for row in rows:
        sid = row.session_id
        if sid is None:
            continue
        if row.seq is None or id(row) in assigned:
            todo.append(row)
            need[sid] = need.get(sid, 0) + 1
        else:
            explicit.append(row)
            floor[sid] = max(floor.get(sid, 0), min(row.seq + 1, MAX_SEQ))
    sessions = sorted(set(need) | set(floor))
    if not sessions:
        return []
    result = conn.execute(
        CLAIM_SQL,
        (sessions, [need.get(s, 0) for s in sessions], [floor.get(s, 0) for s in sessions]),
    )
    first = dict(result.fetchall())
    for row in todo:
        start = first.get(row.session_id)
        if start is None:  # not a session of the project: the foreign key rejects the row
            row.seq = None
            assigned.discard(id(row))
            continue
        row.seq = start
        first[row.session_id] = start + 1
        assigned.add(id(row))
    return _taken(conn, explicit)


def _taken(conn: Any, rows: list[GenerationRow]) -> list[GenerationRow]:
    """Rows whose explicit position is held by another generation or an earlier row."""
    if not rows:
        return []
    held = {
        r[0]
        for r in conn.execute(
            TAKEN_SQL,
            ([r.id for r in rows], [r.session_id for r in rows], [r.seq for r in rows]),
        )
    }
    taken, seen = [], {}
    for row in rows:
        key = (row.session_id, row.seq)
        if row.id in held or seen.setdefault(key, row.id) != row.id:
            taken.append(row)
    return taken


def forget_positions(rows: Iterable[GenerationRow], assigned: set[int]) -> None:
    """Drop the positions taken by an attempt that will not commit (before journaling)."""
    for row in rows:
        if id(row) in assigned:
            row.seq = None
    assigned.clear()
