"""Schema rules that later layers (row-level security, Citus) depend on."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from promptlake.db.models import Base

# the only tables without a tenant: the tenants, and two that no principal reads
GLOBAL_TABLES = {"projects", "principal_logins", "lake_keys"}
PROJECT_SCOPED = [t for t in Base.metadata.sorted_tables if t.name not in GLOBAL_TABLES]


@pytest.mark.parametrize("table", PROJECT_SCOPED, ids=lambda t: t.name)
def test_project_id_leads_every_key(table: sa.Table) -> None:
    assert "project_id" in table.c
    assert table.primary_key.columns.keys()[0] == "project_id"
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            assert "project_id" in constraint.columns, constraint.name
        if isinstance(constraint, sa.ForeignKeyConstraint):
            referred = constraint.referred_table.name
            assert "project_id" in constraint.columns, (table.name, referred)


UNNAMED_CONSTRAINTS = """
    SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'public' AND conname !~ '^(pk|fk|uq|ck)_'
       AND contype <> 'n' AND conrelid <> 'alembic_version'::regclass
"""
NAIVE_TIMESTAMPS = """
    SELECT table_name || '.' || column_name FROM information_schema.columns
     WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'
"""


def test_constraints_are_named_and_timestamps_have_time_zones(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            unnamed = conn.execute(sa.text(UNNAMED_CONSTRAINTS)).scalars().all()
            naive = conn.execute(sa.text(NAIVE_TIMESTAMPS)).scalars().all()
    finally:
        engine.dispose()
    assert unnamed == []
    assert naive == []


def _raw(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("latency_ms", "'NaN'::float8", "ck_generations_latency_non_negative"),
        ("latency_ms", "'Infinity'::float8", "ck_generations_latency_non_negative"),
        ("latency_ms", "-1", "ck_generations_latency_non_negative"),
        ("prompt_tokens", "-5", "ck_generations_tokens_non_negative"),
        ("cost_usd", "'NaN'::numeric", "ck_generations_cost_non_negative"),
        ("origin", "'imagined'", "ck_generations_origin"),
        ("origin", "'synthetic'", "ck_generations_synthetic_lineage"),
        ("status", "'maybe'", "ck_generations_status"),
    ],
)
def test_database_refuses_bad_values_even_past_the_api(
    project, database_url: str, column: str, value: str, constraint: str
) -> None:
    """The checks hold for anyone writing SQL directly, not only for the Python API."""
    with _raw(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation) as caught:
        conn.execute(
            "INSERT INTO generations (project_id, id, input_text, input_hash, output_hash,"
            f" content_hash, {column}) VALUES (%s, gen_random_uuid(), 'x', '', '', '', {value})",
            (project.id,),
        )
    assert caught.value.diag.constraint_name == constraint


def test_reference_to_another_projects_row_is_impossible(lake, database_url: str) -> None:
    first, second = lake.project("first"), lake.project("second")
    foreign = first.log(prompt="secret question", output="secret answer")
    with _raw(database_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO generations (project_id, id, parent_id, input_text, input_hash,"
            " output_hash, content_hash) VALUES (%s, gen_random_uuid(), %s, 'x', '', '', '')",
            (second.id, foreign.id),
        )


def test_score_value_must_match_its_type(project, database_url: str) -> None:
    g = project.log(prompt="p", output="o")
    with _raw(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO scores (project_id, id, generation_id, name, data_type, value_text,"
            " source) VALUES (%s, gen_random_uuid(), %s, 'x', 'numeric', 'high', 'human')",
            (project.id, g.id),
        )
