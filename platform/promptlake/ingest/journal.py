"""The local journal: where a writer keeps records it could not store, until replayed.

When the database stays unreachable past a writer's retry budget, the unflushed batch is
appended to a JSON Lines file under ``PROMPTLAKE_HOME/journal/`` and fsynced before the
writer raises; nothing it accepted is dropped. Records are journaled as prepared (already
validated and anonymized, with their ids and hashes); originals bound for the vault are
sealed first, so the journal never holds plaintext the policy removed. ``replay`` stores
journals idempotently (the ids make a second replay store nothing) and deletes each file
once everything in it is in the database.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ids import uuid7
from .records import GenerationRow

if TYPE_CHECKING:
    from ..client import Lake, Project

VERSION = 1


def journal_dir(home: Path) -> Path:
    return home / "journal"


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$uuid":
                return uuid.UUID(inner)
            if key == "$time":
                return dt.datetime.fromisoformat(inner)
            if key == "$dec":
                return decimal.Decimal(inner)
            if key == "$b64":
                return base64.b64decode(inner)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def write(
    project: Project,
    sessions: list[dict[str, Any]],
    rows: list[tuple[str, GenerationRow]],
    scores: list[tuple[str, dict[str, Any]]],
    master: bytes | None,
) -> Path:
    """Append one batch to a new journal file, fsynced; return its path."""
    from ..privacy.vault import seal

    folder = journal_dir(project.lake.settings.home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{project.id}-{uuid7()}.jsonl"
    head = {"v": VERSION, "project": project.name, "project_id": str(project.id)}
    lines = []
    for values in sessions:
        lines.append({**head, "kind": "session", "data": _encode(values)})
    for label, row in rows:
        data = dataclasses.asdict(row)
        originals = data.pop("vault_originals")
        if originals and master is not None:
            data["vault_sealed"] = list(seal(master, project.id, row.id, originals))
        lines.append({**head, "kind": "generation", "item": label, "data": _encode(data)})
    for label, values in scores:
        lines.append({**head, "kind": "score", "item": label, "data": _encode(values)})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the file's name is durable too
    finally:
        os.close(dir_fd)
    return path


@dataclass
class ReplayReport:
    files: int = 0
    stored: int = 0
    duplicates: int = 0
    scores: int = 0
    rejected: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    erased: int = 0  # records of erased end users taken out of the files


def journals(home: Path) -> list[Path]:
    folder = journal_dir(home)
    paths = sorted(folder.glob("*.jsonl")) if folder.exists() else []
    return [p for p in paths if not _in_use(p)]


def _in_use(path: Path) -> bool:
    """Whether a live background logger (``background.py``) holds the file's lock."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if b"\0" in raw or not raw.endswith(b"\n"):
                # the zero-filled end of a preallocated segment (background.py), or a line
                # a crash cut short: never acknowledged, so nothing to store
                return
            try:
                yield number, json.loads(raw.decode("utf-8")), None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield number, None, f"{path.name} line {number}: unreadable ({exc})"


def replay(lake: Lake, paths: list[Path] | None = None) -> ReplayReport:
    """Store the records of journal files (all of them by default) and delete each file
    whose records are all in the database (stored now or before)."""
    from ..errors import NotFoundError

    report = ReplayReport()
    for path in paths if paths is not None else journals(lake.settings.home):
        report.files += 1
        writer = None
        bad = False
        prefiltered, skip = False, set()
        for number, line, problem in _read(path):
            if problem is not None or line is None or line.get("v") != VERSION:
                report.rejected.append(problem or f"{path.name} line {number}: unknown format")
                bad = True
                continue
            if writer is None:
                try:
                    project = lake.project(line["project"], create=False)
                except NotFoundError as exc:
                    report.rejected.append(f"{path.name}: {exc}")
                    bad = True
                    break
                writer = project.writer(batch_size=10**9)  # one transaction per file
            if not prefiltered:
                prefiltered = True
                skip = _erased_lines(project, path)
                report.erased += len(skip)
            if number in skip:
                continue
            data = _decode(line["data"])
            if line["kind"] == "session":
                writer._sessions[data["id"]] = data
            elif line["kind"] == "generation":
                sealed = data.pop("vault_sealed", None)
                row = GenerationRow(**data)
                row.vault_sealed = tuple(sealed) if sealed else None
                writer._rows.append((line.get("item") or f"{path.name} line {number}", row))
            elif line["kind"] == "score":
                from .writer import _PendingScore

                writer._scores.append(_PendingScore(line.get("item") or "score", data))
        if writer is not None:
            writer.flush()
            report.stored += writer.stats.stored
            report.duplicates += writer.stats.duplicates
            report.scores += writer.stats.scores_stored
            report.rejected += [f"{path.name}: {r}" for r in writer.rejected]
            bad = bad or bool(writer.rejected)
        if not bad:
            path.unlink()
            report.removed.append(path)
        elif skip:  # what stays (to retry) stays without the records of erased people
            from .journal_erase import read_lines, rewrite

            lines, unreadable = read_lines(path)
            keep = [x for i, x in enumerate(_numbered(path)) if i not in skip]
            rewrite(path, [lines[j] for j in keep if j is not None], unreadable)
    return report


def _numbered(path: Path) -> list[int | None]:
    """For each line number (1-based, index 0 unused) its index among readable lines."""
    out: list[int | None] = [None]
    index = 0
    for _, line, _problem in _read(path):
        out.append(index if line is not None else None)
        index += line is not None
    return out


def _erased_lines(project: Project, path: Path) -> set[int]:
    """Line numbers of ``path`` holding records of end users erased from ``project``."""
    from ..privacy.erase import erased_sessions, erased_subjects
    from .journal_erase import filter_lines

    numbered = []
    for number, line, _problem in _read(path):
        if line is not None and line.get("v") == VERSION:
            numbered.append((number, {**line, "data": _decode(line.get("data"))}))
    users = {x["data"].get("end_user_id") for _, x in numbered if x.get("kind") == "session"}
    referenced = {x["data"].get("session_id") for _, x in numbered
                  if x.get("kind") == "generation"}  # fmt: skip
    referenced |= {x["data"].get("id") for _, x in numbered if x.get("kind") == "session"}
    with project.lake._transaction(project) as conn:
        erased_users = erased_subjects(project, conn, {u for u in users if u})
        gone = erased_sessions(project, conn, {s for s in referenced if s})
    if not erased_users and not gone:
        return set()
    lines = [x for _, x in numbered]
    kept, _removed, _ = filter_lines(lines, end_users=erased_users, sessions=gone,
                                     generations=set())  # fmt: skip
    kept_ids = {id(x) for x in kept}
    # filter_lines copies a line only to clear its parent: those are kept, not skipped
    parents = {(x.get("kind"), (x.get("data") or {}).get("id")) for x in kept}
    return {
        number
        for number, x in numbered
        if id(x) not in kept_ids and (x.get("kind"), x["data"].get("id")) not in parents
    }
