"""Apply a project's policy to generations: at ingest, to stored rows, and on reveal.

At ingest (``Anonymizer``, called by every write path before hashing) the prompt text,
each chat message's text and the output are scanned; the operators replace what was
found; the findings (type, field, span, operator, policy version, never the value) are
kept for ``pii_findings``; and, if the policy says so, the original fields are sealed for
the vault. Stored rows are brought under a (new) policy by :func:`anonymize_stored`, in
batches that each commit, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..ids import stable_id
from ..ingest.records import GenerationRow, content_hashes
from . import keys, vault
from .detect import Detector, PatternDetector, PresidioDetector
from .operators import apply_operators
from .policy import Policy

if TYPE_CHECKING:
    from ..client import Project


@functools.cache
def _presidio() -> Detector:
    """Presidio takes about a second to build: once per process."""
    return PresidioDetector()


def _detectors(policy: Policy) -> list[Detector]:
    out: list[Detector] = []
    for name in policy.detectors:
        if name == "pattern":
            wanted = set(policy.operators) & PatternDetector().entity_types
            if "*" in policy.operators:
                wanted = set(PatternDetector().entity_types)
            if wanted:
                out.append(PatternDetector(wanted))
        elif name == "presidio":
            out.append(_presidio())
    return out


class Anonymizer:
    """A project's live policy, ready to apply to many rows."""

    def __init__(self, project: Project, policy: Policy, master: bytes) -> None:
        self.project = project
        self.policy = policy
        self.master = master
        self.detectors = _detectors(policy)
        self.key = keys.derive(master, "pseudonym", project.id)

    def text(self, value: str, field: str, found: list[dict[str, Any]]) -> str:
        findings = [f for d in self.detectors for f in d.detect(value)]
        if not findings:
            return value
        result = apply_operators(value, findings, self.policy.operators, self.key, default="keep")
        for applied in result.applied:
            found.append(
                {"field": field, "entity_type": applied.entity_type, "start": applied.start,
                 "end": applied.end, "operator": applied.operator, "detector": applied.detector,
                 "score": applied.score}
            )  # fmt: skip
        return result.text

    def __call__(self, row: GenerationRow) -> None:
        """Anonymize ``row`` in place (its text fields), recording findings and originals."""
        found: list[dict[str, Any]] = []
        originals: dict[str, Any] = {}
        for name in ("input_text", "output"):
            value = getattr(row, name)
            if value:
                new = self.text(value, name, found)
                if new != value:
                    originals[name] = value
                    setattr(row, name, new)
        if row.input_messages:
            changed = False
            messages = []
            for i, message in enumerate(row.input_messages):
                content = message.get("content")
                if isinstance(content, str) and content:
                    new = self.text(content, f"input_messages[{i}]", found)
                    if new != content:
                        changed = True
                        message = {**message, "content": new}
                messages.append(message)
            if changed:
                originals["input_messages"] = row.input_messages
                row.input_messages = messages
        row.pii_policy_version = self.policy.version
        row.pii_findings = found
        row.vault_originals = originals if (self.policy.vault and originals) else None


def ingest_anonymizer(project: Project) -> Callable[[GenerationRow], None] | None:
    """What the write paths call on every row, or None when the policy is export-only."""
    from . import policy as policies

    live = policies.current(project)
    if not live.at_ingest:
        return None
    return Anonymizer(project, live, project.lake.master_key())


def finding_rows(project_id: uuid.UUID, row: GenerationRow) -> list[tuple]:
    """``pii_findings`` rows of an anonymized generation; ids derived, so retries are no-ops."""
    return [
        (project_id, stable_id(row.id, f["field"], f["start"], f["entity_type"]), row.id,
         f["field"], f["entity_type"], f["start"], f["end"], f["operator"],
         row.pii_policy_version, f["detector"], f["score"])
        for f in row.pii_findings
    ]  # fmt: skip


def vault_row(project_id: uuid.UUID, row: GenerationRow, master: bytes) -> tuple | None:
    if not row.vault_originals:
        return None
    key_id, nonce, sealed = vault.seal(master, project_id, row.id, row.vault_originals)
    return (project_id, row.id, key_id, nonce, sealed)


INSERT_FINDINGS = (
    "INSERT INTO pii_findings (project_id, id, generation_id, field, entity_type, start_offset,"
    " end_offset, operator, policy_version, detector, score)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
INSERT_VAULT = (
    "INSERT INTO vault (project_id, generation_id, key_id, nonce, ciphertext)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def store_side_rows(conn: Any, project: Project, rows: list[GenerationRow]) -> None:
    """Findings and vault entries of rows just written (same transaction)."""
    rows = [row for row in rows if row.pii_findings]
    findings = [f for row in rows for f in finding_rows(project.id, row)]
    if findings:
        with conn.cursor() as cur:
            cur.executemany(INSERT_FINDINGS, findings)
    sealed = [(project.id, row.id, *row.vault_sealed) for row in rows if row.vault_sealed]
    to_seal = [row for row in rows if row.vault_originals and not row.vault_sealed]
    if to_seal:
        master = project.lake.master_key()
        sealed += [vault_row(project.id, row, master) for row in to_seal]
    if sealed:
        with conn.cursor() as cur:
            cur.executemany(INSERT_VAULT, sealed)


@dataclass
class AnonymizeReport:
    policy_version: int
    rows: int = 0
    changed: int = 0
    findings: int = 0


def anonymize_stored(
    project: Project,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> AnonymizeReport:
    """Apply the live policy to stored generations not yet under it (admins only).

    Each batch is one transaction; rows done carry the policy version, so a second run
    (or a run after an interruption) continues with what is left and changes nothing
    already done."""
    from ..access import require_member, write_audit
    from . import policy as policies

    require_member(project, ("admin",))
    live = policies.current(project)
    anonymizer = Anonymizer(project, live, project.lake.master_key())
    report = AnonymizeReport(live.version)
    with project.lake._transaction(project) as conn:
        (total,) = conn.execute(
            "SELECT count(*) FROM generations WHERE project_id = %s"
            " AND pii_policy_version IS DISTINCT FROM %s",
            (project.id, live.version),
        ).fetchone()
    after = uuid.UUID(int=0)
    while True:
        with project.lake._transaction(project) as conn:
            batch = conn.execute(
                "SELECT id, input_text, input_messages, output FROM generations"
                " WHERE project_id = %s AND pii_policy_version IS DISTINCT FROM %s AND id > %s"
                " ORDER BY id LIMIT %s FOR UPDATE",
                (project.id, live.version, after, batch_size),
            ).fetchall()
            if not batch:
                break
            done = [_anonymize_stored_row(anonymizer, *values) for values in batch]
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE generations SET input_text = %s, input_messages = %s, output = %s,"
                    " input_hash = %s, output_hash = %s, content_hash = %s,"
                    " pii_policy_version = %s WHERE project_id = %s AND id = %s",
                    [(r.input_text, None if r.input_messages is None else Jsonb(r.input_messages),
                      r.output, r.input_hash, r.output_hash, r.content_hash, live.version,
                      project.id, r.id) for r in done],
                )  # fmt: skip
            store_side_rows(conn, project, done)
            report.rows += len(done)
            report.changed += sum(1 for r in done if r.pii_findings)
            report.findings += sum(len(r.pii_findings) for r in done)
            after = batch[-1][0]
            if report.rows == len(done):
                write_audit(conn, project, "anonymize", f"policy version {live.version}",
                            {"pending": total})  # fmt: skip
        if progress is not None:
            progress(report.rows, total)
    return report


def _anonymize_stored_row(anonymizer: Anonymizer, gid, text, messages, output) -> GenerationRow:
    row = GenerationRow(
        id=gid, session_id=None, parent_id=None, seq=None, prompt_version_id=None, model=None,
        run_id=None, name=None, input_messages=messages, input_text=text, output=output,
        params={}, prompt_tokens=None, completion_tokens=None, cost_usd=None, latency_ms=None,
        status="ok", error=None, origin="real", generator=None, lineage={}, input_hash=b"",
        output_hash=b"", content_hash=b"", tags=[], metadata={}, created_at=None,  # type: ignore[arg-type]
    )  # fmt: skip
    anonymizer(row)
    row.input_hash, row.output_hash, row.content_hash = content_hashes(
        row.input_text, row.input_messages, row.output
    )
    return row


def reveal(project: Project, generation_id: uuid.UUID) -> dict[str, Any]:
    """The original fields of a generation from the vault (admins only; audited)."""
    from ..access import require_member, write_audit
    from ..errors import NotFoundError

    require_member(project, ("admin",))
    with project.lake._transaction(project) as conn:
        row = conn.execute(
            "SELECT key_id, nonce, ciphertext FROM vault WHERE project_id = %s"
            " AND generation_id = %s",
            (project.id, generation_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"the vault holds nothing for {generation_id} in {project.name!r}")
        write_audit(conn, project, "reveal", str(generation_id), {})
    master = project.lake.master_key()
    return vault.open_sealed(master, project.id, generation_id, *row)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
