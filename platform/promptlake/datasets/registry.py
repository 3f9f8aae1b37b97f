"""Dataset versions in the database: record a cut, list, show, diff, and link runs to them.

DVC knows files; the database knows generations. :func:`record` joins the two after the
``split`` stage: it reads the splits' md5 from ``dvc.lock`` (DVC writes each stage's entry
as soon as the stage finishes, so the last stage sees it), stores a ``dataset_versions``
row (name, filter, parameters, row counts, md5, git revision, the run that recorded it)
and one ``dataset_items`` row per generation and split. Recording the same cut twice
(same name and md5) returns the existing version: a rerun changes nothing.

A version is referred to by its id (or a prefix of at least 6 hex digits), by its name
(the latest version of that name), or as ``name@md5-prefix``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..db.models import DATASET_SPLITS
from ..errors import ConfigurationError, NotFoundError, Problem, ValidationError
from ..ids import uuid7

if TYPE_CHECKING:
    from ..client import Project
    from ..tracking.runs import TrackedRun
    from .params import PipelineParams


@dataclass(frozen=True)
class DatasetVersion:
    id: uuid.UUID
    name: str
    md5: str
    path: str
    row_count: int
    split_counts: dict[str, int]
    filter: dict[str, Any]
    params: dict[str, Any]
    git_rev: str | None
    run_id: uuid.UUID | None
    mlflow_run_id: str | None
    created_by: str | None
    created_at: dt.datetime


_COLUMNS = (
    "id, name, md5, path, row_count, split_counts, filter, params, git_rev, run_id,"
    " mlflow_run_id, created_by, created_at"
)


@dataclass(frozen=True)
class DatasetDiff:
    a: DatasetVersion
    b: DatasetVersion
    added: dict[str, int] = field(default_factory=dict)  # split in b -> rows not in a
    removed: dict[str, int] = field(default_factory=dict)  # split in a -> rows not in b
    moved: int = 0  # in both, in different splits (0 unless the split params changed)
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a.id), "b": str(self.b.id), "added": self.added,
            "removed": self.removed, "moved": self.moved, "unchanged": self.unchanged,
        }  # fmt: skip


def lock_md5(lock_path: str | Path, out_path: str) -> str:
    """The md5 DVC recorded in ``lock_path`` for the output ``out_path``."""
    import yaml

    try:
        lock = yaml.safe_load(Path(lock_path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigurationError(
            f"{lock_path}: not found (run this stage with dvc repro)"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ConfigurationError(f"{lock_path}: is not a DVC lock file ({reason})") from None
    wanted = Path(out_path).as_posix().rstrip("/")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage in stages.values() if isinstance(stages, dict) else ():
        outs = stage.get("outs") if isinstance(stage, dict) else None
        for out in outs if isinstance(outs, list) else ():
            if not isinstance(out, dict):
                continue
            if Path(str(out.get("path", ""))).as_posix().rstrip("/") == wanted and out.get("md5"):
                return str(out["md5"])
    raise ConfigurationError(f"{lock_path} has no md5 for {out_path!r}: run dvc repro first")


def git_revision(cwd: str | Path = ".") -> str | None:
    """HEAD of the git repository at ``cwd`` (None outside one or before the first commit)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def _version(row: tuple) -> DatasetVersion:
    return DatasetVersion(*row)


def record(
    project: Project,
    params: PipelineParams,
    split_ids: dict[str, Iterable[str]],
    *,
    md5: str,
    path: str,
    git_rev: str | None = None,
    tracking: bool | None = None,
) -> tuple[DatasetVersion, bool]:
    """Store the cut (see the module docstring); returns (version, created).

    With ``tracking`` (default: the params' ``dataset.mlflow``) the cut is made inside a
    ``proj.run`` named ``dataset:<name>``, so it has an MLflow run with the parameters,
    the row counts as metrics and the dataset as an input with context ``cut``."""
    from ..access import require_member

    require_member(project, ("admin",))  # a cut creates a run and writes its items
    existing = _find(project, "name = %s AND md5 = %s", (params.name, md5))
    if existing:
        return existing[0], False
    ids = {split: [uuid.UUID(i) for i in split_ids.get(split, ())] for split in DATASET_SPLITS}
    counts = {split: len(v) for split, v in ids.items()}
    tracking = params.mlflow if tracking is None else tracking
    flat = {"dataset": params.name, "md5": md5, **_flatten(params.export.to_dict(), "export")}
    flat.update(_flatten(params.to_dict(), ""))
    with project.run(f"dataset:{params.name}", params=flat, tracking=tracking) as run:
        version_id = uuid7()
        with project.lake._transaction(project) as conn:
            conn.execute(
                "INSERT INTO dataset_versions (project_id, id, name, filter, params, row_count,"
                " split_counts, path, md5, git_rev, run_id, mlflow_run_id, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (project.id, version_id, params.name, Jsonb(params.export.to_dict()),
                 Jsonb(params.to_dict()), sum(counts.values()), Jsonb(counts), path, md5,
                 git_rev, run.id, run.mlflow_run_id, project.lake.principal),
            )  # fmt: skip
            all_ids = [i for split in DATASET_SPLITS for i in ids[split]]
            splits = [split for split in DATASET_SPLITS for _ in ids[split]]
            inserted = conn.execute(
                "INSERT INTO dataset_items (project_id, dataset_version_id, generation_id, split)"
                " SELECT %s, %s, g.id, s.split FROM unnest(%s::uuid[], %s::text[]) AS s(id, split)"
                " JOIN generations g ON g.project_id = %s AND g.id = s.id",
                (project.id, version_id, all_ids, splits, project.id),
            ).rowcount
            if inserted != len(all_ids):
                raise ValidationError(
                    [Problem("splits", f"{len(all_ids) - inserted} of {len(all_ids)} rows are"
                             " not generations of this project (erased since the export?)"
                             "; run the pipeline again")]
                )  # fmt: skip
        version = _find(project, "id = %s", (version_id,))[0]
        if run.mlflow_run_id:
            run.log_dataset(version, context="cut")
            run.log_metrics({f"rows.{k}": float(v) for k, v in counts.items()})
    return version, True


def _flatten(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: str(value)}


def _find(project: Project, where: str, params: tuple) -> list[DatasetVersion]:
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM dataset_versions WHERE project_id = %s AND {where}"
            " ORDER BY created_at DESC, id DESC",
            (project.id, *params),
        ).fetchall()
    return [_version(r) for r in rows]


def versions(project: Project, name: str | None = None) -> list[DatasetVersion]:
    """The project's dataset versions, newest first (of one name, if given)."""
    if name is None:
        return _find(project, "true", ())
    return _find(project, "name = %s", (name,))


def get(project: Project, ref: DatasetVersion | uuid.UUID | str) -> DatasetVersion:
    """One version by id, id prefix, name (latest) or ``name@md5-prefix``."""
    if isinstance(ref, DatasetVersion):
        return ref
    text = str(ref).strip()
    found: list[DatasetVersion] = []
    try:
        found = _find(project, "id = %s", (uuid.UUID(text),))
    except ValueError:
        if "@" in text:
            name, md5 = text.split("@", 1)
            found = _find(project, "name = %s AND md5 LIKE %s", (name, _prefix(md5)))
        else:
            found = _find(project, "name = %s", (text,))[:1]
            hexdigits = text.replace("-", "")
            if (
                not found
                and len(hexdigits) >= 6
                and all(c in "0123456789abcdef" for c in hexdigits)
            ):
                found = _find(project, "id::text LIKE %s", (_prefix(text),))
    if not found:
        raise NotFoundError(f"no dataset version {text!r} in project {project.name!r}")
    if len(found) > 1:
        raise ValidationError([Problem("version", f"{text!r} matches {len(found)} versions")])
    return found[0]


def _prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def items(project: Project, ref: DatasetVersion | uuid.UUID | str) -> dict[str, list[uuid.UUID]]:
    """The generation ids of each split of a version."""
    version = get(project, ref)
    out: dict[str, list[uuid.UUID]] = {split: [] for split in DATASET_SPLITS}
    with project.lake._transaction(project) as conn:
        for gid, split in conn.execute(
            "SELECT generation_id, split FROM dataset_items"
            " WHERE project_id = %s AND dataset_version_id = %s ORDER BY generation_id",
            (project.id, version.id),
        ):
            out[split].append(gid)
    return out


def diff(project: Project, a: Any, b: Any) -> DatasetDiff:
    """What changed from version ``a`` to version ``b``, row by row."""
    va, vb = get(project, a), get(project, b)
    with project.lake._transaction(project) as conn:
        rows = conn.execute(
            "SELECT x.split, y.split, count(*) FROM"
            " (SELECT generation_id, split FROM dataset_items"
            "   WHERE project_id = %s AND dataset_version_id = %s) x"
            " FULL JOIN (SELECT generation_id, split FROM dataset_items"
            "   WHERE project_id = %s AND dataset_version_id = %s) y USING (generation_id)"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (project.id, va.id, project.id, vb.id),
        ).fetchall()
    added: dict[str, int] = {}
    removed: dict[str, int] = {}
    moved = unchanged = 0
    for before, after, n in rows:
        if before is None:
            added[after] = n
        elif after is None:
            removed[before] = n
        elif before != after:
            moved += n
        else:
            unchanged += n
    return DatasetDiff(va, vb, added, removed, moved, unchanged)


def link_run(project: Project, run: TrackedRun, ref: Any, context: str) -> DatasetVersion:
    """Record that ``run`` used a version (``run_datasets``); the run logs it to MLflow."""
    if not context or not isinstance(context, str):
        raise ValidationError([Problem("context", "must be a non-empty string")])
    version = get(project, ref)
    with project.lake._transaction(project) as conn:
        conn.execute(
            "INSERT INTO run_datasets (project_id, run_id, dataset_version_id, context)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (project.id, run.id, version.id, context),
        )
    return version
