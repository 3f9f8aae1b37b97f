"""promptlake serve under load and across crashes: concurrent real OTLP exporters, a
graceful shutdown, the server process killed with -9 mid-load and restarted, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from promptlake.bench.ingest import make_workload
from promptlake.bench.serve import export_bodies, post_all, stored_spans
from promptlake.server.app import ServerConfig
from promptlake.server.run import ThreadedServer, free_port, start_process

EXE = Path(sys.executable).with_name("promptlake")


def _spans(count: int, tag: str) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    for i in range(count):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10 + i,
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"{tag} question {i}"}]}]
            ),
        }
        with tracer.start_as_current_span(f"chat {tag}", attributes=attributes):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_concurrent_exporters_for_a_bounded_time(lake, project, dbq):
    key = project.keys.create("writer").secret
    exporters, batches, size = 4, 6, 50
    work = [[_spans(size, f"e{e}b{b}") for b in range(batches)] for e in range(exporters)]
    latencies: list[float] = []
    results: list[SpanExportResult] = []
    lock = threading.Lock()
    with ThreadedServer(lake, ServerConfig(batch_items=500)) as server:

        def run(mine: list[list]) -> None:
            exporter = OTLPSpanExporter(
                endpoint=server.url + "/v1/traces",
                timeout=60,
                headers={"Authorization": f"Bearer {key}"},
            )
            deadline = time.monotonic() + 120
            for spans in mine:
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                outcome = exporter.export(spans)
                with lock:
                    latencies.append(time.perf_counter() - started)
                    results.append(outcome)
            exporter.shutdown()

        threads = [threading.Thread(target=run, args=(w,)) for w in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        flushes = server.state.ingestors[(project.id, f"key:{key[:12]}")].batches
    assert results == [SpanExportResult.SUCCESS] * (exporters * batches)
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == exporters * batches * size
    assert flushes < exporters * batches  # concurrent requests shared commits
    assert max(latencies) < 60


def test_graceful_shutdown_writes_what_was_submitted(lake, project, dbq):
    key = project.keys.create("writer").secret
    sessions = make_workload(600, seed=3)
    bodies = export_bodies(sessions, 100)
    with ThreadedServer(lake) as server:
        _, acked, errors = post_all(server.url, key, bodies, exporters=3)
    assert not errors
    assert len(acked) == 600
    assert dbq("SELECT count(*) FROM generations")[1][0][0] == 600
    # sessions and chains rebuilt from conversation ids and parent spans
    chained = dbq("SELECT count(*) FROM generations WHERE parent_id IS NOT NULL")[1][0][0]
    assert chained == sum(len(s.turns) - 1 for s in sessions)
    assert dbq("SELECT count(DISTINCT session_id) FROM generations")[1][0][0] == len(sessions)


def test_kill_9_mid_load_loses_nothing_acknowledged(lake, project, database_url, tmp_path):
    key = project.keys.create("writer").secret
    bodies = export_bodies(make_workload(3000, seed=5), 100)
    total = sum(len(ids) for _, ids in bodies)
    port = free_port()
    process = start_process(database_url, port, tmp_path / "home")  # one deployment, one key
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    live: list[str] = []
    out: dict = {}

    def load() -> None:
        out["result"] = post_all(url, key, bodies, 4, stop=stop, deadline_s=240, acked=live)

    loader = threading.Thread(target=load)
    loader.start()
    deadline = time.monotonic() + 180
    try:
        while len(live) < total // 3 and loader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
    loader.join(240)
    _, acked, _ = out["result"]
    assert 0 < len(acked) < total, "the kill must land mid-load"
    stored = stored_spans(lake, project)
    assert [k for k in acked if stored.get(k) != 1] == []  # every acknowledged span, once
    assert all(count == 1 for count in stored.values())

    process = start_process(database_url, port, tmp_path / "home")  # one deployment, one key
    try:
        _, again, errors = post_all(url, key, bodies, 4)  # the exporters retry everything
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises it after shutdown
    assert not errors and len(again) == total
    after = stored_spans(lake, project)
    assert len(after) == total and set(after.values()) == {1}


def test_keys_and_serve_through_the_cli(database_url, tmp_path, project, lake):
    env = {
        **os.environ,
        "PROMPTLAKE_DATABASE_URL": database_url,
        "PROMPTLAKE_HOME": str(tmp_path / "home"),
        "PROMPTLAKE_PRINCIPAL": lake.principal,
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env)

    made = cli("keys", "create", "--project", project.name, "--role", "writer", "--name", "ci")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("plk_") and "not shown again" in made.stderr
    listed = json.loads(cli("keys", "list", "--project", project.name, "--json").stdout)
    assert [(k["prefix"], k["role"], k["revoked_at"]) for k in listed] == [
        (secret[:12], "writer", None)
    ]
    bad = cli("keys", "create", "--project", project.name, "--role", "owner")
    assert bad.returncode == 2 and "owner" in bad.stderr
    port = free_port()
    process = start_process(database_url, port, tmp_path / "home")  # one deployment, one key
    try:
        url = f"http://127.0.0.1:{port}"
        body = {"generations": [{"prompt": "hi", "output": "hello", "model": "m"}]}
        auth = {"Authorization": f"Bearer {secret}"}
        assert httpx.post(url + "/v1/generations", json=body, headers=auth).status_code == 200
        revoked = cli("keys", "revoke", secret[:12], "--project", project.name)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert httpx.post(url + "/v1/generations", json=body, headers=auth).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises it after shutdown
    assert "--host" in cli("serve", "--help").stdout
    assert "spans/s stored end to end" in cli("bench", "serve", "--help").stdout
