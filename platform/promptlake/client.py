"""``Lake``, the one entry object, and the project and session handles it gives out.

    lake = promptlake.connect()
    proj = lake.project("support-bot")
    with proj.session(end_user_id="u-42") as s:
        g = s.log(prompt="Hi", output="Hello!", model="gpt-4o")
    proj.score(g, "helpfulness", 0.8)

Every write goes through one short transaction on a pooled psycopg connection, which
first sets ``promptlake.project_id`` with ``set_config(..., true)``: the per-transaction
context that row-level security policies read.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from .access import as_uuid
from .config import Settings, load_settings
from .db import logins
from .db import migrate as migrations
from .db.engine import describe, make_engine, resolve_url, translate
from .db.sqltext import to_driver
from .errors import NotFoundError, PermissionDeniedError, Problem, ValidationError
from .generation import Generation, generation_from_row, select_generations_sql
from .ids import uuid7
from .ingest.positions import assign_positions
from .ingest.records import _Collector, finish_generation, prepare_generation
from .ingest.writer import (
    INSERT_SQL,
    Writer,
    attachment_rows,
    generation_tuple,
    insert_attachments,
)
from .privacy.anonymize import store_side_rows
from .prompts import PromptRegistry
from .scores import Score, insert_scores, prepare_score, score_from_values
from .tracking.context import with_active_run

if TYPE_CHECKING:
    import pandas

    from .access import AuditEntry, Member
    from .datasets import Datasets
    from .dedup import ContaminationReport, DedupReport, Selection
    from .experiments import Experiments
    from .graph import Entities
    from .ingest.background import BackgroundLogger
    from .ingest.importers import ImportReport
    from .privacy.erase import ErasureReport
    from .privacy.policy import Policy
    from .privacy.reanonymize import AnonymizeReport
    from .search import IndexReport
    from .search.corpus import Corpus
    from .server.keys import ApiKeys
    from .tracking.runs import TrackedRun


def _text(query: str) -> Any:
    import sqlalchemy as sa

    return sa.text(query)


def connect(url: str | None = None, *, principal: str | None = None, migrate: bool = True) -> Lake:
    """Open the store: ``url``, else ``PROMPTLAKE_DATABASE_URL``, else the embedded server.

    ``principal`` names who the application acts for (default ``PROMPTLAKE_PRINCIPAL`` or
    the OS user); row-level security shows it only the projects it is a member of. With
    ``migrate`` (the default) the schema is brought to the latest version first.
    """
    return Lake(url, principal=principal, migrate=migrate)


class Lake:
    """A connection to a promptlake store. Use as a context manager or call :meth:`close`.

    The login in the URL runs migrations; all other work runs as the application role
    ``promptlake_app`` (when the login may take it), which owns nothing, so the database's
    row-level security decides what every query sees.
    """

    def __init__(
        self, url: str | None = None, *, principal: str | None = None, migrate: bool = True
    ) -> None:
        self.settings: Settings = load_settings()
        self.principal = principal or self.settings.principal
        with translate("connecting to the database"):
            self.url = resolve_url(self.settings, url)
            if migrate:
                owner = make_engine(self.url)
                try:
                    migrations.upgrade(owner)
                finally:
                    owner.dispose()
            self.engine = make_engine(self.url, app_role=True)
        self._projects: dict[str, Project] = {}
        self._user_engine: Any = None
        self._master_key: bytes | None = None
        self._models: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        # per thread: a transaction's model ids, cached once it committed (threads share
        # a Lake, e.g. the background logger's flusher and the application's own calls)
        self._local = threading.local()
        self._check_master_key()

    def __repr__(self) -> str:
        return f"<Lake {describe(self.url)}>"

    def acting_as(self, principal: str) -> Lake:
        """A Lake for another principal on this one's engine (no new pool, no migration):
        for servers that act for many principals. Everything tied to a principal (its
        project handles, its own login, its cached model ids) starts afresh."""
        other = copy.copy(self)
        other.principal = principal
        other._projects = {}
        other._models = {}
        other._local = threading.local()
        other._user_engine = None
        return other

    @property
    def _pending_models(self) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
        pending = getattr(self._local, "pending_models", None)
        if pending is None:
            pending = self._local.pending_models = {}
        return pending

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._user_engine is not None:
            self._user_engine.dispose()
        self.engine.dispose()

    # -- keys -------------------------------------------------------------------------

    def _check_master_key(self) -> None:
        """Refuse to start with a missing or different master key once the store was
        written with one (pseudonyms, vault entries and tombstones depend on it)."""
        from .privacy import keys

        with self._transaction(None) as conn:
            row = conn.execute("SELECT promptlake_key_fingerprint('master')").fetchone()
        registered = row[0] if row else None
        local = keys.load_master_key(self.settings, create=False)
        if registered is None:
            return
        keys.check_registered(self.settings, local, registered)
        self._master_key = local

    def master_key(self) -> bytes:
        """The master key (created on first use, and its fingerprint recorded in the
        store so that a later start with another key is refused)."""
        if self._master_key is None:
            from .privacy import keys

            key = keys.load_master_key(self.settings, create=True)
            assert key is not None
            with self._transaction(None) as conn:
                row = conn.execute(
                    "SELECT promptlake_register_key('master', %s)", (keys.key_id(key),)
                ).fetchone()
            keys.check_registered(self.settings, key, row[0] if row else None)
            self._master_key = key
        return self._master_key

    # -- projects ---------------------------------------------------------------------

    def project(self, name: str, *, create: bool = True, description: str | None = None) -> Project:
        """The project called ``name`` (or with that id) among the principal's projects;
        unless ``create=False``, a new project of the principal's own when it is a member
        of none by that name. Its creator becomes its admin.

        Names are unique per owner: another tenant's project of the same name is neither
        seen nor blocked (no existence oracle, no squatting). When the principal belongs
        to several projects of that name, its own wins; else pass the project's id."""
        if name in self._projects:
            return self._projects[name]
        c = _Collector(self.settings.max_text_bytes)
        checked = c.name("project", name)
        if checked is not None and len(checked) > 200:
            c.add("project", "names are at most 200 characters")
        if c.problems:
            raise ValidationError(c.problems)
        with self._transaction(None) as conn:
            found = conn.execute(
                "SELECT id, name, owner FROM projects WHERE name = %s OR id::text = %s"
                " ORDER BY (owner = %s) DESC, created_at",
                (name, name.lower(), self.principal),
            ).fetchall()
            if not found and create:
                row = conn.execute(
                    "SELECT promptlake_create_project(%s, %s, %s)", (name, description, uuid7())
                ).fetchone()
                if row is not None and row[0] is not None:
                    found = [(row[0], name, self.principal)]
        if not found:
            raise NotFoundError(
                f"no project named {name!r} that {self.principal!r} is a member of"
                " (`promptlake stats` lists yours)"
            )
        by_id = [f for f in found if str(f[0]) == name.lower()]
        if by_id:
            found = by_id
        elif len(found) > 1 and found[0][2] != self.principal:
            owners = ", ".join(f"{f[0]} (owner {f[2]})" for f in found)
            why = f"{name!r} names several of your projects: {owners}; pass an id"
            raise ValidationError([Problem("project", why)])
        project = Project(self, found[0][0], found[0][1])
        self._projects[name] = project
        return project

    def projects(self) -> list[str]:
        """Names of the projects the principal is a member of, sorted."""
        with self._transaction(None) as conn:
            return [r[0] for r in conn.execute("SELECT name FROM projects ORDER BY name")]

    # -- SQL --------------------------------------------------------------------------

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        project: Project | str | None = None,
    ) -> pandas.DataFrame:
        """Run a query and return a pandas DataFrame; ``:name`` placeholders bind ``params``.

        The query runs as the principal's own database login (never the application's),
        over every project the principal is a member of; ``project`` narrows to one."""
        import pandas as pd

        statement, bound = to_driver(query, params)  # ':name' found as PostgreSQL reads SQL
        with self._user_transaction(project) as conn:
            result = conn.exec_driver_sql(statement, bound)
            if not result.returns_rows:
                return pd.DataFrame()
            rows = result.fetchall()
            if not rows and project is None:
                self._check_sees_a_project(conn)
            return pd.DataFrame.from_records(rows, columns=list(result.keys()), coerce_float=True)

    def query(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        project: Project | str | None = None,
    ) -> tuple[list[str], list[tuple]]:
        """Run a query as the principal's login; return (column names, rows) without pandas."""
        statement, bound = to_driver(query, params)
        with self._user_transaction(project) as conn:
            result = conn.exec_driver_sql(statement, bound)
            if not result.returns_rows:
                return [], []
            rows = [tuple(r) for r in result]
            if not rows and project is None:
                self._check_sees_a_project(conn)
            return list(result.keys()), rows

    def login_url(self) -> str:
        """A libpq URL of the principal's own database login, for psql, pandas or BI
        tools: what it shows is exactly what row-level security lets the principal see."""
        url = self._login_engine().url.set(drivername="postgresql")
        return str(url.render_as_string(hide_password=False))

    # -- internals --------------------------------------------------------------------

    def _login_engine(self) -> Any:
        """The engine of the principal's own login (made on first use)."""
        if self._user_engine is None:
            import sqlalchemy as sa
            from sqlalchemy.pool import NullPool

            password = logins.login_password(self.master_key(), self.principal)
            with self._transaction(None) as conn:
                rolname = logins.ensure_login(conn, password)
            # no pool: nothing a query changes in its session (SET ROLE, settings) outlives it
            self._user_engine = sa.create_engine(
                logins.login_url(self.url, rolname, password), poolclass=NullPool
            )
        return self._user_engine

    @contextmanager
    def _user_transaction(self, project: Project | str | None) -> Iterator[Any]:
        """A transaction on the principal's login, narrowed to ``project`` if given."""
        if isinstance(project, str):
            project = self.project(project, create=False)
        try:
            with translate("running SQL"):
                engine = self._login_engine()
                with engine.begin() as conn:
                    if project is not None:
                        conn.execute(
                            _text("SELECT set_config('promptlake.project_id', :project, true)"),
                            {"project": str(project.id)},
                        )
                    yield conn
        except PermissionDeniedError:
            if project is None and not self.projects():
                raise self._no_project() from None
            raise

    def _check_sees_a_project(self, conn: Any) -> None:
        """An empty result for a principal of no project is no answer: say why."""
        if not conn.execute(_text("SELECT EXISTS (SELECT FROM projects)")).scalar():
            raise self._no_project()

    def _no_project(self) -> NotFoundError:
        return NotFoundError(
            f"{self.principal!r} is a member of no project, so every table looks empty;"
            " an admin of a project can grant access (`promptlake grant --project P"
            f" --principal {self.principal} --role analyst`)"
        )

    @contextmanager
    def _sa_transaction(self, project: Project | None) -> Iterator[Any]:
        """A SQLAlchemy transaction on the application role with the principal and project
        context set: for the library's own SQL only, never for text a user wrote."""
        with translate("running SQL"), self.engine.begin() as conn:
            conn.execute(
                _text(
                    "SELECT set_config('promptlake.principal', :who, true),"
                    " set_config('promptlake.project_id', :project, true)"
                ),
                {"who": self.principal, "project": str(project.id) if project else ""},
            )
            yield conn

    @contextmanager
    def _transaction(self, project: Project | None) -> Iterator[psycopg.Connection]:
        """One transaction on a pooled psycopg connection, with the principal and the
        project context set for row-level security (``set_config(..., true)``), and
        ``synchronous_commit`` on whatever the server's default: a commit that returns
        is on disk, so an acknowledged write survives a crash."""
        with translate("writing to the database"):
            raw = self.engine.raw_connection()
            try:
                conn: psycopg.Connection = raw.driver_connection  # type: ignore[assignment]
                self._pending_models.clear()
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('promptlake.principal', %s, true),"
                        " set_config('promptlake.project_id', %s, true),"
                        " set_config('synchronous_commit', 'on', true)",
                        (self.principal, str(project.id) if project else ""),
                    )
                    yield conn
                # ids learnt inside a transaction are cached only once it has committed
                self._models.update(self._pending_models)
            except psycopg.OperationalError:
                raw.invalidate()  # a broken connection goes, not back to the pool
                raise
            finally:
                self._pending_models.clear()
                raw.close()

    def _model_ids(
        self, conn: psycopg.Connection, project: Project, names: Iterable[str | None]
    ) -> dict[str | None, uuid.UUID]:
        """Ids of the named models in ``project``, registering new names."""
        out: dict[str | None, uuid.UUID] = {}
        missing = []
        for name in set(names):
            if name is None:
                continue
            cached = self._models.get((project.id, name))
            if cached is None:
                missing.append(name)
            else:
                out[name] = cached
        if missing:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO models (project_id, id, name) VALUES (%s, %s, %s)"
                    " ON CONFLICT (project_id, name) DO NOTHING",
                    [(project.id, uuid7(), name) for name in missing],
                )
            rows = conn.execute(
                "SELECT name, id FROM models WHERE project_id = %s AND name = ANY(%s)",
                (project.id, missing),
            ).fetchall()
            for name, mid in rows:
                out[name] = mid
                self._pending_models[(project.id, name)] = mid
        return out


class Project:
    """A tenant of the store: its sessions, generations, prompts and scores."""

    def __init__(self, lake: Lake, project_id: uuid.UUID, name: str) -> None:
        self.lake = lake
        self.id = project_id
        self.name = name
        self.prompts = PromptRegistry(self)

    def __repr__(self) -> str:
        return f"<Project {self.name!r} {self.id}>"

    # -- privacy ----------------------------------------------------------------------

    POLICY_TTL_SECONDS = 10.0

    def _anonymizer(self) -> Callable[[Any], None] | None:
        """The ingest anonymizer of the live policy, re-read at most every few seconds; a
        re-read the database cannot answer keeps the policy read before (ingest/policy_cache.py)."""
        from .ingest.policy_cache import cached_anonymizer

        return cached_anonymizer(self, self.POLICY_TTL_SECONDS)

    def pii_policy(self) -> Policy:
        """The live anonymization policy (the default until one is set)."""
        from .privacy.policy import current

        return current(self)

    def set_pii_policy(
        self,
        operators: Mapping[str, str] | None = None,
        *,
        apply_at: str = "ingest",
        vault: bool = False,
        detectors: Iterable[str] = ("pattern",),
    ) -> Policy:
        """Store a new policy version: entity type -> redact|mask|pseudonymize|drop|keep,
        applied at ``ingest`` or only at ``export``, originals to the vault or not."""
        from .privacy.policy import set_policy

        policy = set_policy(self, operators, apply_at=apply_at, vault=vault, detectors=detectors)
        self.__dict__.pop("_anonymizer_cache", None)
        return policy

    def anonymize(self, *, batch_size: int = 1000, progress: Any = None) -> AnonymizeReport:
        """Apply the live policy to stored rows not yet under it (resumable; admins only)."""
        from .privacy.reanonymize import anonymize_stored

        return anonymize_stored(self, batch_size=batch_size, progress=progress)

    def reveal(self, generation: Generation | uuid.UUID | str) -> dict[str, Any]:
        """The original text of an anonymized generation, from the vault (admins; audited)."""
        from .privacy.anonymize import reveal

        return reveal(self, as_uuid(generation))

    def erase(self, end_user_id: str) -> ErasureReport:
        """Delete everything about one end user and keep a tombstone (admins; audited)."""
        from .privacy.erase import erase

        return erase(self, end_user_id)

    # -- deduplication ----------------------------------------------------------------

    def dedup(
        self, method: str = "minhash", threshold: float | None = None, **options: Any
    ) -> DedupReport:
        """Find duplicates within this project (``exact``, ``minhash`` or ``semantic``) and
        record them as clusters; returns a report. See :func:`promptlake.dedup.dedup`."""
        from .dedup import dedup

        return dedup(self, method, threshold, **options)

    def contamination(
        self, suspects: Selection, references: Selection, **options: Any
    ) -> ContaminationReport:
        """Rows of ``suspects`` that near-duplicate rows of ``references`` (e.g. training or
        synthetic rows against an evaluation set). See :func:`promptlake.dedup.contamination`."""
        from .dedup import contamination

        return contamination(self, suspects, references, **options)

    # -- search -----------------------------------------------------------------------

    def embed(self, embedder: Any = None, **options: Any) -> IndexReport:
        """Backfill search indexes: embeddings of rows missing them (each distinct text once),
        full text, then the embedder's HNSW index. Resumable. See
        :func:`promptlake.search.backfill`."""
        from .search import backfill

        return backfill(self, embedder, **options)

    def search(self, query: str, k: int = 10, *, mode: str = "hybrid", **filters: Any) -> list:
        """The ``k`` generations best matching ``query`` (``hybrid``, ``text`` or ``vector``),
        with filters (model, origin, since, until, tags, session, end_user, score).
        Returns :class:`promptlake.search.SearchHit` values. See
        :func:`promptlake.search.search`."""
        from .search import search

        return search(self, query, k, mode=mode, **filters)

    def similar(self, generation: Any, k: int = 10, **options: Any) -> list:
        """The ``k`` generations nearest to ``generation`` by its stored embedding, itself
        left out ("find generations like this failing one"); ``embedder=`` and the filters
        of :meth:`search`. See :func:`promptlake.search.similar`."""
        from .search import similar

        return similar(self, generation, k, **options)

    @property
    def corpus(self) -> Corpus:
        """The project's RAG corpus: ``corpus.add(text_or_path)``, ``corpus.retrieve(q)``."""
        from .search.corpus import Corpus

        return Corpus(self)

    @property
    def datasets(self) -> Datasets:
        """Dataset exports and the versions the DVC pipeline recorded (``list``, ``get``,
        ``items``, ``diff``, ``export``)."""
        from .datasets import Datasets

        return Datasets(self)

    @property
    def experiments(self) -> Experiments:
        """Tasks run over dataset versions, scored and compared (``run``, ``score``,
        ``compare``, ``list``, ``results``, ``trends``)."""
        from .experiments import Experiments

        return Experiments(self)

    @property
    def keys(self) -> ApiKeys:
        """The project's API keys for ``promptlake serve``: ``create(role)``, ``list()``,
        ``revoke(prefix)`` (admins only; see :mod:`promptlake.server.keys`)."""
        from .server.keys import ApiKeys

        return ApiKeys(self)

    @property
    def entities(self) -> Entities:
        """The project's entity graph: ``proj.entities(kind=...)`` lists entities;
        ``extract``, ``get``, ``neighbors``, ``path``, ``merge``, ``rename``, ``resolve``.
        See :mod:`promptlake.graph`."""
        from .graph import Entities

        return Entities(self)

    def lineage(self, node: Any, *, direction: str = "ancestors", **options: Any) -> list:
        """Ancestors (or descendants) of a generation, run or dataset version: chains,
        synthetic seeds, runs and dataset cuts. See :func:`promptlake.graph.lineage`."""
        from .graph import lineage

        return lineage(self, node, direction=direction, **options)

    def retrieve(self, query: str, k: int = 5, **options: Any) -> list:
        """The ``k`` corpus chunks closest to ``query``; pass them to ``log(retrieved=...)``."""
        return self.corpus.retrieve(query, k, **options)

    def session(
        self,
        end_user_id: str | None = None,
        *,
        id: uuid.UUID | str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        """Start (or, given an existing ``id``, resume) a conversation."""
        return Session._open(self, end_user_id, id, name, tags, metadata)

    def log(self, **fields: Any) -> Generation:
        """Store one generation outside any session; see :meth:`Session.log` for fields."""
        return self._log_one(fields)

    def writer(
        self,
        batch_size: int = 5000,
        *,
        strict: bool = False,
        retry_seconds: float = 30.0,
        index: bool | None = None,
        embedder: Any = None,
        language: str = "english",
    ) -> Writer:
        """A buffered bulk writer (binary COPY); use as a context manager.

        A flush that meets an unavailable database retries for ``retry_seconds``, then
        journals its batch locally (see ``promptlake replay``). ``log(..., embedding=v)``
        stores ``v`` under ``embedder`` (a name, or per call ``embedder=``) with the row.
        Each committed batch is indexed for search in the background (full text, and the
        vectors of the default embedder, or of ``embedder`` if it is an embedder object,
        for rows logged without one), so rows are searchable when the writer closes
        (search/live.py). By default (``index=None``) that happens where the principal
        may (admins) and a failure only stops it; ``index=True`` requires it (and raises
        ``SearchIndexError``); ``index=False`` turns it off."""
        return Writer(self, batch_size=batch_size, strict=strict, retry_seconds=retry_seconds,
                      index=index, embedder=embedder, language=language)  # fmt: skip

    def logger(self, **options: Any) -> BackgroundLogger:
        """Non-blocking, lossless logging: ``log()`` returns once its record is fsynced to
        a local journal, and a background thread stores records with the bulk writer; use
        as a context manager. Options: ``batch_size``, ``flush_interval``, ``max_pending``
        (back-pressure), ``retry_seconds``. See :mod:`promptlake.ingest.background`."""
        from .ingest.background import BackgroundLogger

        return BackgroundLogger(self, **options)

    def import_file(self, path: str | Path, format: str, **options: Any) -> ImportReport:
        """Stream a file (sharegpt, openai, alpaca, mtbench, csv) into this project.

        See :func:`promptlake.ingest.importers.import_file` for the options."""
        from .ingest.importers import import_file

        return import_file(self, Path(path), format, **options)

    def score(
        self,
        generation: Generation | uuid.UUID | str,
        name: str,
        value: float | bool | str,
        *,
        source: str = "human",
        author: str | None = None,
        comment: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: uuid.UUID | None = None,
    ) -> Score:
        """Record a score: a number, a bool, or a category label, and who gave it."""
        values = prepare_score(
            generation,
            name,
            value,
            source=source,
            author=author,
            comment=comment,
            metadata=metadata,
            id=id,
            max_bytes=self.lake.settings.max_text_bytes,
        )
        from .privacy.anonymize import anonymize_score

        values = anonymize_score(self, values)
        try:
            with self.lake._transaction(self) as conn:
                insert_scores(conn, self.id, [values])
        except ValidationError:
            raise ValidationError(
                [
                    Problem(
                        "generation",
                        f"{values['generation_id']} is not a generation of project {self.name!r}",
                    )
                ]
            ) from None
        return score_from_values(self.id, values)

    # -- access -----------------------------------------------------------------------

    def grant(self, principal: str, role: str) -> Member:
        """Make ``principal`` an admin, writer, analyst or viewer of this project."""
        from .access import grant

        return grant(self, principal, role)

    def revoke(self, principal: str) -> bool:
        """Remove ``principal`` from this project."""
        from .access import revoke

        return revoke(self, principal)

    def members(self) -> list[Member]:
        from .access import members

        return members(self)

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """Latest audit entries: reveals, exports, erasures, grants, policy changes."""
        from .access import audit_log

        return audit_log(self, limit)

    def generation(self, generation_id: uuid.UUID | str) -> Generation:
        """Read one stored generation back."""
        gid = as_uuid(generation_id)
        with self.lake._transaction(self) as conn, conn.cursor() as cur:
            cur.execute(select_generations_sql("g.id = %s"), (self.id, gid))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError(f"no generation {gid} in project {self.name!r}")
            return generation_from_row(cur, row)

    def history(self, session_id: uuid.UUID | str) -> list[Generation]:
        """The generations of one session, in order."""
        sid = as_uuid(session_id)
        with self.lake._transaction(self) as conn, conn.cursor() as cur:
            cur.execute(
                select_generations_sql("g.session_id = %s", order="g.seq, g.created_at"),
                (self.id, sid),
            )
            return [generation_from_row(cur, r) for r in cur.fetchall()]

    def run(
        self,
        name: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        tracking: bool = True,
        tracking_uri: str | None = None,
    ) -> TrackedRun:
        """A batch job or evaluation; use as a context manager. Generations logged inside
        carry its id; on exit its metrics (computed in the database) go to the ``runs`` row
        and to an MLflow run (``tracking=False``: the database only). MLflow's store is
        ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a database ``mlflow`` on the
        same server. See :mod:`promptlake.tracking.runs`."""
        from .tracking.runs import TrackedRun

        return TrackedRun(self, name, model=model, params=params, experiment=experiment,
                          tracking=tracking, tracking_uri=tracking_uri)  # fmt: skip

    def trace(
        self,
        fn: Callable | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        session: Session | None = None,
        **defaults: Any,
    ) -> Callable:
        """Decorator: log each call's arguments, result or error, and latency."""
        from .tracing import traced

        decorate = traced(self, model=model, name=name, session=session, defaults=defaults)
        return decorate(fn) if fn is not None else decorate

    def sql(self, query: str, params: Mapping[str, Any] | None = None) -> pandas.DataFrame:
        """A query in this project's context (``:project_id`` is bound too): a DataFrame."""
        return self.lake.sql(query, {"project_id": self.id, **(params or {})}, project=self)

    def query(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple]]:
        """A query in this project's context: (column names, rows)."""
        return self.lake.query(query, {"project_id": self.id, **(params or {})}, project=self)

    # -- internals --------------------------------------------------------------------

    def _validate(self, fields: Mapping[str, Any]) -> tuple[Any, Callable[[Any], None] | None]:
        """Validate one generation for this project, as every write path does (the active
        run filled in, the size limits applied), and look up the live PII policy: the row,
        not yet anonymized or hashed, and the anonymizer :func:`finish_generation` applies.
        The bulk writer finishes rows at flush time; everything else at once
        (:meth:`_prepare`)."""
        settings = self.lake.settings
        row = prepare_generation(
            with_active_run(self.id, fields),
            max_bytes=settings.max_text_bytes,
            max_attachment_bytes=settings.max_attachment_bytes,
            finish=False,
        )
        return row, self._anonymizer()

    def _prepare(self, fields: Mapping[str, Any]) -> Any:
        """A validated, anonymized and hashed row, ready to store (see :meth:`_validate`)."""
        return finish_generation(*self._validate(fields))

    def _log_one(self, fields: Mapping[str, Any], session: Session | None = None) -> Generation:
        search_fields = ("retrieved", "embedding", "embedder")
        row = self._prepare({k: v for k, v in fields.items() if k not in search_fields})
        extras = None
        if fields.get("retrieved") or fields.get("embedding") is not None:
            from .search.live import log_extras

            extras = log_extras(self, row.id, fields.get("embedding"), fields.get("embedder"),
                                fields.get("retrieved"))  # fmt: skip
        if session is not None:
            row.session_id = session.id
        try:
            with self.lake._transaction(self) as conn, conn.cursor() as cur:
                model_ids = self.lake._model_ids(conn, self, [row.model])
                if assign_positions(conn, [row], set()):  # seq from the session's counter
                    reason = f"{row.seq} is already taken in session {row.session_id}"
                    raise ValidationError([Problem("seq", reason)])
                cur.execute(
                    INSERT_SQL, generation_tuple(self.id, row, model_ids.get(row.model), Jsonb)
                )
                if cur.rowcount:
                    if row.attachments:
                        insert_attachments(conn, attachment_rows(self.id, row))
                    store_side_rows(conn, self, [row])
                    if extras:
                        from .search.live import write_log_extras

                        write_log_extras(conn, self, [extras])
        except ValidationError as exc:
            problem = exc.problems[0]
            value = {
                "parent": row.parent_id,
                "session": row.session_id,
                "prompt_version": row.prompt_version_id,
                "run": row.run_id,
            }.get(problem.field)
            if value is None:
                raise
            raise ValidationError(
                [Problem(problem.field, f"{value} {problem.reason} ({self.name!r})")]
            ) from None
        return Generation.from_prepared(self.id, row)


class Session:
    """A conversation. ``log`` appends a generation at the next position."""

    def __init__(self, project: Project, session_id: uuid.UUID, next_seq: int) -> None:
        self.project = project
        self.id = session_id
        self._seq = next_seq

    def __repr__(self) -> str:
        return f"<Session {self.id} of {self.project.name!r}>"

    @classmethod
    def _open(cls, project, end_user_id, sid, name, tags, metadata) -> Session:
        c = _Collector(project.lake.settings.max_text_bytes)
        session_id = c.uuid("id", sid) or uuid7()
        values = (
            c.text("end_user_id", end_user_id),
            c.text("name", name),
            c.tags("tags", list(tags) if tags is not None else None),
            c.json_value("metadata", metadata),
        )
        if c.problems:
            raise ValidationError(c.problems)
        from .privacy.anonymize import anonymize_session

        named = anonymize_session(project, {"name": values[1], "tags": values[2],
                                            "metadata": values[3]})  # fmt: skip
        values = (values[0], named["name"], named["tags"], named["metadata"])
        with project.lake._transaction(project) as conn:
            from .privacy.erase import erased_subjects

            if values[0] and erased_subjects(project, conn, {values[0]}):
                raise ValidationError(
                    [
                        Problem(
                            "end_user_id", "was erased from this project; nothing is logged for it"
                        )
                    ]
                )
            conn.execute(
                "INSERT INTO sessions (project_id, id, end_user_id, name, tags, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (project.id, session_id, values[0], values[1], values[2], Jsonb(values[3])),
            )
            row = conn.execute("SELECT promptlake_next_seq(%s)", (session_id,)).fetchone()
        return cls(project, session_id, row[0] if row else 0)

    def log(
        self,
        *,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        output: str | None = None,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        parent: Generation | uuid.UUID | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost_usd: float | None = None,
        latency_ms: float | None = None,
        status: str | None = None,
        error: str | None = None,
        origin: str = "real",
        generator: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        prompt_version: Any = None,
        run: Any = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        attachments: list[Mapping[str, Any]] | None = None,
        created_at: dt.datetime | str | float | None = None,
        seq: int | None = None,
        id: uuid.UUID | str | None = None,
        retrieved: Iterable[Any] | None = None,
        embedding: Any = None,
        embedder: Any = None,
    ) -> Generation:
        """Store one generation in this session and return it.

        ``prompt`` (text) and/or ``messages`` (chat) is the input; ``parent`` links the
        previous generation of a chain; ``origin="synthetic"`` requires ``generator``.
        A client-chosen ``id`` makes the call idempotent: repeating it stores nothing new.
        ``retrieved`` records the corpus chunks (from ``retrieve``) the answer was grounded in.
        ``embedding`` (a vector the application already has) is stored under ``embedder``
        (its name) in the same transaction, for ``search(..., embedder=...)``.
        """
        fields = {k: v for k, v in locals().items() if k != "self" and v is not None}
        return self.project._log_one(fields, session=self)

    def end(self) -> None:
        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "UPDATE sessions SET ended_at = now() WHERE project_id = %s AND id = %s",
                (self.project.id, self.id),
            )

    def history(self) -> list[Generation]:
        return self.project.history(self.id)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()
