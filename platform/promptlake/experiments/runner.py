"""``proj.experiments.run(...)``: a task over every item of a dataset version, scored.

An experiment is a row of ``experiments`` (unique name per project) with its own run
(``proj.run``: the ``runs`` row and the MLflow run, linked to the dataset version with
context ``evaluation``, to the model and, through each generation, to the prompt version).
Each item's task call runs in a worker thread (``concurrency``), is retried with
exponential backoff and jitter, and its output is validated and scored there; the main
thread writes finished items in batches, one transaction each: the generations (ids
derived from (experiment, item), so a write can never be duplicated), their scores
(ids derived from (generation, scorer)) and the ``experiment_items`` rows that mark them
done. Rerunning an experiment by name resumes it: items already done are skipped, items
that failed are tried again (``retry_errors``), and an interruption loses at most the
batch in flight. A task that raises on every attempt is recorded for its item
(``status = 'error'``, the error text, the attempts) and the experiment carries on.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..db.models import DATASET_SPLITS
from ..errors import NotFoundError, Problem, PromptLakeError, ValidationError
from ..ids import uuid7
from ..privacy.anonymize import text_anonymizer
from ..scores import insert_scores, prepare_score
from ..tracking.runs import TrackedRun
from .items import Item, dataset_items
from .scorers import Scorer, check_value, get_scorer
from .stats import Interval, bootstrap_mean

if TYPE_CHECKING:
    from ..client import Project
    from ..ingest.records import GenerationRow

LOG_FIELDS = frozenset(
    {
        "output",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "params",
        "metadata",
        "tags",
        "status",
        "error",
        "latency_ms",
    }
)


@dataclass(frozen=True)
class Experiment:
    """A stored experiment (``experiments`` row, with its model and MLflow run by name)."""

    id: uuid.UUID
    name: str
    dataset_version_id: uuid.UUID
    split: str | None
    run_id: uuid.UUID | None
    model: str | None
    prompt_version_id: uuid.UUID | None
    task: str | None
    params: dict[str, Any]
    status: str
    mlflow_run_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


_SELECT = (
    "SELECT e.id, e.name, e.dataset_version_id, e.split, e.run_id, m.name, e.prompt_version_id,"
    " e.task, e.params, e.status, r.mlflow_run_id, e.created_at, e.updated_at"
    " FROM experiments e LEFT JOIN models m ON m.project_id = e.project_id AND m.id = e.model_id"
    " LEFT JOIN runs r ON r.project_id = e.project_id AND r.id = e.run_id"
    " WHERE e.project_id = %s"
)


def find(project: Project, where: str = "true", params: tuple = ()) -> list[Experiment]:
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            f"{_SELECT} AND {where} ORDER BY e.created_at DESC, e.id DESC", (project.id, *params)
        ).fetchall()
    return [Experiment(*r) for r in rows]


def get(project: Project, ref: Experiment | uuid.UUID | str) -> Experiment:
    """An experiment by name, id or id prefix (at least 6 hex digits)."""
    if isinstance(ref, Experiment):
        return ref
    text = str(ref).strip()
    try:
        found = find(project, "e.id = %s", (uuid.UUID(text),))
    except ValueError:
        found = find(project, "e.name = %s", (text,))
        hexdigits = text.replace("-", "")
        if not found and len(hexdigits) >= 6 and all(c in "0123456789abcdef" for c in hexdigits):
            found = find(project, "e.id::text LIKE %s", (text + "%",))
    if not found:
        raise NotFoundError(f"no experiment {text!r} in project {project.name!r}")
    if len(found) > 1:
        raise ValidationError([Problem("experiment", f"{text!r} matches {len(found)} experiments")])
    return found[0]


@dataclass
class ExperimentReport:
    """What one call of :func:`run` did, and the experiment's scores so far."""

    experiment: Experiment
    items: int  # in the dataset (split)
    ran: int  # task calls made by this call (items, not attempts)
    skipped: int  # already done before this call
    errors: int  # items whose task failed every attempt in this call
    elapsed_s: float
    scores: dict[str, Interval] = field(default_factory=dict)  # mean and 95% bootstrap CI

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.name,
            "id": str(self.experiment.id),
            "items": self.items,
            "ran": self.ran,
            "skipped": self.skipped,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
        }


@dataclass
class _Outcome:
    item: Item
    row: GenerationRow | None
    attempts: int
    latency_ms: float
    error: str | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)
    scorer_errors: dict[str, str] = field(default_factory=dict)


def generation_id(experiment_id: uuid.UUID, item_id: uuid.UUID) -> uuid.UUID:
    """The id of the generation an experiment makes for an item: the same on every try."""
    return uuid.uuid5(experiment_id, str(item_id))


def score_id(generation: uuid.UUID, scorer: str) -> uuid.UUID:
    return uuid.uuid5(generation, "score:" + scorer)


class _ResumedRun(TrackedRun):
    """The run of an experiment started before: marked running again, same MLflow run."""

    def __init__(
        self,
        project: Project,
        run_id: uuid.UUID,
        name: str,
        mlflow_run_id: str | None,
        tracking_uri: str | None,
    ) -> None:
        super().__init__(
            project, name, tracking=mlflow_run_id is not None, tracking_uri=tracking_uri
        )
        self.id, self.mlflow_run_id = run_id, mlflow_run_id

    def __enter__(self) -> TrackedRun:
        from ..tracking.context import ACTIVE_RUN
        from ..tracking.runs import _mlflow_client, default_tracking_uri

        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL"
                " WHERE project_id = %s AND id = %s",
                (self.project.id, self.id),
            )
        if self.mlflow_run_id is not None:
            self.tracking_uri = self.tracking_uri or default_tracking_uri(
                self.project.lake.url, self.project.id
            )
            _mlflow_client(self.tracking_uri).update_run(self.mlflow_run_id, status="RUNNING")
        self._token = ACTIVE_RUN.set((self.project.id, self.id))
        return self


class _Progress:
    """A rich progress bar on a terminal, nothing when piped; or the caller's callback."""

    def __init__(self, progress: bool | Callable[[int, int], None] | None, what: str) -> None:
        self.callback = progress if callable(progress) else None
        self.show = progress is True or (progress is None and sys.stderr.isatty())
        self.what, self.bar, self.task = what, None, None

    def __enter__(self) -> Callable[[int, int], None]:
        if self.callback is not None:
            return self.callback
        if not self.show:
            return lambda done, total: None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.what, total=None)
        return lambda done, total: self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _describe(task: Callable) -> str:
    module, name = getattr(task, "__module__", None), getattr(task, "__qualname__", None)
    return f"{module}:{name}" if module and name else repr(task)[:200]


def _scorer_list(scorers: Iterable[Any]) -> list[Scorer]:
    out = [get_scorer(s) for s in scorers]
    names = [s.name for s in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationError([Problem("scorers", f"two scorers named {', '.join(repeated)}")])
    return out


def apply_scorers(
    scorers: Sequence[Scorer], gid: uuid.UUID, output: str | None, item: Item, max_bytes: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The validated score rows of one output, and the errors of scorers that raised."""
    rows, errors = [], {}
    for scorer in scorers:
        try:
            result = scorer(output, item)
            if result is None:
                continue
            check_value(scorer.name, result.value)
            rows.append(
                prepare_score(
                    gid,
                    scorer.name,
                    result.value,
                    source=scorer.source,
                    author=scorer.name,
                    comment=result.comment,
                    metadata=result.metadata or None,
                    id=score_id(gid, scorer.name),
                    max_bytes=max_bytes,
                )
            )
        except Exception as exc:  # a scorer's failure costs its score, not the item
            errors[scorer.name] = f"{type(exc).__name__}: {exc}"[:2000]
    return rows, errors


def _output_fields(result: Any) -> dict[str, Any]:
    if result is None or isinstance(result, str):
        return {"output": result}
    if isinstance(result, Mapping):
        unknown = sorted(set(result) - LOG_FIELDS)
        if unknown:
            raise ValidationError(
                [
                    Problem(
                        "task",
                        f"returned unknown fields {', '.join(map(str, unknown))}"
                        f" (allowed: {', '.join(sorted(LOG_FIELDS))})",
                    )
                ]
            )
        return dict(result)
    raise ValidationError(
        [Problem("task", f"returned {type(result).__name__}; return text, None or a dict")]
    )


class _Job:
    """The per-call state of :func:`run` that workers share (read-only in them)."""

    def __init__(
        self,
        project: Project,
        experiment: Experiment,
        task: Callable[[Item], Any],
        scorers: list[Scorer],
        retries: int,
        backoff: float,
        model: str | None,
        prompt_version: uuid.UUID | None,
    ) -> None:
        self.project, self.experiment, self.task, self.scorers = project, experiment, task, scorers
        self.retries, self.backoff, self.model, self.prompt_version = (
            retries,
            backoff,
            model,
            prompt_version,
        )
        self.max_bytes = project.lake.settings.max_text_bytes
        self.label = experiment.task or "task"

    def work(self, item: Item) -> _Outcome:
        attempts, started = 0, time.perf_counter()
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                fields = _output_fields(self.task(item))
                break
            except Exception as exc:
                if attempts > self.retries or isinstance(exc, ValidationError):
                    latency = (time.perf_counter() - started) * 1000
                    message = f"{type(exc).__name__}: {exc}"[:4000]
                    return _Outcome(item, None, attempts, latency, error=message)
                delay = self.backoff * 2 ** (attempts - 1)
                time.sleep(delay * (1 + random.random() / 4))
        latency = (time.perf_counter() - started) * 1000
        gid = generation_id(self.experiment.id, item.id)
        metadata = {
            "experiment": self.experiment.name,
            "experiment_id": str(self.experiment.id),
            "item_id": str(item.id),
            **(fields.pop("metadata", None) or {}),
        }
        values: dict[str, Any] = {
            "id": gid,
            "run": self.experiment.run_id,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "name": self.label,
            "latency_ms": latency,
            "metadata": metadata,
        }
        if item.messages is not None:
            values["messages"] = item.messages
        else:
            values["prompt"] = item.input
        values.update({k: v for k, v in fields.items() if v is not None})
        try:
            row = self.project._prepare(values)
        except PromptLakeError as exc:
            return _Outcome(item, None, attempts, latency, error=f"output rejected: {exc}"[:4000])
        scores, errors = apply_scorers(self.scorers, gid, row.output, item, self.max_bytes)
        return _Outcome(item, row, attempts, latency, scores=scores, scorer_errors=errors)


def _flush(project: Project, experiment_id: uuid.UUID, outcomes: list[_Outcome]) -> None:
    """One transaction: generations, scores and experiment_items of finished items."""
    if not outcomes:
        return
    from ..ingest.writer import INSERT_SQL, generation_tuple
    from ..privacy.anonymize import store_side_rows

    lake = project.lake
    rows = [o.row for o in outcomes if o.row is not None]
    with lake._transaction(project) as conn:
        if rows:
            model_ids = lake._model_ids(conn, project, [r.model for r in rows])
            with conn.cursor() as cur:
                cur.executemany(
                    INSERT_SQL,
                    [generation_tuple(project.id, r, model_ids.get(r.model), Jsonb) for r in rows],
                )
            store_side_rows(conn, project, rows)
            insert_scores(conn, project.id, [s for o in outcomes for s in o.scores])
        clean = text_anonymizer(project, "experiment_items.error")  # a task's own text
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO experiment_items (project_id, experiment_id, item_id, generation_id,"
                " status, error, attempts, latency_ms, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (project_id, experiment_id, item_id) DO UPDATE SET"
                " generation_id = EXCLUDED.generation_id, status = EXCLUDED.status,"
                " error = EXCLUDED.error, attempts = experiment_items.attempts + EXCLUDED.attempts,"
                " latency_ms = EXCLUDED.latency_ms, metadata = EXCLUDED.metadata,"
                " updated_at = now()",
                [
                    (
                        project.id,
                        experiment_id,
                        o.item.id,
                        o.row.id if o.row else None,
                        "ok" if o.row else "error",
                        clean(o.error) if o.error else o.error,
                        o.attempts,
                        o.latency_ms,
                        Jsonb(
                            {
                                "scorer_errors": {
                                    k: clean(str(v)) for k, v in o.scorer_errors.items()
                                }
                            }
                            if o.scorer_errors
                            else {}
                        ),
                    )
                    for o in outcomes
                ],
            )


def _open(
    project: Project,
    name: str,
    version: Any,
    split: str | None,
    task_label: str,
    model: str | None,
    params: dict[str, Any],
    tracking: bool,
    tracking_uri: str | None,
) -> tuple[Experiment | None, TrackedRun]:
    """The experiment called ``name`` (checked to match the dataset version and split)
    and its run, ready to enter; for a new name, None and a new run."""
    existing = find(project, "e.name = %s", (name,))
    if existing:
        e = existing[0]
        if e.dataset_version_id != version.id or e.split != split:
            raise ValidationError(
                [
                    Problem(
                        "name",
                        f"{name!r} already names an experiment on dataset version"
                        f" {e.dataset_version_id} split {e.split or 'all'}; choose another name",
                    )
                ]
            )
        return e, _ResumedRun(
            project, e.run_id, f"experiment:{name}", e.mlflow_run_id, tracking_uri
        )
    flat = {
        "dataset": version.name,
        "dataset_md5": version.md5,
        "split": split or "all",
        "task": task_label,
        **{k: str(v) for k, v in params.items()},
    }
    run = project.run(
        f"experiment:{name}", model=model, params=flat, tracking=tracking, tracking_uri=tracking_uri
    )
    return None, run


def _create(
    project: Project,
    run: TrackedRun,
    name: str,
    version: Any,
    split: str | None,
    task_label: str,
    model: str | None,
    prompt_version: uuid.UUID | None,
    params: dict[str, Any],
) -> Experiment:
    run.use_dataset(version, context="evaluation")
    lake = project.lake
    with lake._transaction(project) as conn:
        model_id = lake._model_ids(conn, project, [model]).get(model) if model else None
        conn.execute(
            "INSERT INTO experiments (project_id, id, name, dataset_version_id, split, run_id,"
            " model_id, prompt_version_id, task, params, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                project.id,
                uuid7(),
                name,
                version.id,
                split,
                run.id,
                model_id,
                prompt_version,
                task_label,
                Jsonb(params),
                lake.principal,
            ),
        )
    return find(project, "e.name = %s", (name,))[0]


def experiment_scores(project: Project, experiment_id: uuid.UUID) -> dict[str, list[tuple]]:
    """Per score name, (item id, value) of the experiment's ok items (booleans as 0/1;
    several scores of one name on a generation are averaged)."""
    with project.lake._transaction(project) as conn:
        items = dict(
            conn.execute(
                "SELECT generation_id, item_id FROM experiment_items"
                " WHERE project_id = %s AND experiment_id = %s AND status = 'ok'",
                (project.id, experiment_id),
            ).fetchall()
        )
        # keys first, then scores by generation id (see items.generations_by_id)
        scored = conn.execute(
            "SELECT name, generation_id, avg(coalesce(value_numeric, value_bool::int))"
            " FROM scores WHERE project_id = %s AND generation_id = ANY(%s)"
            " AND data_type <> 'categorical' GROUP BY 1, 2",
            (project.id, list(items)),
        ).fetchall()
    rows = sorted((name, items[gid], value) for name, gid, value in scored)
    out: dict[str, list[tuple]] = {}
    for name, item_id, value in rows:
        out.setdefault(name, []).append((item_id, float(value)))
    return out


def run(
    project: Project,
    dataset: Any,
    task: Callable[[Item], Any],
    scorers: Iterable[Any] = (),
    *,
    name: str | None = None,
    split: str | None = None,
    concurrency: int = 4,
    retries: int = 2,
    backoff: float = 0.5,
    model: str | None = None,
    prompt_version: Any = None,
    params: Mapping[str, Any] | None = None,
    retry_errors: bool = True,
    batch_size: int = 64,
    tracking: bool = True,
    tracking_uri: str | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> ExperimentReport:
    """Run ``task(item)`` on every item of ``dataset`` (a version, its id, name or
    ``name@md5``; ``split`` for one split), score each output and store it all (see the
    module docstring). ``task`` returns the output text, None, or a dict of log fields
    (``output``, ``model``, tokens, ``cost_usd``, ``params``, ``metadata``, ``tags``).
    Admins only (it reads the dataset's generations and logs new ones)."""
    from ..access import as_uuid, require_member
    from ..datasets.registry import get as get_version

    require_member(project, ("admin",))
    problems = []
    if not callable(task):
        problems.append(Problem("task", f"{task!r} is not callable"))
    if split is not None and split not in DATASET_SPLITS:
        problems.append(Problem("split", f"must be one of {', '.join(DATASET_SPLITS)}"))
    for field_name, value, low in (
        ("concurrency", concurrency, 1),
        ("retries", retries, 0),
        ("batch_size", batch_size, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(Problem(field_name, f"must be an integer >= {low}"))
    if not isinstance(backoff, int | float) or backoff < 0:
        problems.append(Problem("backoff", "must be a number of seconds >= 0"))
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        problems.append(Problem("name", "must be non-empty text of at most 200 characters"))
    if problems:
        raise ValidationError(problems)
    scorer_objects = _scorer_list(scorers)
    version = get_version(project, dataset)
    label = _describe(task)
    pv = None if prompt_version is None else as_uuid(prompt_version)
    name = name or f"{label.rsplit(':', 1)[-1]} on {version.name}@{version.md5[:8]}" + (
        f"/{split}" if split else ""
    )
    stored_params = {
        "scorers": [s.name for s in scorer_objects],
        "concurrency": concurrency,
        "retries": retries,
        **dict(params or {}),
    }
    found, tracked = _open(
        project, name, version, split, label, model, stored_params, tracking, tracking_uri
    )
    for scorer in scorer_objects:
        scorer.bind(project)
    started = time.perf_counter()
    with tracked as active:
        if found is None:
            experiment = _create(
                project, active, name, version, split, label, model, pv, stored_params
            )
        else:
            experiment = found
            _set_status(project, experiment.id, "running")
        items = dataset_items(project, version.id, split)
        with project.lake._transaction(project) as conn:
            previous = dict(
                conn.execute(
                    "SELECT item_id, status FROM experiment_items"
                    " WHERE project_id = %s AND experiment_id = %s",
                    (project.id, experiment.id),
                ).fetchall()
            )
        todo = [
            i
            for i in items
            if previous.get(i.id) != "ok" and (retry_errors or i.id not in previous)
        ]
        job = _Job(
            project,
            experiment,
            task,
            scorer_objects,
            retries,
            float(backoff),
            model or experiment.model,
            pv or experiment.prompt_version_id,
        )
        ran = errors = 0
        try:
            with _Progress(progress, f"experiment {name}") as advance:
                ran, errors = _execute(
                    project,
                    job,
                    todo,
                    concurrency,
                    batch_size,
                    advance,
                    len(items) - len(todo),
                    len(items),
                )
            if previous:  # a resumed run with a new scorer scores the items done before
                from .scoring import score_experiment_items

                score_experiment_items(project, experiment, scorer_objects)
        except BaseException:
            _set_status(project, experiment.id, "failed")
            raise
        summary = {
            k: bootstrap_mean([v for _, v in pairs], seed=0)
            for k, pairs in experiment_scores(project, experiment.id).items()
        }
        with project.lake._transaction(project) as conn:
            total_errors = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'error') FROM experiment_items"
                " WHERE project_id = %s AND experiment_id = %s",
                (project.id, experiment.id),
            ).fetchone()[0]
        metrics = {
            "experiment.items": float(len(items)),
            "experiment.errors": float(total_errors),
            "experiment.error_rate": total_errors / len(items) if items else 0.0,
        }
        for score_name, interval in summary.items():
            for key, value in (
                ("mean", interval.estimate),
                ("ci_low", interval.low),
                ("ci_high", interval.high),
            ):
                if value is not None:
                    metrics[f"experiment.{score_name}.{key}"] = float(value)
        active.log_metrics(metrics)
        _set_status(project, experiment.id, "finished")
    experiment = get(project, experiment.id)
    skipped = len(items) - len(todo)
    return ExperimentReport(
        experiment, len(items), ran, skipped, errors, time.perf_counter() - started, summary
    )


def _set_status(project: Project, experiment_id: uuid.UUID, status: str) -> None:
    with project.lake._transaction(project) as conn:
        conn.execute(
            "UPDATE experiments SET status = %s, updated_at = now()"
            " WHERE project_id = %s AND id = %s",
            (status, project.id, experiment_id),
        )


def _finished(job: _Job, todo: list[Item], concurrency: int) -> Iterator[list[_Outcome]]:
    """Outcomes as items finish: in this thread at concurrency 1 (no hand-offs between
    threads), else on a pool of ``concurrency`` threads with a short queue; an empty list
    at least once a second, so the caller can write what it holds."""
    if concurrency == 1:
        for item in todo:
            yield [job.work(item)]
        return
    pending: set[Future] = set()
    queue = iter(todo)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="experiment") as pool:
        try:
            while True:
                while len(pending) < concurrency * 2:
                    item = next(queue, None)
                    if item is None:
                        break
                    context = contextvars.copy_context()  # the run's id reaches the task's logs
                    pending.add(pool.submit(context.run, job.work, item))
                if not pending:
                    return
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                yield [future.result() for future in finished]
        finally:
            for future in pending:
                future.cancel()


def _execute(
    project: Project,
    job: _Job,
    todo: list[Item],
    concurrency: int,
    batch_size: int,
    advance: Callable[[int, int], None],
    done: int,
    total: int,
) -> tuple[int, int]:
    """Run the items; write finished ones in batches (at least once a second). Returns
    (items run, items failed)."""
    buffer: list[_Outcome] = []
    ran = errors = 0
    last_flush = time.monotonic()
    advance(done, total)
    try:
        with closing(_finished(job, todo, concurrency)) as outcomes:
            for finished in outcomes:
                buffer += finished
                ran += len(finished)
                errors += sum(o.row is None for o in finished)
                if len(buffer) >= batch_size or (buffer and time.monotonic() - last_flush >= 1.0):
                    batch, buffer = buffer, []
                    _flush(project, job.experiment.id, batch)
                    done += len(batch)
                    advance(done, total)
                    last_flush = time.monotonic()
    finally:
        # what finished is kept, so an interrupted experiment resumes after it
        batch, buffer = buffer, []
        _flush(project, job.experiment.id, batch)
        if batch:
            advance(done + len(batch), total)
    return ran, errors
