"""``promptlake bench serve``: the OTLP path end to end against the bulk writer, same data.

The workload is the ingest bench's (``make_workload``: ~2 KB chat turns in chained
sessions). Each turn becomes a ``chat`` span with the GenAI conventions' attributes (model,
parameters, usage, input and output messages, conversation and user id, status), the
previous turn of its session its parent span, so the server rebuilds the same sessions
and chains the writer is given directly. Figures, in one run:

* the bulk writer's generations/s on the turns (the baseline);
* OTLP spans/s stored end to end: ``promptlake serve`` as a child process, ``exporters``
  concurrent clients posting protobuf export requests of ``batch`` spans (serialized
  beforehand, so the clients' CPU is not the server's), from the first request to the last
  acknowledgement (which comes after the commit); the ratio to the writer;
* p50/p99 latency of an export request under that load;
* kill -9 trials: the server killed mid-load, restarted, and every span it had
  acknowledged looked up: acknowledged, stored, lost (the target is 0 lost).
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import as_login, drop_projects
from .ingest import BenchSession, make_workload, write_workload

if TYPE_CHECKING:
    from ..client import Lake, Project

PREFIX = "bench-serve-"


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _parts(messages: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
            for m in messages
        ]
    )


def turn_span(session: BenchSession, index: int) -> Any:
    """The ``chat`` span of one turn of the workload."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    turn = session.turns[index]
    start = int(turn["created_at"].timestamp() * 1e9)
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": turn["model"],
        **{f"gen_ai.request.{k}": v for k, v in turn["params"].items()},
        "gen_ai.usage.input_tokens": turn["prompt_tokens"],
        "gen_ai.usage.output_tokens": turn["completion_tokens"],
        "gen_ai.conversation.id": str(session.id),
        "user.id": session.end_user_id,
        "gen_ai.input.messages": _parts(turn["messages"]),
        **{f"app.{k}": v for k, v in turn["metadata"].items()},
    }
    if turn.get("output") is not None:
        attrs["gen_ai.output.messages"] = _parts([{"role": "assistant", "content": turn["output"]}])
    span = Span(
        trace_id=session.id.bytes,
        span_id=uuid.UUID(str(turn["id"])).bytes[8:],
        name=f"chat {turn['model']}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(turn["latency_ms"] * 1e6),
        attributes=[_kv(k, v) for k, v in attrs.items()],
    )
    if index:
        span.parent_span_id = uuid.UUID(str(session.turns[index - 1]["id"])).bytes[8:]
    if turn.get("status") == "error":
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=turn["error"]))
    return span


def export_bodies(sessions: list[BenchSession], batch: int) -> list[tuple[bytes, list[str]]]:
    """Serialized export requests of about ``batch`` spans (whole sessions each), with the
    (trace id, span id) hex pairs each one carries."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    bodies: list[tuple[bytes, list[str]]] = []
    spans: list[Any] = []

    def emit() -> None:
        request = ExportTraceServiceRequest()
        resource = request.resource_spans.add()
        resource.resource.attributes.append(_kv("service.name", "bench-serve"))
        scope = resource.scope_spans.add()
        scope.scope.name = "promptlake.bench"
        scope.spans.extend(spans)
        ids = [f"{s.trace_id.hex()}/{s.span_id.hex()}" for s in spans]
        bodies.append((request.SerializeToString(), ids))
        spans.clear()

    for session in sessions:
        spans.extend(turn_span(session, i) for i in range(len(session.turns)))
        if len(spans) >= batch:
            emit()
    if spans:
        emit()
    return bodies


def post_all(
    url: str,
    key: str,
    bodies: list[tuple[bytes, list[str]]],
    exporters: int,
    *,
    stop: threading.Event | None = None,
    deadline_s: float = 600.0,
    acked: list[str] | None = None,
) -> tuple[list[float], list[str], list[str]]:
    """Post every body from ``exporters`` threads; returns the latencies of acknowledged
    requests, the span keys acknowledged, and errors (bounded by ``deadline_s``)."""
    import httpx

    queue = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    acked = [] if acked is None else acked  # the caller may watch it grow
    errors: list[str] = []
    deadline = time.monotonic() + deadline_s
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}

    def work() -> None:
        with httpx.Client(timeout=60, headers=headers) as client:
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                with lock:
                    if not queue:
                        return
                    body, ids = queue.pop()
                started = time.perf_counter()
                try:
                    response = client.post(url + "/v1/traces", content=body)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    if stop is not None:
                        return
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200 and not _rejected(response.content):
                        latencies.append(elapsed)
                        acked.extend(ids)
                    else:
                        errors.append(f"{response.status_code}")
                        if response.status_code in (429, 503):
                            queue.append((body, ids))  # retried later, as exporters do

    threads = [threading.Thread(target=work, daemon=True) for _ in range(exporters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, deadline - time.monotonic() + 5))
    return latencies, acked, errors


def _rejected(content: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    response.ParseFromString(content)
    return int(response.partial_success.rejected_spans)


def stored_spans(lake: Lake, project: Project) -> dict[str, int]:
    """How often each (trace/span) key is stored in ``project``, read past RLS."""
    import sqlalchemy as sa

    from ..db.engine import make_engine

    login = make_engine(lake.url)
    try:
        with login.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT metadata->'otel'->>'trace_id' || '/' || (metadata->'otel'->>'span_id'),"
                    " count(*) FROM generations WHERE project_id = :p GROUP BY 1"
                ),
                {"p": project.id},
            ).fetchall()
    finally:
        login.dispose()
    return {key: count for key, count in rows}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_serve_bench(
    lake: Lake,
    *,
    spans: int = 20_000,
    exporters: int = 4,
    batch: int = 512,
    kill_trials: int = 2,
    repeats: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures of the module docstring, on scratch projects dropped afterwards."""
    from ..server.run import free_port, start_process

    run_id = secrets.token_hex(3)
    sessions = make_workload(spans, seed=seed)
    result: dict[str, Any] = {
        "spans": spans,
        "exporters": exporters,
        "batch": batch,
        "note": "shared 2-core machine: figures are noisy",
    }
    home = Path(lake.settings.home) / "bench-serve" / run_id
    try:
        # writer and OTLP alternate (A B A B ...) on fresh projects, the server its own
        # process, so a change in the machine's load hits both; the best run of each counts
        writer_rates, otlp_rates, latencies, errors = [], [], [], []
        acked_total = stored_total = 0
        bodies = export_bodies(sessions, batch)
        for repeat in range(repeats):
            as_login(lake, "CHECKPOINT")
            writer_project = lake.project(f"{PREFIX}writer-{run_id}-{repeat}")
            started = time.perf_counter()
            with writer_project.writer(batch_size=5000) as writer:
                write_workload(writer, sessions)
            writer_rates.append(spans / (time.perf_counter() - started))

            as_login(lake, "CHECKPOINT")
            otlp_project = lake.project(f"{PREFIX}otlp-{run_id}-{repeat}")
            key = otlp_project.keys.create("writer", name="bench").secret
            port = free_port()
            process = start_process(lake.url, port, home, key=lake.master_key())
            try:
                started = time.perf_counter()
                lat, acked, errs = post_all(f"http://127.0.0.1:{port}", key, bodies, exporters)
                otlp_rates.append(len(acked) / (time.perf_counter() - started))
            finally:
                process.terminate()
                process.wait(60)
            stored = stored_spans(lake, otlp_project)
            latencies += lat
            errors += errs
            acked_total += len(acked)
            stored_total += sum(1 for k in acked if stored.get(k))
        result["repeats"] = repeats
        result["writer_per_s"] = round(max(writer_rates), 1)
        result["writer_runs"] = [round(r, 1) for r in writer_rates]
        result["otlp_spans_per_s"] = round(max(otlp_rates), 1)
        result["otlp_runs"] = [round(r, 1) for r in otlp_rates]
        result["otlp_vs_writer"] = round(result["otlp_spans_per_s"] / result["writer_per_s"], 3)
        result["otlp_acknowledged"] = acked_total
        result["otlp_stored"] = stored_total
        result["otlp_errors"] = len(errors)
        result["export_p50_ms"] = round((_percentile(latencies, 0.5) or 0) * 1000, 1)
        result["export_p99_ms"] = round((_percentile(latencies, 0.99) or 0) * 1000, 1)
        result["export_requests"] = len(latencies)

        trials = []
        for trial in range(kill_trials):
            project = lake.project(f"{PREFIX}kill-{run_id}-{trial}")
            trial_key = project.keys.create("writer", name="bench kill").secret
            trial_sessions = make_workload(min(spans, 6000), seed=seed + 1 + trial)
            trials.append(
                _kill(lake, project, trial_key, home, trial_sessions, exporters, batch, trial)
            )
        result["kill_trials"] = trials
        result["kill_acknowledged"] = sum(t["acknowledged"] for t in trials)
        result["kill_lost"] = sum(t["lost"] for t in trials)
        result["kill_duplicated"] = sum(t["duplicated"] for t in trials)
    finally:
        drop_projects(lake, PREFIX, vacuum="generations, sessions")
        shutil.rmtree(home, ignore_errors=True)  # the servers' logs
    return result


def _kill(lake, project, key, home, sessions, exporters, batch, trial) -> dict[str, Any]:
    """One kill -9 trial: the kill lands after a share of the requests were acknowledged
    that varies with the trial (a third, then a half, ...)."""
    from ..server.run import free_port, start_process

    bodies = export_bodies(sessions, batch)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(lake.url, port, home, key=lake.master_key())
    stop = threading.Event()
    out: dict[str, Any] = {}
    total = sum(len(ids) for _, ids in bodies)
    target = max(1, int(total * (0.3 + 0.2 * (trial % 3))))
    live: list[str] = []

    def load() -> None:
        out["result"] = post_all(url, key, bodies, exporters, stop=stop, deadline_s=300, acked=live)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and loader.is_alive():
            if len(live) >= target:
                break
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
    loader.join(120)
    _, acked, _ = out.get("result", ([], [], []))
    process = start_process(lake.url, port, home, key=lake.master_key())
    try:
        stored = stored_spans(lake, project)
        lost = sum(1 for k in acked if not stored.get(k))
        _, _, errors = post_all(url, key, bodies, exporters)  # the exporters' retries
        after = stored_spans(lake, project)
    finally:
        process.terminate()
        process.wait(60)
    return {
        "spans": total,
        "acknowledged": len(acked),
        "lost": lost,
        "duplicated": sum(1 for c in after.values() if c > 1),
        "stored_after_resend": len(after),
        "resend_errors": len(errors),
    }


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"promptlake bench serve: {result['spans']} spans, {result['exporters']} exporters,"
        f" {result['batch']} spans per request ({result['note']})",
        f"  bulk writer             {result['writer_per_s']:>10,.1f} generations/s"
        f"   (best of {result['writer_runs']})",
        f"  OTLP end to end         {result['otlp_spans_per_s']:>10,.1f} spans/s stored"
        f"   ({result['otlp_vs_writer']:.2f}x the writer; target >= 0.5x; runs"
        f" {result['otlp_runs']})",
        f"  export request latency  p50 {result['export_p50_ms']} ms, p99"
        f" {result['export_p99_ms']} ms ({result['export_requests']} requests)",
        f"  acknowledged / stored   {result['otlp_acknowledged']} / {result['otlp_stored']}"
        f" ({result['otlp_errors']} errors)",
    ]
    for i, trial in enumerate(result.get("kill_trials", [])):
        lines.append(
            f"  kill -9 trial {i + 1}         acknowledged {trial['acknowledged']}, lost"
            f" {trial['lost']}, duplicated {trial['duplicated']}; after resend"
            f" {trial['stored_after_resend']}/{trial['spans']} stored"
        )
    if result.get("kill_trials"):
        lines.append(
            f"  kill -9 total           {result['kill_acknowledged']} acknowledged,"
            f" {result['kill_lost']} lost (target 0)"
        )
    return "\n".join(lines)


__all__ = ["export_bodies", "format_report", "post_all", "run_serve_bench", "stored_spans"]
