"""``proj.run(...)``: a batch job or evaluation, as a ``runs`` row and an MLflow run.

Inside ``with proj.run("nightly-eval", model="gpt-4o", params={...}) as run:`` every
generation the project logs carries ``run.id``. On exit the run's metrics are computed in
the database (the ``run_metrics`` view of migration 0005 and the mean of each score) and
written to the ``runs`` row (``metadata.metrics``) and to MLflow, and both are marked
finished (or failed, when the block raised).

MLflow keeps its own ~65 tables with generic names, so it never shares the application
database, and it has no notion of tenants, so no two projects share a store: by default
each project gets a database ``mlflow_<project id>`` on the same PostgreSQL server (created
on first use, owned by the store's owner, so principals' own logins cannot open its
tables); ``MLFLOW_TRACKING_URI`` overrides that. Run names and parameters go through the
project's PII policy before they reach MLflow. MLflow is imported lazily
(it takes seconds) and only when a run is tracked; ``tracking=False`` records the run in
the database alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..errors import ConfigurationError
from ..ids import uuid7
from .context import ACTIVE_RUN

if TYPE_CHECKING:
    from ..client import Project

MLFLOW_DATABASE_PREFIX = "mlflow_"
MLFLOW_TEMPLATE = "mlflow_template"
METRICS = (
    "generations", "errors", "error_rate", "prompt_tokens", "completion_tokens",
    "total_tokens", "cost_usd", "latency_p50_ms", "latency_p95_ms", "duplicate_rate",
    "pii_rate", "synthetic_share",
)  # fmt: skip
_clients: dict[str, Any] = {}
# (application database URL, project id) -> that project's MLflow database URL
_default_uris: dict[tuple[str, uuid.UUID], str] = {}


def mlflow_database_name(project_id: uuid.UUID) -> str:
    return f"{MLFLOW_DATABASE_PREFIX}{project_id.hex}"


def default_tracking_uri(database_url: str, project_id: uuid.UUID) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's own MLflow database next to
    ``database_url`` (``mlflow_<project id>``, made on first use from a template that
    holds MLflow's empty schema, so a new project costs a file copy, not MLflow's
    migrations).

    One store per project: MLflow has no tenants, so a shared store would show every
    project's experiments and run parameters to anyone who can open it."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    key = (database_url, project_id)
    if key in _default_uris:
        return _default_uris[key]
    import sqlalchemy as sa

    url = sa.engine.make_url(database_url)
    if (url.database or "").startswith(MLFLOW_DATABASE_PREFIX):
        raise ConfigurationError("the application database must not be an MLflow database")
    name = mlflow_database_name(project_id)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not _database_exists(conn, name):
                _ensure_template(conn, url)
                _create_database(conn, name, template=MLFLOW_TEMPLATE)
    finally:
        engine.dispose()
    uri = url.set(database=name).render_as_string(hide_password=False)
    _default_uris[key] = uri
    return uri


def _database_exists(conn: Any, name: str) -> bool:
    import sqlalchemy as sa

    found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name})
    return found.first() is not None


def _create_database(conn: Any, name: str, template: str | None = None) -> None:
    import sqlalchemy as sa

    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(20):
        try:
            conn.execute(sa.text(statement))
            return
        except sa.exc.DBAPIError as exc:
            message = str(exc.orig)
            if "already exists" in message:
                return  # made concurrently
            if "being accessed by other users" in message and attempt < 19:
                time.sleep(0.25)  # the template is being copied or built elsewhere
                continue
            raise ConfigurationError(
                f"cannot create the {name!r} database for MLflow ({exc.orig}); create it, or"
                " set MLFLOW_TRACKING_URI"
            ) from None


def _ensure_template(conn: Any, url: Any) -> None:
    """Build ``mlflow_template`` once per server: MLflow's schema in a scratch database,
    renamed into place when complete (so a half-built template is never copied)."""
    import sqlalchemy as sa

    if _database_exists(conn, MLFLOW_TEMPLATE):
        return
    scratch = f"{MLFLOW_TEMPLATE}_{uuid.uuid4().hex[:12]}"
    _create_database(conn, scratch)
    uri = url.set(database=scratch).render_as_string(hide_password=False)
    client = _mlflow_client(uri)
    client.search_experiments()  # opening the store runs MLflow's migrations
    _clients.pop(uri, None)
    with contextlib.suppress(Exception):
        client._tracking_client.store.engine.dispose()
    conn.execute(
        sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = :d AND pid <> pg_backend_pid()"
        ),
        {"d": scratch},
    )
    try:
        conn.execute(sa.text(f'ALTER DATABASE "{scratch}" RENAME TO "{MLFLOW_TEMPLATE}"'))
    except sa.exc.DBAPIError:  # another process finished first
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


def _mlflow_client(uri: str) -> Any:
    """An MlflowClient for ``uri`` (cached: opening a SQL store checks its schema)."""
    if uri not in _clients:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigurationError(
                "MLflow is not installed: pip install 'promptlake[tracking]'"
                " (or use proj.run(..., tracking=False))"
            ) from None
        _clients[uri] = MlflowClient(tracking_uri=uri)
    return _clients[uri]


def run_metrics(project: Project, run_id: uuid.UUID) -> dict[str, float]:
    """Metrics of one run computed in the database: counts, tokens, cost, latency
    percentiles, rates, and ``score.<name>`` (mean; booleans as 0/1) for each score.
    Empty for principals that may not read the project's generations (writers, viewers):
    row-level security would make every count zero."""
    _, role = project.query("SELECT promptlake_role()")
    if role[0][0] not in ("admin", "analyst"):
        return {}
    columns, rows = project.query(
        f"SELECT {', '.join(METRICS)} FROM run_metrics WHERE run_id = :run", {"run": run_id}
    )
    out: dict[str, float] = {}
    if rows:
        out = {k: float(v) for k, v in zip(columns, rows[0], strict=True) if v is not None}
    _, scores = project.query(
        "SELECT s.name, avg(coalesce(s.value_numeric, s.value_bool::int)) FROM scores s"
        " JOIN generations g ON g.project_id = s.project_id AND g.id = s.generation_id"
        " WHERE g.run_id = :run GROUP BY s.name ORDER BY s.name",
        {"run": run_id},
    )
    for name, mean in scores:
        if mean is not None:
            out["score." + re.sub(r"[^\w\-. /]", "_", name)] = float(mean)
    return out


class TrackedRun:
    """A run in progress (see the module docstring). ``id`` is the ``runs`` row,
    ``mlflow_run_id`` the MLflow run, ``metrics`` what was logged on exit."""

    def __init__(
        self,
        project: Project,
        name: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        tracking: bool = True,
        tracking_uri: str | None = None,
    ) -> None:
        self.project = project
        self.name = name
        self.model = model
        self.params = dict(params or {})
        self.experiment = experiment or f"promptlake/{project.name}"
        self.tracking = tracking
        self.tracking_uri = tracking_uri
        self.id: uuid.UUID = uuid7()
        self.mlflow_run_id: str | None = None
        self.metrics: dict[str, float] = {}
        self.status = "running"
        self._token: Token | None = None

    def __repr__(self) -> str:
        return f"<TrackedRun {self.name!r} {self.id} {self.status}>"

    def __enter__(self) -> TrackedRun:
        lake = self.project.lake
        if self.tracking:  # first: a missing MLflow leaves no half-started run behind
            self._start_mlflow()
        try:
            with lake._transaction(self.project) as conn:
                model_id = lake._model_ids(conn, self.project, [self.model]).get(self.model)
                conn.execute(
                    "INSERT INTO runs (project_id, id, name, model_id, params, mlflow_run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (self.project.id, self.id, self.name, model_id, Jsonb(self.params),
                     self.mlflow_run_id),
                )  # fmt: skip
        except BaseException:
            if self.mlflow_run_id is not None:
                _mlflow_client(self.tracking_uri or "").set_terminated(self.mlflow_run_id, "FAILED")
            raise
        self._token = ACTIVE_RUN.set((self.project.id, self.id))
        return self

    def _start_mlflow(self) -> None:
        self.tracking_uri = self.tracking_uri or default_tracking_uri(
            self.project.lake.url, self.project.id
        )
        client = _mlflow_client(self.tracking_uri)
        from mlflow.entities import Param

        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(self.experiment)
            except Exception:  # created concurrently by another run
                experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tags = {"promptlake.project": self.project.name, "promptlake.run_id": str(self.id)}
        if self.model:
            tags["promptlake.model"] = self.model
        from ..privacy.anonymize import text_anonymizer

        clean = text_anonymizer(self.project, "params")
        run = client.create_run(experiment_id, run_name=clean(self.name), tags=tags)
        self.mlflow_run_id = run.info.run_id
        params = {**({"model": self.model} if self.model else {}), **self.params}
        if params:
            # MLflow is outside the store: its copy of the params goes through the PII
            # policy whatever the policy's apply_at (like an export)
            client.log_batch(
                self.mlflow_run_id,
                params=[Param(clean(str(k)), clean(str(v))[:6000]) for k, v in params.items()],
            )

    def use_dataset(self, ref: Any, context: str = "training") -> Any:
        """Record that this run uses a dataset version (``run_datasets``, shown by the
        ``dataset_lineage`` view) and log it as an MLflow input whose digest is the
        version's DVC md5. ``ref``: a version, its id, its name (latest) or
        ``name@md5-prefix``. Returns the :class:`~promptlake.datasets.DatasetVersion`."""
        from ..datasets.registry import link_run

        version = link_run(self.project, self, ref, context)
        if self.mlflow_run_id is not None:
            self.log_dataset(version, context)
        return version

    def log_dataset(self, version: Any, context: str) -> None:
        """Log a dataset version to this run's MLflow run as an input (``mlflow.data``)."""
        if self.mlflow_run_id is None:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        source = f"promptlake://{self.project.name}/datasets/{version.id}"
        dataset = Dataset(
            name=version.name,
            digest=version.md5,
            source_type="promptlake",
            source=json.dumps({"uri": source, "path": version.path, "git_rev": version.git_rev}),
            profile=json.dumps({"num_rows": version.row_count, "splits": version.split_counts}),
        )
        tags = [InputTag("mlflow.data.context", context)]
        _mlflow_client(self.tracking_uri or "").log_inputs(
            self.mlflow_run_id, datasets=[DatasetInput(dataset, tags)]
        )

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Extra metrics for the MLflow run (the database metrics are logged on exit)."""
        if self.mlflow_run_id is None or not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        _mlflow_client(self.tracking_uri or "").log_batch(
            self.mlflow_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
        )

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._token is not None:
            ACTIVE_RUN.reset(self._token)
            self._token = None
        self.status = "failed" if exc_type is not None else "finished"
        self.metrics = run_metrics(self.project, self.id)
        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "UPDATE runs SET status = %s, ended_at = now(),"
                " metadata = metadata || jsonb_build_object('metrics', %s::jsonb)"
                " WHERE project_id = %s AND id = %s",
                (self.status, Jsonb(self.metrics), self.project.id, self.id),
            )
        if self.mlflow_run_id is not None:
            from mlflow.entities import Metric

            client = _mlflow_client(self.tracking_uri or "")
            now = int(time.time() * 1000)
            client.log_batch(
                self.mlflow_run_id,
                metrics=[Metric(k, v, now, 0) for k, v in sorted(self.metrics.items())],
            )
            client.set_terminated(
                self.mlflow_run_id,
                "FAILED" if exc_type is not None else "FINISHED",
                end_time=int(dt.datetime.now(dt.UTC).timestamp() * 1000),
            )
