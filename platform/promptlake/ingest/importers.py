"""Importers: files of conversations and prompt/response pairs, streamed into a project.

Teams arrive with data in a handful of common layouts (ShareGPT, OpenAI chat JSONL, Alpaca,
MT-bench, CSV); ``import_file`` turns any of them into generations through the bulk
:class:`~promptlake.ingest.writer.Writer`, so imported rows get exactly the validation,
hashing and batching of logged ones. ``sources.py`` reads a file record by record (it is
never read whole), ``formats.py`` maps each record onto generations, and this module
stores them and reports what happened.

- Ids are deterministic: :func:`~promptlake.ids.stable_id` of the project, the format, the
  record's own id (or else its line/item number and a hash of its bytes) and the turn.
  Importing a file again stores nothing twice; the report counts those rows as duplicates.
- A record that cannot be stored (bad JSON, bad UTF-8, a NUL byte, a wrong shape, a value
  the writer refuses) is reported with where it is and why; the rest of the file is stored.
  When a turn of a chain is rejected, the turns after it are rejected with it, so no chain
  is stored with a hole.
- Sessions: one per ShareGPT conversation and per MT-bench (question, model, choice); CSV
  rows share one by a ``session`` column. OpenAI chat lines get none: each line is one
  self-contained call whose history is already in its messages, so a session per line
  would add a row per generation and group nothing. A session is declared with its first
  valid generation, so a record rejected whole leaves no empty session behind.
- MT-bench answers are never guessed from files lying next to the questions: they are
  passed explicitly. Questions nobody answered are skipped and counted.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db.models import ORIGINS
from ..errors import ConfigurationError, NotFoundError, Problem, ValidationError
from ..ids import stable_id
from . import formats
from .formats import CSV_FIELDS, BadRecord, Unit
from .records import prepare_generation
from .sources import CsvRows, Progress, ProgressCallback, Record, json_records
from .writer import Rejection, Writer

if TYPE_CHECKING:
    from ..client import Project

FORMATS = ("sharegpt", "openai", "alpaca", "mtbench", "csv")


@dataclass
class ImportReport:
    """What one import did.

    ``stored`` rows are new; ``duplicates`` were stored already (a re-import); ``rejected``
    lists ``(where, why)`` for each record not stored, e.g. ``("line 12", "prompt_tokens:
    must not be negative, got -3")`` (lines count from 1, JSON array items from 0);
    ``sessions`` counts the sessions the records belong to, new or not; ``skipped`` counts
    records with nothing to import (a conversation with no assistant turn, an unanswered
    MT-bench question).
    """

    path: Path
    format: str
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    sessions: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        text = f"{self.path.name}: stored {self.stored}, rejected {len(self.rejected)}"
        if self.duplicates:
            text += f", already stored {self.duplicates}"
        if self.skipped:
            text += f", skipped {self.skipped}"
        return f"{text} ({self.sessions} sessions)"


def import_file(
    project: Project,
    path: str | Path,
    format: str,
    *,
    origin: str = "real",
    generator: str | None = None,
    model: str | None = None,
    mapping: Mapping[str, str] | None = None,
    answers: Sequence[str | Path] | None = None,
    batch_size: int = 5000,
    progress: bool | ProgressCallback | None = None,
    index: bool = True,
) -> ImportReport:
    """Import the file at ``path``, in one of :data:`FORMATS`, into ``project``.

    ``origin``/``generator`` label the records (``"synthetic"`` needs a generator); a
    record's own ``origin``/``generator`` win. ``model`` names the model of records that
    name none. ``mapping`` (csv) maps column names to generation fields; without it,
    columns named like a field are used. ``answers`` (mtbench, required) lists the answer
    files. ``progress``: True shows a bar on stderr, None shows it only on a terminal, a
    callable is called with ``(bytes_read, bytes_total)``. ``index`` (default): rows are
    indexed for search as they are stored, where the principal may (the writer's default,
    see ``Project.writer``); ``index=False`` leaves that to ``promptlake embed``.

    Arguments are checked before any file is opened: a bad one raises
    :class:`ValidationError`, :class:`ConfigurationError` or :class:`NotFoundError`, and
    nothing is stored.
    """
    path = Path(path)
    if isinstance(answers, str | Path):
        answers = [answers]
    files = [path, *(Path(p) for p in answers or ())]
    _check_arguments(format, origin, generator, model, mapping, answers)
    for file in files:
        if not file.is_file():
            raise NotFoundError(f"no file {file}")
    bar = Progress(progress, sum(f.stat().st_size for f in files), f"importing {path.name}")
    writer = project.writer(batch_size, index=None if index else False)
    job = _Import(project, format, path, writer, bar, origin, generator, model)
    try:
        if format == "mtbench":
            job.mtbench(files[1:])
        elif format == "csv":
            job.csv(mapping)
        else:
            job.each(job.read(path), getattr(formats, format))
    finally:
        try:
            writer.flush()  # not close(): it logs a warning that the report already carries
        finally:
            try:
                writer.finish_indexing()
            finally:
                bar.close()
    return ImportReport(
        path=path,
        format=format,
        stored=writer.stats.stored,
        duplicates=writer.stats.duplicates,
        rejected=[(r.item, "; ".join(map(str, r.problems))) for r in writer.rejected],
        sessions=job.sessions,
        skipped=job.skipped,
    )


def _check_arguments(
    format: str,
    origin: str,
    generator: str | None,
    model: str | None,
    mapping: Mapping[str, str] | None,
    answers: Sequence[Any] | None,
) -> None:
    if format not in FORMATS:
        raise ConfigurationError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    problems = []
    if origin not in ORIGINS:
        problems.append(Problem("origin", f"must be one of {', '.join(ORIGINS)}; got {origin!r}"))
    elif origin == "synthetic" and not (isinstance(generator, str) and generator.strip()):
        reason = "synthetic data needs its lineage: name the generator model or pipeline"
        problems.append(Problem("generator", reason))
    elif origin == "real" and generator is not None:
        problems.append(Problem("generator", "only synthetic data has a generator"))
    if model is not None and not (isinstance(model, str) and model.strip()):
        problems.append(Problem("model", "must be a non-empty name"))
    if problems:
        raise ValidationError(problems)
    if format == "mtbench" and not answers:
        raise ConfigurationError(
            "mtbench needs its answer files (answers=[...], --answers):"
            " the questions alone hold no model output"
        )
    if format != "mtbench" and answers:
        raise ConfigurationError("answer files apply to the mtbench format only")
    if format != "csv" and mapping:
        raise ConfigurationError("a column mapping applies to the csv format only")
    for column, target in (mapping or {}).items():
        if target not in CSV_FIELDS:
            raise ConfigurationError(
                f"mapping: column {column!r} maps to {target!r}, which no CSV column can fill;"
                f" use one of {', '.join(sorted(CSV_FIELDS))}"
            )
    targets = list((mapping or {}).values())
    if len(set(targets)) < len(targets):
        raise ConfigurationError("mapping: two columns map to the same field")


def _csv_mapping(columns: list[str], mapping: Mapping[str, str] | None) -> dict[str, str]:
    if mapping is None:
        mapping = {c: c for c in columns if c in CSV_FIELDS}
    missing = [c for c in mapping if c not in columns]
    if missing:
        raise ConfigurationError(
            f"mapping: no column {', '.join(map(repr, missing))} in the header"
            f" ({', '.join(map(repr, columns))})"
        )
    if not {"prompt", "messages"} & set(mapping.values()):
        raise ConfigurationError(
            "no column maps to prompt or messages; pass a mapping such as"
            " {'question': 'prompt', 'answer': 'output'}"
        )
    return dict(mapping)


class _Import:
    """One import under way: reads records, turns them into units, logs their generations."""

    def __init__(
        self,
        project: Project,
        format: str,
        path: Path,
        writer: Writer,
        bar: Progress,
        origin: str,
        generator: str | None,
        model: str | None,
    ) -> None:
        self.project, self.format, self.path = project, format, path
        self.writer, self.bar = writer, bar
        self.origin, self.generator, self.model = origin, generator, model
        self.sessions = 0
        self.skipped = 0
        self._done = 0  # bytes of the files read before the current one
        self._declared: set[uuid.UUID] = set()
        settings = project.lake.settings
        self._limits = {
            "max_bytes": settings.max_text_bytes,
            "max_attachment_bytes": settings.max_attachment_bytes,
        }

    def read(self, path: Path, prefix: str = "") -> Iterator[Record]:
        with path.open("rb") as f:
            for record in json_records(f):
                record.label = prefix + record.label
                yield record
                self.bar.update(self._done + f.tell())
        self._done += path.stat().st_size
        self.bar.update(self._done)

    def each(self, records: Iterable[Record], parse: Callable[[Record], Any]) -> None:
        for record in records:
            if record.problem is not None:
                self.reject(record.label, record.problem)
                continue
            try:
                units = parse(record)
            except BadRecord as exc:
                self.reject(record.label, *exc.problems)
                continue
            for unit in units if isinstance(units, list) else [units]:
                self.store(unit)

    def mtbench(self, answer_files: list[Path]) -> None:
        questions: dict[str, dict[str, Any]] = {}
        self.each(self.read(self.path), partial(formats.mtbench_question, questions=questions))
        for file in answer_files:
            parse = partial(
                formats.mtbench_answer, questions=questions, model=self.model, source=self.path.name
            )
            self.each(self.read(file, f"{file.name} "), parse)
        self.skipped += sum(1 for q in questions.values() if not q["answered"])

    def csv(self, mapping: Mapping[str, str] | None) -> None:
        limit = csv.field_size_limit(max(csv.field_size_limit(), self._limits["max_bytes"]))
        delimiter = "\t" if self.path.suffix.lower() in (".tsv", ".tab") else ","
        try:
            with self.path.open("rb") as f:
                rows = iter(CsvRows(f, delimiter))
                header = next(rows, None)
                if header is None:
                    return
                if header[3] is not None:
                    raise ConfigurationError(f"{self.path}: the header cannot be read: {header[3]}")
                columns = header[2]
                used = _csv_mapping(columns, mapping)
                for label, key, cells, problem in rows:
                    try:
                        if problem is not None:
                            raise BadRecord(problem)
                        self.store(formats.csv_row(label, key, columns, cells, used))
                    except BadRecord as exc:
                        self.reject(label, *exc.problems)
                    self.bar.update(f.tell())
        finally:
            csv.field_size_limit(limit)

    def reject(self, label: str, *problems: Problem) -> None:
        self.writer.rejected.append(Rejection(label, None, problems))

    def store(self, unit: Unit) -> None:
        if not unit.generations:
            self.skipped += 1
            return
        session_id = None
        if unit.session is not None:
            session_key = unit.shared_session or unit.key
            session_id = stable_id(self.project.id, self.format, "session", session_key)
        parent: uuid.UUID | None = None
        broken = 0  # the turn of this chain that was rejected
        for i, values in enumerate(unit.generations):
            label = f"{unit.label} ({unit.part} {i + 1})" if unit.part else unit.label
            if broken:
                self.reject(label, Problem("parent", f"{unit.part} {broken} was rejected"))
                continue
            fields = self._fields(unit, i, values)
            if unit.chained and parent is not None:
                fields["parent"] = parent
            if session_id is not None:
                fields["session"] = session_id
                if unit.chained:
                    fields.setdefault("seq", i)
                problem = self._declare(session_id, unit.session or {}, fields)
                if problem is not None:
                    self.reject(label, problem)
                    broken = i + 1 if unit.chained else 0
                    continue
            parent = self.writer.log(item=label, **fields)
            if parent is None and unit.chained:
                broken = i + 1
        if session_id is not None and unit.shared_session is None:
            self._declared.discard(session_id)  # only shared sessions need remembering

    def _fields(self, unit: Unit, i: int, values: dict[str, Any]) -> dict[str, Any]:
        """The arguments of ``Writer.log`` for generation ``i`` of ``unit``."""
        fields = {k: v for k, v in values.items() if v is not None}
        fields["id"] = stable_id(self.project.id, self.format, unit.key, i)
        origin = unit.origin if unit.origin is not None else self.origin
        generator = unit.generator
        if generator is None and origin == "synthetic":
            generator = self.generator
        fields["origin"] = origin
        if generator is not None:
            fields["generator"] = generator
        if not fields.get("model") and self.model is not None:
            fields["model"] = self.model
        source = {"format": self.format, "file": self.path.name, "record": unit.label}
        if unit.record_id is not None:
            source["id"] = unit.record_id
        fields["metadata"] = {"import": source, **fields.get("metadata", {})}
        return fields

    def _declare(self, session_id: uuid.UUID, values: dict, fields: dict) -> Problem | None:
        """Declare the session along with its first generation that validates."""
        if session_id in self._declared:
            return None
        try:
            prepare_generation(fields, **self._limits)
        except ValidationError:
            return None  # the writer rejects this generation, with its reasons
        try:
            self.writer.session(id=session_id, **{k: v for k, v in values.items() if v})
        except ValidationError as exc:
            return Problem("session", "; ".join(map(str, exc.problems)))
        self._declared.add(session_id)
        self.sessions += 1
        return None
