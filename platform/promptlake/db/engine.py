"""Engines and the translation of database errors into promptlake errors.

``resolve_url`` decides where the data lives (the configured URL or the embedded server);
``translate`` turns driver exceptions into :class:`DatabaseError` messages that say what to
do, so callers never need to import psycopg or SQLAlchemy exception types.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..config import Settings, normalize_url
from ..errors import (
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailableError,
    PermissionDeniedError,
    Problem,
    PromptLakeError,
    ValidationError,
)
from . import embedded


def resolve_url(settings: Settings, url: str | None = None) -> str:
    """The SQLAlchemy URL to use: explicit, then configured, then the embedded server."""
    if url:
        return normalize_url(url)
    if settings.database_url:
        return settings.database_url
    return embedded.start(settings.pgdata)


APP_ROLE = "promptlake_app"


def make_engine(url: str, *, app_role: bool = False) -> Engine:
    """An engine for ``url``. With ``app_role``, every connection switches to the
    application role (``promptlake_app``, which owns nothing, so row-level security
    applies) when its login may; a login that may not acts as itself."""
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        json_serializer=_json_dumps,
    )
    if app_role:
        sa.event.listen(engine, "connect", _switch_to_app_role)
    return engine


def _switch_to_app_role(dbapi_connection: psycopg.Connection, _record: object) -> None:
    row = dbapi_connection.execute(
        "SELECT CASE WHEN session_user <> %s AND EXISTS (SELECT FROM pg_roles WHERE rolname = %s)"
        " THEN pg_has_role(session_user, %s, 'MEMBER') ELSE false END",
        (APP_ROLE, APP_ROLE, APP_ROLE),
    ).fetchone()
    if row and row[0]:
        dbapi_connection.execute(f"SET ROLE {APP_ROLE}")
    dbapi_connection.commit()


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _json_dumps(value: object) -> str:
    """``json.dumps(value, ensure_ascii=False, allow_nan=False)``, with one encoder made
    once: ``json.dumps`` builds a new one on every call that passes an option, and every
    jsonb value written (several per generation, on the bulk path) comes through here."""
    return _JSON_ENCODE(value)


def describe(url: str) -> str:
    """A URL safe to print: the password removed."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


# Which argument of ``log`` a constraint protects, and what its violation means.
CONSTRAINT_FIELDS: dict[str, tuple[str, str]] = {
    "fk_generations_project_id_parent_id_generations": (
        "parent",
        "is not a generation of this project",
    ),
    "fk_generations_project_id_session_id_sessions": (
        "session",
        "is not a session of this project",
    ),
    "fk_generations_project_id_prompt_version_id_prompt_versions": (
        "prompt_version",
        "is not a prompt version of this project",
    ),
    "fk_generations_project_id_run_id_runs": ("run", "is not a run of this project"),
    "fk_generations_project_id_model_id_models": ("model", "is not a model of this project"),
    "fk_scores_project_id_generation_id_generations": (
        "generation",
        "is not a generation of this project",
    ),
    "ck_generations_tokens_non_negative": ("prompt_tokens", "must not be negative"),
    "ck_generations_cost_non_negative": ("cost_usd", "must be a finite, non-negative number"),
    "ck_generations_latency_non_negative": ("latency_ms", "must be finite and non-negative"),
    "ck_generations_synthetic_lineage": ("generator", "synthetic rows need a generator"),
    "uq_generations_project_id_session_id_seq": ("seq", "is already taken in this session"),
}


def problem_from_db_error(exc: psycopg.Error) -> Problem:
    """Turn a constraint violation into the argument it concerns and a plain reason."""
    diag = getattr(exc, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    if constraint in CONSTRAINT_FIELDS:
        return Problem(*CONSTRAINT_FIELDS[constraint])
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    return Problem("row", f"refused by the database: {message}")


@contextmanager
def translate(action: str) -> Iterator[None]:
    """Re-raise database failures during ``action`` as :class:`DatabaseError`."""
    try:
        yield
    except PromptLakeError:
        raise
    except (psycopg.errors.InsufficientPrivilege, sa.exc.ProgrammingError) as exc:
        orig = getattr(exc, "orig", exc)
        if not isinstance(orig, psycopg.errors.InsufficientPrivilege):
            raise DatabaseError(f"{action}: {_first_line(exc)}") from exc
        raise PermissionDeniedError(
            f"{action}: refused by the database's access rules ({_first_line(orig)})"
        ) from exc
    except (psycopg.errors.DataError, sa.exc.DataError) as exc:
        orig = getattr(exc, "orig", exc)
        problem = Problem("row", f"refused by the database: {_first_line(orig)}")
        raise ValidationError([problem]) from exc
    except (psycopg.errors.IntegrityError, sa.exc.IntegrityError) as exc:
        orig = getattr(exc, "orig", exc)
        raise ValidationError([problem_from_db_error(orig)]) from exc
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"{action}: invalid database URL ({exc})") from exc
    except (psycopg.errors.TransactionRollback, sa.exc.OperationalError) as exc:
        if isinstance(getattr(exc, "orig", exc), psycopg.errors.TransactionRollback):
            raise DatabaseUnavailableError(
                f"{action}: the database rolled the transaction back ({_first_line(exc)});"
                " retrying may succeed"
            ) from exc
        raise DatabaseUnavailableError(
            f"{action}: cannot reach the database ({_first_line(exc)}). Check "
            "PROMPTLAKE_DATABASE_URL, or unset it to use the embedded server."
        ) from exc
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(f"{action}: {_first_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"{action}: cannot reach the database ({_first_line(exc)})"
        ) from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"{action}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
