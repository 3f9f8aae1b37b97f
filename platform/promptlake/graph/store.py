"""Running extraction into the graph tables, incrementally, and pruning what nothing supports.

Incremental like dedup: ``entity_extractions`` records, per generation and extractor, the
``content_hash`` and extractor version it was read with; a run reads only generations
with no record, a different hash (changed text) or another version (a new extractor or
dictionary), in batches of one transaction each (a run that stops resumes where it was).
A generation read again has its mentions of that extractor replaced.

Relations are derived in SQL from the stored mentions: two entities mentioned in the same
sentence of a generation are ``mentioned_with`` each other (stored once, subject < object)
and that generation supports the relation. Mentions, extraction records and support go
with their generation (``ON DELETE CASCADE``); :func:`prune` then removes extracted
relations without support and extracted entities without mentions, so an entity only the
erased rows named disappears with them.

Bulk writes go through a COPY into a session-local staging table and one
``INSERT ... SELECT`` (COPY refuses tables with row-level security), as in ``dedup/``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import sql

from ..dedup.shingles import FIELD_TEXT_SQL
from ..dedup.store import _stage
from ..ids import uuid7
from .extract import Mention, sentence_of, sentence_starts
from .guard import PiiGuard
from .resolve import NAMEISH, Known, entity_key

if TYPE_CHECKING:
    from ..client import Project

MENTIONED_WITH = "mentioned_with"
ANALYZE_AFTER = 5000  # mentions written by a run before the tables' statistics are refreshed
FIELDS = ("input", "output")


class Extractor(Protocol):
    name: str
    version: str

    def extract(self, text: str) -> list[Mention]: ...


@dataclass
class ExtractReport:
    """What one run did, per extractor."""

    extractors: list[str]
    pending: int = 0
    generations: int = 0
    mentions: int = 0
    new_entities: int = 0
    dropped_for_pii: int = 0
    relations: int = 0
    pruned_entities: int = 0
    seconds: float = 0.0
    extract_seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def generations_per_second(self) -> float:
        return self.generations / self.extract_seconds if self.extract_seconds else 0.0

    def __str__(self) -> str:
        return (
            f"read {self.generations} of {self.pending} pending generations with"
            f" {', '.join(self.extractors)}: {self.mentions} mentions, {self.new_entities} new"
            f" entities, {self.relations} relations written, {self.dropped_for_pii} mentions"
            f" dropped as PII, {self.pruned_entities} unmentioned entities pruned"
            f" ({self.seconds:.1f} s)"
        )


def dictionary_version(entries: dict[str, Any]) -> str:
    blob = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def load_known(conn: psycopg.Connection, project: Project) -> Known:
    rows = conn.execute(
        "SELECT id, kind, name, key, aliases FROM entities WHERE project_id = %s"
        " ORDER BY source = 'manual' DESC, created_at, id",
        (project.id,),
    )
    return Known.load(rows)


def pending_ids(
    conn: psycopg.Connection, project: Project, extractor: Extractor, rebuild: bool
) -> list[uuid.UUID]:
    if rebuild:
        rows = conn.execute(
            "SELECT id FROM generations WHERE project_id = %s ORDER BY id", (project.id,)
        )
    else:
        rows = conn.execute(
            "SELECT g.id FROM generations g LEFT JOIN entity_extractions x"
            " ON x.project_id = g.project_id AND x.generation_id = g.id AND x.extractor = %s"
            " WHERE g.project_id = %s AND (x.generation_id IS NULL"
            " OR x.source_hash <> g.content_hash OR x.extractor_version <> %s) ORDER BY g.id",
            (extractor.name, project.id, extractor.version),
        )
    return [r[0] for r in rows]


def _texts(
    conn: psycopg.Connection, project: Project, ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, bytes, str, str]]:
    query = sql.SQL(
        "SELECT g.id, g.content_hash, {input}, coalesce(g.output, '') FROM generations g"
        " WHERE g.project_id = %s AND g.id = ANY(%s) ORDER BY g.id"
    ).format(input=sql.SQL(FIELD_TEXT_SQL["input"]))
    return [
        (r[0], bytes(r[1]), r[2] or "", r[3]) for r in conn.execute(query, (project.id, list(ids)))
    ]


MENTION_COLUMNS = ("project_id", "generation_id", "field", "start_offset", "end_offset",
                   "sentence", "extractor", "entity_id", "surface", "confidence",
                   "extractor_version")  # fmt: skip
MENTION_TYPES = ("uuid", "uuid", "text", "int4", "int4", "int4", "text", "uuid", "text",
                 "float8", "text")  # fmt: skip
ENTITY_COLUMNS = ("project_id", "id", "kind", "name", "key", "aliases")
ENTITY_TYPES = ("uuid", "uuid", "text", "text", "text", "text[]")
EXTRACTION_COLUMNS = ("project_id", "generation_id", "extractor", "extractor_version",
                      "source_hash", "mentions")  # fmt: skip
EXTRACTION_TYPES = ("uuid", "uuid", "text", "text", "bytea", "int4")


def _insert(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: list[tuple],
    conflict: str = "ON CONFLICT DO NOTHING",
) -> int:
    if not rows:
        return 0
    stage = _stage(conn, table, columns, types, rows)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    query = sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {s} ").format(
        t=sql.Identifier(table), c=cols, s=sql.Identifier(stage)
    ) + sql.SQL(conflict)  # type: ignore[operator]
    return conn.execute(query).rowcount


PAIRS = "promptlake_entity_pairs"
RELATION_SQL = (
    "INSERT INTO entity_relations (project_id, id, subject_id, predicate, object_id)"
    " SELECT DISTINCT %(p)s::uuid, md5(%(p)s::text || s::text || %(pred)s || o::text)::uuid,"
    f" s, %(pred)s, o FROM {PAIRS} ON CONFLICT DO NOTHING",
    "INSERT INTO relation_support (project_id, relation_id, generation_id)"
    f" SELECT %(p)s, r.id, x.g FROM {PAIRS} x JOIN entity_relations r"
    " ON r.project_id = %(p)s AND r.subject_id = x.s AND r.predicate = %(pred)s"
    " AND r.object_id = x.o ON CONFLICT DO NOTHING",
)


def _relate(conn: psycopg.Connection, project_id: uuid.UUID, ids: list[uuid.UUID]) -> int:
    """Relations and their support from the stored mentions (every extractor's) of
    ``ids``: pairs of entities in one sentence, computed here (a self-join of the mentions
    table plans badly right after bulk loads), then two statements; support rows written."""
    by_sentence: dict[tuple, set[uuid.UUID]] = {}
    for gid, fname, sentence, eid in conn.execute(
        "SELECT generation_id, field, sentence, entity_id FROM entity_mentions"
        " WHERE project_id = %s AND generation_id = ANY(%s)",
        (project_id, ids),
    ):
        by_sentence.setdefault((gid, fname, sentence), set()).add(eid)
    pairs = set()
    for (gid, _, _), members in by_sentence.items():
        if len(members) > 1:
            ordered = sorted(members)
            pairs.update((a, b, gid) for n, a in enumerate(ordered) for b in ordered[n + 1 :])
    if not pairs:
        return 0
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {PAIRS} (s uuid, o uuid, g uuid)"
                    " ON COMMIT DELETE ROWS")  # fmt: skip
        cur.execute(f"TRUNCATE {PAIRS}")
        with cur.copy(f"COPY {PAIRS} (s, o, g) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "uuid", "uuid"])
            for row in pairs:
                copy.write_row(row)
        cur.execute(f"ANALYZE {PAIRS}")
    params = {"p": project_id, "pred": MENTIONED_WITH}
    conn.execute(RELATION_SQL[0], params)
    return conn.execute(RELATION_SQL[1], params).rowcount


def _write_batch(
    conn: psycopg.Connection,
    project: Project,
    extractor: Extractor,
    known: Known,
    batch: list[tuple[uuid.UUID, bytes, list[tuple[str, list[Mention], list[int]]]]],
    report: ExtractReport,
) -> None:
    pid = project.id
    new: dict[tuple[str, str], tuple[uuid.UUID, str, str]] = {}  # (kind, key) -> row
    upgrades: dict[uuid.UUID, str] = {}
    mentions: list[list[Any]] = []
    extractions = []
    for gid, source_hash, fields in batch:
        count = 0
        for fname, found, starts in fields:
            for m in found:
                key = entity_key(m.kind, m.name)
                eid = known.find(m.kind, key)
                if eid is None:
                    eid = uuid7()
                    known.add(eid, m.kind, key)
                    new[(m.kind, key)] = (eid, m.kind, m.name)
                elif m.kind in NAMEISH and m.kind != "name" and known.kinds.get(eid) == "name":
                    upgrades[eid] = m.kind  # NER says which kind of name it is
                    known.kinds[eid] = m.kind
                sentence = sentence_of(starts, m.start)
                mentions.append([pid, gid, fname, m.start, m.end, sentence, extractor.name, eid,
                                 m.surface, m.confidence, extractor.version])  # fmt: skip
                count += 1
        extractions.append((pid, gid, extractor.name, extractor.version, source_hash, count))
    ids = [gid for gid, _, _ in batch]
    if new:
        aliases = getattr(extractor, "aliases", None)
        rows = [(pid, eid, kind, name, key, aliases(kind, name) if aliases else [])
                for (kind, key), (eid, _, name) in new.items()]  # fmt: skip
        report.new_entities += _insert(conn, "entities", ENTITY_COLUMNS, ENTITY_TYPES, rows)
        # another run may have created some of them first: use the stored ids
        stored = conn.execute(
            "SELECT kind, key, id FROM entities WHERE project_id = %s AND (kind, key) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (pid, [k for k, _ in new], [key for _, key in new]),
        ).fetchall()
        remap = {
            new[(kind, key)][0]: eid for kind, key, eid in stored if new[(kind, key)][0] != eid
        }
        if remap:
            for row in mentions:
                row[7] = remap.get(row[7], row[7])
            for (kind, key), (eid, _, _) in new.items():
                if eid in remap:
                    known.add(remap[eid], kind, key)
    for eid, kind in upgrades.items():
        conn.execute(
            "UPDATE entities SET kind = %s, updated_at = now() WHERE project_id = %s AND id = %s"
            " AND kind = 'name'",
            (kind, pid, eid),
        )
    conn.execute(
        "DELETE FROM entity_mentions WHERE project_id = %s AND generation_id = ANY(%s)"
        " AND extractor = %s",
        (pid, ids, extractor.name),
    )
    conn.execute(
        "DELETE FROM relation_support WHERE project_id = %s AND generation_id = ANY(%s)",
        (pid, ids),
    )
    report.mentions += _insert(conn, "entity_mentions", MENTION_COLUMNS, MENTION_TYPES,
                               [tuple(r) for r in mentions])  # fmt: skip
    _insert(
        conn, "entity_extractions", EXTRACTION_COLUMNS, EXTRACTION_TYPES, extractions,
        "ON CONFLICT (project_id, generation_id, extractor) DO UPDATE SET"
        " extractor_version = excluded.extractor_version, source_hash = excluded.source_hash,"
        " mentions = excluded.mentions, extracted_at = now()",
    )  # fmt: skip
    report.relations += _relate(conn, pid, ids)


def run(
    project: Project,
    extractors: Sequence[Extractor],
    *,
    rebuild: bool = False,
    batch_size: int = 2000,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExtractReport:
    """Read pending generations with each extractor in turn; see the module docstring."""
    started = time.perf_counter()
    report = ExtractReport([f"{e.name} {e.version}" for e in extractors])
    guard = PiiGuard.for_project(project)
    for extractor in extractors:
        with project.lake._transaction(project) as conn:
            ids = pending_ids(conn, project, extractor, rebuild)
            known = load_known(conn, project)
        if limit is not None:
            ids = ids[:limit]
        report.pending += len(ids)
        for lo in range(0, len(ids), batch_size):
            chunk = ids[lo : lo + batch_size]
            with project.lake._transaction(project) as conn:
                t0 = time.perf_counter()
                rows = _texts(conn, project, chunk)
                texts = [
                    (gid, f, t)
                    for gid, _, i, o in rows
                    for f, t in (("input", i), ("output", o))
                    if t
                ]
                many = getattr(extractor, "extract_many", None)
                found_all = (
                    many([t for _, _, t in texts])
                    if many
                    else [extractor.extract(t) for _, _, t in texts]
                )
                fields: dict[uuid.UUID, list] = {}
                for (gid, fname, text), found in zip(texts, found_all, strict=True):
                    kept = guard.filter(text, found)
                    report.dropped_for_pii += len(found) - len(kept)
                    if kept:
                        fields.setdefault(gid, []).append((fname, kept, sentence_starts(text)))
                batch = [(gid, source_hash, fields.get(gid, [])) for gid, source_hash, _, _ in rows]
                report.extract_seconds += time.perf_counter() - t0
                report.generations += len(batch)
                try:
                    _write_batch(conn, project, extractor, known, batch, report)
                except Exception:
                    with project.lake._transaction(project) as fresh:
                        known = load_known(fresh, project)  # ids of a failed batch are void
                    raise
            if progress is not None:
                progress(min(lo + batch_size, len(ids)), len(ids))
    with project.lake._transaction(project) as conn:
        report.pruned_entities = prune(conn, project.id)
        if report.mentions >= ANALYZE_AFTER:
            conn.execute("SELECT promptlake_analyze_entities()")
    report.seconds = time.perf_counter() - started
    return report


def prune(conn: psycopg.Connection, project_id: uuid.UUID) -> int:
    """Drop extracted relations nothing supports and extracted entities nothing mentions
    (and which no manual relation uses); returns how many entities went. Whole-project
    anti-joins: hash joins, whatever stale statistics suggest (as ``dedup.store``)."""
    (before,) = conn.execute("SELECT current_setting('enable_nestloop')").fetchone()  # type: ignore[misc]
    conn.execute("SET LOCAL enable_nestloop = off")
    conn.execute(
        "DELETE FROM entity_relations r WHERE r.project_id = %s AND r.source = 'extracted'"
        " AND NOT EXISTS (SELECT 1 FROM relation_support s WHERE s.project_id = r.project_id"
        " AND s.relation_id = r.id)",
        (project_id,),
    )
    gone = conn.execute(
        "DELETE FROM entities e WHERE e.project_id = %(p)s AND e.source = 'extracted'"
        " AND NOT EXISTS (SELECT 1 FROM entity_mentions m WHERE m.project_id = e.project_id"
        "  AND m.entity_id = e.id)"
        " AND NOT EXISTS (SELECT 1 FROM entity_relations r WHERE r.project_id = e.project_id"
        "  AND r.source = 'manual' AND e.id IN (r.subject_id, r.object_id))",
        {"p": project_id},
    ).rowcount
    conn.execute("SELECT set_config('enable_nestloop', %s, true)", (before,))
    return gone
