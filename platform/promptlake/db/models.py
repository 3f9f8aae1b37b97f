"""Schema v1: the tables every other layer builds on.

Every project-scoped table carries ``project_id`` and every primary key, unique constraint
and foreign key between project-scoped tables includes it. That makes row-level security
a single predicate per table, makes a reference to another project's row impossible at the
database level, and leaves ``project_id`` as the distribution column should the schema move
to Citus.

Identifiers are UUIDs chosen by the client (time-ordered, see ``ids.py``), so a retried
write carries the same key and ``ON CONFLICT DO NOTHING`` makes it idempotent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    CheckConstraint,
    Computed,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TEXT, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

NOW = text("now()")
EMPTY_JSON = text("'{}'::jsonb")
EMPTY_TAGS = text("'{}'::text[]")

ORIGINS = ("real", "synthetic")
GENERATION_STATUSES = ("ok", "error")
SCORE_SOURCES = ("human", "model", "heuristic", "user")
SCORE_TYPES = ("numeric", "categorical", "boolean")
ATTACHMENT_KINDS = ("image", "audio", "video", "file")
RUN_STATUSES = ("running", "finished", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _project_fk(
    columns: list[str], table: str, ondelete: str | None = None
) -> ForeignKeyConstraint:
    """A foreign key to another project-scoped table, always through ``project_id``."""
    return ForeignKeyConstraint(
        ["project_id", *columns],
        [f"{table}.project_id", f"{table}.id"],
        ondelete=ondelete,
    )


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("owner", "name"),
        CheckConstraint("length(name) BETWEEN 1 AND 200", name="name_length"),
        {"comment": "A tenant: every other table is scoped to one project."},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(comment="Human-chosen name, unique per owner.")
    description: Mapped[str | None]
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    owner: Mapped[str] = mapped_column(comment="The principal that created it.")


class PrincipalLogin(Base):
    __tablename__ = "principal_logins"
    __table_args__ = (
        UniqueConstraint("rolname"),
        {"comment": "Which database login runs a principal's own SQL (read by the policies)."},
    )

    principal: Mapped[str] = mapped_column(primary_key=True)
    rolname: Mapped[str] = mapped_column(comment="The login role that acts as it.")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class LakeKey(Base):
    __tablename__ = "lake_keys"
    __table_args__ = ({"comment": "Fingerprints of the keys this store was written with."},)

    purpose: Mapped[str] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(comment="Fingerprint, never the key.")
    registered_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index(None, "project_id", "end_user_id"),
        {"comment": "A conversation: the generations that share it form its history."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    end_user_id: Mapped[str | None] = mapped_column(comment="The application's id of the user.")
    name: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    tags: Mapped[list[str]] = mapped_column(ARRAY(TEXT), server_default=EMPTY_TAGS)
    started_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    ended_at: Mapped[dt.datetime | None]
    next_seq: Mapped[int] = mapped_column(
        Integer,
        server_default=text("0"),
        comment="The next free position (generations.seq) in this session.",
    )


class PromptTemplate(Base):
    __tablename__ = "prompt_templates"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "name"),
        {"comment": "A named prompt whose text is versioned in prompt_versions."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    description: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class PromptVersion(Base):
    __tablename__ = "prompt_versions"
    __table_args__ = (
        _project_fk(["template_id"], "prompt_templates", ondelete="CASCADE"),
        UniqueConstraint("project_id", "template_id", "version"),
        UniqueConstraint("project_id", "template_id", "text_hash"),
        CheckConstraint("version >= 1", name="version_positive"),
        {"comment": "One immutable text of a prompt template; version counts from 1."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    template_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(comment="Template text with {placeholders}.")
    variables: Mapped[list[str]] = mapped_column(ARRAY(TEXT), server_default=EMPTY_TAGS)
    text_hash: Mapped[bytes] = mapped_column(LargeBinary, comment="sha256 of the template text.")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class PromptLabel(Base):
    __tablename__ = "prompt_labels"
    __table_args__ = (
        _project_fk(["template_id"], "prompt_templates", ondelete="CASCADE"),
        _project_fk(["version_id"], "prompt_versions", ondelete="CASCADE"),
        {"comment": "A movable label (such as production) naming one version of a template."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    template_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(primary_key=True)
    version_id: Mapped[uuid.UUID]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "name"),
        {"comment": "A model that produced generations: by name, with optional provenance."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(comment="Model name as the application calls it.")
    provider: Mapped[str | None]
    version: Mapped[str | None]
    uri: Mapped[str | None] = mapped_column(comment="MLflow model URI or external weights.")
    weights: Mapped[bytes | None] = mapped_column(LargeBinary)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        _project_fk(["model_id"], "models"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        {"comment": "A batch job or evaluation; generations logged inside it carry run_id."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    model_id: Mapped[uuid.UUID | None]
    params: Mapped[dict[str, Any]] = mapped_column(server_default=EMPTY_JSON)
    status: Mapped[str] = mapped_column(server_default=text("'running'"))
    mlflow_run_id: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    started_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    ended_at: Mapped[dt.datetime | None]


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        _project_fk(["session_id"], "sessions", ondelete="CASCADE"),
        _project_fk(["parent_id"], "generations"),
        _project_fk(["prompt_version_id"], "prompt_versions"),
        _project_fk(["model_id"], "models"),
        _project_fk(["run_id"], "runs"),
        CheckConstraint(_in("origin", ORIGINS), name="origin"),
        CheckConstraint("origin = 'real' OR generator IS NOT NULL", name="synthetic_lineage"),
        CheckConstraint(_in("status", GENERATION_STATUSES), name="status"),
        CheckConstraint("input_text IS NOT NULL OR input_messages IS NOT NULL", name="has_input"),
        CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0", name="tokens_non_negative"
        ),
        CheckConstraint(
            "cost_usd >= 0 AND cost_usd < 'Infinity'::numeric", name="cost_non_negative"
        ),
        CheckConstraint(
            "latency_ms >= 0 AND latency_ms < 'Infinity'::float8", name="latency_non_negative"
        ),
        CheckConstraint("seq >= 0", name="seq_non_negative"),
        Index(None, "project_id", "created_at"),
        # migration 0009: one turn per position of a session, whatever the writers
        Index(
            "uq_generations_project_id_session_id_seq",
            "project_id",
            "session_id",
            "seq",
            unique=True,
        ),
        Index(None, "project_id", "parent_id"),
        Index(None, "project_id", "model_id", "created_at"),
        Index(None, "project_id", "content_hash"),
        Index(None, "project_id", "run_id", postgresql_where=text("run_id IS NOT NULL")),
        {"comment": "One model call: its input, output, parameters, usage and provenance."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, comment="Client-chosen UUID.")
    session_id: Mapped[uuid.UUID | None]
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="The previous generation of the chain (prompt chain / conversation turn)."
    )
    seq: Mapped[int | None] = mapped_column(Integer, comment="Position in the session, from 0.")
    prompt_version_id: Mapped[uuid.UUID | None]
    model_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None]
    name: Mapped[str | None] = mapped_column(comment="What was called (function or step name).")
    input_messages: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSONB,
        comment="Chat messages sent to the model, as a JSON array of {role, content}.",
    )
    input_text: Mapped[str | None] = mapped_column(comment="Plain-text prompt sent to the model.")
    output: Mapped[str | None] = mapped_column(comment="Text the model returned.")
    params: Mapped[dict[str, Any]] = mapped_column(
        server_default=EMPTY_JSON, comment="Sampling parameters (temperature, top_p, ...)."
    )
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(
        Integer, Computed("prompt_tokens + completion_tokens", persisted=True)
    )
    cost_usd: Mapped[float | None] = mapped_column(Numeric(18, 8))
    latency_ms: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str] = mapped_column(server_default=text("'ok'"))
    error: Mapped[str | None]
    origin: Mapped[str] = mapped_column(
        server_default=text("'real'"), comment="real (from users) or synthetic (generated data)."
    )
    generator: Mapped[str | None] = mapped_column(
        comment="For synthetic rows: the model or pipeline that generated the data."
    )
    lineage: Mapped[dict[str, Any]] = mapped_column(
        server_default=EMPTY_JSON,
        comment="Provenance of synthetic data: seed generation ids, method, pipeline version.",
    )
    input_hash: Mapped[bytes] = mapped_column(LargeBinary)
    output_hash: Mapped[bytes] = mapped_column(LargeBinary)
    content_hash: Mapped[bytes] = mapped_column(
        LargeBinary, comment="sha256 over normalized input and output (see hash_version)."
    )
    hash_version: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(TEXT), server_default=EMPTY_TAGS)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(
        server_default=NOW, comment="When the call happened."
    )
    pii_policy_version: Mapped[int | None] = mapped_column(
        Integer, comment="Version of the PII policy applied to the text (NULL: none yet)."
    )
    ingested_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint(_in("source", SCORE_SOURCES), name="source"),
        CheckConstraint(_in("data_type", SCORE_TYPES), name="data_type"),
        CheckConstraint(
            "(data_type = 'numeric' AND value_numeric IS NOT NULL"
            " AND value_numeric > '-Infinity'::float8 AND value_numeric < 'Infinity'::float8)"
            " OR (data_type = 'categorical' AND value_text IS NOT NULL)"
            " OR (data_type = 'boolean' AND value_bool IS NOT NULL)",
            name="value_matches_type",
        ),
        Index(None, "project_id", "generation_id"),
        Index(None, "project_id", "name", "created_at"),
        {"comment": "A quality score or feedback on one generation."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(comment="What was scored: helpfulness, correct, ...")
    data_type: Mapped[str]
    value_numeric: Mapped[float | None] = mapped_column(Double)
    value_text: Mapped[str | None]
    value_bool: Mapped[bool | None]
    source: Mapped[str] = mapped_column(comment="human, model, heuristic or user.")
    author: Mapped[str | None]
    comment: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint(_in("kind", ATTACHMENT_KINDS), name="kind"),
        CheckConstraint("data IS NOT NULL OR uri IS NOT NULL", name="data_or_uri"),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
        Index(None, "project_id", "generation_id"),
        {"comment": "An image, audio clip or file sent to or returned by a model."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID]
    kind: Mapped[str]
    mime_type: Mapped[str]
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary)
    size_bytes: Mapped[int | None]
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    uri: Mapped[str | None]
    role: Mapped[str | None] = mapped_column(comment="input or output side of the call.")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


# -- privacy and access (migration 0002) ------------------------------------------------

MEMBER_ROLES = ("admin", "writer", "analyst", "viewer")
AUDIT_ACTIONS = (
    "reveal", "export", "erase", "grant", "revoke", "policy", "anonymize", "create_project",
    "entities",
)  # fmt: skip
PII_FIELDS = ("input_text", "input_messages", "output")


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        CheckConstraint(_in("role", MEMBER_ROLES), name="role"),
        Index(None, "principal"),
        {"comment": "Who may do what in a project: the data row-level security reads."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(
        primary_key=True, comment="A database login role, or a principal the application names."
    )
    role: Mapped[str] = mapped_column(comment="admin, writer, analyst or viewer.")
    granted_by: Mapped[str | None]
    granted_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        CheckConstraint(_in("action", AUDIT_ACTIONS), name="action"),
        Index(None, "project_id", "at"),
        {"comment": "Append-only record of reveals, exports, erasures, grants, policy changes."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    principal: Mapped[str] = mapped_column(comment="Who did it.")
    action: Mapped[str]
    target: Mapped[str | None] = mapped_column(comment="What it was done to.")
    details: Mapped[dict[str, Any]] = mapped_column(server_default=EMPTY_JSON)


class PiiPolicy(Base):
    __tablename__ = "pii_policies"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(_in("apply_at", ("ingest", "export")), name="apply_at"),
        {"comment": "Versioned anonymization policy of a project; the highest version is live."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    operators: Mapped[dict[str, Any]] = mapped_column(
        comment="Entity type -> operator (redact, mask, pseudonymize, drop)."
    )
    apply_at: Mapped[str] = mapped_column(comment="ingest (before storing) or export only.")
    vault: Mapped[bool] = mapped_column(comment="Keep the original text, encrypted.")
    detectors: Mapped[list[str]] = mapped_column(ARRAY(TEXT), server_default=text("'{pattern}'"))
    created_by: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class PiiFinding(Base):
    __tablename__ = "pii_findings"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint("start_offset >= 0 AND end_offset > start_offset", name="span"),
        Index(None, "project_id", "generation_id"),
        Index(None, "project_id", "entity_type"),
        {"comment": "Where PII was found and what was done to it; never the value itself."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID]
    field: Mapped[str] = mapped_column(comment="input_text, output, or input_messages[i].")
    entity_type: Mapped[str]
    start_offset: Mapped[int] = mapped_column(Integer, comment="Span in the original text.")
    end_offset: Mapped[int] = mapped_column(Integer)
    operator: Mapped[str]
    policy_version: Mapped[int] = mapped_column(Integer)
    detector: Mapped[str]
    score: Mapped[float] = mapped_column(Double)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class VaultEntry(Base):
    __tablename__ = "vault"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        {"comment": "Original text before anonymization, AES-GCM encrypted; admins only."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(comment="Fingerprint of the key that encrypted it.")
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(
        LargeBinary, comment="JSON of the original fields, encrypted."
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class ErasureTombstone(Base):
    __tablename__ = "erasure_tombstones"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        {"comment": "Keyed hashes of erased end users, so replayed imports stay erased."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    erased_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


# -- deduplication (migration 0003) ----------------------------------------------------

DEDUP_METHODS = ("exact", "minhash", "semantic")
DEDUP_FIELDS = ("content", "input", "output")


class DedupIndex(Base):
    __tablename__ = "dedup_indexes"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "key"),
        CheckConstraint(_in("method", DEDUP_METHODS), name="method"),
        CheckConstraint(_in("field", DEDUP_FIELDS), name="field"),
        CheckConstraint("threshold > 0 AND threshold <= 1", name="threshold"),
        {"comment": "One deduplication setup of a project: method, field, threshold and scope."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(comment="Every setting that makes two runs the same index.")
    method: Mapped[str] = mapped_column(comment="exact, minhash or semantic.")
    field: Mapped[str] = mapped_column(comment="What is compared: content, input or output.")
    threshold: Mapped[float] = mapped_column(
        Double, comment="Least similarity of a duplicate (Jaccard, cosine; 1 for exact)."
    )
    within_origin: Mapped[bool] = mapped_column(
        comment="Real and synthetic rows are never duplicates of each other."
    )
    params: Mapped[dict[str, Any]] = mapped_column(server_default=EMPTY_JSON)
    last_run: Mapped[dict[str, Any]] = mapped_column(
        server_default=EMPTY_JSON, comment="Figures of the latest run."
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class DedupCluster(Base):
    __tablename__ = "dedup_clusters"
    __table_args__ = (
        _project_fk(["index_id"], "dedup_indexes", ondelete="CASCADE"),
        _project_fk(["id"], "generations", ondelete="CASCADE"),
        CheckConstraint("size >= 2", name="size"),
        {"comment": "A group of duplicates; its id is its representative generation."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    index_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        comment="The representative: the cluster's earliest generation (created_at, then id).",
    )
    size: Mapped[int] = mapped_column(Integer, comment="Generations in the cluster.")
    min_similarity: Mapped[float] = mapped_column(
        Double, comment="Lowest similarity of a member to the representative."
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class DedupMember(Base):
    __tablename__ = "dedup_members"
    __table_args__ = (
        _project_fk(["index_id"], "dedup_indexes", ondelete="CASCADE"),
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        Index(None, "project_id", "index_id", "cluster_id"),
        {"comment": "Every generation a dedup index has checked, and its cluster if any."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    index_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    cluster_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="The cluster's representative; NULL: no duplicate found. Keep rows where"
        " cluster_id IS NULL OR cluster_id = generation_id to drop duplicates."
    )
    similarity: Mapped[float | None] = mapped_column(
        Double, comment="Similarity to the representative (1 for exact copies)."
    )
    source_hash: Mapped[bytes] = mapped_column(
        LargeBinary, comment="Hash of the compared text when checked: a change makes it stale."
    )
    checked_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class DedupSignature(Base):
    __tablename__ = "dedup_signatures"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        {"comment": "MinHash signatures, kept so new rows are compared without recomputing."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    scheme: Mapped[str] = mapped_column(
        primary_key=True, comment="Field, shingling, permutations and seed of the signature."
    )
    source_hash: Mapped[bytes] = mapped_column(
        LargeBinary, comment="Hash of the text the signature was computed from."
    )
    set_hash: Mapped[int] = mapped_column(
        comment="Hash of the shingle set (equal sets, equal hash)."
    )
    shingles: Mapped[int] = mapped_column(Integer, comment="Distinct shingles (0: no words).")
    signature: Mapped[bytes] = mapped_column(
        LargeBinary, comment="datasketch MinHash values (affine32), little-endian uint32."
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class GenerationEmbedding(Base):
    __tablename__ = "generation_embeddings"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint("vector_dims(vector) = dimension", name="dimension"),
        Index(None, "project_id", "embedder"),
        {"comment": "Embeddings of generations, one per embedder; HNSW indexes per embedder."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    embedder: Mapped[str] = mapped_column(
        primary_key=True, comment="The model (and version) that made the vector."
    )
    dimension: Mapped[int] = mapped_column(Integer)
    vector: Mapped[Any] = mapped_column(Vector(), comment="float4 vector of `dimension` values.")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class GenerationSearch(Base):
    __tablename__ = "generation_search"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        Index(None, "tsv", postgresql_using="gin"),
        {"comment": "Full-text vectors of generations, filled in batches off the logging path."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(
        comment="Text search configuration the tsvector was made with (e.g. english)."
    )
    tsv: Mapped[Any] = mapped_column(TSVECTOR, comment="to_tsvector(language, prompt || output).")
    source_hash: Mapped[bytes] = mapped_column(
        LargeBinary,
        comment="content_hash of the generation when indexed: a change makes it stale.",
    )
    indexed_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        CheckConstraint("format IN ('text', 'markdown', 'jsonl')", name="format"),
        {"comment": "RAG corpus documents."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, comment="Derived from the content: re-adding is a no-op."
    )
    source: Mapped[str | None] = mapped_column(comment="File path or caller's name.")
    title: Mapped[str | None]
    format: Mapped[str] = mapped_column(comment="text, markdown or jsonl.")
    content: Mapped[str]
    content_hash: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=EMPTY_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class DocumentChunk(Base):
    __tablename__ = "document_chunks"
    __table_args__ = (
        _project_fk(["document_id"], "documents", ondelete="CASCADE"),
        UniqueConstraint("project_id", "document_id", "seq"),
        {"comment": "Chunks of corpus documents with their embeddings (see search/corpus.py)."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    document_id: Mapped[uuid.UUID]
    seq: Mapped[int] = mapped_column(Integer, comment="Position in the document, from 0.")
    text: Mapped[str]
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str]
    vector: Mapped[Any] = mapped_column(Vector())


class GenerationRetrieval(Base):
    __tablename__ = "generation_retrievals"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        _project_fk(["chunk_id"], "document_chunks", ondelete="CASCADE"),
        Index(None, "project_id", "chunk_id"),
        {"comment": "Grounding: which chunks (rank, score) each generation was given."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chunk_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, comment="1 = first chunk given.")
    score: Mapped[float | None] = mapped_column(Double, comment="Retrieval similarity.")


DATASET_SPLITS = ("train", "validation", "test")


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        _project_fk(["run_id"], "runs"),
        UniqueConstraint("project_id", "name", "md5"),
        CheckConstraint("row_count >= 0", name="row_count"),
        {"comment": "A dataset cut from the store by the DVC pipeline (see datasets/)."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(comment="Dataset name from params.yaml.")
    filter: Mapped[dict[str, Any]] = mapped_column(comment="The export filter (params).")
    params: Mapped[dict[str, Any]] = mapped_column(
        server_default=EMPTY_JSON, comment="Dedup, anonymize and split parameters."
    )
    row_count: Mapped[int] = mapped_column(Integer)
    split_counts: Mapped[dict[str, Any]] = mapped_column(server_default=EMPTY_JSON)
    path: Mapped[str] = mapped_column(comment="DVC output path of the splits.")
    md5: Mapped[str] = mapped_column(comment="DVC md5 of the splits, from dvc.lock.")
    git_rev: Mapped[str | None] = mapped_column(comment="Git commit of the pipeline.")
    run_id: Mapped[uuid.UUID | None] = mapped_column(comment="Run that recorded the cut.")
    mlflow_run_id: Mapped[str | None]
    created_by: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class DatasetItem(Base):
    __tablename__ = "dataset_items"
    __table_args__ = (
        _project_fk(["dataset_version_id"], "dataset_versions", ondelete="CASCADE"),
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint(_in("split", DATASET_SPLITS), name="split"),
        Index(None, "project_id", "generation_id"),
        {"comment": "Which generation is in which split of a dataset version."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_version_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    split: Mapped[str] = mapped_column(comment="train, validation or test.")


class RunDataset(Base):
    __tablename__ = "run_datasets"
    __table_args__ = (
        _project_fk(["run_id"], "runs", ondelete="CASCADE"),
        _project_fk(["dataset_version_id"], "dataset_versions", ondelete="CASCADE"),
        Index(None, "project_id", "dataset_version_id"),
        {"comment": "Dataset versions a run used (MLflow inputs), with the context."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_version_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    context: Mapped[str] = mapped_column(comment="training, evaluation, ...")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


EXPERIMENT_ITEM_STATUSES = ("ok", "error")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        _project_fk(["dataset_version_id"], "dataset_versions", ondelete="CASCADE"),
        _project_fk(["run_id"], "runs"),
        _project_fk(["model_id"], "models"),
        _project_fk(["prompt_version_id"], "prompt_versions"),
        UniqueConstraint("project_id", "name"),
        CheckConstraint(f"split IS NULL OR {_in('split', DATASET_SPLITS)}", name="split"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        {"comment": "A task run over a dataset version and scored (see experiments/)."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(comment="Unique per project; rerunning it resumes.")
    dataset_version_id: Mapped[uuid.UUID]
    split: Mapped[str | None] = mapped_column(comment="The split it ran on; NULL: all of them.")
    run_id: Mapped[uuid.UUID | None] = mapped_column(comment="The run its generations carry.")
    model_id: Mapped[uuid.UUID | None]
    prompt_version_id: Mapped[uuid.UUID | None]
    task: Mapped[str | None] = mapped_column(comment="The task, as module:function or repr.")
    params: Mapped[dict[str, Any]] = mapped_column(
        server_default=EMPTY_JSON, comment="Scorers, concurrency, retries, user params."
    )
    status: Mapped[str] = mapped_column(server_default=text("'running'"))
    created_by: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class ExperimentItem(Base):
    __tablename__ = "experiment_items"
    __table_args__ = (
        _project_fk(["experiment_id"], "experiments", ondelete="CASCADE"),
        _project_fk(["item_id"], "generations", ondelete="CASCADE"),
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        CheckConstraint(_in("status", EXPERIMENT_ITEM_STATUSES), name="status"),
        Index(None, "project_id", "generation_id"),
        {"comment": "An experiment's dataset item: the task's generation, or its error."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    experiment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, comment="The dataset's generation (input and reference output)."
    )
    generation_id: Mapped[uuid.UUID | None] = mapped_column(comment="What the task produced.")
    status: Mapped[str] = mapped_column(comment="ok, or error (the task raised every attempt).")
    error: Mapped[str | None] = mapped_column(comment="The task's last error.")
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    latency_ms: Mapped[float | None] = mapped_column(Double, comment="The task's wall time.")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=EMPTY_JSON, comment="Scorer errors and such."
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


API_KEY_ROLES = ("admin", "writer", "analyst", "viewer")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "prefix"),
        Index(None, "key_hash"),  # authentication looks a key up by hash alone
        CheckConstraint(_in("role", API_KEY_ROLES), name="role"),
        CheckConstraint("rate_per_second IS NULL OR rate_per_second > 0", name="rate"),
        {"comment": "API keys of promptlake serve: sha256 of the key, never the key."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(comment="First characters of the key, to tell keys apart.")
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, comment="sha256 of the whole key.")
    principal: Mapped[str] = mapped_column(comment="Who requests with this key act as.")
    role: Mapped[str] = mapped_column(comment="admin, writer, analyst or viewer.")
    name: Mapped[str | None] = mapped_column(comment="What the key is for.")
    rate_per_second: Mapped[float | None] = mapped_column(
        Double, comment="Requests per second (token bucket); NULL: the server's default."
    )
    created_by: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    revoked_at: Mapped[dt.datetime | None]


ENTITY_KINDS = ("url", "domain", "email", "package", "code", "product", "model", "name",
                "person", "org", "place")  # fmt: skip
ENTITY_SOURCES = ("extracted", "manual")


class Entity(Base):
    __tablename__ = "entities"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "kind", "key"),
        CheckConstraint(_in("kind", ENTITY_KINDS), name="kind"),
        CheckConstraint(_in("source", ENTITY_SOURCES), name="source"),
        {"comment": "Who and what generated content talks about (see graph/)."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(comment="url, domain, email, package, ...")
    name: Mapped[str] = mapped_column(comment="Canonical name.")
    key: Mapped[str] = mapped_column(comment="Normalized name: what resolution matches.")
    aliases: Mapped[list[str]] = mapped_column(
        ARRAY(TEXT),
        server_default=EMPTY_TAGS,
        comment="Other surface forms merged into this entity.",
    )
    source: Mapped[str] = mapped_column(
        server_default=text("'extracted'"),
        comment="extracted, or manual (renamed or merged by hand: kept when unmentioned).",
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class EntityMention(Base):
    __tablename__ = "entity_mentions"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        _project_fk(["entity_id"], "entities", ondelete="CASCADE"),
        CheckConstraint("field IN ('input', 'output')", name="field"),
        CheckConstraint("start_offset >= 0 AND end_offset > start_offset", name="span"),
        Index(None, "project_id", "entity_id"),
        {"comment": "Where an entity is mentioned: generation, field and span."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    field: Mapped[str] = mapped_column(primary_key=True, comment="input or output.")
    start_offset: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_offset: Mapped[int] = mapped_column(Integer)
    sentence: Mapped[int] = mapped_column(
        Integer,
        comment="Index of the sentence (or line) in the field: relations are per sentence.",
    )
    extractor: Mapped[str] = mapped_column(primary_key=True, comment="builtin or spacy.")
    entity_id: Mapped[uuid.UUID]
    surface: Mapped[str] = mapped_column(comment="The text as it appears.")
    confidence: Mapped[float] = mapped_column(Double)
    extractor_version: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class EntityExtraction(Base):
    __tablename__ = "entity_extractions"
    __table_args__ = (
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        {"comment": "Which generations each extractor has read (incremental extraction)."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    extractor: Mapped[str] = mapped_column(primary_key=True)
    extractor_version: Mapped[str]
    source_hash: Mapped[bytes] = mapped_column(
        LargeBinary, comment="content_hash of the generation when read: a change makes it stale."
    )
    mentions: Mapped[int] = mapped_column(Integer)
    extracted_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class EntityRelation(Base):
    __tablename__ = "entity_relations"
    __table_args__ = (
        _project_fk(["subject_id"], "entities", ondelete="CASCADE"),
        _project_fk(["object_id"], "entities", ondelete="CASCADE"),
        UniqueConstraint("project_id", "subject_id", "predicate", "object_id"),
        CheckConstraint("subject_id <> object_id", name="not_self"),
        CheckConstraint(_in("source", ENTITY_SOURCES), name="source"),
        Index(None, "project_id", "object_id"),
        {"comment": "Edges of the entity graph: subject, predicate, object."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID]
    predicate: Mapped[str] = mapped_column(comment="e.g. mentioned_with (same sentence).")
    object_id: Mapped[uuid.UUID]
    source: Mapped[str] = mapped_column(server_default=text("'extracted'"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)


class RelationSupport(Base):
    __tablename__ = "relation_support"
    __table_args__ = (
        _project_fk(["relation_id"], "entity_relations", ondelete="CASCADE"),
        _project_fk(["generation_id"], "generations", ondelete="CASCADE"),
        Index(None, "project_id", "generation_id"),
        {"comment": "The generations that support each relation."},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    relation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
