"""Erasure reaches the journal: records of an erased end user are taken out of the files.

A writer that could not reach the database journals its batch to disk (``journal.py``);
records of a person erased since would otherwise stay there, readable with the vault key,
until someone replays them (and replay refuses them, but used to keep the file). Two
places remove them:

- ``erase`` rewrites the journal files under this machine's ``PROMPTLAKE_HOME`` at once:
  the person's session lines, the generations in those sessions (or among the erased
  ones), the scores of those generations; generations of other people that named one of
  them as parent keep their line with the parent cleared, as in the database.
- ``replay`` (on any machine) drops the records of erased end users before storing the
  rest, and rewrites or deletes the file, so nothing of them stays on disk. It knows a
  session as erased from the end user's tombstone, or, when the session line is not in
  the file, from the session's own tombstone, which ``erase`` records as a keyed hash of
  ``"\\0session:" + id`` (an end-user id can never hold a NUL, so the two never collide).

Files are rewritten atomically (a new file, fsynced, renamed over the old one); a file
left with no record is deleted.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .journal import _decode, _encode, journals


def session_subject(session_id: uuid.UUID) -> str:
    """What a session's tombstone hashes (see the module docs)."""
    return f"\x00session:{session_id}"


@dataclass
class Removal:
    """What was taken out of journal files."""

    files: int = 0  # files rewritten or deleted
    records: int = 0  # session, generation and score lines removed
    sessions: set[uuid.UUID] = field(default_factory=set)  # ids of removed session lines


def filter_lines(
    lines: list[dict[str, Any]],
    *,
    end_users: set[str],
    sessions: set[uuid.UUID],
    generations: set[uuid.UUID],
) -> tuple[list[dict[str, Any]], int, set[uuid.UUID]]:
    """``lines`` (decoded journal records) without those of the erased: (kept, removed
    count, ids of removed sessions). The sets are not modified."""
    sessions, generations = set(sessions), set(generations)
    removed_sessions: set[uuid.UUID] = set()
    for line in lines:
        data = line.get("data") or {}
        if line.get("kind") == "session" and (
            data.get("end_user_id") in end_users or data.get("id") in sessions
        ):
            sessions.add(data["id"])
            removed_sessions.add(data["id"])
    for line in lines:
        data = line.get("data") or {}
        if line.get("kind") == "generation" and data.get("session_id") in sessions:
            generations.add(data["id"])
    kept: list[dict[str, Any]] = []
    removed = 0
    for line in lines:
        kind, data = line.get("kind"), line.get("data") or {}
        if (
            (kind == "session" and data.get("id") in sessions)
            or (kind == "generation" and data.get("id") in generations)
            or (kind == "score" and data.get("generation_id") in generations)
        ):
            removed += 1
            continue
        if kind == "generation" and data.get("parent_id") in generations:
            line = {**line, "data": {**data, "parent_id": None}}
        kept.append(line)
    return kept, removed, removed_sessions


def read_lines(path: Path) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Decoded records of a journal file, and the raw lines that could not be read."""
    good, bad = [], []
    with path.open("rb") as f:
        for raw in f:
            try:
                line = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                bad.append(raw)
                continue
            line["data"] = _decode(line.get("data"))
            good.append(line)
    return good, bad


def rewrite(path: Path, lines: list[dict[str, Any]], unreadable: list[bytes] = ()) -> None:
    """Replace ``path`` by ``lines`` (atomically, fsynced); delete it if nothing is left."""
    if not lines and not unreadable:
        path.unlink(missing_ok=True)
    else:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            for line in lines:
                data = {**line, "data": _encode(line.get("data"))}
                f.write((json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8"))
            for raw in unreadable:
                f.write(raw if raw.endswith(b"\n") else raw + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def purge(
    home: Path,
    project_id: uuid.UUID,
    *,
    end_users: set[str],
    sessions: set[uuid.UUID],
    generations: set[uuid.UUID],
) -> Removal:
    """Remove the records of the erased from this machine's journal files of a project."""
    removal = Removal()
    for path in journals(home):
        lines, unreadable = read_lines(path)
        if not any(line.get("project_id") == str(project_id) for line in lines):
            continue
        kept, removed, gone = filter_lines(
            lines, end_users=end_users, sessions=sessions, generations=generations
        )
        if removed:
            rewrite(path, kept, unreadable)
            removal.files += 1
            removal.records += removed
            removal.sessions |= gone
    return removal


__all__ = ["Removal", "filter_lines", "purge", "read_lines", "rewrite", "session_subject"]
