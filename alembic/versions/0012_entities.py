"""The entity graph: ``entities``, ``entity_mentions``, ``entity_extractions`` (which
generation each extractor has read, by source hash: what makes extraction incremental),
``entity_relations`` with the generations that support each (``relation_support``),
and the ``entity_cooccurrence`` and ``entity_mentions_daily`` views.

Every key starts with ``project_id`` (the row-level security and Citus distribution key);
mentions, extraction records and relation support hang off their generation with
``ON DELETE CASCADE``, so erasure and retention take them along. Forced row-level security
in the form of 0008: admins extract and correct, analysts read; views are
``security_invoker``. The graph is queried with recursive CTEs (see ``graph/query.py``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("entities", "entity_mentions", "entity_extractions", "entity_relations",
          "relation_support")  # fmt: skip
VIEWS = ("entity_cooccurrence", "entity_mentions_daily")
AUDIT_BEFORE = ("reveal", "export", "erase", "grant", "revoke", "policy", "anonymize",
                "create_project")  # fmt: skip
AUDIT_AFTER = (*AUDIT_BEFORE, "entities")  # hand corrections of the graph are audited
KINDS = ("url", "domain", "email", "package", "code", "product", "model", "name", "person",
         "org", "place")  # fmt: skip

COOCCURRENCE_VIEW = """
   SELECT a.project_id, a.entity_id AS entity_id, ea.kind AS kind, ea.name AS name,
          b.entity_id AS other_id, eb.kind AS other_kind, eb.name AS other_name,
          count(DISTINCT a.generation_id) AS generations
     FROM entity_mentions a
     JOIN entity_mentions b ON b.project_id = a.project_id
      AND b.generation_id = a.generation_id AND b.entity_id <> a.entity_id
     JOIN entities ea ON ea.project_id = a.project_id AND ea.id = a.entity_id
     JOIN entities eb ON eb.project_id = b.project_id AND eb.id = b.entity_id
    GROUP BY a.project_id, a.entity_id, ea.kind, ea.name, b.entity_id, eb.kind, eb.name"""

DAILY_VIEW = """
   SELECT m.project_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, m.entity_id,
          e.kind, e.name, count(*) AS mentions, count(DISTINCT m.generation_id) AS generations
     FROM entity_mentions m
     JOIN generations g ON g.project_id = m.project_id AND g.id = m.generation_id
     JOIN entities e ON e.project_id = m.project_id AND e.id = m.entity_id
    GROUP BY m.project_id, 2, m.entity_id, e.kind, e.name"""


def _check(roles: str) -> str:
    return f"project_id = ANY ((SELECT promptlake_projects('{{{roles}}}'::text[]))::uuid[])"


def _access_sql() -> list[str]:
    out = []
    for table in TABLES:
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        out.append(f"CREATE POLICY {table}_select ON {table} FOR SELECT"
                   f" USING ({_check('admin,analyst')})")  # fmt: skip
        out.append(f"CREATE POLICY {table}_insert ON {table} FOR INSERT"
                   f" WITH CHECK ({_check('admin')})")  # fmt: skip
        out.append(f"CREATE POLICY {table}_update ON {table} FOR UPDATE"
                   f" USING ({_check('admin')}) WITH CHECK ({_check('admin')})")  # fmt: skip
        out.append(f"CREATE POLICY {table}_delete ON {table} FOR DELETE"
                   f" USING ({_check('admin')})")  # fmt: skip
    out.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO promptlake_admin")
    out.append(f"GRANT SELECT ON {', '.join(TABLES)} TO promptlake_analyst")
    out.append(
        "CREATE VIEW entity_cooccurrence WITH (security_invoker = true) AS" + COOCCURRENCE_VIEW
    )
    out.append(
        "COMMENT ON VIEW entity_cooccurrence IS"
        " 'Pairs of entities mentioned in the same generation, both directions.'"
    )
    out.append("CREATE VIEW entity_mentions_daily WITH (security_invoker = true) AS" + DAILY_VIEW)
    out.append(
        "COMMENT ON VIEW entity_mentions_daily IS"
        " 'Mentions of each entity per day (UTC) of the generation.'"
    )
    out.append(f"GRANT SELECT ON {', '.join(VIEWS)} TO promptlake_admin, promptlake_analyst")
    out.append(ANALYZE_FN)
    out.append("REVOKE ALL ON FUNCTION promptlake_analyze_entities() FROM PUBLIC")
    out.append("GRANT EXECUTE ON FUNCTION promptlake_analyze_entities() TO promptlake_admin")
    return out


# statistics right after a bulk extraction: without them the planner walks the graph with
# sequential filters (seconds instead of milliseconds) until autovacuum comes by; admins
# of any project may ask (ANALYZE reads a sample and changes no rows)
ANALYZE_FN = """
CREATE FUNCTION promptlake_analyze_entities() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public, pg_temp AS $$
  BEGIN
    IF cardinality(public.promptlake_projects('{admin}'::text[])) = 0 THEN
      RAISE EXCEPTION 'only project admins refresh entity statistics' USING ERRCODE = '42501';
    END IF;
    ANALYZE public.entities, public.entity_mentions, public.entity_extractions,
            public.entity_relations, public.relation_support;
  END $$"""


def _audit_actions(actions: Sequence[str]) -> None:
    listed = ", ".join(f"'{a}'" for a in actions)
    op.execute("ALTER TABLE audit_log DROP CONSTRAINT ck_audit_log_action")
    op.execute(
        f"ALTER TABLE audit_log ADD CONSTRAINT ck_audit_log_action CHECK (action IN ({listed}))"
    )


def _fk_generation(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id", "generation_id"],
        ["generations.project_id", "generations.id"],
        name=op.f(f"fk_{table}_project_id_generation_id_generations"),
        ondelete="CASCADE",
    )


def _now() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    op.create_table(
        "entities",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, comment="url, domain, email, package, ..."),
        sa.Column("name", sa.Text(), nullable=False, comment="Canonical name."),
        sa.Column(
            "key", sa.Text(), nullable=False, comment="Normalized name: what resolution matches."
        ),
        sa.Column(
            "aliases",
            sa.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
            comment="Other surface forms merged into this entity.",
        ),
        sa.Column(
            "source",
            sa.Text(),
            server_default=sa.text("'extracted'"),
            nullable=False,
            comment="extracted, or manual (renamed or merged by hand: kept when unmentioned).",
        ),
        _now(),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_entities_kind")),
        sa.CheckConstraint("source IN ('extracted', 'manual')", name=op.f("ck_entities_source")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_entities_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_entities")),
        sa.UniqueConstraint(
            "project_id", "kind", "key", name=op.f("uq_entities_project_id_kind_key")
        ),
        comment="Who and what generated content talks about (see graph/).",
    )
    op.create_table(
        "entity_mentions",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False, comment="input or output."),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column(
            "sentence",
            sa.Integer(),
            nullable=False,
            comment="Index of the sentence (or line) in the field: relations are per sentence.",
        ),
        sa.Column("extractor", sa.Text(), nullable=False, comment="builtin or spacy."),
        sa.Column("entity_id", sa.UUID(), nullable=False),
        sa.Column("surface", sa.Text(), nullable=False, comment="The text as it appears."),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("extractor_version", sa.Text(), nullable=False),
        _now(),
        sa.CheckConstraint("field IN ('input', 'output')", name=op.f("ck_entity_mentions_field")),
        sa.CheckConstraint(
            "start_offset >= 0 AND end_offset > start_offset",
            name=op.f("ck_entity_mentions_span"),
        ),
        _fk_generation("entity_mentions"),
        sa.ForeignKeyConstraint(
            ["project_id", "entity_id"],
            ["entities.project_id", "entities.id"],
            name=op.f("fk_entity_mentions_project_id_entity_id_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id",
            "generation_id",
            "field",
            "start_offset",
            "extractor",
            name=op.f("pk_entity_mentions"),
        ),
        comment="Where an entity is mentioned: generation, field and span.",
    )
    op.create_index(
        op.f("ix_entity_mentions_project_id_entity_id"),
        "entity_mentions",
        ["project_id", "entity_id"],
        unique=False,
    )
    op.create_table(
        "entity_extractions",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.Column("extractor", sa.Text(), nullable=False),
        sa.Column("extractor_version", sa.Text(), nullable=False),
        sa.Column(
            "source_hash",
            sa.LargeBinary(),
            nullable=False,
            comment="content_hash of the generation when read: a change makes it stale.",
        ),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column(
            "extracted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        _fk_generation("entity_extractions"),
        sa.PrimaryKeyConstraint(
            "project_id", "generation_id", "extractor", name=op.f("pk_entity_extractions")
        ),
        comment="Which generations each extractor has read (incremental extraction).",
    )
    op.create_table(
        "entity_relations",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=False),
        sa.Column(
            "predicate", sa.Text(), nullable=False, comment="e.g. mentioned_with (same sentence)."
        ),
        sa.Column("object_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.Text(), server_default=sa.text("'extracted'"), nullable=False),
        _now(),
        sa.CheckConstraint("subject_id <> object_id", name=op.f("ck_entity_relations_not_self")),
        sa.CheckConstraint(
            "source IN ('extracted', 'manual')", name=op.f("ck_entity_relations_source")
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "subject_id"],
            ["entities.project_id", "entities.id"],
            name=op.f("fk_entity_relations_project_id_subject_id_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "object_id"],
            ["entities.project_id", "entities.id"],
            name=op.f("fk_entity_relations_project_id_object_id_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_entity_relations")),
        sa.UniqueConstraint(
            "project_id",
            "subject_id",
            "predicate",
            "object_id",
            name=op.f("uq_entity_relations_project_id_subject_id_predicate_object_id"),
        ),
        comment="Edges of the entity graph: subject, predicate, object.",
    )
    op.create_index(
        op.f("ix_entity_relations_project_id_object_id"),
        "entity_relations",
        ["project_id", "object_id"],
        unique=False,
    )
    op.create_table(
        "relation_support",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("relation_id", sa.UUID(), nullable=False),
        sa.Column("generation_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "relation_id"],
            ["entity_relations.project_id", "entity_relations.id"],
            name=op.f("fk_relation_support_project_id_relation_id_entity_relations"),
            ondelete="CASCADE",
        ),
        _fk_generation("relation_support"),
        sa.PrimaryKeyConstraint(
            "project_id", "relation_id", "generation_id", name=op.f("pk_relation_support")
        ),
        comment="The generations that support each relation.",
    )
    op.create_index(
        op.f("ix_relation_support_project_id_generation_id"),
        "relation_support",
        ["project_id", "generation_id"],
        unique=False,
    )
    for statement in _access_sql():
        op.execute(statement)
    _audit_actions(AUDIT_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM audit_log WHERE action = 'entities'")
    _audit_actions(AUDIT_BEFORE)
    op.execute("DROP FUNCTION promptlake_analyze_entities()")
    # dropping a table drops its policies, grants and indexes too
    for view in VIEWS:
        op.execute(f"DROP VIEW {view}")
    for table in reversed(TABLES):
        op.drop_table(table)
