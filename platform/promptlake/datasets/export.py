"""Export: generations matching a filter -> one Parquet file, fast and byte-for-byte repeatable.

The selection runs as bound parameters into a temporary table of ids (never formatted
into SQL), under the project's row-level security; the rows then leave the server with
``COPY (SELECT …) TO STDOUT`` as CSV, which pyarrow parses on all cores with explicit
types. That keeps export within a small factor of raw ``COPY`` (``promptlake bench
export``), where a row-by-row cursor manages about a third of it (DESIGN.md).

Repeatable: rows are ordered by id, every column has a fixed type, JSON values are
rendered by PostgreSQL's ``jsonb`` output (keys sorted by length then bytes, stable), and
the Parquet writer gets fixed settings, so the same database state and filter give the
same bytes: the md5 DVC records means "the same data".

Columns: ids as strings, ``created_at`` as UTC microseconds, ``model`` by name, JSON
fields (``input_messages``, ``params``, ``lineage``, ``tags``, ``metadata``) as JSON
text, ``content_hash`` as hex, and ``scores``: a JSON object of each score's mean
(booleans as 0/1; categorical scores as their latest value).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .params import ExportFilter

if TYPE_CHECKING:
    import pyarrow as pa

    from ..client import Project

SELECTION_TABLE = "promptlake_export_ids"

# (name, SQL expression over generations g / models m / the scores lateral s, arrow type)
COLUMNS: list[tuple[str, str, str]] = [
    ("id", "g.id::text", "string"),
    ("session_id", "g.session_id::text", "string"),
    ("parent_id", "g.parent_id::text", "string"),
    ("seq", "g.seq", "int32"),
    ("created_at", "(extract(epoch FROM g.created_at) * 1000000)::int8", "timestamp"),
    ("model", "m.name", "string"),
    ("prompt_version_id", "g.prompt_version_id::text", "string"),
    ("run_id", "g.run_id::text", "string"),
    ("name", "g.name", "string"),
    ("input_text", "g.input_text", "string"),
    ("input_messages", "g.input_messages::text", "string"),
    ("output", "g.output", "string"),
    ("params", "g.params::text", "string"),
    ("prompt_tokens", "g.prompt_tokens", "int64"),
    ("completion_tokens", "g.completion_tokens", "int64"),
    ("total_tokens", "g.total_tokens", "int64"),
    ("cost_usd", "g.cost_usd::float8", "float64"),
    ("latency_ms", "g.latency_ms", "float64"),
    ("status", "g.status", "string"),
    ("error", "g.error", "string"),
    ("origin", "g.origin", "string"),
    ("generator", "g.generator", "string"),
    ("lineage", "g.lineage::text", "string"),
    ("content_hash", "encode(g.content_hash, 'hex')", "string"),
    ("tags", "to_jsonb(g.tags)::text", "string"),
    ("metadata", "g.metadata::text", "string"),
    ("scores", "s.scores::text", "string"),
]

_SCORES = """LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(name, value) AS scores FROM (
        SELECT name,
               CASE WHEN bool_and(data_type = 'categorical')
                    THEN to_jsonb((array_agg(value_text ORDER BY created_at DESC, id DESC))[1])
                    ELSE to_jsonb(avg(coalesce(value_numeric, value_bool::int))) END AS value
          FROM scores sc
         WHERE sc.project_id = g.project_id AND sc.generation_id = g.id
         GROUP BY name) named) s ON true"""


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, _, kind in COLUMNS])


def select_sql() -> str:
    """The SELECT of the selected rows, in export order."""
    select = ", ".join(f"{expr} AS {name}" for name, expr, _ in COLUMNS)
    return (
        f"SELECT {select} FROM {SELECTION_TABLE} e"
        " JOIN generations g ON g.project_id = e.project_id AND g.id = e.id"
        " LEFT JOIN models m ON m.project_id = g.project_id AND m.id = g.model_id"
        f" {_SCORES} ORDER BY g.id"
    )


def copy_query() -> str:
    """The COPY that streams the selected rows (the same statement the benchmark times)."""
    return f"COPY ({select_sql()}) TO STDOUT (FORMAT csv)"


def _where(project: Project, flt: ExportFilter) -> tuple[str, list[Any]]:
    clauses = ["g.project_id = %s", "g.origin = ANY(%s)", "g.status = ANY(%s)"]
    params: list[Any] = [project.id, list(flt.origins), list(flt.statuses)]
    if flt.models:
        clauses.append(
            "g.model_id IN (SELECT id FROM models WHERE project_id = %s AND name = ANY(%s))"
        )
        params += [project.id, list(flt.models)]
    if flt.tags:
        clauses.append("g.tags && %s::text[]")
        params.append(list(flt.tags))
    if flt.entities:
        from ..graph.filters import CONDITION, entity_params

        keys, names = entity_params(flt.entities)
        clauses.append(CONDITION.format(p="%s", keys="%s::text[]", names="%s::text[]"))
        params += [project.id, names, keys, names]
    if flt.since:
        clauses.append("g.created_at >= %s")
        params.append(flt.since)
    if flt.until:
        clauses.append("g.created_at < %s")
        params.append(flt.until)
    for name, threshold in sorted(flt.min_scores.items()):
        clauses.append(
            "(SELECT avg(coalesce(value_numeric, value_bool::int)) FROM scores sc"
            " WHERE sc.project_id = g.project_id AND sc.generation_id = g.id"
            " AND sc.name = %s) >= %s"
        )
        params += [name, threshold]
    return " AND ".join(clauses), params


def select_ids(conn: Any, project: Project, flt: ExportFilter) -> int:
    """Fill the transaction's temporary selection table; returns its row count."""
    where, params = _where(project, flt)
    limit = " LIMIT %s" if flt.limit else ""
    if flt.limit:
        params.append(flt.limit)
    created = conn.execute(
        f"CREATE TEMPORARY TABLE {SELECTION_TABLE} ON COMMIT DROP AS"
        f" SELECT g.project_id, g.id FROM generations g WHERE {where} ORDER BY g.id{limit}",
        params,
    )
    return created.rowcount  # from the command tag, "SELECT n"


@dataclass(frozen=True)
class ExportReport:
    path: str
    rows: int
    bytes: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return f"exported {self.rows:,} rows to {self.path} ({self.bytes:,} bytes)"


PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["model", "status", "origin", "generator"],
    "write_statistics": True,
}
ROW_GROUP_ROWS = 32 * 1024


def _csv_options() -> tuple[Any, Any, Any]:
    """pyarrow CSV options for the COPY's output (NULL is unquoted empty, '' is quoted)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = arrow_schema()
    raw_types = {f.name: (pa.int64() if f.name == "created_at" else f.type) for f in schema}
    return (
        pacsv.ReadOptions(column_names=schema.names, block_size=4 << 20),
        pacsv.ParseOptions(newlines_in_values=True),
        pacsv.ConvertOptions(
            column_types=raw_types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def _typed(table: pa.Table) -> pa.Table:
    import pyarrow as pa

    index = table.schema.get_field_index("created_at")
    created = table.column(index).cast(pa.timestamp("us", tz="UTC"))
    return table.set_column(index, "created_at", created)


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Fixed writer settings, so equal tables give equal files."""
    import pyarrow.parquet as pq

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, str(path), row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTIONS)
    except OSError as exc:
        text = str(exc)  # pyarrow's: "Failed to open local file '...'. Detail: [errno 2] ..."
        reason = text.split("Detail: ")[-1] if "Detail: " in text else exc.strerror or text
        raise ConfigurationError(f"cannot write {path}: {reason}") from None


def _check_writable(partial: Path, path: str | Path) -> None:
    """Create ``partial`` (the file written before it is renamed to ``path``), or raise
    :class:`ConfigurationError` saying why ``path`` cannot be written."""
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"cannot write {path}: {reason}") from None


def read_parquet(path: str | Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(str(path))
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such file (run the previous stage first)") from None
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"{path}: cannot be read as Parquet ({reason})") from None


def export(
    project: Project,
    flt: ExportFilter,
    path: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the generations of ``project`` matching ``flt`` to ``path`` (Parquet).

    The COPY runs in a thread that feeds a pipe; this thread parses the CSV from the
    pipe and writes row groups as they fill, so reading, parsing and writing overlap and
    memory stays bounded. The export is recorded in the audit log (who exported how many
    rows with which filter) in the COPY's transaction."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ..access import require_member, write_audit

    require_member(project, ("admin", "analyst"))  # others would export zero rows silently
    started = time.perf_counter()
    read_fd, write_fd = os.pipe()
    selected: list[int] = []
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, project.lake._transaction(project) as conn:
                selected.append(select_ids(conn, project, flt))
                with conn.cursor().copy(copy_query()) as copy:
                    for block in copy:
                        sink.write(block)
                write_audit(conn, project, "export", str(path), {"rows": selected[0],
                            **flt.to_dict()})  # fmt: skip
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    partial = Path(path).with_name(Path(path).name + ".partial")
    _check_writable(partial, path)  # before the COPY starts: a bad --out costs nothing
    thread = threading.Thread(target=pump, name="promptlake-export", daemon=True)
    thread.start()
    rows = 0
    try:
        with os.fdopen(read_fd, "rb") as source:
            schema = arrow_schema()
            with pq.ParquetWriter(str(partial), schema, **PARQUET_OPTIONS) as out:
                pending: list[pa.RecordBatch] = []
                pending_rows = 0
                try:
                    reader = pacsv.open_csv(source, *_csv_options())
                except pa.ArrowInvalid:  # no bytes at all: nothing selected (or a failure)
                    reader = iter(())
                for batch in reader:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    rows += batch.num_rows
                    if progress and selected:
                        progress(rows, selected[0])
                    while pending_rows >= ROW_GROUP_ROWS:
                        table = pa.Table.from_batches(pending)
                        out.write_table(_typed(table.slice(0, ROW_GROUP_ROWS)))
                        rest = table.slice(ROW_GROUP_ROWS)
                        pending, pending_rows = rest.to_batches(), rest.num_rows
                if pending_rows or rows == 0:
                    out.write_table(
                        _typed(pa.Table.from_batches(pending, schema=reader.schema))
                        if pending_rows
                        else schema.empty_table()
                    )
    except BaseException:
        thread.join()
        partial.unlink(missing_ok=True)
        # the COPY failed first: its error is the cause, not the broken pipe
        if failure and not isinstance(failure[0], BrokenPipeError):
            raise failure[0] from None
        raise
    thread.join()
    if failure:
        partial.unlink(missing_ok=True)
        raise failure[0]
    if rows != selected[0]:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"export read {rows} rows of the {selected[0]} selected")
    partial.replace(path)
    if progress:
        progress(rows, rows)
    return ExportReport(str(path), rows, Path(path).stat().st_size, time.perf_counter() - started)
